"""The event schemas compiled, for the hot path (the records service checks every event
on the bus; marshmallow spends some 70 us on one referral, a compiled check a few).

Each event type's envelope and data schema is translated to JSON Schema and compiled by
fastjsonschema. The translation is exhaustive: it refuses a field type, a validator or a
schema hook it does not know, so a schema change that it cannot follow fails loudly (at
import: `envelope` builds every check) instead of being checked less. Where JSON Schema
cannot say exactly what marshmallow means, the translation says something stricter (a
boolean must be true or false, where marshmallow also takes "yes"), or asks the
marshmallow field itself (date-times, through a custom format).

So `passes(event)` True means marshmallow accepts the event too. False means only "not
sure": `validate_event` then asks marshmallow, which stays the authority and words the
errors.
"""
import fastjsonschema
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.events import catalogue


class Untranslatable(TypeError):
    """A schema uses something the translation does not know."""


# Plain fields by exact type: a subclass (Email, UUID, Url...) checks more than its base.
_FIELD_TYPES = {fields.Boolean: "boolean", fields.Integer: "integer", fields.String: "string"}


class _Translation:
    def __init__(self):
        self.formats = {}  # custom format name -> check, for fields JSON Schema cannot state
        self.strict_ints = []  # key paths of strict integer fields (JSON Schema lets 1.0 pass)

    def schema(self, schema, path=()):
        if not isinstance(schema, Schema) or schema.unknown != RAISE or schema.many:
            raise Untranslatable(f"{type(schema).__name__}: only single schemas that refuse unknown fields")
        if any(schema._hooks.values()):
            raise Untranslatable(f"{type(schema).__name__}: schema hooks (pre_load, validates_schema, ...)")
        properties, required = {}, []
        for name, field in schema.load_fields.items():
            if field.data_key not in (None, name):
                raise Untranslatable(f"{type(schema).__name__}.{name}: data_key")
            properties[name] = self.field(field, None if path is None else path + (name,))
            if field.required:
                required.append(name)
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}

    def field(self, field, path):
        if type(field) is fields.Nested:  # exact types: Pluck is a Nested, Tuple no List
            if field.many:
                raise Untranslatable(f"{_where(path)}: Nested(many=True)")
            out = self.schema(field.schema, path)
        elif type(field) is fields.List:
            out = {"type": "array", "items": self.field(field.inner, None)}  # no key path inside a list
        elif type(field) is fields.Dict:
            if field.key_field is not None or field.value_field is not None:
                raise Untranslatable(f"{_where(path)}: Dict with key or value fields")
            out = {"type": "object"}
        elif isinstance(field, fields.DateTime):  # any kind: the field itself judges the text
            name = f"marshmallow-{id(field)}"
            self.formats[name] = _accepted_by(field)
            out = {"type": "string", "format": name}
        elif type(field) in _FIELD_TYPES:
            out = {"type": _FIELD_TYPES[type(field)]}
            if isinstance(field, fields.Integer) and field.strict:
                if path is None:
                    raise Untranslatable("a strict Integer inside a List")
                self.strict_ints.append(path)
        else:
            raise Untranslatable(f"{_where(path)}: {type(field).__name__}")
        for validator in field.validators:
            out.update(_constraint(validator, out["type"]))
        if field.allow_none:
            out = {"anyOf": [{"type": "null"}, out]}
        return out


def _where(path):
    return ".".join(path) if path else "(inside a list)"


def _constraint(validator, json_type):
    if isinstance(validator, validate.Length):
        if validator.equal is not None:
            low = high = validator.equal
        else:
            low, high = validator.min, validator.max
        names = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems")}.get(json_type)
        if names is None:
            raise Untranslatable(f"Length on a {json_type}")
        return {k: v for k, v in zip(names, (low, high)) if v is not None}
    if isinstance(validator, validate.OneOf):
        return {"enum": list(validator.choices)}
    if isinstance(validator, validate.Equal):
        return {"const": validator.comparable}
    if isinstance(validator, validate.Regexp):
        if validator.regex.flags & ~0x20:  # anything beyond re.UNICODE
            raise Untranslatable("a Regexp with flags")
        # marshmallow matches at the start only; JSON Schema searches anywhere
        return {"pattern": "^(?:" + validator.regex.pattern + ")"}
    if isinstance(validator, validate.Range) and json_type == "integer":
        out = {}
        if validator.min is not None:
            out["minimum" if validator.min_inclusive else "exclusiveMinimum"] = validator.min
        if validator.max is not None:
            out["maximum" if validator.max_inclusive else "exclusiveMaximum"] = validator.max
        return out
    raise Untranslatable(f"validator {type(validator).__name__}")


def _accepted_by(field):
    def check(value):
        try:
            field.deserialize(value)
        except ValidationError:
            return False
        return True
    return check


class _Check:
    """The compiled check of one event type."""

    def __init__(self, envelope, spec):
        translation = _Translation()
        schema = translation.schema(envelope)
        data = translation.schema(spec.schema, ("data",))
        schema["properties"].update(data=data, type={"const": spec.type},
                                    schemaversion={"type": "integer", "const": spec.version})
        self.validate = fastjsonschema.compile(schema, formats=translation.formats)
        self.strict_ints = translation.strict_ints

    def passes(self, event):
        try:
            self.validate(event)
        except fastjsonschema.JsonSchemaException:
            return False
        for path in self.strict_ints:
            value = event
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None and type(value) is not int:
                return False
        return True


class Checks:
    """The compiled checks of every event type in the catalogue."""

    def __init__(self, envelope):
        self.built = {event_type: _Check(envelope, catalogue.spec(event_type)) for event_type in catalogue.EVENT_TYPES}

    def passes(self, event):
        if type(event) is not dict or type(event.get("type")) is not str:
            return False
        check = self.built.get(event["type"])  # an unknown type: not sure, marshmallow says why
        return check is not None and check.passes(event)
