"""An in-memory ReferralsStore, for fast tests of the workflows.

The same public methods as store.ReferralsStore, and the same behaviour where the
workflows rely on it: a taken case id or version raises cases.AlreadyStored, a change
is found by the next reader even when its projection was lost, array fields match a
value they hold, and what is returned is a copy (changing it changes nothing stored).
"""
import copy
from dataclasses import fields as dataclass_fields

from services.referrals.cases import (
    CLOCKS,
    AlreadyStored,
    CaseSummary,
    SUMMARY_FIELDS,
    change_key,
    clock_running,
)
from services.referrals import agreement, retention, surveys
from services.referrals.store import ReferralsStore, _page


class InMemoryReferralsStore:
    cases_outbox = "cases"
    changes_outbox = "case_changes"
    outbox_collections = ("cases", "case_changes")

    def __init__(self):
        self.cases = {}       # case id -> Case, as last projected
        self.changes = {}     # change id -> CaseChange
        self.keys = {}        # owner id -> DataKey
        self.accesses = []    # ContactAccess, in the order logged

    def ensure_indexes(self, postgresql_url=""):
        pass

    def migrate(self):
        pass

    # -- cases

    def insert_case(self, case):
        if case.case_id in self.cases:
            raise AlreadyStored(f"case {case.case_id} exists")
        self.cases[case.case_id] = copy.deepcopy(case)

    def intake_fingerprint(self, case_id):
        case = self.cases.get(case_id)
        if case is None:
            return None
        return case.intake_fingerprint or ""

    def load_case(self, case_id):
        stored = self.cases.get(case_id)
        if stored is None:
            return None
        case = copy.deepcopy(stored)
        caught_up = {}
        while (change := self.changes.get(change_key(case_id, case.version + 1))) is not None:
            state = copy.deepcopy(change.state)
            case.apply(state, change.version)
            caught_up.update(state)
        if caught_up:
            self._project(case, caught_up)
        return case

    def case_of_party(self, party_id):
        return next((case.case_id for case in self.cases.values() if party_id in case.party_ids), None)

    def list_cases(self, equal, one_of=None, offset=0, limit=20, due=None):
        def matches(case):
            wanted = [(name, [value]) for name, value in equal.items()] + list((one_of or {}).items())
            return all(any(_equal(getattr(case, name, None), value) for value in values) for name, values in wanted)

        found = [_summary(case) for case in self.cases.values() if matches(case)]
        return _page(found, offset, limit, due)

    # -- changes

    # the real store's composition of the two steps below, so the fake cannot drift from it
    record_change = ReferralsStore.record_change

    def insert_change(self, change):
        if change.change_id in self.changes:
            raise AlreadyStored(f"change {change.change_id} exists")
        self.changes[change.change_id] = copy.deepcopy(change)

    def change(self, change_id):
        return copy.deepcopy(self.changes.get(change_id))

    def _project(self, case, state):
        stored = self.cases.get(case.case_id)
        if stored is not None and stored.version < case.version:
            stored.apply(copy.deepcopy(state), case.version)

    # -- data keys

    def save_data_keys(self, keys):
        if any(k.owner_id in self.keys for k in keys):
            raise AlreadyStored("a data key of one of these owners exists")
        for key in keys:
            self.keys[key.owner_id] = copy.deepcopy(key)

    def data_key(self, owner_id):
        key = self.keys.get(owner_id)
        return key.wrapped if key else None

    def shred(self, owner_id):
        self.keys.pop(owner_id, None)

    # -- the access log

    def log_access(self, entry):
        self.accesses.append(copy.deepcopy(entry))

    def access_log(self, case_id):
        return sorted((copy.deepcopy(a) for a in self.accesses if a.case_id == case_id), key=lambda a: a.at)

    def accesses_of_party(self, party_id):
        return sorted((copy.deepcopy(a) for a in self.accesses if a.party_id == party_id), key=lambda a: a.at)

    # -- the Victims' Code clocks

    def owed_clocks(self, kind, now, limit=200):
        if kind not in CLOCKS:
            raise KeyError(kind)
        return [case_id for case_id in self.cases if clock_running(self.load_case(case_id), kind, now)][:limit]

    # -- after the intervention: the aftercare timer and survey tokens

    def agreement_reminders_owed(self, today, horizon, limit=200):
        return self._where(lambda case: any(day <= horizon.isoformat()
                                            for day in agreement.remind_days(case.agreement)), limit)

    def agreement_items_overdue(self, today, limit=200):
        return self._where(lambda case: any(day < today.isoformat() for day in agreement.open_days(case.agreement)),
                           limit)

    def follow_ups_owed(self, today, limit=200):
        return self._where(lambda case: surveys.follow_up_owed(case.follow_up, today), limit)

    def retention_owed(self, today, limit=200):
        return self._where(lambda case: retention.owed(case.retention, today), limit)

    def case_of_survey(self, key):
        return next((case.case_id for case in self.cases.values() if key in surveys.keys(case.surveys)), None)

    def _where(self, test, limit):
        return [case_id for case_id in self.cases if test(self.load_case(case_id))][:limit]

    # -- test helpers

    def counts(self):
        counts = {"cases": len(self.cases), "case_changes": len(self.changes), "data_keys": len(self.keys),
                  "contact_access_log": len(self.accesses)}
        return counts

    def projected_case(self, case_id):
        return copy.deepcopy(self.cases.get(case_id))

    def all_accesses(self):
        return sorted(copy.deepcopy(self.accesses), key=lambda a: a.at)

    def documents(self):
        for case in self.cases.values():
            yield "cases", _as_dict(case)
        for change in self.changes.values():
            yield "case_changes", _as_dict(change)
        for key in self.keys.values():
            yield "data_keys", _as_dict(key)
        for access in self.accesses:
            yield "contact_access_log", _as_dict(access)


def _equal(stored, value):
    """Equality as the database applies it: an array matches a value it holds."""
    if isinstance(stored, (list, tuple)):
        return value in stored
    return stored == value


def _as_dict(record):
    return {f.name: copy.deepcopy(getattr(record, f.name)) for f in dataclass_fields(record)}


def _summary(case):
    """What the real store's listing reads of a case (its due date derived, not kept)."""
    due = case.next_due
    return CaseSummary(**{name: copy.deepcopy(getattr(case, name)) for name in SUMMARY_FIELDS
                          if name not in ("next_due_at", "next_due_kind")},
                       next_due_at=due.at if due else None, next_due_kind=due.kind if due else None)
