"""Events of the casework on a referrals case (producer: referrals): preparation contacts,
risk assessed with each party, the safety decision and its supervision, and the items
the parties write (impact statements, questions, answers, apologies, letters) and their
release to the other party.

Ids and codes only: notes and an item's content are personal and stay sealed in the
referrals service; no event carries them, nor anything that says who the other party is.
The vocabularies are kept here, so that the service's rules (services/referrals/
preparation.py, voice.py) and the events cannot drift apart.
"""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import CODE, ID, ROLES

PARTIES = ("harmed", "harmer")
# how a facilitator reached (or tried to reach) a person while preparing them
CONTACT_METHODS = ("phone", "video", "visit", "letter", "email")
CONTACT_OUTCOMES = ("reached", "no_answer", "declined_to_talk", "not_safe_to_contact")
# the factors a facilitator assesses with each party, and their levels, lowest first
RISK_FACTORS = ("safety", "power_imbalance", "capacity", "substance_use", "mental_health", "support_needs",
                "access_needs")
RISK_LEVELS = ("none", "low", "medium", "high")
SAFETY_DECISIONS = ("direct", "indirect_only", "stop")
SUPERVISION_DECISIONS = ("approved", "refused")
# what a party may put into words for the other
ITEM_KINDS = ("impact_statement", "question", "answer", "apology", "letter", "message")


class PreparationContactRecorded(Schema):
    case_id = fields.Str(required=True, validate=ID)
    participant_id = fields.Str(required=True, validate=ID)
    participant_role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    method = fields.Str(required=True, validate=validate.OneOf(CONTACT_METHODS))
    outcome = fields.Str(required=True, validate=validate.OneOf(CONTACT_OUTCOMES))


class RiskFactorLevels(Schema):
    safety = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    power_imbalance = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    capacity = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    substance_use = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    mental_health = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    support_needs = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    access_needs = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))


class RiskAssessed(Schema):
    """`risk.assessed`: one party's risk, as levels only (never the notes)."""
    case_id = fields.Str(required=True, validate=ID)
    participant_id = fields.Str(required=True, validate=ID)
    participant_role = fields.Str(required=True, validate=validate.OneOf(PARTIES))
    factors = fields.Nested(RiskFactorLevels, required=True)
    overall = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))   # the highest factor


class SafetyDecided(Schema):
    case_id = fields.Str(required=True, validate=ID)
    decision = fields.Str(required=True, validate=validate.OneOf(SAFETY_DECISIONS))
    reasons = fields.List(fields.Str(validate=CODE), required=True, validate=validate.Length(min=1))
    # whether this decision binds only once a supervisor approves it
    supervision_required = fields.Bool(required=True)


class SupervisionDecided(Schema):
    case_id = fields.Str(required=True, validate=ID)
    decision = fields.Str(required=True, validate=validate.OneOf(SUPERVISION_DECISIONS))
    # the safety decision signed off (or not)
    safety_decision = fields.Str(required=True, validate=validate.OneOf(SAFETY_DECISIONS))


class VoiceItemRecorded(Schema):
    case_id = fields.Str(required=True, validate=ID)
    item_id = fields.Str(required=True, validate=ID)
    author_role = fields.Str(required=True, validate=validate.OneOf(PARTIES))
    kind = fields.Str(required=True, validate=validate.OneOf(ITEM_KINDS))


class VoiceItemReleased(Schema):
    case_id = fields.Str(required=True, validate=ID)
    item_id = fields.Str(required=True, validate=ID)
    kind = fields.Str(required=True, validate=validate.OneOf(ITEM_KINDS))
    author_role = fields.Str(required=True, validate=validate.OneOf(PARTIES))
    to_role = fields.Str(required=True, validate=validate.OneOf(PARTIES))


SPECS = (
    EventSpec("preparation.contact_recorded", "referrals", PreparationContactRecorded()),
    EventSpec("risk.assessed", "referrals", RiskAssessed()),
    EventSpec("case.safety_decided", "referrals", SafetyDecided()),
    EventSpec("case.supervision_decided", "referrals", SupervisionDecided()),
    EventSpec("voice.item_recorded", "referrals", VoiceItemRecorded()),
    EventSpec("voice.item_released", "referrals", VoiceItemReleased()),
)
