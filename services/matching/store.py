"""The matching service's store: the one module that touches its database (pymongo).

Collections, in the matching database, and the shapes of the queries issued on them
(every filter is equality on indexed fields, which FerretDB 1.24 pushes down to SQL and
serves from the GIN twins: see shared/storage/indexes.py):

- `assessments`        one per assessment, `_id` the assessment id, with its outbox.
                       {trigger_event_id} (unique: one assessment per trigger);
                       {case_id} (then the latest picked in Python: a case has 1 to 3).
- `assignments`        one per case, `_id` the case id, with its outbox. Besides the
                       state, two fields derived on every write serve the sweeps:
                       `offers_open` (an offer awaits an answer) and
                       `active_facilitator_ids` (who holds an offered or accepted slot).
                       {_id}; {offer_ids} (an element of the array);
                       {status, region} or {status}, once per waiting status and region
                       (then ordered and cut in Python);
                       {offers_open: true} (then expiry compared in Python);
                       {active_facilitator_ids}.
- `assignment_leases`  a case's lease, `_id` the case id: taken by a unique insert.
                       {_id}; {_id, owner}.
- `facilitators`       the registry, `_id` the facilitator id. {_id}; {regions, active}
                       or {regions}, once per region asked for. The roster reads the whole
                       registry at start (it does not grow with cases).
- `seats`              one per unit of capacity held by a case, `_id` "<facilitator>#<n>"
                       (unique insert takes it; unique (facilitator_id, case_id)).
                       {facilitator_id}, once per facilitator; {facilitator_id, case_id};
                       {case_id}; {_id, case_id}. The roster's recount reads them all:
                       seats are bounded by the registry's capacity, not by cases.
- `registry_changes`   the registry's change log, kept a day. {minute} or {hour}, once
                       per bucket the time asked about spans (then `at` compared in Python).
- `continuity`         who worked with whom, `_id` "<participant>@<facilitator>".
                       {participant_id}, once per participant.

No query here uses $in, ranges, $exists, $or or a sort on these collections; where the
old code did, the comment at the query says how it is reshaped. (The shared outbox
relay's own look for pending events is shared.messaging.outbox's.)
"""
import time as clock
import uuid
from datetime import datetime, time, timedelta, timezone

from pymongo.errors import DuplicateKeyError

from services.matching import assignments as domain
from services.matching.assessments import Assessment
from services.matching.assignments import Assignment, Busy, LeaseHolding, Slot
from services.matching.facilitators import AlreadyRegistered, Facilitator, RegistryChange, Seat, seat_id
from shared.config import settings_for
from shared.messaging.outbox import pending_fields, pending_update
from shared.storage import Store, connect
from shared.storage.indexes import Index

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DATE_FIELDS = ("trained_on", "last_process_on", "prison_vetted_until")
# Facilitator fields the roster keeps in memory: not their name or e-mail address
ROSTER_FIELDS = {name: 1 for name in (
    "level", "regions", "languages", "endorsements", "capacity", "trained_on", "last_process_on",
    "complex_case_trained", "prison_vetted_until", "available_from", "conflicts", "active")}
# what the list of cases waiting for staff reads of an Assignment: not its outbox
WAITING_FIELDS = {name: 1 for name in ("status", "region", "slots", "waitlisted_at", "waitlist_reason",
                                              "waitlist_shortfall")}
# what a commit under the lease may change (the first five only when a paused case reopens)
STATE_FIELDS = ("assessment_id", "region", "requirement", "participant_ids", "status", "slots", "offer_ids",
                "declined_by", "waitlisted_at", "waitlist_reason", "waitlist_shortfall", "next_expiry",
                "closed_reason")
# registry change log buckets; past this span changes_since asks by hour instead of by minute
MINUTE_SPAN = timedelta(minutes=15)
# the change log is pruned after a day; nothing older is ever asked for
KEPT_CHANGES = timedelta(days=2)
PRUNE_LOOKBACK = timedelta(days=7)


class MatchingStore(LeaseHolding, Store):
    ASSESSMENTS = "assessments"
    ASSIGNMENTS = "assignments"
    # the collections whose documents hold pending events (the outbox relay looks in them)
    OUTBOX_COLLECTIONS = (ASSESSMENTS, ASSIGNMENTS)

    indexes = {
        "assessments": [Index("trigger_event_id", unique=True), Index("case_id")],
        "assignments": [Index("offer_ids"), Index("status", "region"), Index("offers_open"),
                        Index("active_facilitator_ids")],
        "assignment_leases": [],
        "facilitators": [Index("regions", "active")],
        "seats": [Index("facilitator_id", "case_id", unique=True), Index("case_id")],
        "registry_changes": [Index("minute"), Index("hour")],
        "continuity": [Index("participant_id")],
    }

    def __init__(self, db):
        super().__init__(db)
        self._pruned_until = None  # the registry change log is pruned by the hour up to here

    @classmethod
    def open(cls, config=None):
        """A store on the matching database of `config` (a nameko config dict, or the
        environment), its indexes ensured: for scripts, benches and tests."""
        settings = settings_for("matching", config)
        store = cls(connect("matching", settings))
        store.ensure_indexes(settings.ferretdb_postgresql_url)
        return store

    # --- assessments -------------------------------------------------------------------

    def insert_assessment(self, assessment):
        """Save a new assessment with its events (its outbox) in one insert; False if
        one with the same trigger (or id) is stored already."""
        try:
            self.db.assessments.insert_one(_assessment_doc(assessment))
            return True
        except DuplicateKeyError:
            return False

    def assessment_by_trigger(self, trigger_event_id):
        doc = self.db.assessments.find_one({"trigger_event_id": trigger_event_id})
        return _assessment(doc) if doc else None

    def latest_assessment(self, case_id):
        # was a sort on created_at: a case has a few, so the latest is picked here
        docs = list(self.db.assessments.find({"case_id": case_id}))
        return _assessment(max(docs, key=lambda d: d["created_at"])) if docs else None

    # --- assignments ---------------------------------------------------------------------

    def insert_assignment(self, assignment, events=()):
        """Save a new case's Assignment, staffed or waitlisted, with its events, in one
        insert; False if the case already has one."""
        try:
            self.db.assignments.insert_one(_assignment_doc(assignment, events))
            return True
        except DuplicateKeyError:
            return False

    def close_unopened(self, case_id, reason):
        """A tombstone for a case closed before it was ever staffed; False if the case
        has an Assignment already."""
        return self.insert_assignment(domain.tombstone(case_id, reason))

    def get_assignment(self, case_id):
        doc = self.db.assignments.find_one({"_id": case_id})
        return _assignment(doc) if doc else None

    def case_of_offer(self, assignment_id):
        """The id of the case an offer belongs to, or None."""
        doc = self.db.assignments.find_one({"offer_ids": assignment_id}, {"_id": 1})
        return doc["_id"] if doc else None

    def waiting(self, regions=None, limit=20):
        """Cases waiting for a facilitator (waitlisted or pending), longest-waiting first,
        in `regions` if given."""
        return [doc["_id"] for doc in self._waiting_docs(regions, {"_id": 1, "waitlisted_at": 1})][:limit]

    def waiting_cases(self, regions=None):
        """The Assignments of the cases waiting for a facilitator, longest-waiting first, in
        `regions` if given (the list of cases waiting for staff)."""
        return [_assignment(doc) for doc in self._waiting_docs(regions, WAITING_FIELDS)]

    def _waiting_docs(self, regions, projection):
        # was {status: {$in}, region: {$in}} sorted: now one equality query per status and
        # region, ordered here (nulls first, as MongoDB sorts them)
        found = {}
        for status in (domain.WAITLISTED, domain.PENDING):
            for region in sorted(regions) if regions else [None]:
                query = {"status": status} if region is None else {"status": status, "region": region}
                for doc in self.db.assignments.find(query, projection):
                    found[doc["_id"]] = doc
        return sorted(found.values(), key=lambda doc: _waiting_order((doc["_id"], doc.get("waitlisted_at"))))

    def expired_offers(self, now, limit=50):
        """Cases with an offer not answered by `now`, the longest lapsed first."""
        # was {next_expiry: {$lte: now}}: now equality on the derived `offers_open`, the
        # cases with an offer out (bounded by the registry's capacity), compared here
        found = [(doc["next_expiry"], doc["_id"]) for doc in
                 self.db.assignments.find({"offers_open": True}, {"_id": 1, "next_expiry": 1})
                 if doc.get("next_expiry") is not None and doc["next_expiry"] <= now]
        return [case_id for _, case_id in sorted(found)][:limit]

    def cases_held_by(self, facilitator_id):
        """Ids of the cases with an offered or accepted slot of this facilitator's."""
        # was {"slots.facilitator_id": id} (a path through an array of documents): now
        # equality on the derived top-level array `active_facilitator_ids`
        return {doc["_id"] for doc in self.db.assignments.find({"active_facilitator_ids": facilitator_id},
                                                                {"_id": 1})}

    # --- the lease (a context manager: LeaseHolding.lease) ------------------------------------

    def claim(self, case_id, now=None):
        """Take the case's lease (Busy if another holder has it): a Lease whose
        `assignment` is the case's state read after taking it, or None if there is no
        such case (and then the lease is already given back)."""
        now = now or datetime.now(timezone.utc)
        lease = domain.new_lease(case_id, now)
        leases = self.db.assignment_leases
        for _ in range(2):
            try:
                leases.insert_one({"_id": case_id, "owner": lease.owner, "expires_at": lease.expires_at})
                break
            except DuplicateKeyError:
                held = leases.find_one({"_id": case_id})
                if held is None:
                    continue  # given back just now: try again
                if _aware(held["expires_at"]) >= now:
                    raise Busy(case_id)
                leases.delete_one({"_id": case_id, "owner": held["owner"]})  # its holder died
                lease.taken_over = True
        else:
            raise Busy(case_id)
        doc = self.db.assignments.find_one({"_id": case_id})  # read after taking the lease: the latest state
        if doc is None:  # no such case: a lease on nothing
            self.release_lease(lease)
            return lease
        lease.assignment = _assignment(doc)
        lease.taken_at = clock.monotonic()
        return lease

    def holds_lease(self, lease):
        return self.db.assignment_leases.find_one({"_id": lease.case_id, "owner": lease.owner}, {"_id": 1}) is not None

    def release_lease(self, lease):
        """Give the lease back (once; a lease since taken by someone else is left alone)."""
        if not lease.released:
            self.db.assignment_leases.delete_one({"_id": lease.case_id, "owner": lease.owner})
            lease.released = True

    def commit(self, lease, assignment, events=()):
        """Save the case's state and its new events (the outbox) in one write, the lease
        held; True only if the lease was still ours."""
        if not lease.young() and not self.holds_lease(lease):  # a young lease cannot have lapsed and been taken
            return False
        doc = _assignment_doc(assignment)
        update = {"$set": {key: doc[key] for key in STATE_FIELDS + DERIVED}, "$inc": {"version": 1}}
        if events:
            added = pending_update(events)
            update["$push"] = added["$push"]
            update["$set"].update(added["$set"])
        self.db.assignments.update_one({"_id": assignment.case_id}, update)
        return True

    # --- continuity ----------------------------------------------------------------------

    def record_worked_with(self, participant_ids, facilitator_id):
        for participant_id in participant_ids:
            try:
                self.db.continuity.insert_one({"_id": f"{participant_id}@{facilitator_id}",
                                               "participant_id": participant_id, "facilitator_id": facilitator_id})
            except DuplicateKeyError:
                pass

    def forget_participant(self, participant_id):
        """An erased participant: who they worked with is no longer kept. Idempotent."""
        return self.db.continuity.delete_many({"participant_id": participant_id}).deleted_count

    def facilitators_seen(self, participant_ids):
        """Who accepted a case with one of these participants before."""
        # was {participant_id: {$in}}: one equality query per participant (a case has a few)
        return frozenset(doc["facilitator_id"] for participant_id in dict.fromkeys(participant_ids)
                         for doc in self.db.continuity.find({"participant_id": participant_id},
                                                            {"facilitator_id": 1}))

    # --- the registry ------------------------------------------------------------------------

    def insert_facilitator(self, facilitator):
        try:
            self.db.facilitators.insert_one(_facilitator_doc(facilitator))
        except DuplicateKeyError:
            raise AlreadyRegistered(facilitator.facilitator_id) from None

    def get_facilitator(self, facilitator_id):
        doc = self.db.facilitators.find_one({"_id": facilitator_id})
        return _facilitator(doc) if doc else None

    def update_facilitator(self, facilitator, changed):
        """Write the `changed` fields of a facilitator (and what derives from them)."""
        doc = _facilitator_doc(facilitator)
        fields = set(changed) | {"current_until", "updated_at"} | ({"conflict_keys"} if "conflicts" in changed else set())
        self.db.facilitators.update_one({"_id": facilitator.facilitator_id},
                                        {"$set": {key: doc[key] for key in fields if key in doc}})

    def deactivate_facilitator(self, facilitator_id, now):
        """False if there is no such facilitator."""
        result = self.db.facilitators.update_one({"_id": facilitator_id},
                                                 {"$set": {"active": False, "deactivated_at": now, "updated_at": now}})
        return result.matched_count > 0

    def list_facilitators(self, region=None, active=None, within=None):
        """The registry, by id: in `region`, and working in one of `within` (None: anywhere)."""
        # was {regions: {$in: within}} sorted by _id: one equality query per region, merged here
        base = {} if active is None else {"active": active}
        if region:
            queries = [{"regions": region, **base}]
        elif within is not None:
            queries = [{"regions": r, **base} for r in dict.fromkeys(within)]
        else:
            queries = [base]  # the whole registry (or its active part): it does not grow with cases
        found = {doc["_id"]: doc for query in queries for doc in self.db.facilitators.find(query)}
        return [_facilitator(found[key]) for key in sorted(found)]

    def roster_facilitators(self):
        """The whole registry, without contact details (for the in-memory roster)."""
        return [_facilitator(doc) for doc in self.db.facilitators.find({}, ROSTER_FIELDS)]

    def roster_facilitator(self, facilitator_id):
        doc = self.db.facilitators.find_one({"_id": facilitator_id}, ROSTER_FIELDS)
        return _facilitator(doc) if doc else None

    # --- the registry's change log --------------------------------------------------------

    def log_change(self, facilitator_id, at=None):
        at = at or datetime.now(timezone.utc)
        self.db.registry_changes.insert_one({"_id": uuid.uuid4().hex, "facilitator_id": facilitator_id, "at": at,
                                             "minute": _minute(at), "hour": _hour(at)})

    def changes_since(self, at, facilitator_id=None):
        """Changes logged after `at` (of one facilitator, if given)."""
        # was {at: {$gt: at}}: one equality query per minute (or, over a longer span, per
        # hour) from `at` to a bucket beyond now (another writer's clock may run ahead)
        now = datetime.now(timezone.utc)
        at = _aware(at)
        start = max(at, now - KEPT_CHANGES)
        if now - start <= MINUTE_SPAN:
            field, step, key = "minute", timedelta(minutes=1), _minute
        else:
            field, step, key = "hour", timedelta(hours=1), _hour
        found = {}
        for bucket in _buckets(start, now + step, step, key):
            query = {field: bucket} if facilitator_id is None else {field: bucket, "facilitator_id": facilitator_id}
            for doc in self.db.registry_changes.find(query):
                if _aware(doc["at"]) > at:
                    found[doc["_id"]] = RegistryChange(doc["_id"], doc["facilitator_id"], _aware(doc["at"]))
        return sorted(found.values(), key=lambda c: (c.at, c.change_id))

    def prune_changes(self, older_than):
        """Forget the change log's whole hours before `older_than`'s hour."""
        # was {at: {$lt: older_than}}: one equality delete per hour not yet pruned (the
        # first prune of a process looks back PRUNE_LOOKBACK; later ones take an hour or none)
        until = _floor_hour(_aware(older_than))
        since = self._pruned_until or until - PRUNE_LOOKBACK
        for bucket in _buckets(since, until, timedelta(hours=1), _hour):
            if bucket < _hour(until):
                self.db.registry_changes.delete_many({"hour": bucket})
        self._pruned_until = max(until, self._pruned_until or until)

    # --- seats -------------------------------------------------------------------------

    def take_seat(self, facilitator_id, case_id, capacity, known_taken=()):
        """Insert a seat for `case_id`, trying the seats not known to be taken first.
        Returns (the seat number or None, the seat numbers found taken). A seat insert
        also fails if this case already holds one of theirs (unique index), so a case is
        never booked twice with the same facilitator."""
        order = [n for n in range(capacity) if n not in known_taken] + [n for n in range(capacity) if n in known_taken]
        taken = set()
        for number in order:
            try:
                self.db.seats.insert_one({"_id": seat_id(facilitator_id, number), "facilitator_id": facilitator_id,
                                          "seat": number, "case_id": case_id, "taken_at": datetime.now(timezone.utc)})
                return number, taken
            except DuplicateKeyError:
                taken.add(number)
        return None, taken

    def release_seat(self, facilitator_id, case_id):
        """Give back the seat `case_id` holds of this facilitator's: its number, or None if it held none."""
        seat = self.db.seats.find_one_and_delete({"facilitator_id": facilitator_id, "case_id": case_id})
        return seat["seat"] if seat else None

    def holders(self, case_id):
        """Ids of the facilitators holding a seat for `case_id`."""
        return [seat["facilitator_id"] for seat in self.db.seats.find({"case_id": case_id}, {"facilitator_id": 1})]

    def caseloads(self, facilitator_ids):
        """Cases held by each of `facilitator_ids`."""
        # was {facilitator_id: {$in}} for several: one equality query per facilitator
        held = {facilitator_id: [] for facilitator_id in facilitator_ids}
        for facilitator_id in held:
            for seat in self.db.seats.find({"facilitator_id": facilitator_id}, {"case_id": 1}):
                held[facilitator_id].append(seat["case_id"])
        return held

    def all_seats(self):
        """Every seat taken (the roster's recount; bounded by the registry's capacity)."""
        return [_seat(doc) for doc in self.db.seats.find({})]

    # --- for tests and benches ---------------------------------------------------------

    def pending_events(self, collection, doc_id):
        """The events still in a document's outbox."""
        doc = self.db[collection].find_one({"_id": doc_id}, {"outbox": 1})
        return list(doc.get("outbox", [])) if doc else []

    def count_assessments(self):
        return self.db.assessments.count_documents({})

    def count_facilitators(self):
        return self.db.facilitators.count_documents({})

    def all_assignments(self):
        return [_assignment(doc) for doc in self.db.assignments.find({})]

    def lease_holder(self, case_id):
        """The owner token of the case's lease, or None if nobody holds it."""
        doc = self.db.assignment_leases.find_one({"_id": case_id})
        return doc["owner"] if doc else None

    def insert_facilitators(self, facilitators):
        """Many new facilitators at once (a bench's registry)."""
        docs = [_facilitator_doc(f) for f in facilitators]
        for start in range(0, len(docs), 1000):
            self.db.facilitators.insert_many(docs[start:start + 1000])

    def clear(self):
        """Empty every collection (a property test's next example)."""
        for name in self.indexes:
            self.db[name].delete_many({})


# --- documents <-> domain ------------------------------------------------------------------

DERIVED = ("offers_open", "active_facilitator_ids")


def _aware(moment):
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _midnight(day):
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day is not None else None


def _day(value):
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def _minute(at):
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M")


def _hour(at):
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H")


def _floor_hour(at):
    return at.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _buckets(start, end, step, key):
    """The keys of the buckets (each `step` wide) from `start`'s to `end`'s, inclusive."""
    keys, moment = [], start
    while moment < end:
        keys.append(key(moment))
        moment += step
    keys.append(key(end))
    return list(dict.fromkeys(keys))


def _waiting_order(item):
    case_id, waitlisted_at = item
    return (0, EPOCH, case_id) if waitlisted_at is None else (1, _aware(waitlisted_at), case_id)


def _assessment_doc(a):
    return {"_id": a.assessment_id, "case_id": a.case_id, "trigger_event_id": a.trigger_event_id,
            "outcome": a.outcome, "referral": a.referral, "review": a.review, "basis": a.basis,
            "withdrawn_by": list(a.withdrawn_by), **pending_fields(a.outbox),
            "created_at": a.created_at}


def _assessment(doc):
    return Assessment(assessment_id=doc["_id"], case_id=doc["case_id"], trigger_event_id=doc["trigger_event_id"],
                      outcome=doc["outcome"], referral=doc.get("referral") or {}, review=doc.get("review") or {},
                      basis=doc.get("basis") or ("review" if doc.get("review") else "referral"),
                      withdrawn_by=list(doc.get("withdrawn_by") or []),
                      outbox=list(doc.get("outbox", [])), created_at=_aware(doc.get("created_at")))


def _slot_doc(slot):
    return {"assignment_id": slot.assignment_id, "role": slot.role, "facilitator_id": slot.facilitator_id,
            "state": slot.state, "offered_at": slot.offered_at, "expires_at": slot.expires_at,
            "decided_at": slot.decided_at, "reason": slot.reason}


def _slot(doc):
    return Slot(assignment_id=doc["assignment_id"], role=doc["role"], facilitator_id=doc["facilitator_id"],
                state=doc["state"], offered_at=_aware(doc.get("offered_at")), expires_at=_aware(doc.get("expires_at")),
                decided_at=_aware(doc.get("decided_at")), reason=doc.get("reason"))


def _assignment_doc(a, events=()):
    active = domain.active_slots(a)
    return {
        "_id": a.case_id, "assessment_id": a.assessment_id, "status": a.status, "region": a.region,
        "requirement": a.requirement, "participant_ids": list(a.participant_ids),
        "slots": [_slot_doc(s) for s in a.slots], "offer_ids": list(a.offer_ids), "declined_by": list(a.declined_by),
        "waitlisted_at": a.waitlisted_at, "waitlist_reason": a.waitlist_reason,
        "waitlist_shortfall": a.waitlist_shortfall, "next_expiry": a.next_expiry, "closed_reason": a.closed_reason,
        "version": a.version, **pending_fields(events),
        # derived, for the sweeps' equality queries
        "offers_open": a.next_expiry is not None,
        "active_facilitator_ids": sorted({s.facilitator_id for s in active}),
    }


def _assignment(doc):
    return Assignment(
        case_id=doc["_id"], status=doc["status"], assessment_id=doc.get("assessment_id"), region=doc.get("region"),
        requirement=doc.get("requirement") or {}, participant_ids=list(doc.get("participant_ids", [])),
        slots=[_slot(s) for s in doc.get("slots", [])], offer_ids=list(doc.get("offer_ids", [])),
        declined_by=list(doc.get("declined_by", [])), waitlisted_at=_aware(doc.get("waitlisted_at")),
        waitlist_reason=doc.get("waitlist_reason"), waitlist_shortfall=doc.get("waitlist_shortfall"),
        next_expiry=_aware(doc.get("next_expiry")), closed_reason=doc.get("closed_reason"),
        version=doc.get("version", 0))


def _facilitator_doc(f):
    until = f.current_until
    doc = {
        "_id": f.facilitator_id, "name": f.name, "email": f.email, "language": f.language, "level": f.level,
        "complex_case_trained": bool(f.complex_case_trained),
        **{key: _midnight(getattr(f, key)) for key in DATE_FIELDS},
        "current_until": _midnight(until) if until else EPOCH,
        "endorsements": list(f.endorsements), "languages": list(f.languages), "regions": list(f.regions),
        "capacity": f.capacity, "available_from": _midnight(f.available_from) or EPOCH,
        "conflicts": list(f.conflicts), "conflict_keys": f.conflict_keys, "active": f.active,
        "created_at": f.created_at, "updated_at": f.updated_at,
    }
    if f.deactivated_at is not None:
        doc["deactivated_at"] = f.deactivated_at
    return doc


def _facilitator(doc):
    available = _day(doc.get("available_from"))
    return Facilitator(
        facilitator_id=doc["_id"], level=doc["level"], languages=list(doc["languages"]), regions=list(doc["regions"]),
        capacity=doc["capacity"], name=doc.get("name"), email=doc.get("email"), language=doc.get("language", "en"),
        complex_case_trained=bool(doc.get("complex_case_trained")),
        **{key: _day(doc.get(key)) for key in DATE_FIELDS},
        endorsements=list(doc.get("endorsements", [])),
        available_from=None if available in (None, EPOCH.date()) else available,
        conflicts=list(doc.get("conflicts", [])), active=doc.get("active", True),
        created_at=_aware(doc.get("created_at")), updated_at=_aware(doc.get("updated_at")),
        deactivated_at=_aware(doc.get("deactivated_at")))


def _seat(doc):
    return Seat(facilitator_id=doc["facilitator_id"], seat=doc["seat"], case_id=doc["case_id"],
                taken_at=_aware(doc.get("taken_at")))

