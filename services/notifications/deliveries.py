"""Deliveries and the case directory: the notifications service's aggregates.

A delivery's id is its delivery key, (event id, recipient, channel), and a second
unique rule on (event id, recipient) stops a change of channel between two copies of
an event from sending twice: together they make a notification take effect once
however often its event arrives (the store enforces both; see store.py). Nothing here
is personal: the directory holds pseudonymous ids and the case attributes a
facilitator's summary may show, and a delivery holds only the non-personal facts its
message is rendered from; contact details are fetched at send time and never written
down.

Plain values: the store (store.py, or memory_store.py in tests) reads and writes them.
"""
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

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


def field_key(identifier):
    """An id made safe to use as a key inside a document (assignments are kept by it)."""
    return identifier.replace(".", "_").replace("$", "_")


@dataclass
class CaseDirectoryEntry:
    """What notifications remembers of a case from its events: codes and pseudonymous ids."""
    case_id: str
    referrer_id: str
    # offence_category, cjs_stage, flags, region, initiated_by, agency: codes only
    summary: dict = field(default_factory=dict)
    # participant_id, role, age_band, language, access_needs
    participants: list = field(default_factory=list)
    # the latest: decision, risk_level, process_types, co_facilitation, basis (referral | review | consent)
    assessment: dict = field(default_factory=dict)
    # field_key(assignment_id) -> {facilitator_id, role}
    assignments: dict = field(default_factory=dict)
    recorded_at: Optional[datetime] = None

    def participant(self, participant_id):
        return next((p for p in self.participants if p["participant_id"] == participant_id), None)

    def assignment(self, assignment_id):
        """The assignment recorded for `assignment_id`, or None."""
        return self.assignments.get(field_key(assignment_id))


@dataclass
class Delivery:
    """One notice of one event to one recipient, and how far it has got."""
    key: str  # delivery_key(event_id, recipient_id, channel)
    event_id: str
    event_type: str
    notification_id: str
    case_id: Optional[str]  # None: a notice about no case (a subscription's owner, owners.py)
    recipient_role: str
    recipient_id: str
    purpose: str
    holder: str  # the service that holds the recipient's details
    channel: str
    template: str
    status: str  # one of STATUSES
    correlationid: Optional[str] = None
    language: Optional[str] = None
    attempts: int = 0
    claimed_at: Optional[datetime] = None
    due_at: Optional[datetime] = None
    reason: Optional[str] = None
    # the non-personal facts the message is rendered from, kept for a deferred send
    facts: dict = field(default_factory=dict)
    at: Optional[datetime] = None


class DeliveryExists(Exception):
    """A delivery with this key, or for this (event, recipient) on another channel, is
    already stored: another copy of the event claimed it first."""
