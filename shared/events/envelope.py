"""The CloudEvents 1.0 envelope (structured JSON mode) that every Amends message carries.

An event stays a plain dict from creation to the ledger: the records service hashes
exactly what it received, so nothing here reorders or rewrites a valid event.
"""
import uuid
from datetime import datetime, timezone

from marshmallow import Schema, fields, validate

from shared.events import catalogue, compiled

SPECVERSION = "1.0"
SOURCE_PATTERN = r"^/amends/[a-z0-9][a-z0-9-]*/[a-z][a-z0-9-]*$"


class InvalidEvent(ValueError):
    """An event that does not match the envelope or its type's schema.

    `errors` maps each field at fault to marshmallow's messages, which name the
    rule broken and never echo the offending value (it may be personal data).
    """

    def __init__(self, errors):
        self.errors = errors
        super().__init__(f"invalid event: {describe(errors)}")


def describe(errors, prefix=""):
    """Flatten marshmallow's nested errors into `field.path: message` text."""
    parts = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            parts.append(describe(value, f"{prefix}{key}."))
    elif isinstance(errors, list):
        messages = [m for m in errors if isinstance(m, str)]
        nested = [m for m in errors if not isinstance(m, str)]
        if messages:
            parts.append(f"{prefix.rstrip('.')}: {' '.join(messages)}")
        parts.extend(describe(m, prefix) for m in nested)
    else:
        parts.append(f"{prefix.rstrip('.')}: {errors}")
    return "; ".join(p for p in parts if p)


class EnvelopeSchema(Schema):
    specversion = fields.Str(required=True, validate=validate.Equal(SPECVERSION))
    id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    source = fields.Str(required=True, validate=validate.Regexp(SOURCE_PATTERN))
    type = fields.Str(required=True, validate=validate.OneOf(catalogue.EVENT_TYPES))
    subject = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    time = fields.AwareDateTime(required=True, format="iso")
    datacontenttype = fields.Str(required=True, validate=validate.Equal("application/json"))
    data = fields.Dict(required=True)
    correlationid = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    causationid = fields.Str(required=True, allow_none=True, validate=validate.Length(min=1, max=100))
    region = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    schemaversion = fields.Int(required=True, strict=True, validate=validate.Range(min=1))


_envelope = EnvelopeSchema()
# every event type's compiled check, built at import so a schema it cannot follow fails here
_compiled = compiled.Checks(_envelope)


def validate_event(event):
    """Return `event` unchanged if it is a valid Amends event; raise InvalidEvent if not.
    The compiled check answers for most events; marshmallow judges the rest and words
    the errors."""
    if _compiled.passes(event):
        return event
    errors = schema_errors(event)
    if errors:
        raise InvalidEvent(errors)
    return event


def schema_errors(event):
    """marshmallow's verdict on an event: its errors by field, empty if it is valid."""
    if not isinstance(event, dict):
        return {"_schema": ["An event must be a JSON object."]}
    errors = _envelope.validate(event)
    if not errors:
        spec = catalogue.spec(event["type"])
        if event["schemaversion"] != spec.version:
            errors["schemaversion"] = [f"Must be {spec.version} for {event['type']}."]
        data_errors = spec.schema.validate(event["data"])
        if data_errors:
            errors["data"] = data_errors
    return errors


def now_rfc3339():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_event(event_type, subject, data, *, source, region, correlationid, causationid=None):
    """Build and validate a new event. Callers never set `id` or `time` themselves."""
    spec = catalogue.spec(event_type)
    event = {
        "specversion": SPECVERSION,
        "id": str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": now_rfc3339(),
        "datacontenttype": "application/json",
        "data": data,
        "correlationid": correlationid,
        "causationid": causationid,
        "region": region,
        "schemaversion": spec.version,
    }
    return validate_event(event)
