"""Stored assessments (mongoengine). One document per assessment holds the outcome, the
referral's non-personal attributes it was made on, a coordinator's review if it is one,
and the outbox of the events it causes. A case can have two: the policy's needs_review
outcome, then the coordinator's decision on it."""
from datetime import datetime, timezone

from mongoengine import DateTimeField, DictField, Document, ListField, StringField

ALIAS = "matching"


class Assessment(Document):
    meta = {
        "db_alias": ALIAS,
        "collection": "assessments",
        "indexes": [{"fields": ["trigger_event_id"], "unique": True}, "case_id"],
    }
    assessment_id = StringField(primary_key=True)
    case_id = StringField(required=True)
    # the referral.received event id, or "review:<case_id>" for a coordinator's decision
    trigger_event_id = StringField(required=True)
    outcome = DictField(required=True)
    referral = DictField()  # the referral.received data: pseudonymous ids and attributes only
    review = DictField()  # decision, reason_code, reason (the coordinator's words), decided_by
    assignment = DictField()  # unused since assignments have their own documents; kept for old records
    outbox = ListField(DictField())
    created_at = DateTimeField(default=lambda: datetime.now(timezone.utc))


def review_key(case_id):
    return f"review:{case_id}"


def latest(case_id):
    return Assessment.objects(case_id=case_id).order_by("-created_at").first()
