"""Events the referrals service emits."""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import (AGE_BANDS, CJS_STAGES, CODE, FLAGS, ID, LANGUAGES, OFFENCE_CATEGORIES,
                                      ROLES)


class ParticipantRef(Schema):
    participant_id = fields.Str(required=True, validate=ID)
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    age_band = fields.Str(required=True, validate=validate.OneOf(AGE_BANDS))
    language = fields.Str(required=True, validate=validate.OneOf(LANGUAGES))
    access_needs = fields.List(fields.Str(validate=CODE), required=True)


class ReferralReceived(Schema):
    case_id = fields.Str(required=True, validate=ID)
    agency = fields.Str(required=True, validate=CODE)
    referrer_id = fields.Str(required=True, validate=ID)
    offence_category = fields.Str(required=True, validate=validate.OneOf(OFFENCE_CATEGORIES))
    cjs_stage = fields.Str(required=True, validate=validate.OneOf(CJS_STAGES))
    initiated_by = fields.Str(required=True, validate=validate.OneOf(("harmed", "harmer")))
    flags = fields.List(fields.Str(validate=validate.OneOf(FLAGS)), required=True)
    harmer_accepts_responsibility = fields.Bool(required=True)
    participants = fields.List(fields.Nested(ParticipantRef), required=True, validate=validate.Length(min=1))
    region = fields.Str(required=True, validate=CODE)


SPECS = (
    EventSpec("referral.received", "referrals", ReferralReceived()),
)
