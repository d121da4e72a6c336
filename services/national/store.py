"""The national service's store: each statistic once, and the counts made of them.

A statistic is kept under its `statistic_id`, so one sent twice (a shovel resending after a
break, a region replaying) is counted once: the database's unique `_id` settles it.
"""
from datetime import datetime, timezone

from pymongo.errors import DuplicateKeyError

from shared.storage import Store
from shared.storage.indexes import Index


class NationalStore(Store):
    STATISTICS = "statistics"
    REGIONS = "regions"
    indexes = {
        STATISTICS: [Index("region", "event_type")],
        REGIONS: [],  # `_id` is the region code
    }

    def add(self, statistic):
        """Keep a statistic; False if it was already here."""
        doc = {key: value for key, value in statistic.items() if key != "statistic_id"}
        doc.update(_id=statistic["statistic_id"], received_at=datetime.now(timezone.utc))
        try:
            self.db[self.STATISTICS].insert_one(doc)
        except DuplicateKeyError:
            return False
        try:
            self.db[self.REGIONS].insert_one({"_id": statistic["region"]})
        except DuplicateKeyError:
            pass
        return True

    def regions(self):
        return sorted(doc["_id"] for doc in self.db[self.REGIONS].find({}, {"_id": 1}))

    def count(self, region, event_type=None):
        query = {"region": region}
        if event_type is not None:
            query["event_type"] = event_type
        return self.db[self.STATISTICS].count_documents(query)

    def counts(self, event_types):
        """region -> {event type: count, "all": count}, for every region heard from."""
        table = {}
        for region in self.regions():
            row = {kind: self.count(region, kind) for kind in event_types}
            row["all"] = self.count(region)
            table[region] = row
        return table
