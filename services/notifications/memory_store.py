"""An in-memory NotificationsStore, for fast tests of the workflow.

Same public methods as store.NotificationsStore, and faithful where the workflow relies
on it: a delivery is unique by key and by (event, recipient) (DeliveryExists), a claim
token is taken once, state changes are guarded by `status == "sending"`, what is read
is a copy (changing it changes nothing stored), and times are kept to the millisecond
and in UTC, as MongoDB keeps them. Tests/integration/test_notifications_store.py runs
the same contract against both.
"""
import copy
from datetime import timezone

from services.notifications.deliveries import CaseDirectoryEntry, DeliveryExists, field_key, utcnow
from services.notifications.store import DELIVERIES, DELIVERY_FIELDS, NotificationsStore, claim_token

__all__ = ["InMemoryNotificationsStore", "DeliveryExists"]


class InMemoryNotificationsStore:
    outbox_collections = NotificationsStore.outbox_collections
    outbox_collection = DELIVERIES
    indexes = NotificationsStore.indexes

    def __init__(self):
        self._cases = {}        # case id -> CaseDirectoryEntry
        self._deliveries = {}   # key -> Delivery
        self._outboxes = {}     # key -> [event]
        self._runs = {}         # event id -> runs
        self._claims = {}       # claim token -> at
        self._acceptances = {}  # (case id, assignment id) -> at

    def ensure_indexes(self, postgresql_url=""):
        pass

    # -- the case directory -------------------------------------------------------------

    def case(self, case_id):
        entry = self._cases.get(case_id)
        return copy.deepcopy(entry) if entry else None

    def record_referral(self, case_id, referrer_id, summary, participants):
        entry = self._cases.get(case_id)
        if entry is None:
            entry = self._cases[case_id] = CaseDirectoryEntry(case_id=case_id, referrer_id=referrer_id,
                                                              recorded_at=_stored(utcnow()))
        entry.referrer_id = referrer_id
        entry.summary = copy.deepcopy(summary)
        entry.participants = copy.deepcopy(participants)

    def record_assessment(self, case_id, assessment):
        entry = self._cases.get(case_id)
        if entry is None:
            return False
        entry.assessment = copy.deepcopy(assessment)
        return True

    def record_assignment(self, case_id, assignment_id, assignment):
        entry = self._cases.get(case_id)
        if entry is None:
            return False
        entry.assignments[field_key(assignment_id)] = copy.deepcopy(assignment)
        return True

    def record_acceptance(self, case_id, assignment_id, at):
        self._acceptances.setdefault((case_id, assignment_id), _stored(at))

    def acceptances(self, case_id):
        return {aid: at for (cid, aid), at in self._acceptances.items() if cid == case_id}

    # -- event runs -----------------------------------------------------------------------

    def count_run(self, event_id):
        self._runs[event_id] = self._runs.get(event_id, 0) + 1
        return self._runs[event_id]

    # -- deliveries -------------------------------------------------------------------------

    def delivery(self, key):
        found = self._deliveries.get(key)
        return copy.deepcopy(found) if found else None

    def delivery_for(self, event_id, recipient_id):
        found = next((d for d in self._deliveries.values()
                      if d.event_id == event_id and d.recipient_id == recipient_id), None)
        return copy.deepcopy(found) if found else None

    def deliveries_for_case(self, case_id):
        found = [copy.deepcopy(d) for d in self._deliveries.values() if d.case_id == case_id]
        return sorted(found, key=lambda d: (d.at is None, d.at or 0))

    def deferred_for_case(self, case_id):
        return [copy.deepcopy(d) for d in self._deliveries.values()
                if d.case_id == case_id and d.status == "deferred"]

    def due_deliveries(self, now, stale_before, limit):
        due = [d for d in self._deliveries.values()
               if d.status == "deferred" and d.due_at is not None and d.due_at <= now]
        stale = [d for d in self._deliveries.values()
                 if d.status == "sending" and d.due_at is not None and d.claimed_at is not None
                 and d.claimed_at < stale_before]
        return [copy.deepcopy(d) for d in sorted(due + stale, key=lambda d: d.due_at)[:limit]]

    def insert_delivery(self, delivery, events=()):
        if delivery.key in self._deliveries or any(
                d.event_id == delivery.event_id and d.recipient_id == delivery.recipient_id
                for d in self._deliveries.values()):
            raise DeliveryExists(f"delivery {delivery.key} is already stored")
        stored = copy.deepcopy(delivery)
        for name in ("claimed_at", "due_at", "at"):
            setattr(stored, name, _stored(getattr(stored, name)))
        self._deliveries[delivery.key] = stored
        self._outboxes[delivery.key] = copy.deepcopy(list(events))

    def claim(self, delivery, now):
        token = claim_token(delivery)
        if token in self._claims:
            return None
        self._claims[token] = now
        stored = self._deliveries.get(delivery.key)
        if stored is None or stored.status != delivery.status:
            return None
        if stored.status == "sending" and stored.claimed_at == _stored(now):
            return None  # nothing modified, as MongoDB would report
        stored.status, stored.claimed_at = "sending", _stored(now)
        return copy.deepcopy(stored)

    def settle(self, key, status, reason, events, at, due_at=None, attempts=None, language=None):
        fields = {"status": status, "reason": reason, "at": at, "due_at": due_at}
        if attempts is not None:
            fields["attempts"] = attempts
        if language is not None:
            fields["language"] = language
        if not self._update_sending(key, fields):
            return False
        self._outboxes[key] = copy.deepcopy(list(events))
        return True

    # the real store's, over this fake's _update_sending
    mark_retrying = NotificationsStore.mark_retrying
    back_off = NotificationsStore.back_off

    def _update_sending(self, key, fields):
        stored = self._deliveries.get(key)
        if stored is None or stored.status != "sending":
            return False
        self._set(stored, fields)
        return True

    def pending_events(self, key):
        return copy.deepcopy(self._outboxes.get(key, []))

    def force_delivery_state(self, key, **fields):
        unknown = set(fields) - set(DELIVERY_FIELDS)
        if unknown:
            raise ValueError(f"not delivery fields: {sorted(unknown)}")
        if key in self._deliveries:
            self._set(self._deliveries[key], fields)

    # -- for a fake outbox ---------------------------------------------------------------------

    def pull_events(self, key, events):
        """What the outbox relay does once it has published events: take them out."""
        sent = [e["id"] for e in events]
        self._outboxes[key] = [e for e in self._outboxes.get(key, []) if e["id"] not in sent]

    @staticmethod
    def _set(stored, fields):
        for name, value in fields.items():
            setattr(stored, name, _stored(value) if name in ("claimed_at", "due_at", "at") else copy.deepcopy(value))


def _stored(moment):
    """A time as MongoDB keeps it: UTC, to the millisecond."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
