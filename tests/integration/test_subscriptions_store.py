"""The subscriptions store's contract, run against the in-memory fake and against the real
store on the running FerretDB: the dispatcher's and the feed's unit tests trust the fake to
behave so."""
from dataclasses import dataclass, replace
import uuid
from datetime import datetime, timedelta, timezone

import pymongo
import pytest

from services.subscriptions.dispatcher import Attempt, Cursor
from services.subscriptions.feed import Entry
from services.subscriptions.memory_store import InMemorySubscriptionsStore
from services.subscriptions.sealing import SealBroken, SecretSeal
from services.subscriptions.store import BLOCK, PAGE, AgreementTaken, SubscriptionsStore
from services.subscriptions.subscription import Replay, Secret, Subscription
from tests.conftest import MONGO_URI
from tests.platform import FerretDB
from tests.support import missing_indexes

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SEAL = SecretSeal(b"k" * 32)


@dataclass(frozen=True)
class Agreement:
    """The fields of sharing.SharingAgreement the store keeps."""
    agency: str
    profile: str
    regions: tuple
    agreement_reference: str
    version: int
    set_by: str
    set_at: datetime


@pytest.fixture(params=["memory", "ferretdb"])
def store(request):
    if request.param == "memory":
        yield InMemorySubscriptionsStore()
        return
    prefix = request.getfixturevalue("db_prefix")
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True)
    real = SubscriptionsStore(client[f"{prefix}_subscriptions"], SEAL, agreement_type=Agreement)
    real.ensure_indexes()
    assert missing_indexes(real.db, real.indexes) == []
    yield real
    client.close()


def subscription(sub_id="sub-1", agency="police-a", **fields):
    values = dict(subscription_id=sub_id, agency=agency, kind="webhook", event_types=("case.*",),
                  url="https://p.example/h", regions=("gwent",), own_referrals_only=True, max_batch=5,
                  secrets=(Secret("whsec_new"), Secret("whsec_old", NOW + timedelta(hours=1))), start_after=41,
                  created_at=NOW, created_by="referrer:r-1")
    values.update(fields)
    return Subscription(**values)


def entry(position, case="c-1", facts=True):
    return Entry(position, {"id": f"e-{position}", "type": "case.status_changed", "subject": case,
                            "data": {"case_id": case, "status": "TRIAGE"}}, f"{position:064x}",
                 {"agency": "police-a", "region": "gwent", "offence_category": "theft"} if facts else None)


def test_subscriptions_are_kept_as_given_and_listed_per_agency(store):
    first = subscription(created_at=NOW - timedelta(minutes=1))
    store.add_subscription(first, [{"type": "subscription.created", "id": "ev-1"}])
    store.add_subscription(subscription("sub-2", agency="police-b"))
    store.add_subscription(subscription("sub-3"))
    assert store.subscription("sub-1") == first
    assert store.subscription("nope") is None
    assert [s.subscription_id for s in store.subscriptions_of("police-a")] == ["sub-1", "sub-3"]
    replayed = replace(first, replay=Replay("rp-1", 7, NOW, "referrer:r-1"), url="https://p.example/other")
    store.save_subscription(replayed)
    assert store.subscription("sub-1") == replayed
    store.save_subscription(replace(first, status="deleted"), [{"type": "subscription.deleted", "id": "ev-2"}])
    assert [s.subscription_id for s in store.subscriptions_of("police-a")] == ["sub-3"]
    assert sorted(s.subscription_id for s in store.active_subscriptions()) == ["sub-2", "sub-3"]


def test_webhook_secrets_are_sealed_at_rest_and_those_stored_before_sealing_still_read(db_prefix):
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True)
    try:
        store = SubscriptionsStore(client[f"{db_prefix}_subscriptions"], SEAL)
        made = subscription(secrets=(Secret("whsec_c2VjcmV0LW5ldw=="), Secret("whsec_b2xk", NOW + timedelta(hours=1))))
        store.add_subscription(made)
        raw = store.db[store.SUBSCRIPTIONS].find_one({"_id": "sub-1"})
        assert [x["value"][:10] for x in raw["secrets"]] == ["sealed:v1:", "sealed:v1:"]
        assert "c2VjcmV0LW5ldw" not in repr(raw) and "b2xk" not in repr(raw)
        assert store.subscription("sub-1") == made
        # the same database under another key: the secrets do not open, and nothing is guessed
        with pytest.raises(SealBroken):
            SubscriptionsStore(store.db, SecretSeal(b"o" * 32)).subscription("sub-1")
        # a secret written before sealing began reads as it is, and is sealed when next saved
        store.db[store.SUBSCRIPTIONS].update_one({"_id": "sub-1"}, {"$set": {"secrets": [
            {"value": "whsec_cGxhaW4=", "expires_at": None}]}})
        plain = store.subscription("sub-1")
        assert plain.secrets == (Secret("whsec_cGxhaW4="),)
        store.save_subscription(plain)
        assert store.db[store.SUBSCRIPTIONS].find_one({"_id": "sub-1"})["secrets"][0]["value"].startswith("sealed:v1:")
        assert store.subscription("sub-1").secrets == (Secret("whsec_cGxhaW4="),)
    finally:
        client.close()


def test_every_version_of_an_agreement_is_kept_and_each_version_set_once(store):
    one = Agreement("police-a", "own_cases", (), "DSA/1", 1, "coordinator:c-1", NOW)
    two = replace(one, profile="area_cases", regions=("gwent",), version=2, set_at=NOW + timedelta(seconds=1))
    store.add_agreement(one, [{"type": "sharing.agreement_set", "id": "ev-1"}])
    store.add_agreement(two)
    store.add_agreement(replace(one, agency="yot-b"))
    with pytest.raises(AgreementTaken):
        store.add_agreement(replace(two, profile="statistics"))
    assert store.agreements_of("police-a") == [one, two]
    assert store.current_agreements() == {"police-a": two, "yot-b": replace(one, agency="yot-b")}


def test_entries_are_stored_once_and_read_in_order_up_to_the_first_gap(store):
    count = 2 * BLOCK + 5
    store.add_entries([entry(p) for p in range(0, BLOCK + 3)])
    store.add_entries([entry(p, case="other") for p in range(BLOCK, count)])   # overlapping: the first stays
    assert [e.position for e in store.entries_after(-1, 1000)] == list(range(count))
    assert store.entries_after(BLOCK - 3, 5) == [entry(p) for p in range(BLOCK - 2, BLOCK + 3)]
    assert store.entries_after(BLOCK + 2, 1)[0].event["subject"] == "other"
    assert [e.position for e in store.entries_after(2 * BLOCK - 2, 4)] == [2 * BLOCK - 1, 2 * BLOCK,
                                                                         2 * BLOCK + 1, 2 * BLOCK + 2]
    assert store.entries_after(count - 1, 10) == []
    store.add_entries([entry(count + 2, facts=False)])   # beyond a gap: not reachable yet
    assert store.entries_after(count - 3, 10)[-1].position == count - 1
    assert store.highest_position() == count - 1
    store.note_position(5)
    assert store.highest_position() == count - 1      # a stale note is walked past
    store.add_entries([entry(count), entry(count + 1)])
    assert store.highest_position() == count + 2
    assert store.entries_after(count + 1, 1)[0].facts is None


def test_case_facts_are_kept_per_case(store):
    assert store.case_facts("c-1") is None
    store.save_case_facts("c-1", {"agency": "police-a", "region": "gwent", "offence_category": "theft"})
    store.save_case_facts("c-1", {"agency": "police-a", "region": "gwent", "offence_category": "theft"})
    assert store.case_facts("c-1") == {"agency": "police-a", "region": "gwent", "offence_category": "theft"}


def test_cursors_are_written_in_a_batch_and_a_disable_with_its_event(store):
    assert store.cursor("sub-1") is None
    moving = Cursor("sub-1", position=12, in_flight=(13, 15), scanned_to=16, failures=2,
                    first_failure_at=NOW.timestamp(), next_attempt_at=NOW.timestamp() + 4, attempts=9,
                    replay_applied="rp-1")
    store.save_cursors([moving, Cursor("sub-2", position=-1)])
    assert store.cursor("sub-1") == moving and store.cursor("sub-2") == Cursor("sub-2", position=-1)
    store.save_cursors([replace(moving, position=16, in_flight=(), scanned_to=None)])
    assert store.cursor("sub-1").position == 16
    disabled = replace(moving, disabled="gone", disabled_at=NOW.timestamp())
    event = {"type": "subscription.disabled", "id": "ev-9"}
    store.disable(disabled, [event])
    assert store.cursor("sub-1") == disabled
    if isinstance(store, SubscriptionsStore):
        doc = store.db[store.CURSORS].find_one({"_id": "sub-1"})
        assert doc["outbox"] == [event] and doc["outbox_pending"] is True
    else:
        assert store.outboxes["cursors"]["sub-1"] == [event]


def test_the_cursors_of_many_subscriptions_are_written_without_stalling_ferretdb(tmp_path):
    """FerretDB 1.24 holds a PostgreSQL connection per update until the whole command ends
    (50 in its pool): one command updating 100 cursors stalled that FerretDB, and everything
    using it, for good. On a FerretDB of the test's own, so that a regression stalls no other."""
    ferret = FerretDB(str(tmp_path))
    try:
        ferret.start()
        client = pymongo.MongoClient(ferret.uri, tz_aware=True, socketTimeoutMS=20000)
        store = SubscriptionsStore(client["many_subscriptions"], SEAL)
        store.ensure_indexes(ferret.postgresql_url)
        cursors = [Cursor(f"sub-{n}", position=n) for n in range(120)]
        store.save_cursors(cursors)
        store.save_cursors([replace(c, position=c.position + 1) for c in cursors])
        assert [store.cursor(c.subscription_id).position for c in cursors] == [n + 1 for n in range(120)]
        assert client.admin.command("ping")["ok"] == 1
        client.close()
    finally:
        ferret.remove()


def test_the_delivery_log_is_read_newest_first_a_page_at_a_time(store):
    count = 2 * PAGE + 7
    store.add_attempts([Attempt("sub-1", n, (n,), 1, NOW.timestamp() + n, "settled", 204, None, 0.01)
                        for n in range(1, count + 1)])
    store.add_attempts([Attempt("sub-2", 1, (0,), 2, NOW.timestamp(), "failed", None, "could not connect", 10.0,
                                NOW.timestamp() + 3)])
    newest = store.attempts("sub-1", count + 1, 10)
    assert [a.number for a in newest] == list(range(count, count - 10, -1))
    assert [a.number for a in store.attempts("sub-1", PAGE + 1, 3)] == [PAGE, PAGE - 1, PAGE - 2]
    assert [a.number for a in store.attempts("sub-1", 3, 10)] == [2, 1]
    assert len(store.attempts("sub-1", count + 1, 1000)) == count
    assert store.attempts("sub-2", 2, 10) == [Attempt("sub-2", 1, (0,), 2, NOW.timestamp(), "failed", None,
                                                      "could not connect", 10.0, NOW.timestamp() + 3)]


def test_the_delivery_log_is_kept_a_document_per_flush_and_page_and_reads_the_older_form():
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        store = SubscriptionsStore(client[f"{prefix}_subscriptions"], SEAL)
        store.ensure_indexes()
        logged = [Attempt("sub-1", n, (n,), 1, NOW.timestamp() + n, "settled", 204, None, 0.01) for n in range(2, 60)]
        store.add_attempts(logged)
        assert store.db[store.DELIVERIES].count_documents({}) == 2   # numbers 2-49, and 50-59
        store.add_attempts(logged)       # the same flush tried again: written once
        store.add_attempts(logged[:5])   # some of it again in another flush: read once
        # one attempt a document, as the log was written before
        store.db[store.DELIVERIES].insert_one({
            "_id": "sub-1.000000000001", "subscription_id": "sub-1", "page": 0, "number": 1, "positions": [1],
            "retry": 1, "at": NOW, "result": "failed", "status": 500, "error": "answered 500", "seconds": 0.1,
            "next_retry_at": NOW})
        found = store.attempts("sub-1", 100, 100)
        assert [a.number for a in found] == list(range(59, 0, -1))
        assert found[-1] == Attempt("sub-1", 1, (1,), 1, NOW.timestamp(), "failed", 500, "answered 500", 0.1,
                                    NOW.timestamp())
        assert found[0] == logged[-1]
    finally:
        client.drop_database(f"{prefix}_subscriptions")
        client.close()


def test_the_dispatch_lease_is_held_by_one_process_until_it_lapses_or_is_let_go(store):
    now = NOW.timestamp()
    assert store.hold_lease("a", now, 10)
    assert store.hold_lease("a", now + 5, 10)           # renewed: now until now + 15
    assert not store.hold_lease("b", now + 14, 10)
    assert store.hold_lease("b", now + 16, 10)          # lapsed: taken over
    assert not store.hold_lease("a", now + 17, 10)
    store.release_lease("a")                            # not a's to let go
    assert not store.hold_lease("c", now + 18, 10)
    store.release_lease("b")
    assert store.hold_lease("c", now + 18, 10)
