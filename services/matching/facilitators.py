"""The facilitator registry and atomic capacity reservation (mongoengine and pymongo).

Capacity is held as seats: a facilitator with capacity n has seats 0..n-1, and a case
takes one by inserting a Seat document whose id is `<facilitator>#<seat>`. A unique
index on (facilitator, case) stops the same case taking two. Inserts under a unique
index are atomic on FerretDB and MongoDB alike, whereas FerretDB 1.24 (SQLite) applies
concurrent updates of one document as read-modify-write and loses some of them, even
with a conditional filter (measured: 150 concurrent conditional $inc/$push updates left
19 entries). So no reservation ever updates the facilitator's document: competing
matching processes cannot push anyone over capacity, and a redelivered event cannot
book the same case twice.

FerretDB also answers every query by scanning its collection, so staffing reads the
registry from each process's in-memory roster (see `roster`), which follows the change
log this module appends to after every registry write. After taking a seat, the roster
looks for a change to that facilitator it has not applied; if a change (a new conflict,
a deactivation, a lapsed vetting) means they no longer fit, the seat is given back.

A capacity cut below the seats held leaves those cases where they are; no new seat is
taken until the count is under the new capacity.
"""
import uuid
from datetime import date, datetime, time, timezone

from mongoengine import (BooleanField, DateTimeField, DictField, Document, IntField, ListField, StringField)
from pymongo.errors import DuplicateKeyError

from services.matching import allocation
from services.matching.allocation import Candidate
from services.matching.facilitator_records import UPDATABLE, parse
from shared.events.vocabulary import FACILITATOR_LEVELS

ALIAS = "matching"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Fields a ranking needs.
CANDIDATE_FIELDS = {name: 1 for name in (
    "level", "regions", "languages", "endorsements", "capacity", "trained_on", "last_process_on",
    "complex_case_trained", "prison_vetted_until", "available_from", "conflict_keys", "active")}


class AlreadyRegistered(ValueError):
    pass


class UnknownFacilitator(LookupError):
    pass


class Facilitator(Document):
    meta = {
        "db_alias": ALIAS,
        "collection": "facilitators",
        "indexes": [("regions", "active", "level")],
    }
    facilitator_id = StringField(primary_key=True)
    name = StringField()
    email = StringField()
    language = StringField(default="en")
    level = StringField(required=True, choices=FACILITATOR_LEVELS)
    complex_case_trained = BooleanField(default=False)
    trained_on = DateTimeField()
    last_process_on = DateTimeField()
    current_until = DateTimeField()  # derived: the last day they are current
    endorsements = ListField(StringField())
    prison_vetted_until = DateTimeField()
    languages = ListField(StringField(), required=True)
    regions = ListField(StringField(), required=True)
    capacity = IntField(required=True, min_value=0)
    available_from = DateTimeField(default=EPOCH)
    conflicts = ListField(DictField())
    conflict_keys = ListField(StringField())
    active = BooleanField(default=True)
    created_at = DateTimeField(default=lambda: datetime.now(timezone.utc))
    updated_at = DateTimeField(default=lambda: datetime.now(timezone.utc))
    deactivated_at = DateTimeField()

    @property
    def caseload(self):
        """The cases holding a seat of this facilitator's (counted from the seats)."""
        return caseloads([self.facilitator_id])[self.facilitator_id]

    @property
    def spare(self):
        return self.capacity - len(self.caseload)


class Seat(Document):
    """One unit of a facilitator's capacity, held by one case."""
    meta = {
        "db_alias": ALIAS,
        "collection": "seats",
        "indexes": [{"fields": ["facilitator_id", "case_id"], "unique": True}, "case_id"],
    }
    seat_id = StringField(primary_key=True)  # "<facilitator_id>#<seat number>"
    facilitator_id = StringField(required=True)
    seat = IntField(required=True)
    case_id = StringField(required=True)
    taken_at = DateTimeField()


class RegistryChange(Document):
    """A line in the registry's change log, written after each change to a facilitator's
    document, so each process's roster can follow the registry without scanning it."""
    meta = {"db_alias": ALIAS, "collection": "registry_changes"}
    change_id = StringField(primary_key=True)
    facilitator_id = StringField(required=True)
    at = DateTimeField(required=True)


def collection():
    return Facilitator._get_collection()


def log_change(facilitator_id):
    RegistryChange._get_collection().insert_one(
        {"_id": uuid.uuid4().hex, "facilitator_id": facilitator_id, "at": datetime.now(timezone.utc)})


def changes_since(at, facilitator_id=None):
    query = {"at": {"$gt": at}}
    if facilitator_id:
        query["facilitator_id"] = facilitator_id
    return list(RegistryChange._get_collection().find(query))


def prune_changes(older_than):
    RegistryChange._get_collection().delete_many({"at": {"$lt": older_than}})


def seats():
    return Seat._get_collection()


def caseloads(facilitator_ids):
    """Cases held by each of `facilitator_ids`."""
    held = {facilitator_id: [] for facilitator_id in facilitator_ids}
    if not held:
        return held
    query = {"facilitator_id": facilitator_ids[0]} if len(held) == 1 else {"facilitator_id": {"$in": list(held)}}
    for seat in seats().find(query, {"facilitator_id": 1, "case_id": 1}):
        held.setdefault(seat["facilitator_id"], []).append(seat["case_id"])
    return held


def _midnight(day):
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day is not None else None


def _day(value):
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def stored_fields(record):
    """The document fields for a checked record (or part of one), with what derives from it."""
    fields = {}
    for key, value in record.items():
        if key in ("trained_on", "last_process_on", "prison_vetted_until"):
            fields[key] = _midnight(value)
        elif key == "available_from":
            fields[key] = _midnight(value) or EPOCH
        else:
            fields[key] = value
    if "conflicts" in record:
        fields["conflict_keys"] = sorted({f"{c['kind']}:{c['ref']}" for c in record["conflicts"]})
    return fields


def _derived(doc):
    """Fields that follow from others: kept with the document on every write."""
    until = allocation.current_until(_day(doc.get("trained_on")), _day(doc.get("last_process_on")))
    return {"current_until": _midnight(until) if until else EPOCH}


def view(doc):
    """A registry record as the API shows it."""
    if doc is None:
        return None
    caseload = caseloads([doc["_id"]])[doc["_id"]]
    return {
        "facilitator_id": doc["_id"],
        "name": doc.get("name"),
        "email": doc.get("email"),
        "language": doc.get("language", "en"),
        "level": doc["level"],
        "complex_case_trained": bool(doc.get("complex_case_trained")),
        "trained_on": _iso(doc.get("trained_on")),
        "last_process_on": _iso(doc.get("last_process_on")),
        "current_until": _iso(doc.get("current_until")) if doc.get("current_until") != EPOCH else None,
        "endorsements": doc.get("endorsements", []),
        "prison_vetted_until": _iso(doc.get("prison_vetted_until")),
        "languages": doc["languages"],
        "regions": doc["regions"],
        "capacity": doc["capacity"],
        "caseload": len(caseload),
        "spare": doc["capacity"] - len(caseload),
        "available_from": _iso(doc.get("available_from")) if _day(doc.get("available_from")) != EPOCH.date() else None,
        "conflicts": doc.get("conflicts", []),
        "active": doc.get("active", True),
    }


def _iso(value):
    return _day(value).isoformat() if value is not None else None


def create(record):
    """Store a new facilitator from a checked record; AlreadyRegistered if the id is taken."""
    now = datetime.now(timezone.utc)
    doc = {"_id": record["facilitator_id"], **stored_fields({k: v for k, v in record.items() if k != "facilitator_id"})}
    doc.setdefault("available_from", EPOCH)
    doc.update({"created_at": now, "updated_at": now})
    doc.update(_derived(doc))
    try:
        collection().insert_one(doc)
    except DuplicateKeyError:
        raise AlreadyRegistered(record["facilitator_id"])
    log_change(doc["_id"])
    return doc


def get(facilitator_id):
    return collection().find_one({"_id": facilitator_id})


def listing(region=None, active=None, limit=100, offset=0, within=None):
    """A page of the registry: in `region`, and working in one of `within` (None: anywhere)."""
    query = {}
    if region:
        query["regions"] = region
    elif within is not None:
        query["regions"] = {"$in": list(within)}
    if active is not None:
        query["active"] = active
    return list(collection().find(query).sort("_id", 1).skip(offset).limit(limit))


def update(facilitator_id, changes):
    """Apply checked changes (capacity included: seats are counted, not stored here)."""
    doc = get(facilitator_id)
    if doc is None:
        raise UnknownFacilitator(facilitator_id)
    fields = stored_fields(changes)
    new = {**fields, **_derived({**doc, **fields}), "updated_at": datetime.now(timezone.utc)}
    collection().update_one({"_id": facilitator_id}, {"$set": new})
    log_change(facilitator_id)
    return get(facilitator_id)


def deactivate(facilitator_id):
    """No new offers from now on; the cases they hold are the caller's to reassign."""
    now = datetime.now(timezone.utc)
    result = collection().update_one({"_id": facilitator_id},
                                     {"$set": {"active": False, "deactivated_at": now, "updated_at": now}})
    if result.matched_count == 0:
        raise UnknownFacilitator(facilitator_id)
    log_change(facilitator_id)
    return get(facilitator_id)


def register(record):
    """Create a facilitator, or update one already registered, from a plain dict (the
    seed file's entries and tests). The record is checked like any other."""
    checked = parse(record)
    if get(checked["facilitator_id"]) is None:
        try:
            return create(checked)
        except AlreadyRegistered:
            pass  # registered meanwhile: update it instead
    changes = {k: v for k, v in checked.items() if k in UPDATABLE}
    doc = update(checked["facilitator_id"], changes)
    if not checked["active"] and doc["active"]:
        doc = deactivate(checked["facilitator_id"])
    return doc


def candidate(doc, held=0):
    return Candidate(
        facilitator_id=doc["_id"],
        level=doc["level"],
        regions=tuple(doc["regions"]),
        languages=frozenset(doc["languages"]),
        endorsements=frozenset(doc.get("endorsements", [])),
        capacity=doc["capacity"],
        spare=doc["capacity"] - held,
        trained_on=_day(doc.get("trained_on")),
        last_process_on=_day(doc.get("last_process_on")),
        complex_case_trained=bool(doc.get("complex_case_trained")),
        prison_vetted_until=_day(doc.get("prison_vetted_until")),
        available_from=_day(doc.get("available_from")) or date.min,
        conflicts=frozenset(doc.get("conflict_keys", [])),
        active=doc.get("active", True),
    )


def take_seat(facilitator_id, case_id, capacity, known_taken=()):
    """Insert a seat for `case_id`, trying the seats not known to be taken first.
    Returns (the seat number or None, the seat numbers found taken). A seat insert
    also fails if this case already holds one of theirs (unique index), so a case is
    never booked twice with the same facilitator."""
    order = [n for n in range(capacity) if n not in known_taken] + [n for n in range(capacity) if n in known_taken]
    taken = set()
    for number in order:
        try:
            seats().insert_one({"_id": f"{facilitator_id}#{number}", "facilitator_id": facilitator_id,
                                "seat": number, "case_id": case_id, "taken_at": datetime.now(timezone.utc)})
            return number, taken
        except DuplicateKeyError:
            taken.add(number)
    return None, taken


def give_back_seat(facilitator_id, seat, case_id):
    seats().delete_one({"_id": f"{facilitator_id}#{seat}", "case_id": case_id})


def release(facilitator_id, case_id):
    """Give back the seat `case_id` holds: its number, or None if it held none."""
    seat = seats().find_one_and_delete({"facilitator_id": facilitator_id, "case_id": case_id})
    return seat["seat"] if seat else None


def holders(case_id):
    """Ids of the facilitators holding a seat for `case_id`."""
    return [seat["facilitator_id"] for seat in seats().find({"case_id": case_id}, {"facilitator_id": 1})]


def contact(facilitator_id, purpose):
    """The `get_facilitator_contact` answer of CONTRACTS.md."""
    if purpose != "assignment_offer":
        return {"granted": False, "reason": "unknown_purpose", "details": {}}
    doc = collection().find_one({"_id": facilitator_id}, {"name": 1, "email": 1, "language": 1})
    if doc is None:
        return {"granted": False, "reason": "unknown_facilitator", "details": {}}
    if not doc.get("email"):
        return {"granted": False, "reason": "no_contact_details", "details": {}}
    details = {key: doc[key] for key in ("name", "email", "language") if doc.get(key)}
    return {"granted": True, "reason": "granted", "details": details}
