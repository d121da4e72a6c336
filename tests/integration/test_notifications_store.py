"""The notifications store's contract, run against the in-memory fake and against the
real store on FerretDB (a database of the test's own): what the workflow relies on,
and, for the real store, that every query it issues is an equality shape on `_id` or
on fields it declares an index for.
"""
import os
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pymongo
import pytest

from services.notifications.deliveries import Delivery, DeliveryExists, delivery_key, notification_id
from services.notifications.memory_store import InMemoryNotificationsStore
from services.notifications.store import NotificationsStore
from shared.config import settings_for

MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
NOON = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
STALE = timedelta(seconds=90)


class RecordingCollection:
    """A pymongo Collection that notes the filter and options of every query."""

    QUERIES = ("find", "find_one", "update_one", "update_many", "delete_one", "delete_many", "replace_one",
               "count_documents", "find_one_and_update", "find_one_and_delete", "find_one_and_replace")

    def __init__(self, collection, seen):
        self._collection = collection
        self._seen = seen

    def __getattr__(self, name):
        method = getattr(self._collection, name)
        if name not in self.QUERIES:
            return method

        def recorded(query=None, *args, **kwargs):
            self._seen.append((self._collection.name, name, query or {}, kwargs))
            return method(query, *args, **kwargs)
        return recorded


class RecordingDatabase:
    def __init__(self, db):
        self._db = db
        self.seen = []

    def __getitem__(self, name):
        return RecordingCollection(self._db[name], self.seen)

    def __getattr__(self, name):
        return getattr(self._db, name)


@pytest.fixture
def real_store(request):
    db_prefix = request.getfixturevalue("db_prefix")
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True, uuidRepresentation="standard",
                                 serverSelectionTimeoutMS=10000)
    db = RecordingDatabase(client[f"{db_prefix}_notifications"])
    store = NotificationsStore(db)
    store.ensure_indexes(settings_for("notifications", {}).ferretdb_postgresql_url)
    store.recorded = db
    yield store
    client.close()


@pytest.fixture(params=["in_memory", "ferretdb"])
def store(request):
    if request.param == "in_memory":
        return InMemoryNotificationsStore()
    return request.getfixturevalue("real_store")


def a_delivery(tag=None, **changes):
    tag = tag or uuid.uuid4().hex[:8]
    base = dict(
        event_id=f"ev-{tag}", event_type="referral.received", case_id=f"case-{tag}", recipient_role="harmed",
        recipient_id=f"ph-{tag}", purpose="participant_information", holder="referrals", channel="email",
        template="harmed.referral_received", status="sending", correlationid=f"case-{tag}", language="cy",
        attempts=0, claimed_at=NOON, due_at=None, reason=None,
        facts={"case_ref": f"case-{tag}", "role": "harmed", "event_type": "referral.received"}, at=NOON)
    base.update(changes)
    return Delivery(key=delivery_key(base["event_id"], base["recipient_id"], base["channel"]),
                    notification_id=notification_id(base["event_id"], base["recipient_id"]), **base)


def an_event(n=1):
    return {"id": str(uuid.uuid4()), "type": "notification.sent", "time": NOON.isoformat(), "data": {"n": n}}


# -- the case directory ----------------------------------------------------------------

def test_a_case_is_remembered_and_a_copy_of_its_referral_keeps_what_came_later(store):
    assert store.case("case-d1") is None
    summary = {"agency": "gwent-police", "region": "gwent", "flags": ["youth"]}
    people = [{"participant_id": "p-1", "role": "harmed", "age_band": "50_64", "language": "cy",
               "access_needs": []}]
    store.record_referral("case-d1", "ref-1", summary, people)
    assert store.record_assessment("case-d1", {"decision": "suitable", "risk_level": "low"})
    assert store.record_assignment("case-d1", "asg-1", {"facilitator_id": "fac-1", "role": "lead"})
    store.record_referral("case-d1", "ref-1", summary, people)  # a copy of referral.received
    entry = store.case("case-d1")
    assert (entry.case_id, entry.referrer_id, entry.summary, entry.participants) == (
        "case-d1", "ref-1", summary, people)
    assert entry.assessment == {"decision": "suitable", "risk_level": "low"}
    assert entry.assignment("asg-1") == {"facilitator_id": "fac-1", "role": "lead"}
    assert entry.participant("p-1")["language"] == "cy" and entry.recorded_at is not None


def test_what_follows_a_referral_needs_the_case_first(store):
    assert store.record_assessment("case-none", {"decision": "suitable"}) is False
    assert store.record_assignment("case-none", "asg-1", {"facilitator_id": "f", "role": "lead"}) is False
    assert store.case("case-none") is None


def test_an_assignment_id_that_is_not_a_safe_key_is_found_by_its_own_id(store):
    store.record_referral("case-d2", "ref-2", {}, [])
    assert store.record_assignment("case-d2", "asg.1$x", {"facilitator_id": "fac-2", "role": "co_facilitator"})
    entry = store.case("case-d2")
    assert entry.assignment("asg.1$x") == {"facilitator_id": "fac-2", "role": "co_facilitator"}
    assert entry.assignment("asg.2") is None


def test_an_assignment_outlives_a_racing_write_of_the_case_entry(real_store):
    """matching announces a case's assessment and its offers together; on FerretDB an update
    of the case's entry racing another is a read-modify-write, and one can undo the other.
    The offer is an insert of its own, so the entry's write cannot take it away."""
    real_store.record_referral("case-d5", "ref-5", {}, [])
    directory = real_store.recorded["case_directory"]
    read_before = directory.find_one({"_id": "case-d5"})
    assert real_store.record_assignment("case-d5", "asg-5", {"facilitator_id": "fac-5", "role": "lead"})
    # the assessment's writer read the entry before the offer came, and writes it back whole
    directory.replace_one({"_id": "case-d5"}, {**read_before, "assessment": {"decision": "suitable"}})
    entry = real_store.case("case-d5")
    assert entry.assessment == {"decision": "suitable"}
    assert entry.assignment("asg-5") == {"facilitator_id": "fac-5", "role": "lead"}


def test_an_acceptance_is_remembered_once_by_case(store):
    store.record_acceptance("case-d3", "asg-3", NOON)
    store.record_acceptance("case-d3", "asg-3", NOON + timedelta(hours=1))   # a copy of the event
    store.record_acceptance("case-d3", "asg-4", NOON + timedelta(days=1))
    store.record_acceptance("case-d4", "asg-5", NOON)
    assert store.acceptances("case-d3") == {"asg-3": NOON, "asg-4": NOON + timedelta(days=1)}
    assert store.acceptances("case-none") == {}


def test_runs_are_counted_per_event(store):
    assert [store.count_run("ev-a") for _ in range(3)] == [1, 2, 3]
    assert store.count_run("ev-b") == 1


# -- deliveries ---------------------------------------------------------------------------

def test_a_delivery_reads_back_as_stored_with_times_to_the_millisecond(store):
    moment = NOON + timedelta(microseconds=123456)
    delivery = a_delivery(claimed_at=moment, at=moment, due_at=NOON + timedelta(hours=6), reason="x")
    store.insert_delivery(delivery)
    kept = replace(delivery, claimed_at=NOON + timedelta(microseconds=123000), at=NOON + timedelta(microseconds=123000))
    assert store.delivery(delivery.key) == kept
    assert store.delivery_for(delivery.event_id, delivery.recipient_id) == kept
    assert store.delivery_for(delivery.event_id, "someone-else") is None
    assert store.delivery("no-such-key") is None
    assert store.delivery(delivery.key).claimed_at.utcoffset() == timedelta(0)


def test_a_second_delivery_for_the_same_key_or_the_same_event_and_recipient_is_refused(store):
    first = a_delivery()
    store.insert_delivery(first, [an_event()])
    for copy in (replace(first, status="deferred"), replace(first, key=first.key.rsplit(":", 1)[0] + ":sms",
                                                             channel="sms")):
        with pytest.raises(DeliveryExists):
            store.insert_delivery(copy, [an_event(2)])
    assert store.delivery(first.key) == first
    assert [e["data"] for e in store.pending_events(first.key)] == [{"n": 1}]


def test_what_is_read_is_a_copy(store):
    delivery = a_delivery()
    store.insert_delivery(delivery)
    read = store.delivery(delivery.key)
    read.status, read.facts["role"] = "sent", "changed"
    assert store.delivery(delivery.key) == delivery


def test_the_outbox_holds_the_events_of_the_last_state_change(store):
    delivery = a_delivery()
    store.insert_delivery(delivery, [an_event(1)])
    assert [e["data"]["n"] for e in store.pending_events(delivery.key)] == [1]
    assert store.settle(delivery.key, "sent", None, [an_event(2)], at=NOON, attempts=1, language="en")
    assert [e["data"]["n"] for e in store.pending_events(delivery.key)] == [2]
    assert store.pending_events("no-such-key") == []


def test_a_state_is_claimed_once(store):
    deferred = a_delivery(status="deferred", due_at=NOON, claimed_at=NOON - timedelta(hours=1))
    store.insert_delivery(deferred)
    later = NOON + timedelta(minutes=1)
    claimed = store.claim(deferred, later)
    assert claimed == replace(deferred, status="sending", claimed_at=later)
    assert store.claim(deferred, later + timedelta(seconds=1)) is None  # the same state, read by another
    # the new state (a claim gone stale) can be taken over, once
    takeover = later + STALE * 2
    assert store.claim(claimed, takeover).claimed_at == takeover
    assert store.claim(claimed, takeover + timedelta(seconds=1)) is None


def test_a_claim_from_a_state_the_delivery_has_left_is_refused(store):
    deferred = a_delivery(status="deferred", due_at=NOON)
    store.insert_delivery(deferred)
    store.force_delivery_state(deferred.key, status="sent")
    assert store.claim(deferred, NOON) is None
    assert store.delivery(deferred.key).status == "sent"


def test_a_delivery_is_changed_only_while_it_is_claimed(store):
    delivery = a_delivery(status="deferred", due_at=NOON)
    store.insert_delivery(delivery)
    assert store.settle(delivery.key, "sent", None, [an_event()], at=NOON) is False
    assert store.mark_retrying(delivery.key, 1, "smtp_451") is False
    assert store.back_off(delivery.key, 1, "smtp_451", NOON) is False
    assert store.delivery(delivery.key) == delivery and store.pending_events(delivery.key) == []
    assert store.settle("no-such-key", "sent", None, [], at=NOON) is False


def test_the_changes_of_a_claimed_delivery(store):
    delivery = a_delivery()
    store.insert_delivery(delivery)
    assert store.mark_retrying(delivery.key, 1, "smtp_451")
    assert store.delivery(delivery.key) == replace(delivery, status="retrying", attempts=1, reason="smtp_451")
    store.force_delivery_state(delivery.key, status="sending")
    due = NOON + timedelta(seconds=5)
    assert store.back_off(delivery.key, 2, "smtp_421", due)
    assert store.delivery(delivery.key) == replace(delivery, status="deferred", attempts=2, reason="smtp_421",
                                                   due_at=due)
    store.force_delivery_state(delivery.key, status="sending")
    until = NOON + timedelta(hours=6)
    assert store.settle(delivery.key, "deferred", "outside_safe_contact_window", [an_event()], at=due,
                        due_at=until)
    assert store.delivery(delivery.key) == replace(delivery, status="deferred", attempts=2, due_at=until,
                                                   reason="outside_safe_contact_window", at=due)
    store.force_delivery_state(delivery.key, status="sending")
    assert store.settle(delivery.key, "sent", None, [an_event()], at=until, attempts=3, language="en")
    assert store.delivery(delivery.key) == replace(delivery, status="sent", attempts=3, language="en",
                                                   reason=None, due_at=None, at=until)


def test_force_delivery_state_takes_delivery_fields_only(store):
    delivery = a_delivery()
    store.insert_delivery(delivery)
    with pytest.raises(ValueError):
        store.force_delivery_state(delivery.key, outbox=[])
    assert store.delivery(delivery.key) == delivery


# -- what the timers and the listing read ---------------------------------------------------

def test_the_due_timer_finds_due_deferred_deliveries_and_stale_claims_only(store):
    now = NOON
    tag = uuid.uuid4().hex[:6]

    def put(name, **fields):
        delivery = a_delivery(f"{tag}-{name}", **fields)
        store.insert_delivery(delivery)
        return delivery.key

    due_early = put("due-early", status="deferred", due_at=now - timedelta(hours=2))
    due_now = put("due-now", status="deferred", due_at=now)
    put("not-yet", status="deferred", due_at=now + timedelta(seconds=1))
    stale = put("stale", status="sending", due_at=now - timedelta(hours=1), claimed_at=now - STALE - timedelta(seconds=1))
    put("fresh-claim", status="sending", due_at=now - timedelta(hours=1), claimed_at=now - timedelta(seconds=10))
    put("stale-event-claim", status="sending", due_at=None, claimed_at=now - timedelta(hours=1))
    put("sent", status="sent", due_at=None)
    put("retrying", status="retrying", due_at=None)

    found = store.due_deliveries(now, now - STALE, limit=50)
    assert [d.key for d in found if tag in d.key] == [due_early, stale, due_now]
    assert [d.key for d in store.due_deliveries(now, now - STALE, limit=2) if tag in d.key] == [due_early, stale]
    assert all(isinstance(d, Delivery) and d.facts for d in found)


def test_a_case_lists_its_deliveries_oldest_first_and_its_deferred_ones(store):
    tag = uuid.uuid4().hex[:6]
    case_id = f"case-{tag}"
    later = a_delivery(f"{tag}-1", case_id=case_id, status="deferred", due_at=NOON, at=NOON + timedelta(minutes=5))
    earlier = a_delivery(f"{tag}-2", case_id=case_id, status="sent", at=NOON)
    store.insert_delivery(later)
    store.insert_delivery(earlier)
    store.insert_delivery(a_delivery(status="deferred", due_at=NOON))  # another case
    assert [d.key for d in store.deliveries_for_case(case_id)] == [earlier.key, later.key]
    assert store.deferred_for_case(case_id) == [later]
    assert store.deliveries_for_case("case-none") == [] and store.deferred_for_case("case-none") == []


# -- the real store on FerretDB: its indexes and query shapes ------------------------------

def test_the_declared_indexes_exist(real_store):
    from tests.support import missing_indexes
    unique = [i for i in NotificationsStore.indexes["deliveries"] if i.unique]
    assert [i.fields for i in unique] == [("event_id", "recipient_id")]
    assert missing_indexes(real_store.recorded, NotificationsStore.indexes) == []


def test_every_query_is_an_equality_on_id_or_an_indexed_field(real_store):
    store = real_store
    indexed = {name: {"_id"} | {field for index in indexes for field in index.fields}
               for name, indexes in NotificationsStore.indexes.items()}
    # every public method, once
    store.record_referral("case-q", "ref-q", {}, [])
    store.record_assessment("case-q", {"decision": "suitable"})
    store.record_assignment("case-q", "asg-q", {"facilitator_id": "f", "role": "lead"})
    store.record_acceptance("case-q", "asg-q", NOON)
    store.acceptances("case-q")
    store.case("case-q")
    store.count_run("ev-q")
    delivery = a_delivery(case_id="case-q", status="deferred", due_at=NOON)
    store.insert_delivery(delivery, [an_event()])
    store.delivery(delivery.key)
    store.delivery_for(delivery.event_id, delivery.recipient_id)
    store.deliveries_for_case("case-q")
    store.deferred_for_case("case-q")
    store.due_deliveries(NOON, NOON - STALE, 50)
    claimed = store.claim(delivery, NOON)
    store.mark_retrying(claimed.key, 1, "x")
    store.back_off(claimed.key, 1, "x", NOON)
    store.settle(claimed.key, "sent", None, [], at=NOON)
    store.pending_events(claimed.key)
    store.force_delivery_state(claimed.key, status="sent")

    seen = store.recorded.seen
    assert {(collection, method) for collection, method, _, _ in seen} >= {
        ("deliveries", "find"), ("deliveries", "find_one"), ("deliveries", "update_one"),
        ("case_directory", "find_one"), ("case_directory", "update_one"), ("event_runs", "update_one")}
    for collection, method, query, options in seen:
        assert query, (collection, method)
        for field, value in query.items():
            assert field in indexed[collection], (collection, method, field)
            assert isinstance(value, (str, int, float, bool, datetime)), (collection, method, field, value)
        assert "sort" not in options, (collection, method)
