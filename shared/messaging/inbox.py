"""The inbox: the events each consumer has handled, so a redelivery has no second effect.

One document per (consumer, event id), whose `_id` is that pair, so the database's own
unique index on `_id` settles any race. A record is written only after its handler
succeeded: a crash in between means the event is handled again, which handlers survive
because their own writes are keyed by domain ids (an assessment by its trigger event, a
delivery by event, recipient and channel, a ledger entry by event id).
"""
from datetime import datetime, timezone

from pymongo.errors import DuplicateKeyError

COLLECTION = "inbox"


class Inbox:
    indexes = {COLLECTION: []}  # found by _id only

    def __init__(self, db, consumer):
        self.collection = db[COLLECTION]
        self.consumer = consumer

    def _key(self, event_id):
        return f"{self.consumer}:{event_id}"

    def handled(self, event_id):
        return self.collection.find_one({"_id": self._key(event_id)}, {"_id": 1}) is not None

    def record(self, event):
        try:
            self.collection.insert_one({
                "_id": self._key(event["id"]),
                "consumer": self.consumer,
                "event_id": event["id"],
                "event_type": event["type"],
                "handled_at": datetime.now(timezone.utc),
            })
        except DuplicateKeyError:
            pass  # a concurrent redelivery finished first; the effect is the same
