"""Services prove who they are on the bus: on a RabbitMQ node of the test's own, with the
bootstrap's users and permissions (shared.messaging.accounts), never the shared broker's.

The broker refuses what a service's user may not do; consumers and RPC handlers refuse
what the broker let through but the sender may not say.
"""
import json
import logging
import uuid

import pytest
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu import Connection
from nameko.containers import ServiceContainer
from nameko.exceptions import RemoteError
from nameko.testing.services import dummy, entrypoint_hook

from services.referrals.contact import PURPOSES
from services.referrals.service import ReferralsService
from shared.events.envelope import new_event
from shared.messaging import identity, topology
from shared.messaging.consumer import event_consumer
from shared.messaging.permissions import ADMIN_USER, OPERATOR_USER, user_for
from shared.messaging.publisher import EventPublisher, publish_raw
from shared.messaging.rpc import IdentifiedRpcProxy
from shared.storage import Database
from tests.conftest import MONGO_URI
from tests.factories import referral_received_data
from tests.platform import TEST_MASTER_KEY, RabbitNode
from tests.support import SERVED_REGIONS, disconnect_all, free_port, read_dead_letters, wait_until


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    node = RabbitNode(str(tmp_path_factory.mktemp("bus")))
    node.start()
    try:
        node.create_accounts()
        topology.declare(node.uri, (0.2, 0.4))
        yield node
    finally:
        node.stop()


@pytest.fixture
def start(bus, db_prefix):
    """Start a service class in this process as `service`'s broker user."""
    containers = []

    def run(cls, service, **extra):
        config = {"AMQP_URI": bus.service_uris.get(service, bus.uri), "MONGO_URI": MONGO_URI,
                  "AMENDS_DB_PREFIX": db_prefix, "AMENDS_REGION": "test", "AMENDS_REGIONS": SERVED_REGIONS,
                  "AMENDS_RETRY_DELAYS": "0.2,0.4",
                  "AMENDS_OUTBOX_GRACE": "0", "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}", **extra}
        container = ServiceContainer(cls, config)
        container.start()
        containers.append(container)
        return container

    yield run
    for container in containers:
        container.stop()
    disconnect_all()


def referral_received(source="/amends/test/referrals"):
    case_id = f"case-{uuid.uuid4().hex[:8]}"
    return new_event("referral.received", case_id, referral_received_data(case_id=case_id),
                     source=source, region="test", correlationid=case_id)


# --- what the broker refuses --------------------------------------------------------

def test_a_service_may_publish_its_own_events_and_no_one_elses(bus):
    referrals = bus.service_uris["referrals"]
    EventPublisher(referrals, "referrals").publish(referral_received())   # its own: accepted
    with pytest.raises(AccessRefused) as refused:
        EventPublisher(referrals, "matching").publish(referral_received())
    assert "matching.events" in str(refused.value)
    # and on its own exchange, only its own event types (topic permissions)
    assessed = dict(referral_received(), type="case.assessed")
    with pytest.raises(AccessRefused) as refused:
        EventPublisher(referrals, "referrals").publish(assessed)
    assert "case.assessed" in str(refused.value)


def test_a_forged_user_id_is_refused_by_the_broker(bus):
    event = referral_received()
    with Connection(bus.service_uris["matching"], transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        with pytest.raises(PreconditionFailed) as refused:
            # matching's connection, on its own exchange with its own event type, claiming to be referrals
            producer.publish(json.dumps(event), exchange="matching.events", routing_key="case.assessed",
                             serializer=None, content_type="application/json", user_id=user_for("referrals"))
    assert "user_id" in str(refused.value)


def test_the_services_own_permissions_let_them_work(bus):
    """The permission table is not so tight that a service cannot do its job: each one
    declares its queues (and their holding queues) and publishes its retries."""
    for (service, consumer) in topology.CONSUMERS:
        with Connection(bus.service_uris[service]) as connection:
            channel = connection.channel()
            queue = topology.consumer_queue(service, consumer, declare_exchanges=False)
            queue.bind(channel).declare()
            # a holding queue of its own: an hour's delay, so the test message never comes back
            holding = topology.retry_queue(queue.name, 3600)
            topology.dead_letter_queue(service).bind(channel).declare()
            channel.close()
        publish_raw(bus.service_uris[service], b"{}", exchange="", routing_key=holding.name,
                    headers={}, declare=[holding])
        with Connection(bus.service_uris[service]) as connection:
            # another service's exchange may not be declared (so not deleted) by this one
            other = next(s for s in topology.SERVICES if s != service)
            with pytest.raises(AccessRefused):
                topology.events_exchange(other).bind(connection.channel()).declare()


# --- what a consumer refuses ----------------------------------------------------------

class FussyMatching:
    """Stands in for matching's `assess` consumer: fails each event's first delivery, so
    that every accepted event has been round matching's own holding queue once."""
    name = "matching"
    db = Database()
    handled = []

    @event_consumer("assess")
    def on_referral_received(self, event):
        if event["subject"] not in FussyMatching.seen:
            FussyMatching.seen.add(event["subject"])
            raise RuntimeError("first delivery")
        FussyMatching.handled.append(event["id"])

    seen = set()


def _letters(bus):
    return {json.loads(body).get("id"): headers for body, headers in read_dead_letters(bus.uri, "matching")}


def test_a_consumer_takes_its_producers_events_across_a_retry_and_refuses_the_rest(bus, start):
    start(FussyMatching, "matching")
    genuine = referral_received()
    EventPublisher(bus.service_uris["referrals"], "referrals").publish(genuine)
    wait_until(lambda: genuine["id"] in FussyMatching.handled, timeout=20)

    # referrals' user, on its own exchange, but the event claims to come from matching
    misattributed = referral_received(source="/amends/test/matching")
    EventPublisher(bus.service_uris["referrals"], "referrals").publish(misattributed)
    # no user_id at all: the admin may write anywhere, but vouches for no service's event
    anonymous = referral_received()
    with Connection(bus.uri) as connection:
        connection.Producer().publish(json.dumps(anonymous), exchange="referrals.events",
                                      routing_key="referral.received", serializer=None,
                                      content_type="application/json")
    # notifications, straight into matching's queue through the default exchange, with a
    # header that claims referrals sent it: the header is not believed from notifications
    forged = referral_received()
    publish_raw(bus.service_uris["notifications"], json.dumps(forged), exchange="",
                routing_key="matching.assess", headers={identity.PUBLISHER_HEADER: user_for("referrals")})

    wanted = {misattributed["id"]: "source '/amends/test/matching' is not referrals's",
              anonymous["id"]: "no user_id: the sender is unknown",
              forged["id"]: "a referral.received event is referrals's to send, not notifications's"}
    letters = {}
    wait_until(lambda: letters.update(_letters(bus)) or set(wanted) <= set(letters), timeout=20)
    for event_id, reason in wanted.items():
        assert letters[event_id]["x-amends-error"] == f"refused: {reason}"
        assert letters[event_id]["x-amends-attempts"] == 1   # at once: retrying cannot fix it
    assert letters[forged["id"]][identity.PUBLISHER_HEADER] == user_for("notifications")
    assert genuine["id"] not in letters
    assert not set(wanted) & set(FussyMatching.handled)


# --- what an RPC handler refuses -----------------------------------------------------

def _caller(service_name, target="referrals", method="get_contact"):
    """A service named `service_name` whose `ask(*args)` calls `target.method(*args)`."""
    class Caller:
        name = service_name
        proxy = IdentifiedRpcProxy(target)

        @dummy
        def ask(self, *args):
            return getattr(self.proxy, method)(*args)
    return Caller


def test_only_notifications_may_ask_referrals_for_contact_details(bus, start, db_prefix, monkeypatch, caplog):
    monkeypatch.setenv("AMENDS_MASTER_KEY", TEST_MASTER_KEY)
    start(ReferralsService, "referrals")
    from tests.integration.referrals_helpers import referrals_store
    stored = {"MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": db_prefix}
    purpose = sorted(PURPOSES)[0]

    notifications = start(_caller("notifications"), "notifications")
    with entrypoint_hook(notifications, "ask") as ask:
        answer = ask("p-nobody", purpose, "notifications")
    assert answer == {"granted": False, "reason": "unknown_party", "details": {}}
    with referrals_store(stored) as store:
        assert [a.requester for a in store.accesses_of_party("p-nobody")] == ["notifications"]

    # matching's user may not even send the request (topic permission on nameko-rpc)
    with Connection(bus.service_uris["matching"], transport_options={"confirm_publish": True}) as connection:
        with pytest.raises(AccessRefused) as denied:
            connection.Producer().publish({"args": ["p-nobody", purpose, "notifications"], "kwargs": {}},
                                          exchange="nameko-rpc", routing_key="referrals.get_contact",
                                          reply_to=str(uuid.uuid4()), user_id=user_for("matching"))
    assert "referrals.get_contact" in str(denied.value)

    # the admin may send anything, but is no notifications: refused by referrals, and logged
    caplog.set_level(logging.WARNING, logger="shared.messaging.rpc")
    operator = start(_caller("console"), "operator")
    with pytest.raises(RemoteError) as refused, entrypoint_hook(operator, "ask") as ask:
        ask("p-nobody", purpose, "notifications")
    assert refused.value.exc_type == "CallerRefused"
    assert "operator may not call referrals.get_contact" in str(refused.value)
    assert "refused an RPC call to referrals.get_contact from operator" in caplog.text
    assert "p-nobody" not in caplog.text
    with referrals_store(stored) as store:
        assert len(store.accesses_of_party("p-nobody")) == 1   # the refused call reached nothing
    assert bus.uri.startswith(f"amqp://{ADMIN_USER}:")


def test_only_subscriptions_may_read_the_ledger_feed(bus, start, caplog):
    from services.records.service import RecordsService
    start(RecordsService, "records", AMENDS_DEV_UNSIGNED_LEDGER="1")
    # an event matching does not consume, so that no other test's queue is left holding it
    sent = new_event("case.status_changed", "case-feed", {"case_id": "case-feed", "from_status": "RECEIVED",
                                                          "to_status": "TRIAGE"},
                     source="/amends/test/referrals", region="test", correlationid="case-feed")
    EventPublisher(bus.service_uris["referrals"], "referrals").publish(sent)
    subscriptions = start(_caller("subscriptions", "records", "entries_after"), "subscriptions")

    def page():
        with entrypoint_hook(subscriptions, "ask") as read:
            answer = read(-1, 1000)
        return answer if sent["id"] in [i["event"]["id"] for i in answer["items"]] else None
    answer = wait_until(page, timeout=20)
    assert [i["seq"] for i in answer["items"]] == list(range(answer["tree_size"]))

    # notifications' user may not even send the request
    with Connection(bus.service_uris["notifications"], transport_options={"confirm_publish": True}) as connection:
        with pytest.raises(AccessRefused) as denied:
            connection.Producer().publish({"args": [-1, 10], "kwargs": {}}, exchange="nameko-rpc",
                                          routing_key="records.entries_after", reply_to=str(uuid.uuid4()),
                                          user_id=user_for("notifications"))
    assert "records.entries_after" in str(denied.value)
    # the admin may send it, but is no subscriptions service: refused by records
    caplog.set_level(logging.WARNING, logger="shared.messaging.rpc")
    operator = start(_caller("console", "records", "entries_after"), "operator")
    with pytest.raises(RemoteError) as refused, entrypoint_hook(operator, "ask") as read:
        read(-1, 10)
    assert refused.value.exc_type == "CallerRefused"
    assert "refused an RPC call to records.entries_after from operator" in caplog.text


class Moody:
    """Stands in for matching's `assess` consumer: refuses everything while `failing`."""
    name = "matching"
    db = Database()
    failing = True
    handled = []

    @event_consumer("assess")
    def on_referral_received(self, event):
        if Moody.failing:
            raise RuntimeError("not today")
        Moody.handled.append(event["id"])


@pytest.mark.parametrize("operator", ["admin", "operator user"])
def test_a_replayed_dead_letter_keeps_its_sender_and_a_refused_one_stays_refused(bus, start, operator):
    from shared.messaging import deadletters
    operator_uri = bus.uri if operator == "admin" else bus.operator_uri
    Moody.failing = True
    read_dead_letters(bus.uri, "matching")   # whatever earlier tests left
    moody = start(Moody, "matching")
    genuine, anonymous = referral_received(), referral_received()
    EventPublisher(bus.service_uris["referrals"], "referrals").publish(genuine)
    with Connection(bus.uri) as connection:
        connection.Producer().publish(json.dumps(anonymous), exchange="referrals.events",
                                      routing_key="referral.received", serializer=None,
                                      content_type="application/json")
    wait_until(lambda: len(deadletters.list_letters(bus.uri, "matching")) == 2, timeout=20)
    moody.stop()

    Moody.failing = False
    # the operator replays both, as the admin or as their own narrower user: the header vouches
    # for the one referrals sent
    assert len(deadletters.list_letters(operator_uri, "matching")) == 2
    assert len(deadletters.act(operator_uri, "matching", "replay")) == 2
    start(Moody, "matching")
    wait_until(lambda: genuine["id"] in Moody.handled, timeout=20)
    letters = {}
    wait_until(lambda: letters.update(_letters(bus)) or anonymous["id"] in letters, timeout=20)
    replayer = ADMIN_USER if operator == "admin" else OPERATOR_USER
    assert letters[anonymous["id"]]["x-amends-error"] == f"refused: sent by broker user '{replayer}', which is no service"
    assert anonymous["id"] not in Moody.handled


def test_the_operator_user_reaches_the_dead_letters_and_nothing_else(bus):
    """amends-operator (the console's operator pages) reads and replays dead letters; it may
    not take a service's work, make or delete a queue, or publish an event."""
    from shared.messaging import deadletters
    assert deadletters.list_letters(bus.operator_uri, "records") is not None
    consumer = next(iter(topology.CONSUMERS))
    with Connection(bus.operator_uri) as connection:
        with pytest.raises(AccessRefused):
            connection.channel().basic_get(topology.consumer_queue_name(*consumer))
    with Connection(bus.operator_uri) as connection:
        with pytest.raises(AccessRefused):
            topology.dead_letter_queue("records").bind(connection.channel()).queue_declare()
    with Connection(bus.operator_uri) as connection:
        with pytest.raises(AccessRefused):
            connection.channel().queue_delete(topology.dead_letter_queue("records").name)
    with pytest.raises(AccessRefused):
        publish_raw(bus.operator_uri, json.dumps(referral_received()).encode(), exchange="referrals.events",
                    routing_key="referral.received", headers={})
