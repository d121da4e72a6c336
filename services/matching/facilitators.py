"""The facilitator registry and atomic capacity reservation (mongoengine and pymongo).

FerretDB has no transactions, so a reservation is one conditional update on the
facilitator's own document: it succeeds only while the hard constraints hold (see
`allocation.hard_filter`), spare capacity remains, and the case is not already on their
caseload. Competing matching processes can never push a facilitator over capacity,
and a redelivered event cannot book the same case twice.

`spare` is always `capacity - len(caseload)`: every write keeps that sum. A capacity cut
below the caseload makes it negative rather than dropping anyone's case.
"""
from datetime import date, datetime, time, timezone

from mongoengine import (BooleanField, DateTimeField, DictField, Document, IntField, ListField, StringField)
from pymongo.errors import DuplicateKeyError

from services.matching import allocation
from services.matching.allocation import Candidate
from services.matching.facilitator_records import UPDATABLE, parse, parse_changes
from shared.events.vocabulary import FACILITATOR_LEVELS

ALIAS = "matching"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Fields a ranking needs; the caseload list stays in the database.
CANDIDATE_FIELDS = {name: 1 for name in (
    "level", "regions", "languages", "endorsements", "capacity", "spare", "trained_on", "last_process_on",
    "complex_case_trained", "prison_vetted_until", "available_from", "conflict_keys", "active")}


class AlreadyRegistered(ValueError):
    pass


class UnknownFacilitator(LookupError):
    pass


class Facilitator(Document):
    meta = {
        "db_alias": ALIAS,
        "collection": "facilitators",
        "indexes": [
            ("regions", "active", "spare"),
            "caseload",
        ],
    }
    facilitator_id = StringField(primary_key=True)
    name = StringField()
    email = StringField()
    language = StringField(default="en")
    level = StringField(required=True, choices=FACILITATOR_LEVELS)
    complex_case_trained = BooleanField(default=False)
    complex_ok = BooleanField(default=False)  # may lead a complex case
    trained_on = DateTimeField()
    last_process_on = DateTimeField()
    current_until = DateTimeField()  # derived: the last day they are current
    endorsements = ListField(StringField())
    prison_vetted_until = DateTimeField()
    languages = ListField(StringField(), required=True)
    regions = ListField(StringField(), required=True)
    capacity = IntField(required=True, min_value=0)
    spare = IntField(required=True)
    caseload = ListField(StringField())
    available_from = DateTimeField(default=EPOCH)
    conflicts = ListField(DictField())
    conflict_keys = ListField(StringField())
    active = BooleanField(default=True)
    created_at = DateTimeField(default=lambda: datetime.now(timezone.utc))
    updated_at = DateTimeField(default=lambda: datetime.now(timezone.utc))
    deactivated_at = DateTimeField()


def collection():
    return Facilitator._get_collection()


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
    return {
        "current_until": _midnight(until) if until else EPOCH,
        "complex_ok": doc["level"] == "advanced" or (doc["level"] == "intermediate"
                                                      and bool(doc.get("complex_case_trained"))),
    }


def view(doc):
    """A registry record as the API shows it."""
    if doc is None:
        return None
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
        "caseload": len(doc.get("caseload", [])),
        "spare": doc["spare"],
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
    doc.update({"caseload": [], "spare": record["capacity"], "created_at": now, "updated_at": now})
    doc.update(_derived(doc))
    try:
        collection().insert_one(doc)
    except DuplicateKeyError:
        raise AlreadyRegistered(record["facilitator_id"])
    return doc


def get(facilitator_id):
    return collection().find_one({"_id": facilitator_id})


def listing(region=None, active=None, limit=100, offset=0):
    query = {}
    if region:
        query["regions"] = region
    if active is not None:
        query["active"] = active
    return list(collection().find(query).sort("_id", 1).skip(offset).limit(limit))


def update(facilitator_id, changes):
    """Apply checked changes. A capacity change is a compare-and-set on the caseload,
    so a reservation made meanwhile is never lost from `spare`."""
    fields = stored_fields(changes)
    while True:
        doc = get(facilitator_id)
        if doc is None:
            raise UnknownFacilitator(facilitator_id)
        merged = {**doc, **fields}
        new = {**fields, **_derived(merged), "updated_at": datetime.now(timezone.utc)}
        new["spare"] = merged["capacity"] - len(doc.get("caseload", []))
        result = collection().update_one({"_id": facilitator_id, "caseload": doc.get("caseload", [])}, {"$set": new})
        if result.matched_count == 1:
            return get(facilitator_id)


def deactivate(facilitator_id):
    """No new offers from now on; the cases they hold are the caller's to reassign."""
    now = datetime.now(timezone.utc)
    result = collection().update_one({"_id": facilitator_id},
                                     {"$set": {"active": False, "deactivated_at": now, "updated_at": now}})
    if result.matched_count == 0:
        raise UnknownFacilitator(facilitator_id)
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


def candidate(doc):
    return Candidate(
        facilitator_id=doc["_id"],
        level=doc["level"],
        regions=tuple(doc["regions"]),
        languages=frozenset(doc["languages"]),
        endorsements=frozenset(doc.get("endorsements", [])),
        capacity=doc["capacity"],
        spare=doc["spare"],
        trained_on=_day(doc.get("trained_on")),
        last_process_on=_day(doc.get("last_process_on")),
        complex_case_trained=bool(doc.get("complex_case_trained")),
        prison_vetted_until=_day(doc.get("prison_vetted_until")),
        available_from=_day(doc.get("available_from")) or date.min,
        conflicts=frozenset(doc.get("conflict_keys", [])),
        active=doc.get("active", True),
    )


def candidates(need, today, role="lead"):
    """Facilitators who meet the hard constraints for `role`, prefiltered by the database."""
    return [candidate(doc) for doc in collection().find(allocation.hard_filter(need, today, role), CANDIDATE_FIELDS)]


def reserve(facilitator_id, case_id, need, today, role="lead"):
    """Take one unit of the facilitator's capacity for `case_id`, only if every hard
    constraint still holds on their document at this instant; False otherwise."""
    if facilitator_id in need.excluded:
        return False
    query = allocation.hard_filter(need, today, role)
    query.update({"_id": facilitator_id, "caseload": {"$ne": case_id}})
    result = collection().update_one(query, {"$inc": {"spare": -1}, "$push": {"caseload": case_id}})
    return result.modified_count == 1


def release(facilitator_id, case_id):
    """Give back the unit of capacity `case_id` holds; False if it held none."""
    result = collection().update_one(
        {"_id": facilitator_id, "caseload": case_id},
        {"$inc": {"spare": 1}, "$pull": {"caseload": case_id}},
    )
    return result.modified_count == 1


def holders(case_id):
    """Ids of the facilitators whose caseload holds `case_id`."""
    return [doc["_id"] for doc in collection().find({"caseload": case_id}, {"_id": 1})]


def specialist_available(region, endorsement, today):
    """Whether a current, active facilitator in `region` could lead a complex case
    with `endorsement` (whether or not they have room today)."""
    midnight = _midnight(today)
    return collection().find_one({
        "active": True, "regions": region, "endorsements": endorsement, "complex_ok": True,
        "current_until": {"$gte": midnight}, "available_from": {"$lte": midnight},
    }, {"_id": 1}) is not None


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
