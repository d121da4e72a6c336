"""Events the referrals service emits."""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import (AGE_BANDS, CASE_STATUSES, CJS_STAGES, CLOCK_BASES, CLOSURE_REASONS, CODE,
                                      CONSENT_SCOPES, DEADLINES, FLAGS, ID, LANGUAGES, OFFENCE_CATEGORIES, OUTCOMES,
                                      ROLES, SUPPORT_OUTCOMES)


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


class ConsentChanged(Schema):
    """`consent.recorded` (granted) and `consent.withdrawn`: one party, one scope."""
    case_id = fields.Str(required=True, validate=ID)
    participant_id = fields.Str(required=True, validate=ID)
    # the person's role on the case: a supporter's or interpreter's withdrawal does not stop
    # the case as a party's does (absent in events from before it was added: read as a party)
    participant_role = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(ROLES))
    scope = fields.Str(required=True, validate=validate.OneOf(CONSENT_SCOPES))
    # for share_item: what is shared (a code, never the content) and with which role
    item = fields.Str(load_default=None, allow_none=True, validate=CODE)
    with_role = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(ROLES + ("court",)))
    granted = fields.Bool(required=True)


class CaseStatusChanged(Schema):
    case_id = fields.Str(required=True, validate=ID)
    from_status = fields.Str(required=True, validate=validate.OneOf(CASE_STATUSES))
    to_status = fields.Str(required=True, validate=validate.OneOf(CASE_STATUSES))
    reason = fields.Str(load_default=None, allow_none=True, validate=CODE)


class CaseClosed(Schema):
    case_id = fields.Str(required=True, validate=ID)
    from_status = fields.Str(required=True, validate=validate.OneOf(CASE_STATUSES))
    reason = fields.Str(required=True, validate=validate.OneOf(CLOSURE_REASONS))


class CaseDeadline(Schema):
    """`case.deadline_due` and `case.deadline_missed`: a Victims' Code clock."""
    case_id = fields.Str(required=True, validate=ID)
    # victim_told_about_rj (within 5 working days, 1 with enhanced rights) or support_referral (2)
    deadline = fields.Str(required=True, validate=validate.OneOf(DEADLINES))
    due_at = fields.DateTime(required=True)
    enhanced_rights = fields.Bool(required=True)
    # what the clock is measured from: referral_received when the referral did not give the day
    # the crime was reported (the real deadline may then be earlier); absent in older events
    measured_from = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(CLOCK_BASES))


class SupportReferralRecorded(Schema):
    """`support.referral_recorded`: a caseworker recorded that a harmed person was referred
    to a support service, or declined one. Codes only: which service, never who or where."""
    case_id = fields.Str(required=True, validate=ID)
    participant_id = fields.Str(required=True, validate=ID)
    outcome = fields.Str(required=True, validate=validate.OneOf(SUPPORT_OUTCOMES))
    # a service code (e.g. victim_support); may be absent when a referral was declined
    service = fields.Str(load_default=None, allow_none=True, validate=[CODE, validate.Length(max=50)])


class CaseOutcomeRecorded(Schema):
    case_id = fields.Str(required=True, validate=ID)
    outcome = fields.Str(required=True, validate=validate.OneOf(OUTCOMES))


class ParticipantErased(Schema):
    case_id = fields.Str(required=True, validate=ID)
    participant_id = fields.Str(required=True, validate=ID)


SPECS = (
    EventSpec("referral.received", "referrals", ReferralReceived()),
    EventSpec("consent.recorded", "referrals", ConsentChanged()),
    EventSpec("consent.withdrawn", "referrals", ConsentChanged()),
    EventSpec("case.status_changed", "referrals", CaseStatusChanged()),
    EventSpec("case.closed", "referrals", CaseClosed()),
    EventSpec("case.deadline_due", "referrals", CaseDeadline()),
    EventSpec("case.deadline_missed", "referrals", CaseDeadline()),
    EventSpec("case.outcome_recorded", "referrals", CaseOutcomeRecorded()),
    EventSpec("support.referral_recorded", "referrals", SupportReferralRecorded()),
    EventSpec("participant.erased", "referrals", ParticipantErased()),
)
