"""The facilitator registry and capacity as seats. Domain only: the store keeps them.

Capacity is held as seats: a facilitator with capacity n has seats 0..n-1, and a case
takes one by inserting a Seat whose id is `<facilitator>#<seat>`. A unique index on
(facilitator, case) stops the same case taking two. Inserts under a unique index are
atomic on FerretDB and MongoDB alike, whereas FerretDB 1.24 (SQLite) applies concurrent
updates of one document as read-modify-write and loses some of them, even with a
conditional filter (measured: 150 concurrent conditional $inc/$push updates left 19
entries). So no reservation ever updates the facilitator's record: competing matching
processes cannot push anyone over capacity, and a redelivered event cannot book the
same case twice.

FerretDB also answers most queries by scanning its collection, so staffing reads the
registry from each process's in-memory roster (see `roster`), which follows the change
log the store appends to after every registry write. After taking a seat, the roster
looks for a change to that facilitator it has not applied; if a change (a new conflict,
a deactivation, a lapsed vetting) means they no longer fit, the seat is given back.

A capacity cut below the seats held leaves those cases where they are; no new seat is
taken until the count is under the new capacity.
"""
from dataclasses import dataclass, field, fields as dataclass_fields, replace
from datetime import date, datetime, timezone

from services.matching import allocation
from services.matching.allocation import Candidate
from services.matching.facilitator_records import UPDATABLE, parse


class AlreadyRegistered(ValueError):
    pass


class UnknownFacilitator(LookupError):
    pass


@dataclass
class Facilitator:
    """A registry record. Dates are days (None: not given)."""
    facilitator_id: str
    level: str
    languages: list
    regions: list  # the first is home
    capacity: int
    name: str = None
    email: str = None
    language: str = "en"
    complex_case_trained: bool = False
    trained_on: date = None
    last_process_on: date = None
    endorsements: list = field(default_factory=list)
    prison_vetted_until: date = None
    available_from: date = None  # on leave until this day
    conflicts: list = field(default_factory=list)  # {"kind", "ref"}
    active: bool = True
    created_at: datetime = None
    updated_at: datetime = None
    deactivated_at: datetime = None

    @property
    def conflict_keys(self):
        return sorted({f"{c['kind']}:{c['ref']}" for c in self.conflicts})

    @property
    def current_until(self):
        """The last day they are current (None if never trained)."""
        return allocation.current_until(self.trained_on, self.last_process_on)


FIELDS = tuple(f.name for f in dataclass_fields(Facilitator))


@dataclass(frozen=True)
class Seat:
    """One unit of a facilitator's capacity, held by one case."""
    facilitator_id: str
    seat: int
    case_id: str
    taken_at: datetime = None

    @property
    def seat_id(self):
        return seat_id(self.facilitator_id, self.seat)


def seat_id(facilitator_id, number):
    return f"{facilitator_id}#{number}"


@dataclass(frozen=True)
class RegistryChange:
    """A line in the registry's change log, written after each change to a facilitator's
    record, so each process's roster can follow the registry without scanning it."""
    change_id: str
    facilitator_id: str
    at: datetime


def _now():
    return datetime.now(timezone.utc)


def view(store, facilitator):
    """A registry record as the API shows it."""
    if facilitator is None:
        return None
    f = facilitator
    caseload = store.caseloads([f.facilitator_id])[f.facilitator_id]
    until = f.current_until
    return {
        "facilitator_id": f.facilitator_id,
        "name": f.name,
        "email": f.email,
        "language": f.language or "en",
        "level": f.level,
        "complex_case_trained": bool(f.complex_case_trained),
        "trained_on": _iso(f.trained_on),
        "last_process_on": _iso(f.last_process_on),
        "current_until": _iso(until),
        "endorsements": list(f.endorsements),
        "prison_vetted_until": _iso(f.prison_vetted_until),
        "languages": list(f.languages),
        "regions": list(f.regions),
        "capacity": f.capacity,
        "caseload": len(caseload),
        "spare": f.capacity - len(caseload),
        "available_from": _iso(f.available_from),
        "conflicts": list(f.conflicts),
        "active": f.active,
    }


def _iso(value):
    return value.isoformat() if value is not None else None


def from_record(record, now=None):
    """A new Facilitator from a checked record (facilitator_records.parse)."""
    now = now or _now()
    return Facilitator(**{k: v for k, v in record.items() if k in FIELDS}, created_at=now, updated_at=now)


def create(store, record):
    """Store a new facilitator from a checked record; AlreadyRegistered if the id is taken."""
    facilitator = from_record(record)
    store.insert_facilitator(facilitator)  # AlreadyRegistered
    store.log_change(facilitator.facilitator_id)
    return facilitator


def listing(store, region=None, active=None, limit=100, offset=0, within=None):
    """A page of the registry, by id: in `region`, and working in one of `within` (None: anywhere)."""
    return store.list_facilitators(region, active, within)[offset:offset + limit]


def update(store, facilitator_id, changes):
    """Apply checked changes (capacity included: seats are counted, not stored here)."""
    facilitator = store.get_facilitator(facilitator_id)
    if facilitator is None:
        raise UnknownFacilitator(facilitator_id)
    changes = {k: v for k, v in changes.items() if k in FIELDS}
    store.update_facilitator(replace(facilitator, **changes, updated_at=_now()), set(changes))
    store.log_change(facilitator_id)
    return store.get_facilitator(facilitator_id)


def deactivate(store, facilitator_id):
    """No new offers from now on; the cases they hold are the caller's to reassign."""
    if not store.deactivate_facilitator(facilitator_id, _now()):
        raise UnknownFacilitator(facilitator_id)
    store.log_change(facilitator_id)
    return store.get_facilitator(facilitator_id)


def register(store, record):
    """Create a facilitator, or update one already registered, from a plain dict (the
    seed file's entries and tests). The record is checked like any other."""
    checked = parse(record)
    if store.get_facilitator(checked["facilitator_id"]) is None:
        try:
            return create(store, checked)
        except AlreadyRegistered:
            pass  # registered meanwhile: update it instead
    changes = {k: v for k, v in checked.items() if k in UPDATABLE}
    facilitator = update(store, checked["facilitator_id"], changes)
    if not checked["active"] and facilitator.active:
        facilitator = deactivate(store, checked["facilitator_id"])
    return facilitator


def candidate(facilitator, held=0):
    f = facilitator
    return Candidate(
        facilitator_id=f.facilitator_id,
        level=f.level,
        regions=tuple(f.regions),
        languages=frozenset(f.languages),
        endorsements=frozenset(f.endorsements),
        capacity=f.capacity,
        spare=f.capacity - held,
        trained_on=f.trained_on,
        last_process_on=f.last_process_on,
        complex_case_trained=bool(f.complex_case_trained),
        prison_vetted_until=f.prison_vetted_until,
        available_from=f.available_from or date.min,
        conflicts=frozenset(f.conflict_keys),
        active=f.active,
    )


# what a facilitator's work contact details are released for: an offer of a case, and a
# notice about a case they lead (an agreed item missed, the outcome, closure, a survey due)
CONTACT_PURPOSES = ("assignment_offer", "case_update")


def contact(store, facilitator_id, purpose):
    """The `get_facilitator_contact` answer of CONTRACTS.md."""
    if purpose not in CONTACT_PURPOSES:
        return {"granted": False, "reason": "unknown_purpose", "details": {}}
    facilitator = store.get_facilitator(facilitator_id)
    if facilitator is None:
        return {"granted": False, "reason": "unknown_facilitator", "details": {}}
    if not facilitator.email:
        return {"granted": False, "reason": "no_contact_details", "details": {}}
    details = {key: getattr(facilitator, key) for key in ("name", "email", "language") if getattr(facilitator, key)}
    return {"granted": True, "reason": "granted", "details": details}
