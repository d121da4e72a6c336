"""The notifications store: the one module that touches the notifications database.

Collections (every query is equality on `_id` or on indexed fields, ANDed; what is
filtered or sorted further is a small result, handled here in Python):

- `deliveries`       one document per (event, recipient): a Delivery, `_id` its delivery
                     key, plus `outbox`, the events its last state change caused (the
                     transactional outbox: set in the same single-document write).
                     Query shapes:
                       {_id}                            the delivery (unique, `_id`)
                       {_id, status}                    a guarded state change (`_id`)
                       {event_id, recipient_id}         the delivery of a notice (unique index)
                       {case_id}                        the status listing (index `case_id`)
                       {case_id, status: "deferred"}    what a closed case withdraws (`case_id`, `status`)
                       {status: "deferred"}             the due timer: deferred ones (due time
                                                        compared in Python) (`status`)
                       {status: "sending"}              the due timer: claims of deferred ones whose
                                                        worker died (age compared in Python) (`status`)
                     Grows with cases; `deferred` and `sending` are the few in flight.
- `case_directory`   one CaseDirectoryEntry per case, `_id` the case id. Shapes: {_id}.
- `event_runs`       how many times the handler ran for an event, `_id` the event id.
                     Shapes: {_id}.
- `case_assignments` one document per offer heard (facilitator.assigned), `_id`
                     `<case>|<assignment>`: insert only, read into the case's entry. Shapes:
                     {case_id} (index `case_id`).
- `assignment_acceptances`  one document per accepted assignment, `_id` `<case>|<assignment>`:
                     insert only. Shapes: {case_id} (index `case_id`): who leads a case.
- `delivery_claims`  claim tokens, `_id` `<key>|<status>|<claimed_at>|<due_at>|<attempts>`:
                     taking a delivery from a state is first an insert here. Insert only.

FerretDB 1.24 workarounds kept here: claims are unique-`_id` inserts, never concurrent
conditional updates (two of those were seen to both succeed on its SQLite backend); an
upsert racing another copy of the event may raise a duplicate key, and is then done
again as a plain update; nothing uses `$in`, ranges, `$exists`, `$or` or sorts.
(The outbox relay timer, in shared/messaging/outbox.py, finds leftover events with
`{"outbox_pending": true}` on `deliveries`, which every write of events here sets.)
"""
from datetime import timezone

from pymongo.errors import DuplicateKeyError

from services.notifications.audience import REFERRALS
from services.notifications.deliveries import CaseDirectoryEntry, Delivery, DeliveryExists, field_key, utcnow
from shared.storage import Store
from shared.messaging.outbox import pending_fields
from shared.storage.indexes import Index

DELIVERIES = "deliveries"
CASE_DIRECTORY = "case_directory"
EVENT_RUNS = "event_runs"
DELIVERY_CLAIMS = "delivery_claims"
ACCEPTANCES = "assignment_acceptances"
ASSIGNMENTS = "case_assignments"

OUTBOX_FIELD = "outbox"
# the fields of a Delivery, as stored (the key is `_id`)
DELIVERY_FIELDS = ("event_id", "event_type", "notification_id", "case_id", "recipient_role", "recipient_id",
                   "purpose", "holder", "correlationid", "channel", "template", "language", "status", "attempts",
                   "claimed_at", "due_at", "reason", "facts", "at")

__all__ = ["NotificationsStore", "DeliveryExists"]


class NotificationsStore(Store):
    """Deliveries, the case directory, event run counts and delivery claims."""

    # the collections whose documents hold pending events, for the outbox relay
    outbox_collections = (DELIVERIES,)
    outbox_collection = DELIVERIES

    indexes = {
        DELIVERIES: [
            # named as mongoengine named them, so a database made before the store keeps them
            Index("case_id", name="case_id_1"),
            Index("event_id", "recipient_id", unique=True, name="event_id_1_recipient_id_1"),
            Index("status"),
        ],
        # `_id` only: listed so that the collection exists and, on FerretDB on
        # PostgreSQL, its `_id` gets its GIN twin
        CASE_DIRECTORY: [],
        EVENT_RUNS: [],
        DELIVERY_CLAIMS: [],
        ACCEPTANCES: [Index("case_id")],
        ASSIGNMENTS: [Index("case_id")],
    }

    def __init__(self, db):
        super().__init__(db)
        self._deliveries = db[DELIVERIES]
        self._cases = db[CASE_DIRECTORY]
        self._runs = db[EVENT_RUNS]
        self._claims = db[DELIVERY_CLAIMS]
        self._acceptances = db[ACCEPTANCES]
        self._assignments = db[ASSIGNMENTS]

    # -- the case directory -----------------------------------------------------------

    def case(self, case_id):
        """The case's directory entry, or None when no referral.received was heard for it."""
        doc = self._cases.find_one({"_id": case_id})
        if doc is None:
            return None
        entry = _case_entry(doc)
        for found in self._assignments.find({"case_id": case_id}):
            entry.assignments[field_key(found["assignment_id"])] = {
                "facilitator_id": found["facilitator_id"], "role": found["role"]}
        return entry

    def record_referral(self, case_id, referrer_id, summary, participants):
        """Remember a referral (idempotent: a copy of the event overwrites the same facts
        and keeps what later events added)."""
        change = {
            "$set": {"referrer_id": referrer_id, "summary": summary, "participants": participants},
            "$setOnInsert": {"recorded_at": utcnow(), "assessment": {}, "assignments": {}},
        }
        try:
            self._cases.update_one({"_id": case_id}, change, upsert=True)
        except DuplicateKeyError:  # a copy of the event inserted it first
            self._cases.update_one({"_id": case_id}, {"$set": change["$set"]})

    def record_assessment(self, case_id, assessment):
        """Remember a case's assessment; False when the case is not in the directory."""
        return self._cases.update_one({"_id": case_id}, {"$set": {"assessment": assessment}}).matched_count == 1

    def record_assignment(self, case_id, assignment_id, assignment):
        """Remember an assignment ({facilitator_id, role}); False when the case is not in
        the directory. An insert of its own, like an acceptance: matching announces a case's
        assessment and its offers together, and an update of the case's entry racing
        another can be lost on FerretDB. An assignment never changes, so a copy of the
        event changes nothing."""
        if self._cases.find_one({"_id": case_id}, {"_id": 1}) is None:
            return False
        try:
            self._assignments.insert_one({"_id": f"{case_id}|{assignment_id}", "case_id": case_id,
                                          "assignment_id": assignment_id, "facilitator_id": assignment["facilitator_id"],
                                          "role": assignment["role"]})
        except DuplicateKeyError:
            pass
        return True

    def record_acceptance(self, case_id, assignment_id, at):
        """Remember that an assignment was accepted, and when (the lead facilitator is the
        lead assignment last accepted). An insert of its own, not an update of the case's
        entry: FerretDB can lose one of two updates racing for a document, and the events
        that fill the entry arrive together. A copy of the event changes nothing."""
        try:
            self._acceptances.insert_one({"_id": f"{case_id}|{assignment_id}", "case_id": case_id,
                                          "assignment_id": assignment_id, "at": at})
        except DuplicateKeyError:
            pass

    def acceptances(self, case_id):
        """assignment id -> when it was accepted, for a case's accepted assignments."""
        return {doc["assignment_id"]: _aware(doc["at"]) for doc in self._acceptances.find({"case_id": case_id})}

    # -- event runs ---------------------------------------------------------------------

    def count_run(self, event_id):
        """Count one more run of the handler for an event; return this run's number."""
        change = {"$inc": {"runs": 1}, "$set": {"at": utcnow()}}
        try:
            self._runs.update_one({"_id": event_id}, change, upsert=True)
        except DuplicateKeyError:  # a copy of the event inserted it first
            self._runs.update_one({"_id": event_id}, change)
        return self._runs.find_one({"_id": event_id})["runs"]

    # -- deliveries -----------------------------------------------------------------------

    def delivery(self, key):
        doc = self._deliveries.find_one({"_id": key}, {OUTBOX_FIELD: 0})
        return _delivery(doc) if doc else None

    def delivery_for(self, event_id, recipient_id):
        """The delivery of an event to a recipient, on whichever channel, or None."""
        doc = self._deliveries.find_one({"event_id": event_id, "recipient_id": recipient_id}, {OUTBOX_FIELD: 0})
        return _delivery(doc) if doc else None

    def deliveries_for_case(self, case_id):
        """Every delivery of a case, oldest change first (sorted here: few per case)."""
        found = [_delivery(doc) for doc in self._deliveries.find({"case_id": case_id}, {OUTBOX_FIELD: 0})]
        return sorted(found, key=lambda d: (d.at is None, d.at or 0))

    def deferred_for_case(self, case_id):
        found = self._deliveries.find({"case_id": case_id, "status": "deferred"}, {OUTBOX_FIELD: 0})
        return [_delivery(doc) for doc in found]

    def due_deliveries(self, now, stale_before, limit):
        """Deliveries the timer should take on, soonest due first, at most `limit`:
        deferred ones due by `now`, and deferred ones claimed (status `sending`, with a
        due time) before `stale_before` by a worker that must have died.

        Two equality queries on `status` instead of one `$or` of ranges, which FerretDB
        would answer by scanning every delivery ever made: `deferred` and `sending` are
        only the deliveries in flight, and the times are compared here."""
        due = [d for d in self._status("deferred") if d.due_at is not None and d.due_at <= now]
        stale = [d for d in self._status("sending")
                 if d.due_at is not None and d.claimed_at is not None and d.claimed_at < stale_before]
        return sorted(due + stale, key=lambda d: d.due_at)[:limit]

    def _status(self, status):
        return [_delivery(doc) for doc in self._deliveries.find({"status": status}, {OUTBOX_FIELD: 0})]

    def insert_delivery(self, delivery, events=()):
        """Store a new delivery (its claim, when `sending`) with the events its state causes
        in its outbox. Raises DeliveryExists when its key, or its (event, recipient), is
        already stored."""
        try:
            self._deliveries.insert_one({**_document(delivery), **pending_fields(events)})
        except DuplicateKeyError:
            raise DeliveryExists(f"delivery {delivery.key} is already stored") from None

    def claim(self, delivery, now):
        """Take a delivery from the state it was read in (`delivery`): mark it `sending`,
        claimed at `now`, and return it as stored; None when another worker took it.

        The exclusive step is the insert of a claim token naming that state, under a
        unique `_id`; only the worker whose insert wins changes the delivery."""
        try:
            self._claims.insert_one({"_id": claim_token(delivery), "at": now})
        except DuplicateKeyError:
            return None
        moved = self._deliveries.update_one({"_id": delivery.key, "status": delivery.status},
                                            {"$set": {"status": "sending", "claimed_at": now}})
        return self.delivery(delivery.key) if moved.modified_count == 1 else None

    def settle(self, key, status, reason, events, at, due_at=None, attempts=None, language=None):
        """Move a claimed (`sending`) delivery to `status`, with the events it causes in
        its outbox, in one write (`attempts` and `language` too, when given). False when
        the delivery is not `sending` (another worker has moved it on)."""
        fields = {"status": status, "reason": reason, **pending_fields(events), "at": at, "due_at": due_at}
        if attempts is not None:
            fields["attempts"] = attempts
        if language is not None:
            fields["language"] = language
        return self._update_sending(key, fields)

    def mark_retrying(self, key, attempts, reason):
        """A claimed delivery's send failed; the event will bring it back."""
        return self._update_sending(key, {"status": "retrying", "attempts": attempts, "reason": reason})

    def back_off(self, key, attempts, reason, due_at):
        """A claimed deferred delivery's send failed: defer it again until `due_at`."""
        return self._update_sending(key, {"status": "deferred", "attempts": attempts, "reason": reason,
                                          "due_at": due_at})

    def _update_sending(self, key, fields):
        return self._deliveries.update_one({"_id": key, "status": "sending"}, {"$set": fields}).matched_count == 1

    def pending_events(self, key):
        """The events still in a delivery's outbox (published and pulled by the relay)."""
        doc = self._deliveries.find_one({"_id": key}, {OUTBOX_FIELD: 1})
        return list(doc.get(OUTBOX_FIELD) or []) if doc else []

    def force_delivery_state(self, key, **fields):
        """For tests: overwrite fields of a stored delivery, as a dead worker or an old
        release might have left it."""
        unknown = set(fields) - set(DELIVERY_FIELDS)
        if unknown:
            raise ValueError(f"not delivery fields: {sorted(unknown)}")
        self._deliveries.update_one({"_id": key}, {"$set": fields})


def claim_token(delivery):
    """`<key>|<status>|<claimed_at>|<due_at>|<attempts>`: one state of one delivery."""
    return "|".join([delivery.key, delivery.status, _stamp(delivery.claimed_at), _stamp(delivery.due_at),
                     str(delivery.attempts or 0)])


def _stamp(moment):
    return _aware(moment).isoformat(timespec="milliseconds") if moment else "-"


def _aware(moment):
    """Datetimes come back naive from a client made without tz_aware; they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def _document(delivery):
    doc = {"_id": delivery.key}
    doc.update({name: getattr(delivery, name) for name in DELIVERY_FIELDS})
    return doc


def _delivery(doc):
    return Delivery(
        key=doc["_id"], event_id=doc["event_id"], event_type=doc["event_type"],
        notification_id=doc["notification_id"], case_id=doc["case_id"], recipient_role=doc["recipient_role"],
        recipient_id=doc["recipient_id"], purpose=doc["purpose"],
        # deliveries made before the holder was recorded were all referrals'
        holder=doc.get("holder") or REFERRALS,
        channel=doc["channel"], template=doc["template"], status=doc["status"],
        correlationid=doc.get("correlationid"), language=doc.get("language"), attempts=doc.get("attempts") or 0,
        claimed_at=_aware(doc.get("claimed_at")), due_at=_aware(doc.get("due_at")), reason=doc.get("reason"),
        facts=doc.get("facts") or {}, at=_aware(doc.get("at")),
    )


def _case_entry(doc):
    return CaseDirectoryEntry(
        case_id=doc["_id"], referrer_id=doc["referrer_id"], summary=doc.get("summary") or {},
        participants=list(doc.get("participants") or []), assessment=doc.get("assessment") or {},
        assignments=doc.get("assignments") or {}, recorded_at=_aware(doc.get("recorded_at")),
    )
