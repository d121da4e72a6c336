"""An in-memory ReportsStore, for unit tests of the follower. Same public methods as
store.ReportsStore, and the behaviours it relies on: a snapshot and its head are stored once
(a second save of the same id is no change), only the last KEEP are kept, and the lease is
held by one holder until it lapses."""
from services.reports.store import KEEP, Head, snapshot_id
from shared.storage.leases import InMemoryLease


class InMemoryReportsStore(InMemoryLease):
    def __init__(self):
        self.snapshots = {}   # snapshot id -> (Head, bytes)
        self.lease = None     # (holder, until)
        self.saves = 0

    def ensure_indexes(self, postgresql_url=""):
        pass

    def latest(self):
        return max((head for head, _ in self.snapshots.values()), default=None)

    def state_of(self, head):
        found = self.snapshots.get(head.snapshot_id)
        return found[1] if found else None

    def save(self, generation, position, data, cases):
        head = Head(snapshot_id(generation, position), generation, position)
        self.snapshots.setdefault(head.snapshot_id, (head, bytes(data)))
        self.saves += 1
        for old in sorted(self.snapshots)[:-KEEP]:
            del self.snapshots[old]
        return head

