"""What a facilitator's registry record must hold, and how it is checked. Pure.

The same schema serves HTTP, RPC and the seed file, so a malformed record is refused
the same way everywhere: every field at fault is named, and nothing is stored.
"""
from datetime import date

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from shared.events.vocabulary import CODE, FACILITATOR_LEVELS, ID, LANGUAGES

ENDORSEMENTS = ("domestic_abuse", "sexual_violence", "youth", "hate_crime")
CONFLICT_KINDS = ("participant", "referrer", "agency")
MAX_CAPACITY = 50

_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")


class InvalidFacilitator(ValueError):
    def __init__(self, errors):
        self.errors = errors
        super().__init__("invalid facilitator record: " + ", ".join(sorted(errors)))


class ConflictSchema(Schema):
    """A declared conflict of interest: a party to a case (by pseudonymous id), a
    referring officer (by referrer id), or a referring agency or team (by its code)."""
    kind = fields.Str(required=True, validate=validate.OneOf(CONFLICT_KINDS))
    ref = fields.Str(required=True, validate=[ID, _code])


def _not_future(value):
    if value > date.today():
        raise ValidationError("Must not be in the future.")


def _unique(values):
    if len(set(values)) != len(values):
        raise ValidationError("Must not repeat a value.")


class FacilitatorRecord(Schema):
    facilitator_id = fields.Str(required=True, validate=[ID, _code])
    name = fields.Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    language = fields.Str(load_default="en", validate=validate.OneOf(LANGUAGES))  # for messages to them
    level = fields.Str(required=True, validate=validate.OneOf(FACILITATOR_LEVELS))
    complex_case_trained = fields.Bool(load_default=False)
    trained_on = fields.Date(load_default=None, allow_none=True, validate=_not_future)
    last_process_on = fields.Date(load_default=None, allow_none=True, validate=_not_future)
    endorsements = fields.List(fields.Str(validate=validate.OneOf(ENDORSEMENTS)), load_default=list,
                               validate=_unique)
    prison_vetted_until = fields.Date(load_default=None, allow_none=True)
    languages = fields.List(fields.Str(validate=validate.OneOf(LANGUAGES)), required=True,
                            validate=[validate.Length(min=1), _unique])
    # the first region is home; the others are where they will travel
    regions = fields.List(fields.Str(validate=[CODE, validate.Length(max=50)]), required=True,
                          validate=[validate.Length(min=1, max=20), _unique])
    capacity = fields.Int(required=True, strict=True, validate=validate.Range(min=0, max=MAX_CAPACITY))
    available_from = fields.Date(load_default=None, allow_none=True)  # on leave until this day
    conflicts = fields.List(fields.Nested(ConflictSchema), load_default=list, validate=validate.Length(max=200))
    active = fields.Bool(load_default=True)

    @pre_load
    def accept_last_active(self, data, **kwargs):
        """`last_active` (the seed file's older name) means the last process delivered."""
        if isinstance(data, dict) and "last_active" in data:
            data = dict(data)
            value = data.pop("last_active")
            data.setdefault("last_process_on", value)
        return data

    @validates_schema
    def currency_needs_a_date(self, data, partial=False, **kwargs):
        if partial:
            return
        if data.get("trained_on") is None and data.get("last_process_on") is None:
            raise ValidationError("Give trained_on or last_process_on: currency is derived from them.",
                                  "last_process_on")


RECORD = FacilitatorRecord()
UPDATABLE = tuple(name for name in FacilitatorRecord._declared_fields if name not in ("facilitator_id", "active"))
# changes to a record: any of the fields a coordinator may change, each checked; partial at
# the top only, so that a conflict given still needs its kind and ref
CHANGES = FacilitatorRecord(partial=UPDATABLE, only=UPDATABLE)


class ListingQuery(Schema):
    """The query of the registry's listing."""
    region = fields.Str(validate=validate.Length(min=1, max=50))
    active = fields.Bool(truthy={"true"}, falsy={"false"}, error_messages={"invalid": "Must be true or false."})
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=500))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))


LISTING_QUERY = ListingQuery()


def parse(body):
    """A new facilitator's record, checked; InvalidFacilitator names each field at fault."""
    if not isinstance(body, dict):
        raise InvalidFacilitator({"_schema": ["A facilitator record must be a JSON object."]})
    try:
        return RECORD.load(_stringify_dates(body))
    except ValidationError as error:
        raise InvalidFacilitator(error.messages)


def parse_changes(body):
    """Changes to an existing record: only the fields given, each checked."""
    if not isinstance(body, dict):
        raise InvalidFacilitator({"_schema": ["The changes must be a JSON object."]})
    errors = {key: ["Cannot be changed here."] for key in ("facilitator_id", "active", "last_active") if key in body}
    if errors:
        raise InvalidFacilitator(errors)
    if not body:
        raise InvalidFacilitator({"_schema": ["Give at least one field to change."]})
    try:
        return CHANGES.load(_stringify_dates(body))
    except ValidationError as error:
        raise InvalidFacilitator(error.messages)


def _stringify_dates(body):
    """YAML gives dates as date objects; the schema reads ISO text."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in body.items()}

