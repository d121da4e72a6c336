"""The referrals store: the one object that touches the referrals database.

Collections, their contents and the only query shapes issued on them (every filter an
equality on `_id` or on a declared index, so that FerretDB 1.24 answers it from an index):

- `cases`            one document per case (`_id` the case id): the Case, its pending
                     events (`outbox`), and fields only the store reads: `party_ids`
                     (everyone on the case, top level, so that a person's case is one
                     equality; a dotted path into the `participants` array is not pushed
                     down) and one day bucket per Victims' Code clock (see below).
    {_id}                                 load, intake fingerprint, projection of a change
    {status?, agency?, region?, facilitators?, measured_from?}  the listing: each filter an equality; a
                                          filter over several values (a coordinator's
                                          regions) is one query per value, merged, sorted
                                          and paged in Python
    {due_bucket, region?, ...}            the listing by due date: the same, once per due
                                          bucket the window covers (due_dates.py)
    {party_ids}                           the case of a person (get_contact)
    {deadline_notice_day, deadline_due_sent}    the timer: one query per clock event and
    {deadline_due_day, deadline_missed_sent}    day still to be swept (never a range on
    {support_notice_day, support_due_sent}      the clock times)
    {support_due_day, support_missed_sent}
    {agreement_remind_days}               the aftercare timer (after the intervention): one
    {agreement_due_days}                  query per day still to be swept, each an equality
    {follow_up_day}                       on a day bucket (below)
    {retention_day}
    {survey_keys}                         the survey of a token (the key of its token)
- `case_changes`     one document per change (`_id` change_key(case, version)): the claim
                     of a version by a unique insert, and the events it causes (`outbox`).
    {_id}                                 the next version of a case, when loading it
- `data_keys`        one wrapped data key per person or case record (`_id` the owner).
    {_id}                                 unseal, shred
- `contact_access_log`  one document per request for personal data. Insert only, but for
                     reads by {case_id} (the access log of a case) and {party_id}.
- `store_state`      small: the timer's sweep position per clock, and the schema marker
                     of the one-off backfill (`migrate`). {_id} only.

Whole-collection reads, and why: `list_cases` with no filter at all (a national
coordinator or auditor listing every case: the answer is the whole collection), and
`migrate`, once. The test helpers (`counts`, `documents`, `all_accesses`) read whole
collections too; the service never calls them.

Why a change is an insert and not a conditional update: FerretDB 1.24 on SQLite does not
apply `update_one` with a filter atomically (ten concurrent updates filtered on the same
status can all report a modification while only the last survives). A unique `_id` is
the one primitive it makes atomic, so each version of a case is claimed by inserting
its CaseChange; the case document is a projection of the changes, which readers repair.

Due dates (due_dates.py): each case carries `next_due_at` and `next_due_kind` (its
earliest open deadline: a Victims' Code clock or an agreement item) and `due_bucket`
(`overdue`, or the London week it falls in), recomputed from the whole case whenever a
change is projected, and given to older cases by `migrate` (step 4). A listing by due
date asks one equality per bucket its window covers, from the oldest day the deadline
timers have still to sweep (`_due_floor`), and keeps the exact window in Python.

The Victims' Code clocks, by day: each case carries a day bucket per clock event
(DAY_FIELDS: `deadline_notice_day` and `deadline_due_day` for victim_told_about_rj,
`support_notice_day` and `support_due_day` for support_referral), the London day on
which it falls, or the day the case was stored if that is later (a referral may be
stored after its clock has run). Every clock falls at the start of its day. The timer
asks, for each day from its sweep position to today, for the cases of that day whose
flag is still False, and checks the rest (at, met, closed) in Python. The sweep position moves past a day once that day is seen to
owe nothing (it stays one day behind today, so a case stored just before midnight is
still seen).

After the intervention (agreement.py, surveys.py, retention.py), the same way: derived
from the case's own fields whenever a change sets them (`_aftercare_fields`), a case
carries `agreement_remind_days` and `agreement_due_days` (the due days of its open
items, not yet reminded / still open: arrays, an equality matches an element),
`follow_up_day` and `retention_day` (the day each is owed, null once done), and
`survey_keys` (its surveys' token keys). The aftercare timer sweeps its own positions
(`sweep:agreement_reminders`, `sweep:agreement_due`, `sweep:follow_up`, `sweep:retention`)
day by day, as above; reminders look ahead to the reminder horizon. An item's due day is
never before the day the agreement is recorded, and a follow-up or retention day is
months after closure, so no bucket falls behind a sweep position (which stays a day
behind today).
"""
import logging
import os
from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone

from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.referrals.cases import (
    CASE_FIELDS,
    CLOCKS,
    SUMMARY_FIELDS,
    AlreadyStored,
    Case,
    CaseChange,
    CasePage,
    CaseSummary,
    ContactAccess,
    change_key,
    clock_owed,
    support_clock_fields,
    utcnow,
)
from services.referrals import agreement, due_dates, retention, surveys
from services.referrals.deadlines import LONDON, support_referral_beside
from shared.messaging.outbox import pending_fields
from shared.storage import Store
from shared.storage.indexes import Index

log = logging.getLogger(__name__)

CASES = "cases"
CHANGES = "case_changes"
DATA_KEYS = "data_keys"
ACCESS_LOG = "contact_access_log"
STATE = "store_state"
# clock kind -> the case's day bucket field
DAY_FIELDS = {"due": "deadline_notice_day", "missed": "deadline_due_day",
              "support_due": "support_notice_day", "support_missed": "support_due_day"}
# after the intervention: the fields only the store reads, derived from the case's own
AFTERCARE_FIELDS = ("agreement_remind_days", "agreement_due_days", "follow_up_day", "retention_day", "survey_keys")
# the steps of `migrate` this release has: a store marked with a lower version is given them
SCHEMA_VERSION = 4
# the timers whose sweep positions bound where a deadline passed but not yet announced can be
# (_due_floor): the clocks' missed events, and agreement items settled as missed
DUE_SWEEPS = ("sweep:missed", "sweep:support_missed", "sweep:agreement_due")
# the clock basis of a case stored before it was recorded
NOT_RECORDED = "not_recorded"
DUPLICATE_KEY = 11000


class ReferralsStore(Store):
    """Cases, changes, data keys and the access log of the referrals service."""

    # the collections whose documents hold pending events in `outbox` (for Outbox and flush)
    cases_outbox = CASES
    changes_outbox = CHANGES
    outbox_collections = (CASES, CHANGES)

    indexes = {
        CASES: [Index("status"), Index("agency"), Index("region"), Index("facilitators"), Index("party_ids"),
                Index("measured_from"), Index("due_bucket", "region"),
                *(Index(day_field) for day_field in DAY_FIELDS.values()),
                *(Index(name) for name in AFTERCARE_FIELDS)],
        CHANGES: [],
        DATA_KEYS: [],
        ACCESS_LOG: [Index("case_id"), Index("party_id")],
        STATE: [],
    }

    def __init__(self, db, clock=utcnow):
        super().__init__(db)
        # the real time, which owed_clocks never moves a sweep past and a new case is
        # bucketed no earlier than (injected so that a test's time cannot cross midnight)
        self._clock = clock
        self._cases = db[CASES]
        self._changes = db[CHANGES]
        self._keys = db[DATA_KEYS]
        self._access = db[ACCESS_LOG]
        self._state = db[STATE]

    def ensure_indexes(self, postgresql_url=""):
        super().ensure_indexes(postgresql_url)
        self.migrate()

    # -- cases ------------------------------------------------------------------------

    def insert_case(self, case):
        """Store a new case (with the events in its outbox); AlreadyStored if its id is taken."""
        doc = _case_document(case, self._clock())
        try:
            self._cases.insert_one(doc)
        except DuplicateKeyError:
            raise AlreadyStored(f"case {case.case_id} exists") from None

    def intake_fingerprint(self, case_id):
        """None if there is no such case; else the fingerprint it was opened with ("" for none)."""
        doc = self._cases.find_one({"_id": case_id}, {"intake_fingerprint": 1})
        if doc is None:
            return None
        return doc.get("intake_fingerprint") or ""

    def load_case(self, case_id):
        """The case as of its latest change, or None. Changes the case document has not caught
        up with (a crash between the two writes, projections overtaking each other) are
        found one version at a time by `_id`, applied, and projected again."""
        doc = self._cases.find_one({"_id": case_id})
        if doc is None:
            return None
        case = _case(doc)
        caught_up = {}
        while True:
            change = self._changes.find_one({"_id": change_key(case_id, case.version + 1)}, {"state": 1, "version": 1})
            if change is None:
                break
            state = _aware(change["state"])
            case.apply(state, change["version"])
            caught_up.update(state)
        if caught_up:
            self._project(case, caught_up)
        return case

    def case_of_party(self, party_id):
        """The id of the case a person (referrer or participant) is on, or None."""
        doc = self._cases.find_one({"party_ids": party_id}, {"_id": 1})
        return doc["_id"] if doc else None

    def list_cases(self, equal, one_of=None, offset=0, limit=20, due=None):
        """A page of CaseSummary, newest first (then by case id), and the total: cases whose
        fields equal `equal` and, for each field of `one_of`, one of its values (an array
        field matches when it holds the value). An empty list of values finds nothing.
        With `due` (a due_dates.DueWindow): only the cases whose next due falls in it,
        soonest first (then by case id)."""
        # One equality query per combination of values: `$in` is not pushed down.
        shapes = [dict(equal)]
        if due is not None:
            shapes = [{**shape, "due_bucket": bucket} for shape in shapes for bucket in due.buckets(self._due_floor())]
        for name, values in (one_of or {}).items():
            shapes = [{**shape, name: value} for shape in shapes for value in dict.fromkeys(values)]
        found = {}
        projection = {name: 1 for name in SUMMARY_FIELDS if name != "case_id"}
        for shape in shapes:
            for doc in self._cases.find(shape, projection):
                found[doc["_id"]] = doc
        summaries = [_summary(doc) for doc in found.values()]
        return _page(summaries, offset, limit, due)

    def _due_floor(self):
        """The oldest day a deadline timer has still to sweep (never after yesterday)."""
        yesterday = _day(self._clock()) - timedelta(days=1)
        days = [date.fromisoformat(doc["day"]) for key in DUE_SWEEPS
                for doc in [self._state.find_one({"_id": key})] if doc is not None]
        return min([yesterday, *days])

    # -- changes ----------------------------------------------------------------------

    def record_change(self, case, change):
        """Make `change` (cases.next_change of `case`) the case's next version: its fields and
        events in one insert, then the case document brought up to date. None if another
        writer made that version first (load again and decide again); else the change, with
        `case` moved on to it."""
        try:
            self.insert_change(change)
        except AlreadyStored:
            return None
        case.apply(change.state, change.version)
        self._project(case, change.state)
        return change

    def insert_change(self, change):
        """Claim the change's version by inserting it; AlreadyStored if it was taken. (The
        case document is not touched: `record_change` does both; a test uses this alone
        to stand for a crash before the projection.)"""
        try:
            self._changes.insert_one({"_id": change.change_id, "case_id": change.case_id, "version": change.version,
                                      "state": change.state, "by": change.by, "at": change.at,
                                      **pending_fields(change.outbox)})
        except DuplicateKeyError:
            raise AlreadyStored(f"change {change.change_id} exists") from None

    def change(self, change_id):
        doc = self._changes.find_one({"_id": change_id})
        if doc is None:
            return None
        doc = _aware(doc)
        return CaseChange(change_id=doc["_id"], case_id=doc["case_id"], version=doc["version"], state=doc["state"],
                          by=doc.get("by"), at=doc.get("at"), outbox=doc.get("outbox") or [])

    def _project(self, case, state):
        """Bring the case document up to `case` (just moved on by `state`): the fields `state`
        sets, and those derived from the whole case (its due date)."""
        # `_id` equality finds the one document; the version guard applies to it alone, and a
        # projection lost to a race is repaired by the next reader (load_case)
        self._cases.update_one({"_id": case.case_id, "version": {"$lt": case.version}},
                               {"$set": {**state, **_aftercare_fields(state),
                                         **due_dates.stored_fields(case, self._clock()), "version": case.version}})

    # -- data keys --------------------------------------------------------------------

    def save_data_keys(self, keys):
        """Store DataKeys, in one write; AlreadyStored if an owner has one already."""
        if not keys:
            return
        try:
            self._keys.insert_many([{"_id": k.owner_id, "wrapped": k.wrapped, "created_at": k.created_at}
                                    for k in keys], ordered=True)
        except BulkWriteError as error:
            if all(e["code"] == DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise AlreadyStored("a data key of one of these owners exists") from None
            raise

    def data_key(self, owner_id):
        """The wrapped data key of `owner_id`, or None once shredded."""
        doc = self._keys.find_one({"_id": owner_id}, {"wrapped": 1})
        return bytes(doc["wrapped"]) if doc else None

    def shred(self, owner_id):
        """Destroy a person's data key: every copy of their ciphertext becomes noise.

        The wrapped key is first overwritten with random bytes, so that a storage engine
        which leaves deleted records in free pages leaves noise there, not the key."""
        self._keys.update_one({"_id": owner_id}, {"$set": {"wrapped": os.urandom(60)}})
        self._keys.delete_one({"_id": owner_id})

    # -- the access log ---------------------------------------------------------------

    def log_access(self, entry):
        self._access.insert_one(asdict(entry))

    def access_log(self, case_id):
        """Every access to the personal data of a case's people, oldest first."""
        return _accesses(self._access.find({"case_id": case_id}))

    def accesses_of_party(self, party_id):
        return _accesses(self._access.find({"party_id": party_id}))

    # -- the Victims' Code clocks -----------------------------------------------------

    def owed_clocks(self, kind, now, limit=200):
        """Ids of cases whose clock `kind` (a key of cases.CLOCKS) has come by `now` and whose
        event is still owed (flag unset, clock not met, case not closed), at most `limit`.
        The caller sets the flag (through a change) when it has sent it."""
        clock = CLOCKS[kind]
        when, flag, met = clock.at, clock.flag, clock.met
        field = DAY_FIELDS[kind]
        today = _day(now)
        yesterday = min(_day(self._clock()), today) - timedelta(days=1)
        start = self._sweep_start(kind, yesterday)
        owed, first_owing = [], None
        day = start
        while day <= today and len(owed) < limit:
            for doc in self._cases.find({field: day.isoformat(), flag: False},
                                        {when: 1, flag: 1, met: 1, "status": 1}):
                if clock_owed(_aware(doc.get(when)), doc.get(flag), doc.get(met), doc.get("status"), now):
                    first_owing = first_owing or day
                    if len(owed) < limit:
                        owed.append(doc["_id"])
            day += timedelta(days=1)
        # `day` is the first day not looked at: move past the days seen to owe nothing,
        # never beyond yesterday
        position = min(first_owing or day, yesterday)
        if position > start:
            self._set_state(f"sweep:{kind}", day=position.isoformat())
        return owed

    def _set_state(self, key, **fields):
        """Set fields of a `store_state` document, made if missing. Two processes of the
        service (their timers, or their first start's `migrate`) can upsert the same new
        document at once; the loser's duplicate key is then a plain update of the winner's."""
        try:
            self._state.update_one({"_id": key}, {"$set": fields}, upsert=True)
        except DuplicateKeyError:
            self._state.update_one({"_id": key}, {"$set": fields})

    def _sweep_start(self, kind, yesterday):
        doc = self._state.find_one({"_id": f"sweep:{kind}"})
        return date.fromisoformat(doc["day"]) if doc else yesterday

    # -- after the intervention: the aftercare timer and survey tokens ---------------

    def agreement_reminders_owed(self, today, horizon, limit=200):
        """Ids of cases with an open agreement item not yet reminded that falls due by
        `horizon` (a London day), at most `limit`. The caller re-checks each case."""
        return self._swept("agreement_reminders", "agreement_remind_days", today, horizon, limit)

    def agreement_items_overdue(self, today, limit=200):
        """Ids of cases with an open agreement item whose due day is before `today`."""
        return self._swept("agreement_due", "agreement_due_days", today, today - timedelta(days=1), limit)

    def follow_ups_owed(self, today, limit=200):
        """Ids of cases whose follow-up survey falls due by `today` and is not yet asked for."""
        return self._swept("follow_up", "follow_up_day", today, today, limit)

    def retention_owed(self, today, limit=200):
        """Ids of cases whose retention period ends by `today` and is not yet applied."""
        return self._swept("retention", "retention_day", today, today, limit)

    def case_of_survey(self, key):
        """The id of the case holding the survey whose token has this key, or None."""
        doc = self._cases.find_one({"survey_keys": key}, {"_id": 1})
        return doc["_id"] if doc else None

    def _swept(self, name, field, today, last_day, limit):
        """Case ids in the day buckets `field` from the sweep position `name` up to
        `last_day`, one equality query per day; the position moves past the days seen to
        hold nothing, never beyond yesterday."""
        yesterday = min(_day(self._clock()), today) - timedelta(days=1)
        doc = self._state.find_one({"_id": f"sweep:{name}"})
        start = date.fromisoformat(doc["day"]) if doc else yesterday
        found, first_held, day = [], None, start
        while day <= last_day and len(found) < limit:
            for held in self._cases.find({field: day.isoformat()}, {"_id": 1}):
                first_held = first_held or day
                if len(found) < limit and held["_id"] not in found:
                    found.append(held["_id"])
            day += timedelta(days=1)
        position = min(first_held or day, yesterday)
        if position > start:
            self._set_state(f"sweep:{name}", day=position.isoformat())
        return found

    # -- test helpers -----------------------------------------------------------------

    def counts(self):
        """How many documents each collection of cases, changes, keys and accesses holds."""
        return {name: self.db[name].count_documents({}) for name in (CASES, CHANGES, DATA_KEYS, ACCESS_LOG)}

    def projected_case(self, case_id):
        """The case document as last projected, not rolled forward over later changes."""
        doc = self._cases.find_one({"_id": case_id})
        return _case(doc) if doc else None

    def all_accesses(self):
        """The whole access log, oldest first (a scan: for tests)."""
        return _accesses(self._access.find({}))

    def documents(self):
        """Every stored document of every collection, as (collection, raw document): for
        tests that check what is at rest, byte by byte."""
        for name in self.indexes:
            for doc in self.db[name].find():
                yield name, doc

    # -- the one-off backfill ---------------------------------------------------------

    def migrate(self):
        """Give cases stored by earlier releases the fields this one reads, once, at the first
        start (the marker in `store_state` says how far it is done), one pass for every step
        not yet made:
        1. `party_ids` and the day buckets, and the timer its sweep position;
        2. `measured_from`: `not_recorded` (an earlier release silently took the day a
           referral was received when it did not say when the crime was reported, and
           sealed that as if it had been given, so which it was cannot be told);
        3. the support_referral clock, worked out exactly from the victim_told_about_rj
           clock (deadlines.support_referral_beside; the day reported is sealed), marked
           `backfilled`. An event of it whose time came before this step is not owed:
           nothing could have met the clock before the platform kept it. The rest are
           announced as for any case.
        4. the due date (`next_due_at`, `next_due_kind`, `due_bucket`: due_dates.py), from
           the whole case as the steps before leave it.
        This reads the whole `cases` collection, the only query here that does, and only
        that once; running it twice, or in two processes at once, does the same again."""
        marker = self._state.find_one({"_id": "schema"})
        done = marker.get("version", 0) if marker is not None else 0
        if done >= SCHEMA_VERSION:
            return
        now = self._clock()
        yesterday = _day(now) - timedelta(days=1)
        oldest = {kind: yesterday for kind in CLOCKS}
        far = datetime.max.replace(tzinfo=timezone.utc)
        # step 4 reads the whole case; the steps before only the fields they derive from
        projection = None if done < 4 else {
            "referrer.party_id": 1, "participants.party_id": 1, "status": 1, "measured_from": 1, "deadline": 1,
            "support_deadline": 1, **{n: 1 for c in CLOCKS.values() for n in (c.at, c.flag, c.met)}}
        for doc in self._cases.find({}, projection):
            fields = {}
            if done < 1:
                fields["party_ids"] = ([doc.get("referrer", {}).get("party_id")]
                                       + [p["party_id"] for p in doc.get("participants") or []])
                for kind, clock in CLOCKS.items():
                    at = _aware(doc.get(clock.at))
                    if at is None:
                        continue
                    fields[DAY_FIELDS[kind]] = _day(at).isoformat()
                    if clock.flag not in doc:
                        fields[clock.flag] = False
                    if clock_owed(at, doc.get(clock.flag), doc.get(clock.met), doc.get("status"), far):
                        oldest[kind] = min(oldest[kind], _day(at))
            if done < 2 and not doc.get("measured_from"):
                fields["measured_from"] = NOT_RECORDED
            if done < 3 and not doc.get("support_deadline") and (doc.get("deadline") or {}).get("last_day"):
                fields.update(_backfilled_support_clock(doc["deadline"], now))
            if done < 4:
                try:
                    case = _case({**doc, **fields})
                except (TypeError, KeyError, ValueError):
                    # not a whole case: it gets no due date (so no due listing shows it), and the
                    # service still starts; the rest of the collection is migrated
                    log.error("migration: case %s is not a whole case; left without a due date", doc["_id"])
                else:
                    fields.update(due_dates.stored_fields(case, now))
            if fields:
                self._cases.update_one({"_id": doc["_id"]}, {"$set": fields})
        if done < 1:
            for kind, day in oldest.items():
                self._set_state(f"sweep:{kind}", day=day.isoformat())
        self._set_state("schema", version=SCHEMA_VERSION)


def _backfilled_support_clock(rj_deadline, now):
    """The support_referral clock fields of a case stored before it kept one (migrate, step 3)."""
    clock = support_referral_beside(date.fromisoformat(rj_deadline["last_day"]),
                                    bool(rj_deadline.get("enhanced_rights")))
    fields = {**support_clock_fields(clock, backfilled=True), "support_referrals": [], "support_settled_at": None}
    for kind, spec in CLOCKS.items():
        if spec.deadline == clock.deadline:
            fields[spec.flag] = fields[spec.at] <= now   # it came before the clock was kept: not owed
            fields[DAY_FIELDS[kind]] = _day(fields[spec.at]).isoformat()
    return fields


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _day(at):
    """The London day of an instant."""
    return at.astimezone(LONDON).date()


def _case_document(case, now):
    """The stored document of a new case, stored at `now`."""
    today = _day(now)
    doc = asdict(case)
    doc["_id"] = doc.pop("case_id")
    doc["party_ids"] = case.party_ids
    doc.update(_aftercare_fields(doc))
    doc.update(due_dates.stored_fields(case, now))
    doc.update(pending_fields(case.outbox))
    for kind, clock in CLOCKS.items():
        at = getattr(case, clock.at)
        if at is not None:
            doc[DAY_FIELDS[kind]] = max(_day(at), today).isoformat()
    return doc


def _aftercare_fields(state):
    """The day buckets and token keys of the aftercare fields that `state` sets."""
    derived = {}
    if "agreement" in state:
        derived["agreement_remind_days"] = agreement.remind_days(state["agreement"])
        derived["agreement_due_days"] = agreement.open_days(state["agreement"])
    if "follow_up" in state:
        derived["follow_up_day"] = surveys.follow_up_day(state["follow_up"])
    if "retention" in state:
        derived["retention_day"] = retention.due_day(state["retention"])
    if "surveys" in state:
        derived["survey_keys"] = surveys.keys(state["surveys"])
    return derived


def _case(doc):
    doc = _aware(doc)
    values = {name: doc[name] for name in CASE_FIELDS if name in doc and name != "case_id"}
    # a field stored as null takes its default (mongoengine left empty lists and dicts out)
    values = {name: value for name, value in values.items() if value is not None}
    return Case(case_id=doc["_id"], **values)


def _page(summaries, offset, limit, due=None):
    """One page of CaseSummary: newest first, or with a DueWindow only those in it, soonest first."""
    summaries.sort(key=lambda s: s.case_id)
    if due is None:
        summaries.sort(key=lambda s: s.created_at or _EPOCH, reverse=True)
    else:
        summaries = [s for s in summaries if due.holds(s.next_due_at)]
        summaries.sort(key=lambda s: s.next_due_at)
    return CasePage(items=summaries[offset:offset + limit], total=len(summaries))


def _summary(doc):
    doc = _aware(doc)
    return CaseSummary(case_id=doc["_id"], **{name: doc.get(name) for name in SUMMARY_FIELDS if name != "case_id"})


def _accesses(docs):
    entries = []
    for doc in docs:
        doc = _aware(doc)
        doc.pop("_id", None)
        entries.append(ContactAccess(**{k: v for k, v in doc.items() if k in _ACCESS_FIELDS}))
    entries.sort(key=lambda e: e.at or _EPOCH)
    return entries


_ACCESS_FIELDS = frozenset(ContactAccess.__dataclass_fields__)


def _aware(value):
    """`value` with every datetime in it timezone-aware (UTC): what a client made without
    tz_aware returns is read as the service's own client reads it."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, dict):
        return {k: _aware(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_aware(v) for v in value]
    return value
