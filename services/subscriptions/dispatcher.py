"""The dispatcher: each subscription's events, in ledger order, to its receiver.

Each subscription has a cursor, the last ledger position it has settled, and its own
greenlet whenever it is due, with at most one request in flight: a receiver that hangs or
fails holds back only its own subscription. A turn goes on sending while its receiver keeps
settling and there is more to send (up to `sends_per_turn` requests). A turn reads the entries after the cursor:
those it is not sent (not wanted, not entitled, or withheld by its profile) just move the
cursor on; the others go in one request of up to `max_batch` events. A 2xx settles them
and moves the cursor; a 410 disables the subscription; anything else is retried, the same
positions again, with backoff (backoff.py), until the retry window has passed since the
first failure, and then the subscription is disabled. A disable announces
`subscription.disabled` through the outbox, so the owner is told. Every attempt goes in
the delivery log.

Delivery is at least once: a cursor is written some moments after it moves (in batches,
`flush`), so a restart may send the last few positions again; the receiver keeps the
CloudEvent id (`<subscription_id>.<position>`) to drop a second copy. One process of the
service delivers at a time (it holds a lease, renewed as it refreshes); another one running
beside it stands by, and takes over once the lease lapses.

The dispatcher is the only writer of cursors (FerretDB cannot take concurrent conditional
updates of one document), so an owner's replay is a request on the subscription that the
dispatcher applies between turns. Recent entries are kept in memory, handed over by the feed
follower, so that a round reads nothing from the database for subscriptions keeping up.
"""
import logging
import random
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import eventlet
from eventlet.greenpool import GreenPool

from services.subscriptions import cloudevents
from services.subscriptions.backoff import Backoff

log = logging.getLogger(__name__)

SUBSCRIPTION_DISABLED = "subscription.disabled"


@dataclass
class Cursor:
    """Where a subscription's delivery stands. Held and written by the dispatcher only."""
    subscription_id: str
    position: int                 # the last position settled (or passed over)
    in_flight: tuple = ()         # positions sent and not settled: the next attempt sends these again
    scanned_to: int = None        # with in_flight: where the cursor goes once they settle
    failures: int = 0             # failed attempts in a row
    first_failure_at: float = None
    next_attempt_at: float = 0.0
    attempts: int = 0             # attempts logged so far: they number the delivery log
    replay_applied: str = None    # the last replay request applied
    disabled: str = None          # why it stopped (gone, retries_exhausted), if it did
    disabled_at: float = None

    def settle(self, position):
        self.position = position
        self.in_flight, self.scanned_to = (), None
        self.failures, self.first_failure_at, self.next_attempt_at = 0, None, 0.0


@dataclass(frozen=True)
class Attempt:
    """One line of the delivery log."""
    subscription_id: str
    number: int                   # 1, 2, ... per subscription
    positions: tuple
    retry: int                    # 1 for the first try of these positions, 2 for the next, ...
    at: float
    result: str                   # settled | failed | gone | retries_exhausted
    status: int = None
    error: str = None
    seconds: float = 0.0
    next_retry_at: float = None


@dataclass(frozen=True)
class Settings:
    region: str
    statistic_key: bytes
    backoff: Backoff = field(default_factory=Backoff)
    refresh: float = 1.0     # seconds between reloads of the subscriptions and agreements
    flush: float = 0.5       # seconds between writes of cursors and the delivery log
    scan: int = 500          # the most entries one turn looks through
    recent: int = 20000      # entries kept in memory
    concurrency: int = 1000  # turns at once (one per subscription at most)
    # requests one turn may send one after another while its receiver keeps settling them
    # (a subscription keeping up waits for no round between two events); then others' rounds
    # and an owner's replay get their moment
    sends_per_turn: int = 100
    # seconds the dispatch lease lasts unless renewed (every refresh): one process of the
    # service delivers at a time, another takes over once the lease of one gone lapses
    lease: float = 10.0
    # a turn that failed in our own code tries again after this long
    pause_after_error: float = 5.0


class RecentEntries:
    """The latest entries, contiguous, in order: what subscriptions keeping up read."""

    def __init__(self, size):
        self.size = size
        self._entries = []

    @property
    def low(self):
        return self._entries[0].position if self._entries else None

    @property
    def high(self):
        return self._entries[-1].position if self._entries else None

    def add(self, entries):
        if not entries:
            return
        if self._entries and entries[0].position != self._entries[-1].position + 1:
            if entries[0].position <= self._entries[-1].position:
                entries = [e for e in entries if e.position > self._entries[-1].position]
                if not entries:
                    return
            if entries[0].position != self._entries[-1].position + 1:
                self._entries = []  # a gap: start again from these
        self._entries.extend(entries)
        if len(self._entries) > 2 * self.size:
            del self._entries[:len(self._entries) - self.size]

    def covers(self, position):
        return self._entries and self.low <= position

    def after(self, position, limit):
        start = position + 1 - self.low
        return self._entries[start:start + limit]

    def at(self, position):
        if self._entries and self.low <= position <= self.high:
            return self._entries[position - self.low]
        return None


class Dispatcher:
    """One per process. `channels` maps a subscription kind to its channel (`send(subscription,
    cloud_events) -> Outcome`); `profiles` is profiles.py (or a stand-in, in tests)."""

    def __init__(self, store, channels, profiles, settings, clock=time.time, rand=random.random):
        self.store = store
        self.channels = channels
        self.profiles = profiles
        self.settings = settings
        self.clock = clock
        self.rand = rand
        self.recent = RecentEntries(settings.recent)
        self.pool = GreenPool(settings.concurrency)
        self.subscriptions = {}
        self.agreements = {}
        self.cursors = {}
        self.busy = set()
        # what the next flush writes: cursors as they stood at the end of their last turn, and
        # disables with their events. Only `flush` writes cursors, one write at a time.
        self.pending = {}
        self.disables = {}
        self.log = []
        self.high = -1            # the highest ledger position stored
        self.holder = f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.leading = False      # whether this process holds the dispatch lease
        self._refreshed_at = None
        self._flushed_at = 0.0
        self._flushing = False    # a flush is under way (one at a time)
        self._unserved = set()    # kinds with no channel, said once

    # --- what the feed hands over ------------------------------------------------------

    def heard(self, entries):
        """New entries from the feed follower, in order."""
        if entries:
            self.recent.add(entries)
            self.high = max(self.high, entries[-1].position)

    # --- a round ---------------------------------------------------------------------

    def round(self, outbox):
        """Start a turn for each subscription that is due; write what has moved, now and
        then. Cheap when nothing is due: no database read but the periodic refresh."""
        now = self.clock()
        if self._refreshed_at is None or now - self._refreshed_at >= self.settings.refresh:
            self._lead(now)
            if self.leading:
                self.refresh()
            self._refreshed_at = now
        if (now - self._flushed_at >= self.settings.flush or self.disables) and not self._flushing:
            # in a green thread of its own: the writes take a while with many subscriptions,
            # and the next rounds need not wait for them
            self._flushing = True
            self._flushed_at = now
            self.pool.spawn_n(self._flush_apart, outbox)
        if not self.leading:
            return
        for subscription in list(self.subscriptions.values()):
            if self._due(subscription, now):
                self.busy.add(subscription.subscription_id)
                self.pool.spawn_n(self._turn, subscription, outbox)

    def _lead(self, now):
        """Take or renew the dispatch lease. A process that takes it over starts from the
        cursors as written (its own idea of them may be old)."""
        leading = self.store.hold_lease(self.holder, now, self.settings.lease)
        if leading and not self.leading:
            log.info("this process delivers the subscriptions now (%s)", self.holder)
            self.cursors = {c: cursor for c, cursor in self.cursors.items() if c in self.busy}
        elif self.leading and not leading:
            log.warning("another process holds the dispatch lease now; this one stops delivering")
        self.leading = leading

    def refresh(self):
        """Reload the active subscriptions and the agreements in force, learn how far the
        feed has got, and apply the replays asked for."""
        subscriptions = {s.subscription_id: s for s in self.store.active_subscriptions()}
        self.agreements = self.store.current_agreements()
        self.high = max(self.high, self.store.highest_position())
        for subscription_id, subscription in subscriptions.items():
            if subscription_id not in self.cursors:
                cursor = self.store.cursor(subscription_id)
                self.cursors[subscription_id] = cursor or Cursor(subscription_id, position=subscription.start_after)
                if cursor is None:
                    self._moved(subscription_id)
            self._apply_replay(subscription)
        for subscription_id in list(self.cursors):
            if subscription_id not in subscriptions and subscription_id not in self.busy:
                del self.cursors[subscription_id]
        self.subscriptions = subscriptions

    def _apply_replay(self, subscription):
        cursor = self.cursors[subscription.subscription_id]
        asked = subscription.replay
        if asked is None or asked.replay_id == cursor.replay_applied or cursor.disabled:
            return
        if subscription.subscription_id in self.busy:
            return  # after its turn
        cursor.settle(asked.from_position - 1)
        cursor.replay_applied = asked.replay_id
        self._moved(subscription.subscription_id)
        log.info("subscription %s replays from position %d", subscription.subscription_id, asked.from_position)

    def _due(self, subscription, now):
        cursor = self.cursors.get(subscription.subscription_id)
        if cursor is None or cursor.disabled or subscription.subscription_id in self.busy:
            return False
        if subscription.kind not in self.channels or self.channels[subscription.kind] is None:
            if subscription.kind not in self._unserved:
                self._unserved.add(subscription.kind)
                log.warning("no channel for %s subscriptions here: they wait", subscription.kind)
            return False
        if cursor.next_attempt_at > now:
            return False
        return bool(cursor.in_flight) or cursor.position < self.high

    def _turn(self, subscription, outbox):
        subscription_id = subscription.subscription_id
        try:
            for _ in range(self.settings.sends_per_turn):
                cursor = self.cursors[subscription_id]
                before = cursor.position
                outcome = self.serve(subscription, outbox)
                if outcome is not None and not outcome.settled or cursor.disabled:
                    break   # it failed: its retry waits for its backoff
                if cursor.position == before or cursor.position >= self.high:
                    break   # caught up
                subscription = self.subscriptions.get(subscription_id)
                if subscription is None:
                    break   # deleted meanwhile
        except Exception:
            # our own fault, not the receiver's: logged, and tried again after a pause
            log.exception("a delivery turn of subscription %s failed", subscription.subscription_id)
            cursor = self.cursors.get(subscription.subscription_id)
            if cursor is not None:
                cursor.next_attempt_at = self.clock() + self.settings.pause_after_error
        finally:
            self.busy.discard(subscription.subscription_id)

    def wait(self):
        """Let every turn in progress finish (tests, and stopping)."""
        self.pool.waitall()

    # --- one turn of one subscription -------------------------------------------------

    def serve(self, subscription, outbox):
        """One turn: send the subscription's next events (or the ones awaiting a retry)."""
        cursor = self.cursors[subscription.subscription_id]
        agreement = self.agreements.get(subscription.agency)
        if cursor.in_flight:
            # the same positions again, each judged afresh: an agreement withdrawn meanwhile
            # stops what it no longer covers
            scanned_to = cursor.scanned_to
            batch = [(e, d) for e in self._entries_at(cursor.in_flight)
                     for d in [self._data(subscription, agreement, e)] if d is not None]
            if len(batch) > subscription.max_batch:
                # its max_batch was lowered meanwhile: the rest waits for the turns after
                scanned_to = batch[subscription.max_batch][0].position - 1
                batch = batch[:subscription.max_batch]
        else:
            batch, scanned_to = self._next_batch(subscription, agreement, cursor.position)
        if not batch:
            if scanned_to is not None and scanned_to > cursor.position or cursor.in_flight:
                cursor.settle(max(scanned_to, cursor.position))
                self._moved(subscription.subscription_id)
            return None
        profile = agreement.profile
        events = [cloudevents.cloud_event(subscription.subscription_id, self.settings.region, entry, data, profile,
                                          self.profiles.PROFILES_VERSION, self.settings.statistic_key)
                  for entry, data in batch]
        outcome = self.channels[subscription.kind].send(subscription, events)
        self._after(subscription, cursor, tuple(e.position for e, _ in batch), scanned_to, outcome, outbox)
        return outcome

    def _next_batch(self, subscription, agreement, position):
        batch, scanned_to = [], position
        for entry in self._entries_after(position, self.settings.scan):
            scanned_to = entry.position
            data = self._data(subscription, agreement, entry)
            if data is not None:
                batch.append((entry, data))
                if len(batch) >= subscription.max_batch:
                    break
        return batch, scanned_to

    def _data(self, subscription, agreement, entry):
        """The redacted data `subscription` is sent of `entry`, or None: it is not sent."""
        facts = self._facts(entry)
        if not subscription.receives(agreement, entry.event, facts, self.profiles.entitled):
            return None
        return self.profiles.redact(agreement.profile, entry.event, facts, self.settings.statistic_key)

    def _facts(self, entry):
        if entry.facts is not None:
            return self.profiles.CaseFacts(**entry.facts)
        case_id = self.profiles.case_of(entry.event)
        if case_id is None:
            return None
        # stored before its case's referral reached the feed (rare): the case may be known by now
        stored = self.store.case_facts(case_id)
        return self.profiles.CaseFacts(**stored) if stored else None

    def _entries_after(self, position, limit):
        if self.recent.covers(position + 1):
            return self.recent.after(position, limit)
        return self.store.entries_after(position, limit)

    def _entries_at(self, positions):
        found = {p: self.recent.at(p) for p in positions}
        missing = [p for p, entry in found.items() if entry is None]
        if missing:
            stored = self.store.entries_after(min(missing) - 1, max(missing) - min(missing) + 1)
            found.update({e.position: e for e in stored if e.position in found})
        return [found[p] for p in positions if found[p] is not None]

    def _after(self, subscription, cursor, positions, scanned_to, outcome, outbox):
        now = self.clock()
        retry = cursor.failures + 1
        next_retry_at = None
        if outcome.settled:
            result = "settled"
            cursor.settle(scanned_to)
        elif outcome.gone:
            result = "gone"
        else:
            cursor.failures += 1
            if cursor.first_failure_at is None:
                cursor.first_failure_at = now
            cursor.in_flight, cursor.scanned_to = positions, scanned_to
            if self.settings.backoff.exhausted(cursor.first_failure_at, now):
                result = "retries_exhausted"
            else:
                result = "failed"
                next_retry_at = cursor.next_attempt_at = now + self.settings.backoff.delay(cursor.failures, self.rand)
        cursor.attempts += 1
        self.log.append(Attempt(subscription.subscription_id, cursor.attempts, positions, retry, now, result,
                                outcome.status, outcome.error, outcome.seconds, next_retry_at))
        if result in ("gone", "retries_exhausted"):
            self._disable(subscription, cursor, result, now, outbox)
        else:
            self._moved(subscription.subscription_id)

    def _disable(self, subscription, cursor, reason, now, outbox):
        """Stop the subscription; the next flush writes it with the event that tells its owner."""
        cursor.disabled, cursor.disabled_at = reason, now
        data = {"subscription_id": subscription.subscription_id, "agency": subscription.agency,
                "kind": subscription.kind, "reason": reason}
        if reason == "retries_exhausted":   # the owner is told since when it has been failing
            data["failing_since"] = datetime.fromtimestamp(cursor.first_failure_at, timezone.utc).isoformat()
        event = outbox.event(SUBSCRIPTION_DISABLED, subscription.subscription_id, data,
                             correlationid=subscription.subscription_id)
        self.pending.pop(subscription.subscription_id, None)
        self.disables[subscription.subscription_id] = (replace(cursor), [event])
        log.warning("subscription %s disabled: %s", subscription.subscription_id, reason)

    def _moved(self, subscription_id):
        self.pending[subscription_id] = replace(self.cursors[subscription_id])

    # --- writing what moved ---------------------------------------------------------------

    def flush(self, outbox):
        """Write what moved since the last flush: each disable with its event (then published),
        the cursors as one batch, and the delivery log as another. Only this writes cursors,
        and one flush runs at a time (a round starts none while one is under way; `stop`
        waits for it before its own)."""
        disables, self.disables = self.disables, {}
        cursors, self.pending = self.pending, {}
        attempts, self.log = self.log, []
        try:
            for subscription_id, (cursor, events) in list(disables.items()):
                self.store.disable(cursor, events)
                del disables[subscription_id]
                outbox.flush(self.store.CURSORS, subscription_id, events)
            if cursors:
                self.store.save_cursors(list(cursors.values()))
                cursors = {}
            if attempts:
                self.store.add_attempts(attempts)
                attempts = []
        except Exception:
            # kept for the next flush; a crash before then only means those positions are sent again
            log.warning("cursors and the delivery log could not be written; trying again", exc_info=True)
            self.disables = {**disables, **self.disables}
            self.pending = {**cursors, **self.pending}
            self.log = attempts + self.log

    def _flush_apart(self, outbox):
        try:
            self.flush(outbox)
        finally:
            self._flushing = False

    def stop(self, outbox, grace=5.0):
        """Let turns in progress end (for at most `grace` seconds), then write what moved."""
        with eventlet.Timeout(grace, False):
            self.wait()
        with eventlet.Timeout(grace, False):
            while self._flushing:    # a round's flush still writing
                eventlet.sleep(0.05)
        self.flush(outbox)
        if self.leading:
            self.leading = False
            try:
                self.store.release_lease(self.holder)
            except Exception as error:   # then another process takes over when the lease lapses
                log.warning("the dispatch lease could not be let go: %s", type(error).__name__)
