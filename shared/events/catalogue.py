"""Every event type on the Amends bus, with the marshmallow schema of its `data`.

Events carry pseudonymous ids and the attributes a decision needs, never personal
data: no names, contact details, addresses, crime references or dates of birth.
"""
from dataclasses import dataclass

from marshmallow import Schema, fields, validate

ROLES = ("harmed", "harmer", "supporter", "appropriate_adult", "interpreter")
LANGUAGES = ("en", "cy")
AGE_BANDS = ("under_18", "18_24", "25_34", "35_49", "50_64", "65_plus", "unknown")
CJS_STAGES = ("pre_charge", "out_of_court_disposal", "pre_sentence", "community_sentence", "custody")
OFFENCE_CATEGORIES = (
    "violence_against_the_person",
    "sexual_offence",
    "robbery",
    "theft",
    "burglary",
    "criminal_damage",
    "arson",
    "public_order",
    "hate_crime",
    "fraud",
    "drug_offence",
    "motoring",
    "antisocial_behaviour",
    "other",
)
FLAGS = (
    "domestic_abuse",
    "sexual_offence",
    "hate_crime",
    "gender_based_violence",
    "youth",
    "enhanced_rights_victim",
)
DECISIONS = ("suitable", "unsuitable", "needs_review")
RISK_LEVELS = ("low", "medium", "high")
FACILITATOR_LEVELS = ("foundation", "intermediate", "advanced")
PROCESS_TYPES = ("direct_conference", "shuttle", "letter_exchange", "group_conference", "youth_panel")
CHANNELS = ("email", "sms", "letter")
RECIPIENT_ROLES = ("referrer", "facilitator") + ROLES

_id = validate.Length(min=1, max=100)
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$")


class ParticipantRef(Schema):
    participant_id = fields.Str(required=True, validate=_id)
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    age_band = fields.Str(required=True, validate=validate.OneOf(AGE_BANDS))
    language = fields.Str(required=True, validate=validate.OneOf(LANGUAGES))
    access_needs = fields.List(fields.Str(validate=_code), required=True)


class ReferralReceived(Schema):
    case_id = fields.Str(required=True, validate=_id)
    agency = fields.Str(required=True, validate=_code)
    referrer_id = fields.Str(required=True, validate=_id)
    offence_category = fields.Str(required=True, validate=validate.OneOf(OFFENCE_CATEGORIES))
    cjs_stage = fields.Str(required=True, validate=validate.OneOf(CJS_STAGES))
    initiated_by = fields.Str(required=True, validate=validate.OneOf(("harmed", "harmer")))
    flags = fields.List(fields.Str(validate=validate.OneOf(FLAGS)), required=True)
    harmer_accepts_responsibility = fields.Bool(required=True)
    participants = fields.List(fields.Nested(ParticipantRef), required=True, validate=validate.Length(min=1))
    region = fields.Str(required=True, validate=_code)


class Reason(Schema):
    code = fields.Str(required=True, validate=_code)
    text = fields.Str(required=True, validate=validate.Length(min=1, max=500))


class CaseAssessed(Schema):
    case_id = fields.Str(required=True, validate=_id)
    assessment_id = fields.Str(required=True, validate=_id)
    decision = fields.Str(required=True, validate=validate.OneOf(DECISIONS))
    reasons = fields.List(fields.Nested(Reason), required=True)
    risk_level = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    required_level = fields.Str(required=True, validate=validate.OneOf(FACILITATOR_LEVELS))
    co_facilitation = fields.Bool(required=True)
    process_types = fields.List(fields.Str(validate=validate.OneOf(PROCESS_TYPES)), required=True)
    policy_version = fields.Str(required=True, validate=validate.Length(min=1, max=50))


class FacilitatorAssigned(Schema):
    case_id = fields.Str(required=True, validate=_id)
    assignment_id = fields.Str(required=True, validate=_id)
    assessment_id = fields.Str(required=True, validate=_id)
    facilitator_id = fields.Str(required=True, validate=_id)
    role = fields.Str(required=True, validate=validate.OneOf(("lead", "co_facilitator")))


class AssignmentWaitlisted(Schema):
    case_id = fields.Str(required=True, validate=_id)
    assessment_id = fields.Str(required=True, validate=_id)
    reason = fields.Str(required=True, validate=_code)


class NotificationSent(Schema):
    case_id = fields.Str(required=True, validate=_id)
    notification_id = fields.Str(required=True, validate=_id)
    recipient_role = fields.Str(required=True, validate=validate.OneOf(RECIPIENT_ROLES))
    recipient_id = fields.Str(required=True, validate=_id)
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))
    template = fields.Str(required=True, validate=_code)
    language = fields.Str(required=True, validate=validate.OneOf(LANGUAGES))


class NotificationSuppressed(Schema):
    case_id = fields.Str(required=True, validate=_id)
    notification_id = fields.Str(required=True, validate=_id)
    recipient_role = fields.Str(required=True, validate=validate.OneOf(RECIPIENT_ROLES))
    recipient_id = fields.Str(required=True, validate=_id)
    template = fields.Str(required=True, validate=_code)
    reason = fields.Str(required=True, validate=_code)


@dataclass(frozen=True)
class EventSpec:
    type: str
    producer: str
    schema: Schema
    version: int = 1


_SPECS = {
    spec.type: spec
    for spec in (
        EventSpec("referral.received", "referrals", ReferralReceived()),
        EventSpec("case.assessed", "matching", CaseAssessed()),
        EventSpec("facilitator.assigned", "matching", FacilitatorAssigned()),
        EventSpec("assignment.waitlisted", "matching", AssignmentWaitlisted()),
        EventSpec("notification.sent", "notifications", NotificationSent()),
        EventSpec("notification.suppressed", "notifications", NotificationSuppressed()),
    )
}

EVENT_TYPES = tuple(_SPECS)
PRODUCERS = tuple(sorted({spec.producer for spec in _SPECS.values()}))


def spec(event_type):
    return _SPECS[event_type]


def types_produced_by(service):
    return tuple(t for t, s in _SPECS.items() if s.producer == service)
