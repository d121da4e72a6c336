"""An in-memory copy of the facilitator registry, so that choosing facilitators reads
no database (the store is asked only for the change log, seats and reloads). FerretDB on SQLite answers every query by scanning the collection (a
filtered find over 10,000 facilitators took seconds in the bench), while an insert
under a unique key takes a millisecond or two.

- The roster loads the registry once, then follows the change log: every registry
  write appends a RegistryChange after updating the facilitator's record, and the
  roster reloads the facilitators named in changes it has not applied yet.
- Spare capacity is an estimate here: the seats it knows are taken, counted from the
  seats collection now and then and kept up to date by its own reservations. The
  reservation itself (the store's `take_seat`) is the authority.
- After seats are taken, `confirm` looks in the change log for changes to those
  facilitators the roster has not seen; it reloads them and checks the hard constraints
  again, so a conflict declared or a deactivation made before the seats were taken is
  never missed.
"""
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from services.matching import allocation, facilitators

# How far back to look in the change log at each refresh: more than any writer takes
# between updating a document and logging the change.
OVERLAP = timedelta(seconds=30)


class Roster:
    def __init__(self, store, refresh_every=1.0, recount_every=30.0):
        self.store = store
        self.refresh_every = refresh_every
        self.recount_every = recount_every
        self.docs = {}
        self.base = {}
        self.by_region = defaultdict(set)
        self.held = defaultdict(set)  # facilitator_id -> seat numbers known to be taken
        self.applied = set()
        self.checked_at = None  # wall-clock time of the last look at the change log
        self.refreshed = 0.0  # monotonic time of the same
        self.counted = 0.0

    # --- loading and following the registry ---
    def load(self):
        """Read the whole registry (built aside, then swapped in: other green threads
        may be ranking from the roster meanwhile)."""
        now = datetime.now(timezone.utc)
        applied = {c.change_id for c in self.store.changes_since(now - OVERLAP)}
        fresh = Roster(self.store, self.refresh_every, self.recount_every)
        for facilitator in self.store.roster_facilitators():
            fresh._put(facilitator)
        self.docs, self.base, self.by_region, self.applied = fresh.docs, fresh.base, fresh.by_region, applied
        self.checked_at = now
        self.refreshed = time.monotonic()
        self.recount()
        return self

    def _put(self, facilitator):
        key = facilitator.facilitator_id
        old = self.docs.get(key)
        for region in old.regions if old else ():
            self.by_region[region].discard(key)
        self.docs[key] = facilitator
        self.base[key] = facilitators.candidate(facilitator, 0)  # built once; spare filled in per ranking
        for region in facilitator.regions:
            self.by_region[region].add(key)

    def refresh(self, force=False):
        """Apply registry changes logged since the last look (at most every `refresh_every`
        s unless forced). Returns how many facilitators were reloaded."""
        if self.checked_at is None:
            self.load()
            return len(self.docs)
        if not force and time.monotonic() - self.refreshed < self.refresh_every:
            return 0
        now = datetime.now(timezone.utc)
        reloaded = 0
        for change in self.store.changes_since(self.checked_at - OVERLAP):
            if change.change_id not in self.applied:
                self._reload(change.facilitator_id)
                self.applied.add(change.change_id)
                reloaded += 1
        self.checked_at = now
        self.refreshed = time.monotonic()
        # seats freed by other processes are seen at a recount: now and then, or on
        # demand (a case about to be waitlisted) if the count is more than 5 s old
        if time.monotonic() - self.counted > (5.0 if force else self.recount_every):
            before = self.held
            self.recount()
            reloaded += self.held != before
        return reloaded

    def ready(self):
        if self.checked_at is None:
            self.load()
        return self

    def _reload(self, facilitator_id):
        found = self.store.roster_facilitator(facilitator_id)
        if found is not None:
            self._put(found)

    def recount(self):
        held = defaultdict(set)
        for seat in self.store.all_seats():
            held[seat.facilitator_id].add(seat.seat)
        self.held = held
        self.counted = time.monotonic()

    # --- what staffing asks ---
    def candidates(self, need, today, role="lead"):
        """Everyone in the case's region, with their estimated spare capacity; `allocation.rank`
        applies the hard constraints."""
        self.ready()  # kept fresh by the service's timer, not on this path
        found = []
        for facilitator_id in self.by_region.get(need.region, ()):
            base, held = self.base[facilitator_id], len(self.held.get(facilitator_id, ()))
            found.append(replace(base, spare=base.capacity - held) if held else base)
        return found

    def get(self, facilitator_id):
        return self.docs.get(facilitator_id)

    def reserve(self, facilitator_id, case_id, need, today, role="lead", confirm=True):
        """Take a seat for `case_id`; then (unless the caller confirms the whole team at
        once, see `confirm`) make sure the facilitator still fits."""
        found = self.docs.get(facilitator_id)
        if found is None or facilitator_id in need.excluded:
            return False
        seat, taken = self.store.take_seat(facilitator_id, case_id, found.capacity, self.held[facilitator_id])
        self.held[facilitator_id] |= taken
        if seat is None:
            return False
        self.held[facilitator_id].add(seat)
        if confirm and self.confirm({role: facilitator_id}, need, today, case_id):
            return False
        return True

    def confirm(self, reserved, need, today, case_id):
        """After taking seats: apply any registry change to these facilitators that the
        roster has not seen yet (one look at the change log for the whole team), and give
        back the seats of those who no longer fit. Returns the roles given back."""
        if not reserved:
            return []
        wanted = set(reserved.values())
        unseen = [c for c in self.store.changes_since(self.checked_at - OVERLAP)
                  if c.change_id not in self.applied and c.facilitator_id in wanted]
        for facilitator_id in {c.facilitator_id for c in unseen}:
            self._reload(facilitator_id)
        self.applied.update(c.change_id for c in unseen)
        lost = []
        for role, facilitator_id in reserved.items():
            # capacity is not in question (the seat is ours): judge the rest as if one were spare
            if facilitator_id not in self.base or not allocation.fits(self.base[facilitator_id], need, today, role):
                seat = self.store.release_seat(facilitator_id, case_id)
                self.released(facilitator_id, seat)
                lost.append(role)
        return lost

    def released(self, facilitator_id, seat=None):
        if seat is not None:
            self.held[facilitator_id].discard(seat)
        else:
            self.counted = 0.0  # unknown seat: count again at the next refresh

    def specialist_available(self, region, endorsement, today):
        self.ready()
        for facilitator_id in self.by_region.get(region, ()):
            c = self.base[facilitator_id]
            if (c.active and endorsement in c.endorsements and allocation.is_current(c, today)
                    and c.available_from <= today
                    and (c.level == "advanced" or (c.level == "intermediate" and c.complex_case_trained))):
                return True
        return False
