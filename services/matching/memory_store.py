"""An in-memory MatchingStore, for unit tests of the workflows.

Same public methods as store.MatchingStore, and the same behaviours workflows rely on:
unique inserts refuse a second (an assessment per trigger, an Assignment per case, a
seat per number and per facilitator and case, a lease per case), a lease lapses after
LEASE and can then be taken over, a commit under a lapsed lease taken by someone else is
refused, and every read returns a copy: a workflow's changes count only once saved.
tests/integration/test_matching_store.py runs the same contract tests on both.
"""
import copy
import uuid
from datetime import datetime, timezone

from services.matching import assignments as domain
from services.matching.assignments import Busy, LeaseHolding
from services.matching.facilitators import AlreadyRegistered, RegistryChange, Seat
from services.matching.store import STATE_FIELDS, MatchingStore

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class InMemoryMatchingStore(LeaseHolding):
    ASSESSMENTS = MatchingStore.ASSESSMENTS
    ASSIGNMENTS = MatchingStore.ASSIGNMENTS
    OUTBOX_COLLECTIONS = MatchingStore.OUTBOX_COLLECTIONS
    indexes = MatchingStore.indexes

    def __init__(self):
        self.assessments = {}  # assessment_id -> Assessment
        self.assignments = {}  # case_id -> Assignment
        self.outboxes = {self.ASSESSMENTS: {}, self.ASSIGNMENTS: {}}  # collection -> id -> [event]
        self.leases = {}  # case_id -> (owner, expires_at)
        self.facilitators = {}
        self.seats = {}  # "<facilitator>#<n>" -> Seat
        self.changes = {}  # change_id -> RegistryChange
        self.continuity = {}  # "<participant>@<facilitator>" -> (participant_id, facilitator_id)

    def ensure_indexes(self, postgresql_url=""):
        pass

    # --- assessments ---
    def insert_assessment(self, assessment):
        if assessment.assessment_id in self.assessments or any(
                a.trigger_event_id == assessment.trigger_event_id for a in self.assessments.values()):
            return False
        stored = copy.deepcopy(assessment)
        self.assessments[stored.assessment_id] = stored
        self.outboxes[self.ASSESSMENTS][stored.assessment_id] = list(stored.outbox)
        return True

    def assessment_by_trigger(self, trigger_event_id):
        found = [a for a in self.assessments.values() if a.trigger_event_id == trigger_event_id]
        return self._assessment(found[0]) if found else None

    def latest_assessment(self, case_id):
        found = [a for a in self.assessments.values() if a.case_id == case_id]
        return self._assessment(max(found, key=lambda a: a.created_at)) if found else None

    def _assessment(self, stored):
        found = copy.deepcopy(stored)
        found.outbox = list(self.outboxes[self.ASSESSMENTS].get(stored.assessment_id, []))
        return found

    # --- assignments ---
    def insert_assignment(self, assignment, events=()):
        if assignment.case_id in self.assignments:
            return False
        self.assignments[assignment.case_id] = copy.deepcopy(assignment)
        self.outboxes[self.ASSIGNMENTS][assignment.case_id] = list(events)
        return True

    def close_unopened(self, case_id, reason):
        return self.insert_assignment(domain.tombstone(case_id, reason))

    def get_assignment(self, case_id):
        return copy.deepcopy(self.assignments.get(case_id))

    def case_of_offer(self, assignment_id):
        return next((a.case_id for a in self.assignments.values() if assignment_id in a.offer_ids), None)

    def waiting(self, regions=None, limit=20):
        return [a.case_id for a in self.waiting_cases(regions)][:limit]

    def waiting_cases(self, regions=None):
        found = [copy.deepcopy(a) for a in self.assignments.values()
                 if a.status in (domain.WAITLISTED, domain.PENDING) and (not regions or a.region in regions)]
        found.sort(key=lambda a: (0, EPOCH, a.case_id) if a.waitlisted_at is None else (1, a.waitlisted_at, a.case_id))
        return found

    def expired_offers(self, now, limit=50):
        found = sorted((a.next_expiry, a.case_id) for a in self.assignments.values()
                       if a.next_expiry is not None and a.next_expiry <= now)
        return [case_id for _, case_id in found][:limit]

    def cases_held_by(self, facilitator_id):
        return {a.case_id for a in self.assignments.values()
                if any(s.facilitator_id == facilitator_id for s in domain.active_slots(a))}

    # --- the lease ---
    def claim(self, case_id, now=None):
        now = now or datetime.now(timezone.utc)
        lease = domain.new_lease(case_id, now)
        held = self.leases.get(case_id)
        if held is not None:
            if held[1] >= now:
                raise Busy(case_id)
            lease.taken_over = True  # its holder died
        self.leases[case_id] = (lease.owner, lease.expires_at)
        if case_id not in self.assignments:
            self.release_lease(lease)
            return lease
        lease.assignment = self.get_assignment(case_id)
        return lease

    def holds_lease(self, lease):
        return self.leases.get(lease.case_id, (None,))[0] == lease.owner

    def release_lease(self, lease):
        if not lease.released:
            if self.holds_lease(lease):
                del self.leases[lease.case_id]
            lease.released = True

    def commit(self, lease, assignment, events=()):
        if not lease.young() and not self.holds_lease(lease):
            return False
        stored = self.assignments[assignment.case_id]
        for key in STATE_FIELDS:
            setattr(stored, key, copy.deepcopy(getattr(assignment, key)))
        stored.version += 1
        self.outboxes[self.ASSIGNMENTS].setdefault(assignment.case_id, []).extend(events)
        return True

    # --- continuity ---
    def record_worked_with(self, participant_ids, facilitator_id):
        for participant_id in participant_ids:
            self.continuity.setdefault(f"{participant_id}@{facilitator_id}", (participant_id, facilitator_id))

    def forget_participant(self, participant_id):
        gone = [key for key, (p, _) in self.continuity.items() if p == participant_id]
        for key in gone:
            del self.continuity[key]
        return len(gone)

    def facilitators_seen(self, participant_ids):
        wanted = set(participant_ids)
        return frozenset(f for p, f in self.continuity.values() if p in wanted)

    # --- the registry ---
    def insert_facilitator(self, facilitator):
        if facilitator.facilitator_id in self.facilitators:
            raise AlreadyRegistered(facilitator.facilitator_id)
        self.facilitators[facilitator.facilitator_id] = copy.deepcopy(facilitator)

    def get_facilitator(self, facilitator_id):
        return copy.deepcopy(self.facilitators.get(facilitator_id))

    def update_facilitator(self, facilitator, changed):
        stored = self.facilitators[facilitator.facilitator_id]
        for key in set(changed) | {"updated_at"}:
            setattr(stored, key, copy.deepcopy(getattr(facilitator, key)))

    def deactivate_facilitator(self, facilitator_id, now):
        stored = self.facilitators.get(facilitator_id)
        if stored is None:
            return False
        stored.active, stored.deactivated_at, stored.updated_at = False, now, now
        return True

    def list_facilitators(self, region=None, active=None, within=None):
        found = [f for f in self.facilitators.values()
                 if (active is None or f.active == active)
                 and (region in f.regions if region else within is None or set(within) & set(f.regions))]
        return [copy.deepcopy(f) for f in sorted(found, key=lambda f: f.facilitator_id)]

    def roster_facilitators(self):
        return [self.roster_facilitator(key) for key in self.facilitators]

    def roster_facilitator(self, facilitator_id):
        found = self.get_facilitator(facilitator_id)
        if found is not None:
            found.name = found.email = None  # the roster keeps no contact details
        return found

    def log_change(self, facilitator_id, at=None):
        change = RegistryChange(uuid.uuid4().hex, facilitator_id, at or datetime.now(timezone.utc))
        self.changes[change.change_id] = change

    def changes_since(self, at, facilitator_id=None):
        return sorted((c for c in self.changes.values()
                       if c.at > at and (facilitator_id is None or c.facilitator_id == facilitator_id)),
                      key=lambda c: (c.at, c.change_id))

    def prune_changes(self, older_than):
        for key in [k for k, c in self.changes.items() if c.at < older_than]:
            del self.changes[key]

    # --- seats ---
    def take_seat(self, facilitator_id, case_id, capacity, known_taken=()):
        order = [n for n in range(capacity) if n not in known_taken] + [n for n in range(capacity) if n in known_taken]
        taken = set()
        booked = any(s.facilitator_id == facilitator_id and s.case_id == case_id for s in self.seats.values())
        for number in order:
            key = f"{facilitator_id}#{number}"
            if key in self.seats or booked:
                taken.add(number)
                continue
            self.seats[key] = Seat(facilitator_id, number, case_id, datetime.now(timezone.utc))
            return number, taken
        return None, taken

    def release_seat(self, facilitator_id, case_id):
        for key, seat in list(self.seats.items()):
            if seat.facilitator_id == facilitator_id and seat.case_id == case_id:
                del self.seats[key]
                return seat.seat
        return None

    def holders(self, case_id):
        return [s.facilitator_id for s in self.seats.values() if s.case_id == case_id]

    def caseloads(self, facilitator_ids):
        return {f: [s.case_id for s in self.seats.values() if s.facilitator_id == f] for f in facilitator_ids}

    def all_seats(self):
        return list(self.seats.values())

    # --- for tests ---
    def pending_events(self, collection, doc_id):
        return list(self.outboxes[collection].get(doc_id, []))

    def pull_events(self, collection, doc_id, events):
        """What the outbox relay does once events are published: take them out."""
        sent = {e["id"] for e in events}
        box = self.outboxes[collection].get(doc_id, [])
        box[:] = [e for e in box if e["id"] not in sent]

    def count_assessments(self):
        return len(self.assessments)

    def count_facilitators(self):
        return len(self.facilitators)

    def all_assignments(self):
        return [copy.deepcopy(a) for a in self.assignments.values()]

    def lease_holder(self, case_id):
        held = self.leases.get(case_id)
        return held[0] if held else None

    def insert_facilitators(self, facilitators):
        for facilitator in facilitators:
            self.insert_facilitator(facilitator)

    def clear(self):
        self.__init__()
