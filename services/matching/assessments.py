"""Assessments. One per assessment holds the outcome, the referral's non-personal
attributes it was made on, a coordinator's review if it is one, and the outbox of the
events it causes. A case can have two: the policy's needs_review outcome, then the
coordinator's decision on it. Each is stored once per trigger (the referral.received
event id, or `review_key(case_id)`): the store refuses a second with the same trigger."""
from dataclasses import dataclass, field
from datetime import datetime, timezone


def _now():
    return datetime.now(timezone.utc)


@dataclass
class Assessment:
    assessment_id: str
    case_id: str
    # the referral.received event id, or "review:<case_id>" for a coordinator's decision
    trigger_event_id: str
    outcome: dict
    referral: dict = field(default_factory=dict)  # the referral.received data: pseudonymous ids and attributes only
    review: dict = field(default_factory=dict)  # decision, reason_code, reason (the coordinator's words), decided_by
    outbox: list = field(default_factory=list)  # the events it causes, saved with it
    created_at: datetime = field(default_factory=_now)


def review_key(case_id):
    return f"review:{case_id}"
