"""Deliveries and the case directory (mongoengine).

A delivery's id is its delivery key, (event id, recipient, channel), so the unique
primary key is what makes a notification take effect once however often its event
arrives. The directory holds only pseudonymous ids, never contact details.
"""
from datetime import datetime, timezone

from mongoengine import DateTimeField, DictField, Document, ListField, StringField

ALIAS = "notifications"


def utcnow():
    return datetime.now(timezone.utc)


def delivery_key(event_id, recipient_id, channel):
    return f"{event_id}:{recipient_id}:{channel}"


class CaseDirectory(Document):
    meta = {"db_alias": ALIAS, "collection": "case_directory"}
    case_id = StringField(primary_key=True)
    referrer_id = StringField(required=True)
    participants = ListField(DictField())
    recorded_at = DateTimeField(default=utcnow)


class Delivery(Document):
    meta = {"db_alias": ALIAS, "collection": "deliveries", "indexes": ["case_id"]}
    key = StringField(primary_key=True)
    notification_id = StringField(required=True)
    case_id = StringField(required=True)
    recipient_role = StringField(required=True)
    recipient_id = StringField(required=True)
    channel = StringField(required=True)
    template = StringField(required=True)
    status = StringField(required=True, choices=("sending", "sent", "suppressed"))
    claimed_at = DateTimeField()
    reason = StringField()
    outbox = ListField(DictField())
    at = DateTimeField(default=utcnow)
