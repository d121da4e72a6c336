"""Events the referrals service emits about the outcome agreement and what follows the
intervention: monitoring of each agreed item, satisfaction surveys, and the reduction of
a declined or unreachable victim's record to statistics after its retention period.

Ids and codes only: an item's description, a survey's token and link, and a survey's
comments are personal (or a credential) and never reach the bus or the ledger.
"""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import ID

ITEM_KINDS = ("apology", "explanation", "reparation", "restitution", "work_for_harmed", "community_work",
              "agreed_behaviour", "support_referral")
PARTY_ROLES = ("harmed", "harmer")
SURVEY_STAGES = ("closure", "follow_up")
# what a participant's record keeps once reduced to statistics (services/referrals/retention.py)
STATISTICAL_ATTRIBUTES = ("age_band", "gender", "ethnicity")
# a London calendar day, YYYY-MM-DD (marshmallow's Date is no DateTime the compiled check follows)
DAY = validate.Regexp(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class AgreedItem(Schema):
    item_id = fields.Str(required=True, validate=ID)
    kind = fields.Str(required=True, validate=validate.OneOf(ITEM_KINDS))
    owner_role = fields.Str(required=True, validate=validate.OneOf(PARTY_ROLES))
    due_on = fields.Str(required=True, validate=DAY)


class AgreementRecorded(Schema):
    case_id = fields.Str(required=True, validate=ID)
    agreement_id = fields.Str(required=True, validate=ID)
    items = fields.List(fields.Nested(AgreedItem), required=True, validate=validate.Length(min=1))


class ItemEvent(Schema):
    """`agreement.item_completed`, `agreement.item_waived`: one item settled."""
    case_id = fields.Str(required=True, validate=ID)
    agreement_id = fields.Str(required=True, validate=ID)
    item_id = fields.Str(required=True, validate=ID)
    kind = fields.Str(required=True, validate=validate.OneOf(ITEM_KINDS))
    owner_role = fields.Str(required=True, validate=validate.OneOf(PARTY_ROLES))
    due_on = fields.Str(required=True, validate=DAY)


class ItemDue(ItemEvent):
    """`agreement.item_due`: the owner is to be reminded (so their pseudonymous id)."""
    owner_id = fields.Str(required=True, validate=ID)


class ItemMissed(ItemEvent):
    """`agreement.item_missed`: its due date passed unsettled (`due_date_passed`), or a
    caseworker recorded it as missed (`recorded`)."""
    detected = fields.Str(required=True, validate=validate.OneOf(("due_date_passed", "recorded")))


class SurveyRequested(Schema):
    case_id = fields.Str(required=True, validate=ID)
    survey_id = fields.Str(required=True, validate=ID)
    participant_id = fields.Str(required=True, validate=ID)
    participant_role = fields.Str(required=True, validate=validate.OneOf(PARTY_ROLES))
    stage = fields.Str(required=True, validate=validate.OneOf(SURVEY_STAGES))


class Scores(Schema):
    satisfied_with_process = fields.Int(required=True, strict=True, validate=validate.Range(min=1, max=5))
    felt_safe = fields.Int(required=True, strict=True, validate=validate.Range(min=1, max=5))
    would_recommend = fields.Bool(required=True)
    harm_repaired = fields.Int(required=True, strict=True, validate=validate.Range(min=1, max=5))


class SurveyAnswered(Schema):
    """No participant id: an answer is counted by case, stage and role."""
    case_id = fields.Str(required=True, validate=ID)
    survey_id = fields.Str(required=True, validate=ID)
    stage = fields.Str(required=True, validate=validate.OneOf(SURVEY_STAGES))
    participant_role = fields.Str(required=True, validate=validate.OneOf(PARTY_ROLES))
    scores = fields.Nested(Scores, required=True)


class ReducedToStatistics(Schema):
    case_id = fields.Str(required=True, validate=ID)
    participant_id = fields.Str(required=True, validate=ID)
    reason = fields.Str(required=True, validate=validate.OneOf(("retention",)))
    retained = fields.List(fields.Str(validate=validate.OneOf(STATISTICAL_ATTRIBUTES)), required=True)


SPECS = (
    EventSpec("agreement.recorded", "referrals", AgreementRecorded()),
    EventSpec("agreement.item_due", "referrals", ItemDue()),
    EventSpec("agreement.item_completed", "referrals", ItemEvent()),
    EventSpec("agreement.item_waived", "referrals", ItemEvent()),
    EventSpec("agreement.item_missed", "referrals", ItemMissed()),
    EventSpec("survey.requested", "referrals", SurveyRequested()),
    EventSpec("survey.answered", "referrals", SurveyAnswered()),
    EventSpec("participant.reduced_to_statistics", "referrals", ReducedToStatistics()),
)
