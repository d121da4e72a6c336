"""The referrals store's contract: the same tests against the in-memory fake and the real
store on the running FerretDB, so the fake the workflow tests use behaves as the store.
The real store is also held to its query shapes: every read is an equality."""
import uuid
from datetime import datetime, timedelta, timezone

import pymongo
import pytest

from services.referrals.cases import (
    AlreadyStored,
    Case,
    CaseChange,
    ContactAccess,
    DataKey,
    change_key,
    next_change,
)
from services.referrals.memory_store import InMemoryReferralsStore
from services.referrals.store import ReferralsStore
from services.referrals.store import _day as london_day
from shared.config import settings_for
from tests.conftest import MONGO_URI
from tests.plans import CommandLog

# the stores below take this as their clock too, so a test run that crosses midnight
# (London) sees one day throughout
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(params=["memory", "ferretdb"])
def store(request):
    if request.param == "memory":
        yield InMemoryReferralsStore()
        return
    db_prefix = request.getfixturevalue("db_prefix")
    settings = settings_for("referrals", {"MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": db_prefix})
    commands = CommandLog()
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True, event_listeners=[commands])
    real = ReferralsStore(client[settings.database], clock=lambda: NOW)
    real.ensure_indexes(settings.ferretdb_postgresql_url)
    real.commands = commands
    try:
        yield real
    finally:
        client.close()


def party(prefix="p"):
    return f"{prefix}-{uuid.uuid4().hex}"


def a_case(region="south-wales", agency="agency-a", status="RECEIVED", created_at=NOW, notice_at=None,
           due_at=None, facilitators=(), **changes):
    notice_at = notice_at or NOW + timedelta(days=3)
    case = Case(
        case_id=str(uuid.uuid4()), status=status, agency=agency, region=region,
        attributes={"offence_category": "theft", "flags": []},
        referrer={"party_id": party("ref"), "attributes": {"language": "en"}, "sealed": "c2VhbGVk"},
        participants=[{"party_id": party(), "role": role, "attributes": {"age_band": "18_24"}, "contact_safe": True,
                       "sealed": "c2VhbGVk"} for role in ("harmed", "harmer")],
        sensitive={"owner_id": "record-1", "sealed": "c2VhbGVk"},
        deadline={"deadline": "victim_told_about_rj", "last_day": london_day(notice_at).isoformat(),
                  "enhanced_rights": False},
        deadline_notice_at=notice_at, deadline_due_at=due_at or notice_at + timedelta(days=1),
        facilitators=list(facilitators), created_at=created_at, updated_at=created_at,
        outbox=[{"id": str(uuid.uuid4()), "type": "referral.received"}])
    for name, value in changes.items():
        setattr(case, name, value)
    return case


def test_the_fake_has_the_stores_public_methods():
    def public(cls):
        return {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}
    assert public(InMemoryReferralsStore) == public(ReferralsStore)
    assert InMemoryReferralsStore.outbox_collections == ReferralsStore.outbox_collections
    assert (InMemoryReferralsStore.cases_outbox, InMemoryReferralsStore.changes_outbox) == (
        ReferralsStore.cases_outbox, ReferralsStore.changes_outbox)


# --- cases ------------------------------------------------------------------------

def test_a_case_comes_back_as_it_was_stored(store):
    case = a_case(intake_fingerprint="f" * 64)
    store.insert_case(case)
    assert store.load_case(case.case_id) == case
    assert store.load_case(str(uuid.uuid4())) is None


def test_a_case_id_is_claimed_once(store):
    case = a_case()
    store.insert_case(case)
    with pytest.raises(AlreadyStored):
        store.insert_case(a_case(case_id=case.case_id, region="gwent"))
    assert store.load_case(case.case_id).region == "south-wales"
    assert store.counts()["cases"] == 1


def test_the_intake_fingerprint_tells_no_case_from_a_case_without_one(store):
    keyed, plain = a_case(intake_fingerprint="abc"), a_case()
    store.insert_case(keyed)
    store.insert_case(plain)
    assert store.intake_fingerprint(keyed.case_id) == "abc"
    assert store.intake_fingerprint(plain.case_id) == ""
    assert store.intake_fingerprint(str(uuid.uuid4())) is None


def test_a_person_is_found_on_their_case(store):
    case, other = a_case(), a_case()
    store.insert_case(case)
    store.insert_case(other)
    assert store.case_of_party(case.referrer["party_id"]) == case.case_id
    assert store.case_of_party(case.participants[1]["party_id"]) == case.case_id
    assert store.case_of_party(other.participants[0]["party_id"]) == other.case_id
    assert store.case_of_party(party()) is None


# --- changes ----------------------------------------------------------------------

def test_each_version_is_made_once_and_the_loser_is_told(store):
    case = a_case()
    store.insert_case(case)
    first, second = store.load_case(case.case_id), store.load_case(case.case_id)
    won = store.record_change(first, next_change(first, {"status": "TRIAGE"}, [{"id": "e1"}], "test"))
    assert won is not None and won.change_id == change_key(case.case_id, 1) and won.outbox == [{"id": "e1"}]
    assert (first.status, first.version) == ("TRIAGE", 1)
    lost = store.record_change(second, next_change(second, {"status": "CLOSED"}, [], "test"))
    assert lost is None and second.status == "RECEIVED"
    again = store.load_case(case.case_id)
    assert (again.status, again.version) == ("TRIAGE", 1)
    assert store.projected_case(case.case_id).version == 1
    assert store.change(won.change_id).state["status"] == "TRIAGE"


def test_a_change_whose_projection_was_lost_is_rolled_forward_and_repaired(store):
    case = a_case()
    store.insert_case(case)
    for version, status in ((1, "TRIAGE"), (2, "CONTACTING")):
        store.insert_change(CaseChange(change_id=change_key(case.case_id, version), case_id=case.case_id,
                                       version=version, state={"status": status}, by="test"))
    with pytest.raises(AlreadyStored):
        store.insert_change(CaseChange(change_id=change_key(case.case_id, 1), case_id=case.case_id, version=1,
                                       state={"status": "CLOSED"}))
    assert store.projected_case(case.case_id).status == "RECEIVED"
    loaded = store.load_case(case.case_id)
    assert (loaded.status, loaded.version) == ("CONTACTING", 2)
    assert (store.projected_case(case.case_id).status, store.projected_case(case.case_id).version) == (
        "CONTACTING", 2)


def test_what_is_returned_is_a_copy(store):
    case = a_case()
    store.insert_case(case)
    loaded = store.load_case(case.case_id)
    loaded.status = "CLOSED"
    loaded.participants[0]["role"] = "supporter"
    again = store.load_case(case.case_id)
    assert again.status == "RECEIVED" and again.participants[0]["role"] == "harmed"


# --- data keys --------------------------------------------------------------------

def test_data_keys_are_kept_once_and_shredded(store):
    owner, other = party(), party()
    store.save_data_keys([DataKey(owner, b"wrapped-1"), DataKey(other, b"wrapped-2")])
    assert store.data_key(owner) == b"wrapped-1"
    with pytest.raises(AlreadyStored):
        store.save_data_keys([DataKey(owner, b"again")])
    assert store.data_key(owner) == b"wrapped-1"
    store.shred(owner)
    assert store.data_key(owner) is None and store.data_key(other) == b"wrapped-2"
    assert store.counts()["data_keys"] == 1


# --- the access log ---------------------------------------------------------------

def test_the_access_log_of_a_case_and_of_a_person_oldest_first(store):
    case_id, someone = str(uuid.uuid4()), party()
    late = ContactAccess(someone, case_id, "case_view", "coordinator:c1", True, "granted", ["name"],
                         key_id="k1", at=NOW)
    early = ContactAccess(someone, case_id, "referrer_update", "notifications", False, "consent_withdrawn",
                          at=NOW - timedelta(minutes=5))
    elsewhere = ContactAccess(party(), None, "marketing", "notifications", False, "unknown_purpose", at=NOW)
    for entry in (late, early, elsewhere):
        store.log_access(entry)
    assert store.access_log(case_id) == [early, late]
    assert store.accesses_of_party(someone) == [early, late]
    assert store.access_log(str(uuid.uuid4())) == []
    assert len(store.all_accesses()) == 3


# --- the listing ------------------------------------------------------------------

def test_the_listing_filters_by_equality_and_one_of_several_values(store):
    newest = a_case(region="gwent", created_at=NOW, facilitators=["fac-1", "fac-2"])
    middle = a_case(region="south-wales", created_at=NOW - timedelta(hours=1), facilitators=["fac-2"])
    oldest = a_case(region="dyfed", agency="agency-b", status="TRIAGE", created_at=NOW - timedelta(hours=2))
    for case in (oldest, newest, middle):
        store.insert_case(case)
    ids = lambda page: [s.case_id for s in page.items]  # noqa: E731
    everything = store.list_cases({})
    assert ids(everything) == [newest.case_id, middle.case_id, oldest.case_id] and everything.total == 3
    assert everything.items[0].region == "gwent" and everything.items[0].created_at == NOW
    assert ids(store.list_cases({"agency": "agency-a"})) == [newest.case_id, middle.case_id]
    assert ids(store.list_cases({"status": "TRIAGE", "agency": "agency-b"})) == [oldest.case_id]
    assert ids(store.list_cases({}, {"region": ["dyfed", "gwent", "gwent"]})) == [newest.case_id, oldest.case_id]
    assert ids(store.list_cases({"agency": "agency-a"}, {"region": ["dyfed", "gwent"]})) == [newest.case_id]
    assert ids(store.list_cases({}, {"facilitators": ["fac-2"]})) == [newest.case_id, middle.case_id]
    assert ids(store.list_cases({}, {"facilitators": ["fac-1"]})) == [newest.case_id]
    assert store.list_cases({}, {"region": []}).total == 0
    page = store.list_cases({}, offset=1, limit=1)
    assert ids(page) == [middle.case_id] and page.total == 3


def test_the_listing_finds_the_cases_whose_clocks_run_from_the_day_received(store):
    unreported = a_case(measured_from="referral_received", region="gwent")
    reported = a_case(measured_from="crime_reported", region="gwent")
    elsewhere = a_case(measured_from="referral_received", region="dyfed")
    for case in (unreported, reported, elsewhere):
        store.insert_case(case)
    found = store.list_cases({"measured_from": "referral_received"}, {"region": ["gwent"]})
    assert [s.case_id for s in found.items] == [unreported.case_id]
    assert found.items[0].measured_from == "referral_received"
    assert store.list_cases({"measured_from": "crime_reported"}).total == 1


def test_cases_created_at_the_same_moment_are_listed_by_id(store):
    cases = [a_case(created_at=NOW) for _ in range(3)]
    for case in cases:
        store.insert_case(case)
    assert [s.case_id for s in store.list_cases({}).items] == sorted(c.case_id for c in cases)


# --- the Victims' Code clocks -----------------------------------------------------

def test_a_clock_is_owed_once_it_has_come_until_its_event_is_sent(store):
    hour = timedelta(hours=1)
    past = a_case(notice_at=NOW - timedelta(days=10), due_at=NOW - timedelta(days=9))
    notice_only = a_case(notice_at=NOW - hour, due_at=NOW + timedelta(days=1))
    future = a_case(notice_at=NOW + timedelta(days=2))
    told = a_case(notice_at=NOW - timedelta(days=10), victim_told_at=NOW - timedelta(days=11))
    closed = a_case(notice_at=NOW - timedelta(days=10), status="CLOSED")
    sent = a_case(notice_at=NOW - timedelta(days=10), due_at=NOW - timedelta(days=9), deadline_due_sent=True,
                  deadline_missed_sent=True)
    for case in (past, notice_only, future, told, closed, sent):
        store.insert_case(case)
    assert sorted(store.owed_clocks("due", NOW)) == sorted([past.case_id, notice_only.case_id])
    assert store.owed_clocks("missed", NOW) == [past.case_id]
    assert len(store.owed_clocks("due", NOW, limit=1)) == 1
    # the event is sent by a change that sets the flag: then it is owed no more
    case = store.load_case(past.case_id)
    assert store.record_change(case, next_change(case, {"deadline_due_sent": True}, [], "timer")) is not None
    assert store.owed_clocks("due", NOW) == [notice_only.case_id]
    assert store.owed_clocks("missed", NOW) == [past.case_id]
    # told after the clock came: owed no more either
    case = store.load_case(notice_only.case_id)
    store.record_change(case, next_change(case, {"victim_told_at": NOW}, [], "event:x"))
    assert store.owed_clocks("due", NOW) == []
    # a later tick, the next day: the future clock has come
    assert store.owed_clocks("due", NOW + timedelta(days=3)) == [future.case_id]


def test_the_support_clock_is_owed_until_it_is_settled(store):
    past = a_case(support_notice_at=NOW - timedelta(days=10), support_due_at=NOW - timedelta(days=9))
    due_today = a_case(support_notice_at=NOW - timedelta(hours=1), support_due_at=NOW + timedelta(days=1))
    settled = a_case(support_notice_at=NOW - timedelta(days=10), support_due_at=NOW - timedelta(days=9),
                     support_settled_at=NOW - timedelta(days=11))
    closed = a_case(support_notice_at=NOW - timedelta(days=10), support_due_at=NOW - timedelta(days=9),
                    status="CLOSED")
    without = a_case()   # stored without a support clock
    for case in (past, due_today, settled, closed, without):
        store.insert_case(case)
    assert sorted(store.owed_clocks("support_due", NOW)) == sorted([past.case_id, due_today.case_id])
    assert store.owed_clocks("support_missed", NOW) == [past.case_id]
    # the victim_told_about_rj clock of the same cases is a clock of its own
    assert past.case_id not in store.owed_clocks("due", NOW)
    case = store.load_case(past.case_id)
    store.record_change(case, next_change(case, {"support_due_sent": True}, [], "timer"))
    assert store.owed_clocks("support_due", NOW) == [due_today.case_id]
    case = store.load_case(due_today.case_id)
    store.record_change(case, next_change(case, {"support_settled_at": NOW, "support_referrals": [
        {"participant_id": case.participants[0]["party_id"], "outcome": "declined", "service": None,
         "by": "coordinator:c1", "at": NOW}]}, [], "coordinator:c1"))
    assert store.owed_clocks("support_due", NOW) == []
    assert store.owed_clocks("support_missed", NOW + timedelta(days=2)) == [past.case_id]
    assert store.load_case(due_today.case_id).support_referrals[0]["outcome"] == "declined"


def test_a_clock_stored_after_it_came_is_owed_on_the_next_tick(store):
    assert store.owed_clocks("due", NOW) == []
    late = a_case(notice_at=NOW - timedelta(days=400), due_at=NOW - timedelta(days=399))
    store.insert_case(late)
    assert store.owed_clocks("due", NOW) == [late.case_id]
    assert store.owed_clocks("missed", NOW) == [late.case_id]


def test_the_aftercare_buckets_find_what_is_owed_until_it_is_done(store):
    """Agreement items (reminders ahead, missed once past), follow-ups and retention, each
    found by its day and no longer once the change that does it is made."""
    today = london_day(NOW)

    def day(offset):
        return (today + timedelta(days=offset)).isoformat()

    def item(item_id, due_on, **changes):
        return {"item_id": item_id, "kind": "apology", "owner_id": "p-1", "owner_role": "harmer", "due_on": due_on,
                "status": "open", "reminded_at": None, **changes}

    def stored(**state):
        case = a_case()
        store.insert_case(case)
        loaded = store.load_case(case.case_id)
        assert store.record_change(loaded, next_change(loaded, state, [], "test"))
        return case.case_id

    soon = stored(agreement={"agreement_id": "agr-1", "status": "open",
                             "items": [item("a", day(0)), item("b", day(20))]})
    overdue = stored(agreement={"agreement_id": "agr-2", "status": "open",
                                "items": [item("c", day(-1), reminded_at=NOW - timedelta(days=3))]})
    settled = stored(agreement={"agreement_id": "agr-3", "status": "completed", "items": [item("d", day(-1))]})
    follow_up = stored(follow_up={"due_on": day(0), "requested_at": None})
    later = stored(follow_up={"due_on": day(2), "requested_at": None})
    kept = stored(retention={"reason": "no_contact", "due_on": day(0), "reduced_at": None})
    surveyed = stored(surveys=[{"survey_id": "srv-1", "key": "key-1"}, {"survey_id": "srv-2", "key": "key-2"}])
    assert store.agreement_reminders_owed(today, today + timedelta(days=3)) == [soon]
    assert sorted(store.agreement_reminders_owed(today, today + timedelta(days=20))) == [soon]
    assert store.agreement_items_overdue(today) == [overdue]
    assert store.follow_ups_owed(today) == [follow_up] and sorted(store.follow_ups_owed(
        today + timedelta(days=2))) == sorted([follow_up, later])
    assert store.retention_owed(today) == [kept] and store.retention_owed(today - timedelta(days=1)) == []
    assert store.case_of_survey("key-2") == surveyed and store.case_of_survey("key-9") is None
    assert settled not in store.agreement_items_overdue(today)
    # done: the change that does it takes the case out of its bucket
    for case_id, state in ((overdue, {"agreement": {"agreement_id": "agr-2", "status": "not_completed",
                                                    "items": [item("c", day(-1), status="missed")]}}),
                           (follow_up, {"follow_up": {"due_on": day(0), "requested_at": NOW}}),
                           (kept, {"retention": {"reason": "no_contact", "due_on": day(0), "reduced_at": NOW}})):
        loaded = store.load_case(case_id)
        assert store.record_change(loaded, next_change(loaded, state, [], "timer"))
    assert store.agreement_items_overdue(today) == [] and store.follow_ups_owed(today) == []
    assert store.retention_owed(today) == []


# --- the real store only ----------------------------------------------------------

@pytest.fixture
def ferretdb_store(db_prefix):
    settings = settings_for("referrals", {"MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": db_prefix})
    commands = CommandLog()
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True, event_listeners=[commands])
    store = ReferralsStore(client[settings.database], clock=lambda: NOW)
    store.ensure_indexes(settings.ferretdb_postgresql_url)
    store.commands = commands
    try:
        yield store
    finally:
        client.close()


def test_the_declared_indexes_exist(ferretdb_store):
    from tests.support import missing_indexes
    assert missing_indexes(ferretdb_store.db, ReferralsStore.indexes) == []


def test_every_query_the_workflows_cause_is_an_equality(ferretdb_store):
    store = ferretdb_store
    case = a_case(notice_at=NOW - timedelta(days=10), facilitators=["fac-1"])
    store.insert_case(case)
    store.save_data_keys([DataKey(case.referrer["party_id"], b"k")])
    store.commands.seen.clear()
    loaded = store.load_case(case.case_id)
    store.record_change(loaded, next_change(loaded, {"status": "TRIAGE"}, [], "test"))
    store.intake_fingerprint(case.case_id)
    store.case_of_party(case.participants[0]["party_id"])
    store.list_cases({"status": "TRIAGE"}, {"region": ["gwent", "south-wales"]})
    store.list_cases({}, {"facilitators": ["fac-1"]})
    store.data_key(case.referrer["party_id"])
    store.shred(case.referrer["party_id"])
    store.log_access(ContactAccess(party(), case.case_id, "case_view", "coordinator:c1", True, "granted"))
    store.access_log(case.case_id)
    store.accesses_of_party("p-x")
    owed = store.owed_clocks("due", NOW)
    assert owed == [case.case_id]
    assert store.owed_clocks("support_due", NOW) == store.owed_clocks("support_missed", NOW) == []
    store.list_cases({"measured_from": "referral_received"}, {"region": ["gwent", "south-wales"]})
    today = london_day(NOW)
    store.agreement_reminders_owed(today, today + timedelta(days=3))
    store.agreement_items_overdue(today)
    store.follow_ups_owed(today)
    store.retention_owed(today)
    store.case_of_survey("key-1")
    filters = []
    for name, command in store.commands.seen:
        if name in ("find", "count", "aggregate", "distinct"):
            filters.append(command.get("filter", command.get("query")))
            assert not command.get("sort"), command
        elif name in ("update", "delete"):
            filters += [statement["q"] for statement in command.get("updates", command.get("deletes", []))]
    assert len(filters) >= 15
    for query in filters:
        assert query, "a read or write of the whole collection"
        for field, value in query.items():
            assert not field.startswith("$"), query
            if isinstance(value, dict):
                # the one guard allowed: a projection's version check, on a document found by _id
                assert field == "version" and set(value) == {"$lt"} and "_id" in query, query
            else:
                assert isinstance(value, (str, int, bool, datetime)), query


def test_the_first_start_backfills_cases_stored_before_the_store(ferretdb_store):
    store = ferretdb_store
    case = a_case(notice_at=NOW - timedelta(days=30), due_at=NOW - timedelta(days=29))
    store.insert_case(case)
    # as the service stored it before: no party_ids, no day buckets, and no schema marker yet
    store.db.cases.update_one({"_id": case.case_id}, {"$unset": {
        "party_ids": "", "deadline_notice_day": "", "deadline_due_day": ""}})
    store.db.store_state.delete_many({})
    assert store.case_of_party(case.participants[0]["party_id"]) is None
    store.migrate()
    assert store.case_of_party(case.participants[0]["party_id"]) == case.case_id
    assert store.owed_clocks("due", NOW) == [case.case_id]
    assert store.owed_clocks("missed", NOW) == [case.case_id]
    # once done, it is not done again
    store.db.cases.update_one({"_id": case.case_id}, {"$unset": {"party_ids": ""}})
    store.migrate()
    assert store.case_of_party(case.participants[0]["party_id"]) is None


def test_an_upgrade_marks_cases_stored_without_their_clock_basis_as_not_recorded(ferretdb_store):
    store = ferretdb_store
    old, new = a_case(), a_case(measured_from="referral_received")
    store.insert_case(old)
    store.insert_case(new)
    # as the previous release left them: no basis stored, its migration (version 1) done
    store.db.cases.update_one({"_id": old.case_id}, {"$unset": {"measured_from": ""}})
    store.db.store_state.update_one({"_id": "schema"}, {"$set": {"version": 1}}, upsert=True)
    store.db.cases.update_one({"_id": old.case_id}, {"$unset": {"party_ids": ""}})  # step 1 is not made again
    store.migrate()
    assert store.load_case(old.case_id).measured_from == "not_recorded"
    assert store.load_case(new.case_id).measured_from == "referral_received"
    assert store.list_cases({"measured_from": "not_recorded"}).items[0].case_id == old.case_id
    assert store.case_of_party(old.participants[0]["party_id"]) is None


def test_an_upgrade_gives_older_cases_their_support_clock_worked_out_from_the_first(ferretdb_store):
    from datetime import date

    from services.referrals import deadlines
    store = ferretdb_store
    today = london_day(NOW)

    def stored_before(reported_on, enhanced=False):
        rj = deadlines.victim_told_about_rj(reported_on, enhanced)
        case = a_case(notice_at=rj.notice_at, due_at=rj.due_at, deadline={
            "deadline": rj.deadline, "last_day": rj.last_day.isoformat(), "enhanced_rights": enhanced})
        store.insert_case(case)
        # as the previous release left it: no support clock at all
        store.db.cases.update_one({"_id": case.case_id}, {"$unset": {name: "" for name in (
            "support_deadline", "support_notice_at", "support_due_at", "support_due_sent", "support_missed_sent",
            "support_settled_at", "support_referrals", "support_notice_day", "support_due_day")}})
        return case, deadlines.support_referral(reported_on, enhanced)

    old, old_clock = stored_before(date(2026, 1, 2))
    recent, recent_clock = stored_before(today, enhanced=True)
    store.db.store_state.update_one({"_id": "schema"}, {"$set": {"version": 2}}, upsert=True)
    store.migrate()
    for case, clock in ((old, old_clock), (recent, recent_clock)):
        loaded = store.load_case(case.case_id)
        assert loaded.support_deadline == {"deadline": "support_referral", "last_day": clock.last_day.isoformat(),
                                           "enhanced_rights": clock.enhanced_rights, "backfilled": True}
        assert (loaded.support_notice_at, loaded.support_due_at) == (clock.notice_at, clock.due_at)
        assert loaded.support_referrals == [] and loaded.support_settled_at is None
    # a clock that fell before it was kept is shown, not announced: nothing could have met it
    assert store.load_case(old.case_id).support_missed_sent is True
    assert store.owed_clocks("support_missed", NOW + timedelta(days=7)) == [recent.case_id]
    assert store.owed_clocks("support_due", NOW + timedelta(days=7)) == [recent.case_id]


def test_the_sweep_moves_past_days_that_owe_nothing(ferretdb_store):
    store = ferretdb_store
    old_day = london_day(NOW - timedelta(days=30))
    old = a_case(notice_at=NOW - timedelta(days=30), due_at=NOW - timedelta(days=29))
    store.insert_case(old)
    # stored with the day its clock fell on (as the backfill does), the sweep 40 days behind
    store.db.cases.update_one({"_id": old.case_id}, {"$set": {"deadline_notice_day": old_day.isoformat()}})
    store.db.store_state.update_one({"_id": "sweep:due"}, {"$set": {
        "day": (old_day - timedelta(days=10)).isoformat()}}, upsert=True)
    assert store.owed_clocks("due", NOW) == [old.case_id]
    # it stops at the first day that still owes something
    assert store.db.store_state.find_one({"_id": "sweep:due"})["day"] == old_day.isoformat()
    case = store.load_case(old.case_id)
    store.record_change(case, next_change(case, {"deadline_due_sent": True}, [], "timer"))
    assert store.owed_clocks("due", NOW) == []
    yesterday = london_day(NOW) - timedelta(days=1)
    assert store.db.store_state.find_one({"_id": "sweep:due"})["day"] == yesterday.isoformat()
    store.commands.seen.clear()
    assert store.owed_clocks("due", NOW) == []
    # the sweep position, then yesterday and today
    assert [name for name, _ in store.commands.seen] == ["find", "find", "find"]
