"""The consumer machinery every service shares: inbox, outage hold-back, graceful stop."""
import eventlet
import pytest
from pymongo.errors import AutoReconnect

from shared.events import new_event
from shared.messaging import topology
from shared.messaging.consumer import event_consumer
from shared.messaging.inbox import COLLECTION
from shared.storage import Database
from tests.factories import referral_received_data
from tests.support import publish_event, read_dead_letters, wait_until

calls = []
behaviour = {"fail_with": None, "failures_left": 0, "sleep": 0.0}


class ProbeService:
    """A service whose handler is deliberately NOT idempotent: it counts every call."""
    name = "probe"
    db = Database()

    @event_consumer("probe")
    def on_event(self, event):
        if behaviour["failures_left"] > 0:
            behaviour["failures_left"] -= 1
            raise behaviour["fail_with"]("simulated outage")
        eventlet.sleep(behaviour["sleep"])
        calls.append(event["id"])


@pytest.fixture(autouse=True)
def probe_topology(monkeypatch):
    monkeypatch.setitem(topology.CONSUMERS, ("probe", "probe"), [("referrals", "referral.received")])
    monkeypatch.setattr(topology, "SERVICES", topology.SERVICES + ("probe",))
    calls.clear()
    behaviour.update(fail_with=None, failures_left=0, sleep=0.0)


def received():
    data = referral_received_data()
    return new_event("referral.received", data["case_id"], data, source="/amends/test/referrals",
                     region="test", correlationid=data["case_id"])


def queue_depth(amqp_uri, name):
    from kombu import Connection
    with Connection(amqp_uri) as connection:
        return connection.channel().queue_declare(name, passive=True).message_count


def test_the_inbox_gives_a_redelivered_event_no_second_effect(run_services, amqp_uri):
    with run_services(ProbeService):
        event = received()
        publish_event(amqp_uri, event)
        from mongoengine import get_db
        inbox = get_db("probe")[COLLECTION]
        # handled, and recorded: the record is written once the handler has returned
        wait_until(lambda: calls == [event["id"]] and inbox.count_documents({"event_id": event["id"]}) == 1)
        for _ in range(4):
            publish_event(amqp_uri, event)
        wait_until(lambda: queue_depth(amqp_uri, "probe.probe") == 0)
        eventlet.sleep(0.5)
        assert calls == [event["id"]]
        assert inbox.count_documents({"event_id": event["id"]}) == 1


def test_a_database_stopping_mid_request_kills_no_container(run_services, amqp_uri, monkeypatch):
    """FerretDB, stopped while a request is in flight, answers it with an OperationFailure
    ("context canceled"), not a connection error. Raised by the inbox read or record, it
    escaped the consumer and killed the whole container (the fault suite's FerretDB stop)."""
    from pymongo.errors import OperationFailure
    from shared.messaging.inbox import Inbox
    real_handled, real_record = Inbox.handled, Inbox.record
    failures = {"handled": 1, "record": 1}

    def failing(name, real):
        def call(self, *args):
            if failures[name]:
                failures[name] -= 1
                raise OperationFailure("context canceled", code=1)
            return real(self, *args)
        return call

    monkeypatch.setattr(Inbox, "handled", failing("handled", real_handled))
    monkeypatch.setattr(Inbox, "record", failing("record", real_record))
    with run_services(ProbeService) as (_, config):
        first, second = received(), received()
        publish_event(amqp_uri, first)
        wait_until(lambda: calls == [first["id"]], timeout=30)  # held back once, then handled
        wait_until(lambda: queue_depth(amqp_uri, "probe.probe") == 0)
        publish_event(amqp_uri, second)  # the container is still alive and consuming
        wait_until(lambda: calls == [first["id"], second["id"]], timeout=30)
        assert failures == {"handled": 0, "record": 0}
        assert read_dead_letters(amqp_uri, "probe") == []


def test_a_broker_gone_while_a_message_is_held_back_kills_no_container(run_services, amqp_uri, monkeypatch):
    """A hold (or retry) is published before the original is acked. When the broker is away
    longer than the publisher's own retries, that publish fails; the error escaped and nameko
    killed the whole container (the fault suite's RabbitMQ restart, on a loaded machine)."""
    import kombu.exceptions
    from shared.messaging import consumer
    real = consumer.publish_raw
    refusals = {"left": 1}

    def publish(*args, **kwargs):
        if refusals["left"]:
            refusals["left"] -= 1
            raise kombu.exceptions.OperationalError("[Errno 111] ECONNREFUSED")
        return real(*args, **kwargs)

    monkeypatch.setattr(consumer, "publish_raw", publish)
    behaviour.update(fail_with=AutoReconnect, failures_left=1)  # the first delivery is held back
    with run_services(ProbeService):
        first, second = received(), received()
        publish_event(amqp_uri, first)
        wait_until(lambda: calls == [first["id"]], timeout=30)  # back in its queue, then handled
        publish_event(amqp_uri, second)  # the container is alive and consuming
        wait_until(lambda: calls == [first["id"], second["id"]], timeout=30)
        assert refusals["left"] == 0
        assert read_dead_letters(amqp_uri, "probe") == []


def test_a_database_outage_is_waited_out_without_using_up_retries(run_services, amqp_uri):
    # Four outage failures: more than the two retries AMENDS_RETRY_DELAYS allows a faulty handler.
    behaviour.update(fail_with=AutoReconnect, failures_left=4)
    with run_services(ProbeService):
        event = received()
        publish_event(amqp_uri, event)
        wait_until(lambda: calls == [event["id"]], timeout=30)
        assert behaviour["failures_left"] == 0
        assert read_dead_letters(amqp_uri, "probe") == []


def test_stopping_finishes_the_work_in_hand(run_services, amqp_uri):
    behaviour["sleep"] = 1.5
    event = received()
    with run_services(ProbeService):
        publish_event(amqp_uri, event)
        wait_until(lambda: queue_depth(amqp_uri, "probe.probe") == 0)  # taken, not yet acked or done
        assert calls == []
    # The container stopped as on SIGTERM: the handler ran to the end and its message was acked.
    assert calls == [event["id"]]
    assert queue_depth(amqp_uri, "probe.probe") == 0
    with run_services(ProbeService):
        eventlet.sleep(1.0)
        assert calls == [event["id"]]


def test_an_operator_lists_replays_and_discards_dead_letters(run_services, amqp_uri):
    from shared.messaging import deadletters
    behaviour.update(fail_with=RuntimeError, failures_left=3)  # the first try and both retries
    with run_services(ProbeService):
        event = received()
        publish_event(amqp_uri, event)
        publish_event(amqp_uri, None, body=b"\xff not json")
        letters = wait_until(lambda: len(deadletters.list_letters(amqp_uri, "probe")) == 2
                             and deadletters.list_letters(amqp_uri, "probe"), timeout=30)
        assert len(deadletters.list_letters(amqp_uri, "probe")) == 2  # listing takes nothing away
        by_type = {letter["event_type"]: letter for letter in letters}
        failed, poison = by_type["referral.received"], by_type[None]
        assert failed["event_id"] == event["id"] and failed["attempts"] == 3
        assert failed["error"] == "RuntimeError: (details withheld)" and failed["queue"] == "probe.probe"
        assert poison["error"] == "malformed JSON body"
        assert failed["original_routing_key"] == "referral.received"
        # the fault is fixed: replay the failed event, discard the poison
        assert [r["id"] for r in deadletters.act(amqp_uri, "probe", "replay", {failed["id"]})] == [failed["id"]]
        wait_until(lambda: calls == [event["id"]])
        assert [d["id"] for d in deadletters.act(amqp_uri, "probe", "discard", {poison["id"]})] == [poison["id"]]
        assert deadletters.list_letters(amqp_uri, "probe") == []


def test_an_event_that_arrives_too_early_waits_for_the_one_it_depends_on(run_services, amqp_uri):
    from shared.messaging.consumer import TooEarly
    behaviour.update(fail_with=TooEarly, failures_left=4)  # more than the two retries a fault gets
    with run_services(ProbeService):
        event = received()
        publish_event(amqp_uri, event)
        wait_until(lambda: calls == [event["id"]], timeout=30)
        assert read_dead_letters(amqp_uri, "probe") == []
