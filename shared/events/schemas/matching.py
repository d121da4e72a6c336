"""Events the matching service emits."""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import (ASSESSMENT_BASES, CODE, DECISIONS, FACILITATOR_LEVELS, ID, PROCESS_TYPES,
                                      RISK_LEVELS)


class Reason(Schema):
    code = fields.Str(required=True, validate=CODE)
    text = fields.Str(required=True, validate=validate.Length(min=1, max=500))


class CaseAssessed(Schema):
    case_id = fields.Str(required=True, validate=ID)
    assessment_id = fields.Str(required=True, validate=ID)
    decision = fields.Str(required=True, validate=validate.OneOf(DECISIONS))
    reasons = fields.List(fields.Nested(Reason), required=True)
    risk_level = fields.Str(required=True, validate=validate.OneOf(RISK_LEVELS))
    required_level = fields.Str(required=True, validate=validate.OneOf(FACILITATOR_LEVELS))
    co_facilitation = fields.Bool(required=True)
    process_types = fields.List(fields.Str(validate=validate.OneOf(PROCESS_TYPES)), required=True)
    policy_version = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    # optional: what the facilitators must hold, so a case summary can say so
    required_endorsements = fields.List(fields.Str(validate=CODE), load_default=list)
    prison_vetting = fields.Bool(load_default=False)
    # what the assessment was made on: the referral, a coordinator's review of it, or a
    # party's consent withdrawn or given again (absent in older events: the referral)
    basis = fields.Str(load_default="referral", validate=validate.OneOf(ASSESSMENT_BASES))


class FacilitatorAssigned(Schema):
    case_id = fields.Str(required=True, validate=ID)
    assignment_id = fields.Str(required=True, validate=ID)
    assessment_id = fields.Str(required=True, validate=ID)
    facilitator_id = fields.Str(required=True, validate=ID)
    role = fields.Str(required=True, validate=validate.OneOf(("lead", "co_facilitator")))


class AssignmentWaitlisted(Schema):
    case_id = fields.Str(required=True, validate=ID)
    assessment_id = fields.Str(required=True, validate=ID)
    reason = fields.Str(required=True, validate=CODE)


class AssignmentChanged(Schema):
    """`assignment.accepted`, `assignment.declined` and `facilitator.released`."""
    case_id = fields.Str(required=True, validate=ID)
    assignment_id = fields.Str(required=True, validate=ID)
    facilitator_id = fields.Str(required=True, validate=ID)
    # declined: declined | offer_expired; released: case_closed | reassigned | deactivated |
    # no_longer_eligible | consent_withdrawn
    reason = fields.Str(load_default=None, allow_none=True, validate=CODE)


SPECS = (
    EventSpec("case.assessed", "matching", CaseAssessed()),
    # a needs_review outcome, for the coordinators' queue; the same data as case.assessed
    EventSpec("case.needs_review", "matching", CaseAssessed()),
    EventSpec("facilitator.assigned", "matching", FacilitatorAssigned()),
    EventSpec("assignment.waitlisted", "matching", AssignmentWaitlisted()),
    EventSpec("assignment.accepted", "matching", AssignmentChanged()),
    EventSpec("assignment.declined", "matching", AssignmentChanged()),
    EventSpec("facilitator.released", "matching", AssignmentChanged()),
)
