"""Agencies' AMQP feeds on the real RabbitMQ: each agency reads its own queues, in order, and
nothing else; a closed feed, a reset password and a full queue behave as docs/subscriptions.md
says. Each test has its own vhost and agency codes; users (which outlive a vhost) are deleted.
"""
import json
import socket
import uuid
from types import SimpleNamespace
from urllib.parse import quote

import eventlet
import pytest
from amqp.exceptions import AccessRefused, ConnectionForced, NotAllowed
from kombu import Connection, Exchange, Queue

from services.subscriptions.broker_feeds import ADMIN_URL, FEED_MAX_LENGTH, AmqpChannel, BrokerFeeds, NoFeed
from shared.messaging import topology
from shared.messaging.management import Management
from shared.messaging.permissions import grant_for
from tests.conftest import AMQP_HOST, MANAGEMENT, management_admin_url

pytestmark = pytest.mark.integration


@pytest.fixture
def management():
    return Management.from_url(management_admin_url())


@pytest.fixture
def made_users(management):
    """Broker users the test makes (agencies', a publisher's): deleted afterwards."""
    users = []
    yield users
    for user in users:
        management.delete_user(user)


@pytest.fixture
def broker(vhost, amqp_uri):
    """A test vhost with the feeds exchange declared (as the topology declares it)."""
    with Connection(amqp_uri) as connection:
        topology.feeds_exchange().bind(connection.channel()).declare()

    def feeds(**extra):
        return BrokerFeeds({"AMQP_URI": amqp_uri, ADMIN_URL: management_admin_url(), **extra})

    return SimpleNamespace(vhost=vhost, amqp_uri=amqp_uri, feeds=feeds)


@pytest.fixture
def code(made_users):
    """A new agency code ending in `name`, whose broker user is deleted after the test."""
    def new(name, prefix=None):
        agency = f"{prefix or 't' + uuid.uuid4().hex[:8] + '-'}{name}"
        made_users.append(f"agency.{agency}")
        return agency
    return new


@pytest.fixture
def publisher(broker, management, made_users):
    """The subscriptions service's channel, as a user with the subscriptions service's grant
    (shared.messaging.permissions): what it may do is what the service will do."""
    user, password = f"amends-subscriptions-t{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    management.put_user(user, password)
    made_users.append(user)
    management.set_permissions(broker.vhost, user, grant_for("subscriptions"))
    uri = f"amqp://{user}:{password}@{AMQP_HOST}/{broker.vhost}"
    channel = AmqpChannel(uri, timeout=10)
    channel.user, channel.uri = user, uri
    yield channel
    channel.close()


def agency_uri(access, password=None):
    return (f"amqp://{quote(access.username, safe='')}:{quote(password or access.password, safe='')}"
            f"@{access.host}:{access.port}/{quote(access.vhost, safe='')}")


def events(subscription_id, positions):
    return [{"specversion": "1.0", "id": f"{subscription_id}.{p}", "type": "case.assessed",
             "source": "/amends/test/subscriptions", "subject": "case-1", "ledgerposition": p,
             "data": {"decision": "suitable"}} for p in positions]


def subscription(agency, subscription_id):
    return SimpleNamespace(agency=agency, subscription_id=subscription_id)


def read_all(uri, queue):
    """Every message in `queue`, consumed as its agency would (basic.consume, acks), in order."""
    got = []

    def take(message):
        got.append(message)
        message.ack()

    with Connection(uri) as connection:
        # no_declare: its user may consume the queue, not declare it
        with connection.Consumer(Queue(queue, no_declare=True), on_message=take):
            while True:
                try:
                    connection.drain_events(timeout=1)
                except socket.timeout:
                    return got


def refused(uri, action):
    """The broker's refusal of `action(channel)` on a fresh connection of `uri`."""
    with Connection(uri) as connection:
        with pytest.raises(AccessRefused) as refusal:
            action(connection.channel())
    return str(refusal.value)


# --- each agency its own feed -------------------------------------------------------------

def test_each_agency_consumes_its_own_events_in_order(broker, publisher, code):
    feeds = broker.feeds()
    police, yot = code("police"), code("yot")
    a = feeds.open_feed(police, "s1")
    b = feeds.open_feed(yot, "s2")
    assert (a.queue, a.username, a.vhost) == (f"feed.{police}.s1", f"agency.{police}", broker.vhost)
    assert a.password and b.password and a.password != b.password and len(a.password) >= 43

    assert publisher.send(subscription(police, "s1"), events("s1", [3, 4, 5])).settled
    assert publisher.send(subscription(yot, "s2"), events("s2", [7])).settled
    assert publisher.send(subscription(police, "s1"), events("s1", [9])).settled

    mine = read_all(agency_uri(a), a.queue)
    assert [json.loads(m.body)["id"] for m in mine] == ["s1.3", "s1.4", "s1.5", "s1.9"]
    first = mine[0]
    assert first.content_type == "application/cloudevents+json"
    assert first.properties["message_id"] == "s1.3"
    assert first.properties["user_id"] == publisher.user   # the broker's word for who sent it
    assert first.properties["delivery_mode"] == 2           # persistent
    assert json.loads(first.body)["data"] == {"decision": "suitable"}
    assert [json.loads(m.body)["id"] for m in read_all(agency_uri(b), b.queue)] == ["s2.7"]


def test_many_greenlets_share_the_channel(broker, publisher, code):
    """The dispatcher sends each subscription from its own greenlet; the channel's pool (two
    connections here) serves them all, each message confirmed as its own."""
    feeds = broker.feeds()
    police = code("police")
    subscriptions = [f"s{i}" for i in range(8)]
    accesses = [feeds.open_feed(police, s) for s in subscriptions]
    channel = AmqpChannel(publisher.uri, timeout=10, connections=2)

    def deliver(subscription_id):
        return [channel.send(subscription(police, subscription_id), events(subscription_id, [2 * p, 2 * p + 1]))
                for p in range(5)]

    pool = eventlet.GreenPool(len(subscriptions))
    outcomes = [o for batch in pool.imap(deliver, subscriptions) for o in batch]
    channel.close()
    assert len(outcomes) == 40 and all(o.settled for o in outcomes)
    uri = agency_uri(accesses[0])
    for subscription_id, access in zip(subscriptions, accesses):
        assert [json.loads(m.body)["id"] for m in read_all(uri, access.queue)] == [
            f"{subscription_id}.{p}" for p in range(10)]


def test_one_agency_cannot_read_anothers_queue_nor_do_anything_else(broker, publisher, code):
    feeds = broker.feeds()
    police, yot = code("police"), code("yot")
    a = feeds.open_feed(police, "s1")
    b = feeds.open_feed(yot, "s2")
    assert publisher.send(subscription(yot, "s2"), events("s2", [1])).settled
    uri = agency_uri(a)

    assert "feed." + yot in refused(uri, lambda ch: ch.basic_get(b.queue))
    assert "feed." + yot in refused(uri, lambda ch: ch.basic_consume(b.queue, callback=lambda m: None))
    # nor make a queue of its own to bind to the feeds, nor bind its own queue to another's key
    refused(uri, lambda ch: ch.queue_declare(f"feed.{police}.mine", durable=True))
    refused(uri, lambda ch: ch.queue_declare("", exclusive=True))
    refused(uri, lambda ch: ch.queue_bind(a.queue, topology.FEEDS_EXCHANGE, "s2"))
    refused(uri, lambda ch: ch.exchange_declare("mine", "fanout"))
    refused(uri, lambda ch: ch.queue_delete(a.queue))
    # nor publish anywhere: the feeds, the default exchange, the services' events
    for exchange, key in ((topology.FEEDS_EXCHANGE, "s2"), ("", a.queue), ("amq.topic", "x"),
                          ("referrals.events", "referral.received")):
        with Connection(uri, transport_options={"confirm_publish": True}) as connection:
            with pytest.raises(AccessRefused):
                connection.Producer().publish("{}", exchange=exchange, routing_key=key, serializer=None)
    # nor reach another vhost, nor the management API
    with pytest.raises(NotAllowed):
        Connection(agency_uri(a).rsplit("/", 1)[0] + "/%2F").connect()
    assert Management(MANAGEMENT, a.username, a.password).session.get(f"{MANAGEMENT}/api/overview",
                                                                         timeout=10).status_code == 401
    # the known limit (docs/security.md): a passive declare needs no permission, so A may learn
    # that a queue it can name exists, and its depth; not read it
    with Connection(uri) as connection:
        assert connection.channel().queue_declare(b.queue, passive=True).message_count == 1
    # and B's event is still there for B alone
    assert [json.loads(m.body)["id"] for m in read_all(agency_uri(b), b.queue)] == ["s2.1"]
    # while A may consume (and look at) its own
    with Connection(uri) as connection:
        channel = connection.channel()
        assert channel.queue_declare(a.queue, passive=True).message_count == 0
        assert channel.basic_get(a.queue) is None


@pytest.mark.parametrize("first, second", [("police", "police-gwent"), ("a.b", "a-b"), ("a", "a.b"),
                                           ("a-b", "a.b")])
def test_an_agency_whose_code_starts_anothers_cannot_read_its_queues(broker, publisher, code, first, second):
    feeds = broker.feeds()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    one = feeds.open_feed(code(first, prefix), "s1")
    # the same subscription id, which the service never gives twice: still each its own events
    other = feeds.open_feed(code(second, prefix), "s1")
    assert publisher.send(subscription(code(second, prefix), "s1"), events("s1", [1])).settled
    refused(agency_uri(one), lambda ch: ch.basic_get(other.queue))
    refused(agency_uri(other), lambda ch: ch.basic_get(one.queue))
    assert read_all(agency_uri(one), one.queue) == []
    assert [json.loads(m.body)["id"] for m in read_all(agency_uri(other), other.queue)] == ["s1.1"]


# --- opening again, resetting, closing --------------------------------------------------------

def test_opening_again_gives_the_same_feed_and_no_new_password(broker, code):
    feeds = broker.feeds()
    police = code("police")
    first = feeds.open_feed(police, "s1")
    again = feeds.open_feed(police, "s1")
    assert again == type(first)(**{**first.__dict__, "password": None})
    second = feeds.open_feed(police, "s2")
    assert (second.queue, second.password) == (f"feed.{police}.s2", None)
    # the one password works for both queues
    with Connection(agency_uri(first)) as connection:
        channel = connection.channel()
        for queue in (first.queue, second.queue):
            assert channel.queue_declare(queue, passive=True).queue == queue
    info = Management.from_url(management_admin_url()).queue(broker.vhost, first.queue)
    assert info["arguments"]["x-queue-type"] == "quorum"
    assert info["arguments"]["x-overflow"] == "reject-publish"


def test_a_reset_password_replaces_the_old_one_and_ends_its_connections(broker, code):
    feeds = broker.feeds()
    police = code("police")
    access = feeds.open_feed(police, "s1")
    old = Connection(agency_uri(access))
    old.connect()
    new = feeds.reset_password(police)
    assert new != access.password
    # the connection opened with the old password is closed by the broker
    with pytest.raises(ConnectionForced):
        old.drain_events(timeout=10)
    old.collect()
    with pytest.raises(AccessRefused):
        Connection(agency_uri(access)).connect()
    with Connection(agency_uri(access, new)) as connection:
        assert connection.channel().queue_declare(access.queue, passive=True).queue == access.queue
    with pytest.raises(NoFeed):
        feeds.reset_password(code("nobody"))


def test_closing_a_feed_deletes_its_queue_and_the_last_one_the_user(broker, publisher, code):
    feeds = broker.feeds()
    police = code("police")
    one = feeds.open_feed(police, "s1")
    two = feeds.open_feed(police, "s2")
    assert publisher.send(subscription(police, "s1"), events("s1", [1])).settled

    feeds.close_feed(police, "s1", last=False)
    assert feeds.management.queue(broker.vhost, one.queue) is None
    assert feeds.management.user(one.username) is not None
    # the closed feed's events have nowhere to go: not settled, so the dispatcher keeps them
    gone = publisher.send(subscription(police, "s1"), events("s1", [2]))
    assert (gone.settled, gone.error) == (False, "unroutable: the feed's queue is gone")
    # and the channel carries on for the feeds that are there
    assert publisher.send(subscription(police, "s2"), events("s2", [3])).settled
    # (one agency, one password: the first feed's answer carried it)
    assert [json.loads(m.body)["id"] for m in read_all(agency_uri(one), two.queue)] == ["s2.3"]

    feeds.close_feed(police, "s2", last=True)
    assert feeds.management.queue(broker.vhost, two.queue) is None
    assert feeds.management.user(one.username) is None
    with pytest.raises(AccessRefused):
        Connection(agency_uri(one)).connect()
    feeds.close_feed(police, "s2", last=True)   # again: nothing there, no error


def test_a_full_feed_refuses_more_and_drops_nothing(broker, publisher, code):
    feeds = broker.feeds(**{FEED_MAX_LENGTH: "3"})
    police = code("police")
    access = feeds.open_feed(police, "s1")
    outcomes = [publisher.send(subscription(police, "s1"), events("s1", [p])) for p in range(1, 8)]
    refused_from = next(i for i, outcome in enumerate(outcomes) if not outcome.settled)
    assert refused_from >= 3   # quorum queues refuse once the limit is passed, not at it
    assert outcomes[refused_from].error.startswith("the broker refused the event")
    assert not any(outcome.settled for outcome in outcomes[refused_from:])
    # what the queue holds is what was settled, the oldest first: nothing was dropped for room
    held = [json.loads(m.body)["id"] for m in read_all(agency_uri(access), access.queue)]
    assert held == [f"s1.{p}" for p in range(1, refused_from + 1)]
    # once the agency has read them, the dispatcher's retry goes through
    assert publisher.send(subscription(police, "s1"), events("s1", range(refused_from + 1, 8))).settled
    assert [json.loads(m.body)["id"] for m in read_all(agency_uri(access), access.queue)] == [
        f"s1.{p}" for p in range(refused_from + 1, 8)]


def test_the_feeds_exchange_is_declared_with_the_topology(amqp_uri):
    """The service never declares it (its user may not): the bootstrap's topology does."""
    topology.declare(amqp_uri)
    with Connection(amqp_uri) as connection:
        Exchange(topology.FEEDS_EXCHANGE, type="direct", durable=True).bind(connection.channel()).declare(
            passive=True)
