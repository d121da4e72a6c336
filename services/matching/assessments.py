"""Assessments. One per assessment holds the outcome, the referral's non-personal
attributes it was made on, a coordinator's review if it is one, and the outbox of the
events it causes. A case can have several: the policy's outcome on the referral; a
coordinator's decision on a needs_review outcome; and one each time a party withdraws
consent to take part or gives it again. Each is stored once per trigger (the event id,
or `review_key(...)` of the assessment reviewed): the store refuses a second with the
same trigger.

`withdrawn_by` carries forward, from assessment to assessment, the parties whose consent
to take part is withdrawn: the case is assessed afresh only once none is left."""
from dataclasses import dataclass, field
from datetime import datetime, timezone


def _now():
    return datetime.now(timezone.utc)


@dataclass
class Assessment:
    assessment_id: str
    case_id: str
    # the event id, or "review:<assessment id>" for a coordinator's decision
    trigger_event_id: str
    outcome: dict
    referral: dict = field(default_factory=dict)  # the referral.received data: pseudonymous ids and attributes only
    review: dict = field(default_factory=dict)  # decision, reason_code, reason (the coordinator's words), decided_by
    basis: str = "referral"  # referral | review | consent
    withdrawn_by: list = field(default_factory=list)  # participant ids whose consent to take part is withdrawn
    outbox: list = field(default_factory=list)  # the events it causes, saved with it
    created_at: datetime = field(default_factory=_now)


def review_key(reviewed_assessment_id):
    """The trigger of a coordinator's decision on one needs_review assessment: one
    decision each (a case assessed again after consent is given again can be reviewed
    again)."""
    return f"review:{reviewed_assessment_id}"
