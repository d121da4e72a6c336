"""Who facilitates a case: one Assignment document per case (its id is the case id).

It holds the case's requirement, its slots (one per offer: lead or co-facilitator, with
the offer's state), who declined, whether it waits for capacity, and the outbox of the
events all this causes.

Every change to it happens under a lease: a Lease document whose id is the case id,
inserted (an insert under a unique key is atomic on FerretDB, where a conditional update
is not: see `facilitators`). The holder does its work (reserving or releasing
capacity), saves the new state with its events in one write, relays the events, and
only then deletes the lease, so nothing else writes the document meanwhile. Two matching
processes never staff the same case at once, and a reservation that no slot records can
only be left by a holder that died: the next holder gives it back. A lease left by a
dead holder lapses after LEASE.
"""
import time
import uuid
from datetime import datetime, timedelta, timezone

from mongoengine import DateTimeField, DictField, Document, IntField, ListField, StringField
from pymongo.errors import DuplicateKeyError

ALIAS = "matching"
LEASE = timedelta(seconds=30)

# slot states; an offered or accepted slot holds a unit of the facilitator's capacity
ACTIVE = ("offered", "accepted")
# case states
PENDING, OFFERED, ACCEPTED, WAITLISTED, CLOSED = "pending", "offered", "accepted", "waitlisted", "closed"


class Busy(RuntimeError):
    """Another worker holds the case's lease; try again shortly."""


class Assignment(Document):
    meta = {
        "db_alias": ALIAS,
        "collection": "assignments",
        "indexes": ["offer_ids", ("status", "region", "waitlisted_at"), "next_expiry", "participant_ids"],
    }
    case_id = StringField(primary_key=True)
    assessment_id = StringField()
    status = StringField(required=True)
    region = StringField()
    requirement = DictField()
    participant_ids = ListField(StringField())
    slots = ListField(DictField())
    offer_ids = ListField(StringField())
    declined_by = ListField(StringField())
    waitlisted_at = DateTimeField()
    next_expiry = DateTimeField()
    closed_reason = StringField()
    version = IntField(default=0)
    outbox = ListField(DictField())


class Lease(Document):
    meta = {"db_alias": ALIAS, "collection": "assignment_leases"}
    case_id = StringField(primary_key=True)
    owner = StringField(required=True)
    expires_at = DateTimeField(required=True)


def collection():
    return Assignment._get_collection()


def leases():
    return Lease._get_collection()


def handle(case_id):
    """A document object for the outbox relay, which needs only the class and the id."""
    return Assignment(case_id=case_id)


def new_case(case_id, assessment_id, region, requirement, participant_ids):
    """A case's Assignment as first saved (not yet saved)."""
    return {
        "_id": case_id, "assessment_id": assessment_id, "status": PENDING, "region": region,
        "requirement": requirement, "participant_ids": list(participant_ids), "slots": [], "offer_ids": [],
        "declined_by": [], "waitlisted_at": None, "next_expiry": None, "version": 0, "outbox": [],
    }


def insert(doc):
    """Save a new case's Assignment, staffed or waitlisted, with its events, in one insert;
    False if the case already has one."""
    try:
        collection().insert_one({k: v for k, v in doc.items() if not k.startswith("lease_")})
        return True
    except DuplicateKeyError:
        return False


def open_case(case_id, assessment_id, region, requirement, participant_ids):
    """Create the case's Assignment, pending; an existing one is left as it is."""
    return insert(new_case(case_id, assessment_id, region, requirement, participant_ids))


def close_unopened(case_id, reason):
    """A tombstone for a case closed before it was ever staffed, so a later review
    cannot staff it."""
    try:
        collection().insert_one({
            "_id": case_id, "status": CLOSED, "closed_reason": reason, "slots": [], "offer_ids": [],
            "declined_by": [], "version": 0, "outbox": [],
            "requirement": {}, "participant_ids": [], "next_expiry": None, "waitlisted_at": None,
        })
        return True
    except DuplicateKeyError:
        return False


def get(case_id):
    return collection().find_one({"_id": case_id})


def by_offer(assignment_id):
    return collection().find_one({"offer_ids": assignment_id}, {"_id": 1})


def claim(case_id, now=None):
    """Take the case's lease: its document, or None if it does not exist; Busy if held."""
    now = now or datetime.now(timezone.utc)
    token = uuid.uuid4().hex
    taken_over = False
    for _ in range(2):
        try:
            leases().insert_one({"_id": case_id, "owner": token, "expires_at": now + LEASE})
            break
        except DuplicateKeyError:
            held = leases().find_one({"_id": case_id})
            if held is None or held["expires_at"] >= now:
                if held is None:
                    continue  # given back just now: try again
                raise Busy(case_id)
            leases().delete_one({"_id": case_id, "owner": held["owner"]})  # its holder died
            taken_over = True
    else:
        raise Busy(case_id)
    doc = collection().find_one({"_id": case_id})  # read after taking the lease: the latest state
    if doc is None:  # no such case: a lease on nothing
        leases().delete_one({"_id": case_id, "owner": token})
        return None
    doc["lease_owner"] = token
    doc["lease_taken_at"] = time.monotonic()
    doc["lease_taken_over"] = taken_over
    return doc


def holds_lease(doc):
    return leases().find_one({"_id": doc["_id"], "owner": doc["lease_owner"]}, {"_id": 1}) is not None


def claim_patiently(case_id, wait=5.0):
    """`claim`, waiting up to `wait` seconds for another holder to finish (leases are
    held for milliseconds unless a worker died)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return claim(case_id)
        except Busy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def commit(doc, events=()):
    """Save the document's state and its new events (lease held); True only if the
    lease was still ours."""
    young = time.monotonic() - doc.get("lease_taken_at", 0) < LEASE.total_seconds() / 2
    if not young and not holds_lease(doc):  # a young lease cannot have lapsed and been taken
        return False
    state = {key: doc[key] for key in ("status", "slots", "offer_ids", "declined_by", "waitlisted_at",
                                       "next_expiry", "closed_reason") if key in doc}
    update = {"$set": state, "$inc": {"version": 1}}
    if events:
        update["$push"] = {"outbox": {"$each": list(events)}}
    collection().update_one({"_id": doc["_id"]}, update)
    return True


def let_go(doc):
    leases().delete_one({"_id": doc["_id"], "owner": doc["lease_owner"]})


# --- the state of a case's slots (pure) --------------------------------------------------

def active_slots(doc):
    return [slot for slot in doc["slots"] if slot["state"] in ACTIVE]


def filled_roles(doc):
    return {slot["role"] for slot in active_slots(doc)}


def find_slot(doc, assignment_id):
    return next((slot for slot in doc["slots"] if slot["assignment_id"] == assignment_id), None)


def new_slot(role, facilitator_id, now, offer_for):
    return {
        "assignment_id": str(uuid.uuid4()), "role": role, "facilitator_id": facilitator_id, "state": "offered",
        "offered_at": now, "expires_at": now + offer_for, "decided_at": None, "reason": None,
    }


def settle(doc, roles_needed):
    """Recompute the case's status and next offer expiry from its slots."""
    if doc["status"] == CLOSED:
        doc["next_expiry"] = None
        return doc
    active = active_slots(doc)
    filled = {slot["role"] for slot in active}
    if set(roles_needed) <= filled:
        doc["status"] = ACCEPTED if all(s["state"] == "accepted" for s in active) else OFFERED
        doc["waitlisted_at"] = None
    elif doc.get("waitlisted_at"):
        doc["status"] = WAITLISTED
    else:
        doc["status"] = PENDING
    expiries = [s["expires_at"] for s in active if s["state"] == "offered"]
    doc["next_expiry"] = min(expiries) if expiries else None
    return doc


def waiting(regions=None, limit=20):
    """Cases waiting for a facilitator, longest-waiting first."""
    query = {"status": {"$in": [WAITLISTED, PENDING]}}
    if regions:
        query["region"] = {"$in": sorted(regions)}
    return [doc["_id"] for doc in collection().find(query, {"_id": 1}).sort([("waitlisted_at", 1), ("_id", 1)]).limit(limit)]


def expired_offers(now, limit=50):
    return [doc["_id"] for doc in collection().find({"next_expiry": {"$lte": now}}, {"_id": 1}).limit(limit)]


class Continuity(Document):
    """Who has worked with whom: one line per (participant, facilitator), written when an
    offer is accepted. Kept apart from the assignments so that finding them scans only
    this collection."""
    meta = {"db_alias": ALIAS, "collection": "continuity"}
    key = StringField(primary_key=True)  # "<participant_id>@<facilitator_id>"
    participant_id = StringField(required=True)
    facilitator_id = StringField(required=True)


def worked_with(participant_ids, facilitator_id):
    for participant_id in participant_ids:
        try:
            Continuity._get_collection().insert_one({"_id": f"{participant_id}@{facilitator_id}",
                                                     "participant_id": participant_id,
                                                     "facilitator_id": facilitator_id})
        except DuplicateKeyError:
            pass


def forget_participant(participant_id):
    """An erased participant: who they worked with is no longer kept. (Their assessments
    stay: the decision record, pseudonymous, which referrals' crypto-shredding has cut
    from the person.) Idempotent."""
    return Continuity._get_collection().delete_many({"participant_id": participant_id}).deleted_count


def facilitators_seen(participant_ids, case_id=None):
    """Who accepted a case with one of these participants before (for continuity)."""
    if not participant_ids:
        return frozenset()
    found = Continuity._get_collection().find({"participant_id": {"$in": list(participant_ids)}},
                                              {"facilitator_id": 1})
    return frozenset(doc["facilitator_id"] for doc in found)
