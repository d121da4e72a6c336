"""The outbox relay against the real broker and database: nothing emitted is lost."""
import json

import pymongo
import pytest
from kombu import Connection, Queue, binding

from shared.events import new_event
from shared.messaging import topology
from shared.messaging.outbox import Relay
from shared.messaging.publisher import EventPublisher, UndeliverableMessage
from tests.conftest import MONGO_URI
from tests.factories import referral_received_data


@pytest.fixture
def collection(db_prefix):
    client = pymongo.MongoClient(MONGO_URI)
    yield client[f"{db_prefix}_outboxtest"]["cases"]
    client.close()


def received(**changes):
    data = referral_received_data(**changes)
    return new_event("referral.received", data["case_id"], data, source="/amends/test/referrals",
                     region="test", correlationid=data["case_id"])


def declare_exchange(amqp_uri):
    with Connection(amqp_uri) as connection:
        topology.events_exchange("referrals").bind(connection.channel()).declare()


def bound_queue(amqp_uri):
    with Connection(amqp_uri) as connection:
        queue = Queue("outbox-test", bindings=[binding(topology.events_exchange("referrals"), "referral.received")])
        queue.bind(connection.channel()).declare()
    return queue


def messages(amqp_uri, queue):
    found = []
    with Connection(amqp_uri) as connection:
        bound = queue.bind(connection.channel())
        while (message := bound.get(no_ack=True)) is not None:
            found.append(message.body)
    return found


def test_an_unroutable_event_is_an_error_and_stays_in_the_outbox(amqp_uri, collection):
    declare_exchange(amqp_uri)  # and no queue bound to it
    event = received()
    collection.insert_one({"_id": "case-1", "outbox": [event]})
    relay = Relay(EventPublisher(amqp_uri, "referrals"), [collection])
    with pytest.raises(UndeliverableMessage):
        relay.flush(collection, "case-1")
    assert collection.find_one({"_id": "case-1"})["outbox"] == [event]


def test_events_a_crash_left_unsent_are_republished_by_the_timer_relay(amqp_uri, collection):
    declare_exchange(amqp_uri)
    queue = bound_queue(amqp_uri)
    # Saved with its events, then the process died before its own flush.
    first, second = received(case_id="case-1"), received(case_id="case-2")
    collection.insert_many([{"_id": "case-1", "outbox": [first]}, {"_id": "case-2", "outbox": [second]},
                            {"_id": "case-3", "outbox": []}])
    relay = Relay(EventPublisher(amqp_uri, "referrals"), [collection])
    assert relay.relay_pending(older_than_seconds=3600) == 0  # too fresh: their own flush may be under way
    assert relay.relay_pending(older_than_seconds=0) == 2
    assert sorted(json.loads(b)["id"] for b in messages(amqp_uri, queue)) == sorted(
        [first["id"], second["id"]])
    assert collection.count_documents({"outbox.0": {"$exists": True}}) == 0
    assert relay.relay_pending(older_than_seconds=0) == 0


def test_a_flush_of_the_events_just_saved_sends_them_and_removes_exactly_those(amqp_uri, db_prefix):
    """The write path's flush (events passed in, no read back), of a change saved through
    the referrals store as the service saves it: the stored events match the ones in
    hand, so they leave the outbox; an event added meanwhile stays for the relay."""
    from services.referrals.cases import CaseChange
    from services.referrals.store import ReferralsStore

    declare_exchange(amqp_uri)
    queue = bound_queue(amqp_uri)
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True)
    try:
        db = client[f"{db_prefix}_referrals"]
        store = ReferralsStore(db)
        first, second, later = received(case_id="case-1"), received(case_id="case-1"), received(case_id="case-1")
        change = CaseChange(change_id="case-1:000000001", case_id="case-1", version=1, state={"status": "NEW"},
                            by="test", outbox=[first, second])
        store.insert_change(change)
        collection = db[store.changes_outbox]
        collection.update_one({"_id": change.change_id}, {"$push": {"outbox": later}})  # another writer's, unsent
        relay = Relay(EventPublisher(amqp_uri, "referrals"), [collection])
        assert relay.flush(collection, change.change_id, change.outbox) == 2
        assert [json.loads(b)["id"] for b in messages(amqp_uri, queue)] == [first["id"], second["id"]]
        assert store.change(change.change_id).outbox == [later]
    finally:
        client.close()
