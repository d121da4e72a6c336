"""Stored assessments (mongoengine). One document per assessment holds the outcome,
the assignment if one was made, and the outbox of the events they cause."""
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
    trigger_event_id = StringField(required=True)
    outcome = DictField(required=True)
    assignment = DictField()
    outbox = ListField(DictField())
    created_at = DateTimeField(default=lambda: datetime.now(timezone.utc))
