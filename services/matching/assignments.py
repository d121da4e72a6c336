"""Who facilitates a case: one Assignment per case (its id is the case id). Pure domain.

It holds the case's requirement, its slots (one per offer: lead or co-facilitator, with
the offer's state), who declined, whether it waits for capacity, and (in storage) the
outbox of the events all this causes.

Every change to it happens under a lease on the case, taken by inserting a lease under
the case id (an insert under a unique key is atomic on FerretDB, where a conditional
update is not: see `facilitators`). The holder does its work (reserving or releasing
capacity), saves the new state with its events in one write, relays the events, and
only then gives the lease back, so nothing else writes the Assignment meanwhile. Two
matching processes never staff the same case at once, and a reservation that no slot
records can only be left by a holder that died: the next holder gives it back. A lease
left by a dead holder lapses after LEASE.

The store (store.MatchingStore, or memory_store.InMemoryMatchingStore in unit tests)
keeps these; `LeaseHolding` is the lease as a context manager, shared by both.
"""
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

LEASE = timedelta(seconds=30)
# how long a worker that must act on a case (an answer to an offer, a closure) waits for
# another holder to finish: leases are held for milliseconds unless a worker died
PATIENCE = 5.0

# slot states; an offered or accepted slot holds a unit of the facilitator's capacity
ACTIVE = ("offered", "accepted")
# case states
PENDING, OFFERED, ACCEPTED, WAITLISTED, CLOSED = "pending", "offered", "accepted", "waitlisted", "closed"


class Busy(RuntimeError):
    """Another worker holds the case's lease; try again shortly."""


@dataclass
class Slot:
    """One offer of the case to one facilitator, in one role."""
    assignment_id: str
    role: str
    facilitator_id: str
    state: str
    offered_at: datetime = None
    expires_at: datetime = None
    decided_at: datetime = None
    reason: str = None

    def view(self):
        return {"assignment_id": self.assignment_id, "role": self.role, "facilitator_id": self.facilitator_id,
                "state": self.state, "offered_at": self.offered_at, "expires_at": self.expires_at,
                "reason": self.reason}


@dataclass
class Assignment:
    case_id: str
    status: str
    assessment_id: str = None
    region: str = None
    requirement: dict = field(default_factory=dict)
    participant_ids: list = field(default_factory=list)
    slots: list = field(default_factory=list)  # of Slot
    offer_ids: list = field(default_factory=list)
    declined_by: list = field(default_factory=list)
    waitlisted_at: datetime = None
    waitlist_reason: str = None  # why no one could be offered it, as a code (while waitlisted)
    waitlist_shortfall: dict = None  # allocation.shortfall: what ruled out the region's facilitators
    next_expiry: datetime = None
    closed_reason: str = None
    version: int = 0


@dataclass
class Lease:
    """A case's lease as its holder sees it. `assignment` is the case's latest state,
    read after the lease was taken (None: no such case, and the lease is already given
    back). `taken_over`: the lease was taken from a holder that died."""
    case_id: str
    owner: str
    expires_at: datetime
    taken_at: float  # time.monotonic() when taken
    taken_over: bool = False
    assignment: Assignment = None
    released: bool = False

    def young(self):
        """Too young to have lapsed (and so to have been taken by someone else)."""
        return time.monotonic() - self.taken_at < LEASE.total_seconds() / 2


class LeaseHolding:
    """The lease as a context manager, for a store that has `claim(case_id, now)`
    (take the lease or raise Busy) and `release_lease(lease)` (idempotent)."""

    @contextmanager
    def lease(self, case_id, wait=0.0, now=None):
        """Hold the case's lease for the block: `with store.lease(case_id) as held:`.

        Taken by a unique insert; Busy (before the block runs) if another worker holds it
        for longer than `wait` seconds. Given back on every way out of the block,
        exceptions included, unless given back already (`release_lease`) inside it."""
        held = self.claim_patiently(case_id, wait, now)
        try:
            yield held
        finally:
            self.release_lease(held)

    def claim_patiently(self, case_id, wait=0.0, now=None):
        deadline = time.monotonic() + wait
        while True:
            try:
                return self.claim(case_id, now)
            except Busy:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)


def new_lease(case_id, now, taken_over=False):
    return Lease(case_id=case_id, owner=uuid.uuid4().hex, expires_at=now + LEASE, taken_at=time.monotonic(),
                 taken_over=taken_over)


def new_case(case_id, assessment_id, region, requirement, participant_ids):
    """A case's Assignment as first saved (not yet saved)."""
    return Assignment(case_id=case_id, assessment_id=assessment_id, status=PENDING, region=region,
                      requirement=requirement, participant_ids=list(participant_ids))


# The closed_reason of a case that stopped because a party withdrew consent to take part:
# closed to staffing, and so holding no one, but opened again if the party consents again
# and the case is assessed afresh. A real closure of the case replaces it for good.
PAUSED = "participation_withdrawn"


def paused(assignment):
    return assignment.status == CLOSED and assignment.closed_reason == PAUSED


def reopen(assignment, assessment_id, region, requirement, participant_ids):
    """A paused case, opened to staffing again under a fresh assessment. Who declined it
    before is kept: they are not offered it again."""
    assignment.status, assignment.closed_reason, assignment.waitlisted_at = PENDING, None, None
    assignment.waitlist_reason = assignment.waitlist_shortfall = None
    assignment.assessment_id, assignment.region = assessment_id, region
    assignment.requirement, assignment.participant_ids = requirement, list(participant_ids)
    return assignment


def tombstone(case_id, reason):
    """The Assignment of a case closed before it was ever staffed, so a later review
    cannot staff it."""
    return Assignment(case_id=case_id, status=CLOSED, closed_reason=reason)


# --- the state of a case's slots (pure) --------------------------------------------------

def active_slots(assignment):
    return [slot for slot in assignment.slots if slot.state in ACTIVE]


def filled_roles(assignment):
    return {slot.role for slot in active_slots(assignment)}


def find_slot(assignment, assignment_id):
    return next((slot for slot in assignment.slots if slot.assignment_id == assignment_id), None)


def new_slot(role, facilitator_id, now, offer_for):
    return Slot(assignment_id=str(uuid.uuid4()), role=role, facilitator_id=facilitator_id, state="offered",
                offered_at=now, expires_at=now + offer_for)


def settle(assignment, roles_needed):
    """Recompute the case's status and next offer expiry from its slots."""
    if assignment.status == CLOSED:
        assignment.next_expiry = None
        return assignment
    active = active_slots(assignment)
    filled = {slot.role for slot in active}
    if set(roles_needed) <= filled:
        assignment.status = ACCEPTED if all(s.state == "accepted" for s in active) else OFFERED
        assignment.waitlisted_at = assignment.waitlist_reason = assignment.waitlist_shortfall = None
    elif assignment.waitlisted_at:
        assignment.status = WAITLISTED
    else:
        assignment.status = PENDING
    expiries = [s.expires_at for s in active if s.state == "offered"]
    assignment.next_expiry = min(expiries) if expiries else None
    return assignment
