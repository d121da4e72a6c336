"""An in-memory StatisticsStore, for unit tests of the workflow."""
from services.statistics.store import StatisticsStore


class InMemoryStatisticsStore:
    indexes = StatisticsStore.indexes

    def __init__(self):
        self.categories = {}

    def ensure_indexes(self, postgresql_url=""):
        pass

    def remember_category(self, case_id, offence_category):
        self.categories.setdefault(case_id, offence_category)

    def offence_category(self, case_id):
        return self.categories.get(case_id)
