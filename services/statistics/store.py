"""The statistics service's store: what it must remember of a case to count its events.

Only the offence category, under the case's pseudonymous id, and only in the region's own
database: the national view is told the category, never the case.
"""
from pymongo.errors import DuplicateKeyError

from shared.storage import Store


class StatisticsStore(Store):
    CASES = "case_categories"
    # `_id` is the case id: unique, and the only key anything is read by
    indexes = {CASES: []}

    def remember_category(self, case_id, offence_category):
        """Remember a case's offence category; a second call for the case changes nothing
        (a referral's category is fixed at intake)."""
        try:
            self.db[self.CASES].insert_one({"_id": case_id, "offence_category": offence_category})
        except DuplicateKeyError:
            pass

    def offence_category(self, case_id):
        """The case's offence category, or None when its referral has not been seen here."""
        doc = self.db[self.CASES].find_one({"_id": case_id}, {"offence_category": 1})
        return doc["offence_category"] if doc else None
