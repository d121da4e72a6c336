"""The reports service's store (MongoDB, or FerretDB): the read model's state, saved with the
ledger position it was folded up to, and the lease of the one process that folds.

Collections, in the reports database:
- `snapshots`  the state (snapshot.py's bytes) and its position together, one document per
               save, `_id` the snapshot's id: `<generation>-<position + 1>`, zero-padded so the
               ids sort as (generation, position). Written by one insert: a state is never
               stored without the position it stands at, nor a position without its state.
- `heads`      a small document per snapshot (the same `_id`, without the state), inserted
               once its snapshot is: where the latest state is found without reading every
               snapshot's bytes. Kept to the last KEEP; older ones (and their snapshots) go.
- `leases`     which process folds the ledger (`_id` "follower"), until when.

A save is an insert, never an update: two processes that both fold to position p write the
same state (the state is a function of the entries up to p), so the second insert's
duplicate key is no loss. A rebuild starts a new generation at position -1, whose ids sort
after every id of the one before, so a process still folding the old generation cannot
overwrite it.
"""
from datetime import datetime, timezone
from typing import NamedTuple

from bson.binary import Binary
from pymongo.errors import DuplicateKeyError

from shared.storage import Store, leases

KEEP = 3
FOLLOWER_LEASE = "follower"


class Head(NamedTuple):
    """Where a saved state stands: its generation (rebuilds so far) and ledger position."""
    snapshot_id: str
    generation: int
    position: int   # the highest ledger position folded into it; -1: none


def snapshot_id(generation, position):
    return f"{generation:06d}-{position + 1:012d}"


class ReportsStore(Store):
    SNAPSHOTS = "snapshots"
    HEADS = "heads"
    LEASES = "leases"

    # every query is by `_id`; `heads` is read whole, and holds at most KEEP (+ a few) documents
    indexes = {SNAPSHOTS: [], HEADS: [], LEASES: []}

    def latest(self):
        """The Head of the latest state saved, or None (nothing saved: start from the beginning)."""
        heads = [Head(doc["_id"], doc["generation"], doc["position"]) for doc in self.db[self.HEADS].find()]
        return max(heads, default=None)

    def state_of(self, head):
        """The stored bytes of the state `head` names (None if it has gone, pruned meanwhile)."""
        doc = self.db[self.SNAPSHOTS].find_one({"_id": head.snapshot_id})
        return bytes(doc["state"]) if doc else None

    def save(self, generation, position, data, cases):
        """Store state bytes `data` at `position` (one insert), then its head; return the Head.
        Already saved (by another process, or before a crash) is as good as saved now."""
        head = Head(snapshot_id(generation, position), generation, position)
        now = datetime.now(timezone.utc)
        try:
            self.db[self.SNAPSHOTS].insert_one({"_id": head.snapshot_id, "generation": generation,
                                                "position": position, "cases": cases, "state": Binary(data),
                                                "saved_at": now})
        except DuplicateKeyError:
            pass
        try:
            self.db[self.HEADS].insert_one({"_id": head.snapshot_id, "generation": generation,
                                            "position": position, "saved_at": now})
        except DuplicateKeyError:
            pass
        self._prune()
        return head

    def _prune(self):
        heads = sorted(doc["_id"] for doc in self.db[self.HEADS].find({}, {"_id": 1}))
        for old in heads[:-KEEP]:
            self.db[self.SNAPSHOTS].delete_one({"_id": old})
            self.db[self.HEADS].delete_one({"_id": old})

    def hold_lease(self, holder, now, seconds):
        return leases.hold(self.db[self.LEASES], FOLLOWER_LEASE, holder, now, seconds)

    def release_lease(self, holder):
        leases.release(self.db[self.LEASES], FOLLOWER_LEASE, holder)
