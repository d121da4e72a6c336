"""Deliveries and the case directory (mongoengine).

A delivery's id is its delivery key, (event id, recipient, channel), and a second
unique index on (event id, recipient) stops a change of channel between two copies
of an event from sending twice: together they make a notification take effect once
however often its event arrives. Nothing here is personal: the directory holds
pseudonymous ids and the case attributes a facilitator's summary may show, and a
delivery holds only the non-personal facts its message is rendered from; contact
details are fetched at send time and never written down.
"""
import uuid
from datetime import datetime, timezone

from mongoengine import DateTimeField, DictField, Document, IntField, ListField, StringField

ALIAS = "notifications"

# sending: claimed by a worker; retrying: the last attempt failed, the event will come again;
# deferred: waiting for the recipient's safe-contact window; the rest are final.
STATUSES = ("sending", "retrying", "deferred", "sent", "suppressed", "failed")
FINAL = ("sent", "suppressed", "failed")
NO_CHANNEL = "none"  # a delivery suppressed before any channel was chosen


def utcnow():
    return datetime.now(timezone.utc)


def delivery_key(event_id, recipient_id, channel):
    return f"{event_id}:{recipient_id}:{channel}"


def notification_id(event_id, recipient_id):
    """Stable across redeliveries, so the email's Message-ID is the same for any copy."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"amends:{event_id}:{recipient_id}"))


class CaseDirectory(Document):
    meta = {"db_alias": ALIAS, "collection": "case_directory"}
    case_id = StringField(primary_key=True)
    referrer_id = StringField(required=True)
    # offence_category, cjs_stage, flags, region, initiated_by, agency: codes only
    summary = DictField()
    # participant_id, role, age_band, language, access_needs
    participants = ListField(DictField())
    # decision, risk_level, process_types, co_facilitation, reasons (policy codes and texts)
    assessment = DictField()
    # assignment_id -> {facilitator_id, role}
    assignments = DictField()
    recorded_at = DateTimeField(default=utcnow)

    def participant(self, participant_id):
        return next((p for p in self.participants if p["participant_id"] == participant_id), None)


class Delivery(Document):
    meta = {
        "db_alias": ALIAS,
        "collection": "deliveries",
        "indexes": [
            "case_id",
            {"fields": ["event_id", "recipient_id"], "unique": True},
            {"fields": ["status", "due_at"]},
        ],
    }
    key = StringField(primary_key=True)
    event_id = StringField(required=True)
    event_type = StringField(required=True)
    notification_id = StringField(required=True)
    case_id = StringField(required=True)
    recipient_role = StringField(required=True)
    recipient_id = StringField(required=True)
    purpose = StringField(required=True)
    holder = StringField(required=True)  # the service that holds the recipient's details
    correlationid = StringField()
    channel = StringField(required=True)
    template = StringField(required=True)
    language = StringField()
    status = StringField(required=True, choices=STATUSES)
    attempts = IntField(default=0)
    claimed_at = DateTimeField()
    due_at = DateTimeField()
    reason = StringField()
    # the non-personal facts the message is rendered from, kept for a deferred send
    facts = DictField()
    outbox = ListField(DictField())
    at = DateTimeField(default=utcnow)


class EventRuns(Document):
    """How many times the handler has run for an event: the consumer's attempt count as
    far as we can see it, so the run that will be dead-lettered is known to be the last
    (the consumer does not yet tell the handler its attempt number)."""
    meta = {"db_alias": ALIAS, "collection": "event_runs"}
    event_id = StringField(primary_key=True)
    runs = IntField(default=0)
    at = DateTimeField(default=utcnow)


class DeliveryClaim(Document):
    """A claim on one state of one delivery: `<key>|<status>|<claimed_at>|<due_at>|<attempts>`.

    Taking a delivery from a state (a deferred one that fell due, a retried one, a stale
    one) is first an insert here: a primary-key insert is exclusive on FerretDB and
    MongoDB alike, where two concurrent conditional updates were seen to both succeed on
    FerretDB 1.24's SQLite backend. Only the worker whose insert wins changes the delivery.
    """
    meta = {"db_alias": ALIAS, "collection": "delivery_claims"}
    token = StringField(primary_key=True)
    at = DateTimeField(default=utcnow)
