"""A lease: which one process of a scaled-out service does a piece of work, until when.

One document per lease in a collection of the store's, `_id` the lease's name, holding its
holder and when it lapses. It is taken by an insert under the unique `_id`, so two processes
cannot both take it (FerretDB does not make concurrent conditional updates of one document
safe); one that lapsed is removed, only as it was read, before it is taken over. Renewal
is by its holder alone. Times are epoch seconds, so a caller can pass its own clock.
"""
from datetime import datetime, timezone

from pymongo.errors import DuplicateKeyError


def _utc(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _moment(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc)


def hold(collection, name, holder, now, seconds):
    """Take or renew lease `name` for `holder` until `now + seconds`; whether it holds it."""
    until = _moment(now + seconds)
    current = collection.find_one({"_id": name})
    if current is not None and current["holder"] == holder:
        collection.update_one({"_id": name, "holder": holder}, {"$set": {"expires_at": until}})
        return True
    if current is not None:
        if _utc(current["expires_at"]) > _moment(now):
            return False
        collection.delete_one({"_id": name, "holder": current["holder"], "expires_at": current["expires_at"]})
    try:
        collection.insert_one({"_id": name, "holder": holder, "expires_at": until})
    except DuplicateKeyError:
        return False
    return True


def release(collection, name, holder):
    """Let lease `name` go, if `holder` holds it (another process may take it at once)."""
    collection.delete_one({"_id": name, "holder": holder})


class InMemoryLease:
    """The same rule for a store's in-memory fake (unit tests of workflows): one lease, held
    in `self.lease` as (holder, until)."""

    lease = None

    def hold_lease(self, holder, now, seconds):
        if self.lease is None or self.lease[0] == holder or self.lease[1] <= now:
            self.lease = (holder, now + seconds)
            return True
        return False

    def release_lease(self, holder):
        if self.lease is not None and self.lease[0] == holder:
            self.lease = None
