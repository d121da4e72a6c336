"""Following records' ledger into the reports' read model, and keeping it.

Each process of the service holds the read model in memory, to answer reports from. One
process at a time (the holder of the store's lease) follows the ledger: it asks records
(RPC `entries_after`) for the entries after its position, folds each into the state
(projection.apply), and saves the state with the new position in one write. The others
stand by: each round they load the latest saved state if it has moved on, so any process
can answer, and one takes over when the holder's lease lapses.

A restart loads the latest state and asks for the entries after its position: an entry is
folded again only if the process stopped between folding it and saving (at least once),
and folding an entry twice changes nothing (projection.py), so no figure counts it twice.
The position is the dedup key of the feed: an entry at or below it is never folded.

`rebuild(store)` starts again from position -1 with an empty state, as a new generation
(store.py): every process loads it at its next round, and the holder folds the whole
ledger again. An operator runs it after a change to what the read model keeps
(`python -m services.reports.rebuild`).
"""
import logging
import uuid

from services.reports import projection, snapshot

log = logging.getLogger(__name__)

# the most entries asked for at once, and the most pages read in a round (records' FEED_LIMIT
# allows 1000); a backlog is caught up over a few rounds, each saved
PAGE = 500
PAGES_PER_ROUND = 10
LEASE_SECONDS = 15.0


class FeedSkipped(RuntimeError):
    """Records' feed did not continue from the position asked for (never expected)."""


class LedgerFollower:
    def __init__(self, store, page=PAGE, pages_per_round=PAGES_PER_ROUND, lease=LEASE_SECONDS, holder=None,
                 save_every=0.0):
        self.store = store
        # seconds between saves: a save writes the whole state, which takes a while for a large
        # one; what is folded meanwhile is saved at the next (or at stop), or folded again
        self.save_every = save_every
        self.saved_at = None
        self.unsaved = False
        self.page = page
        self.pages_per_round = pages_per_round
        self.lease = lease
        self.holder = holder or uuid.uuid4().hex
        self.state = projection.ReportState()
        self.generation = 0
        self.position = -1       # the highest ledger position folded into `state`
        self.head = None         # the saved state `state` was loaded from or saved as
        self.leading = False

    def refresh(self):
        """Load the latest saved state, if it is not the one held here. Whether it loaded one."""
        latest = self.store.latest()
        if latest is None or latest == self.head:
            return False
        data = self.store.state_of(latest)
        if data is None:   # pruned between the two reads: the next round finds the newer one
            return False
        self.state, self.generation, self.position, self.head = snapshot.load(data), latest.generation, \
            latest.position, latest
        return True

    def round(self, read_page, now):
        """One round: catch up with what is saved; then, holding the lease, fold what records'
        ledger holds beyond the position and save it. `read_page(after, limit)` is records'
        `entries_after`. Returns how many entries were folded here."""
        self.refresh()
        leading = self.store.hold_lease(self.holder, now, self.lease)
        if leading != self.leading:
            log.info("this process %s the ledger", "now follows" if leading else "no longer follows")
            self.leading = leading
        if not leading:
            return 0
        folded = 0
        for _ in range(self.pages_per_round):
            page = read_page(self.position, self.page)
            items = [item for item in page["items"] if item["seq"] > self.position]
            if not items:
                break
            if [item["seq"] for item in items] != list(range(self.position + 1, self.position + 1 + len(items))):
                raise FeedSkipped("records' feed skipped a position")
            for item in items:
                projection.apply(self.state, item["event"])
            self.position = items[-1]["seq"]
            folded += len(items)
            if len(page["items"]) < self.page:
                break
        self.unsaved = self.unsaved or folded > 0
        if self.unsaved and (self.saved_at is None or now - self.saved_at >= self.save_every):
            self.save(now)
        return folded

    def save(self, now):
        self.head = self.store.save(self.generation, self.position, snapshot.dump(self.state), len(self.state.cases))
        self.saved_at, self.unsaved = now, False

    def stop(self, now):
        if self.leading:
            try:
                if self.unsaved:
                    self.save(now)
            finally:
                self.store.release_lease(self.holder)
                self.leading = False


def rebuild(store):
    """Start the read model again from the ledger's beginning (a new generation); its Head."""
    latest = store.latest()
    generation = latest.generation + 1 if latest else 0
    return store.save(generation, -1, snapshot.dump(projection.ReportState()), 0)
