"""The API's rules for amqp subscriptions (workflow.py), against the in-memory store and a
stand-in for BrokerFeeds that records what it is asked (the real one is tested on RabbitMQ in
tests/integration/test_subscription_feeds.py, and the whole path in tests/e2e)."""
from dataclasses import replace

import pytest
import requests

from services.subscriptions import workflow
from services.subscriptions.broker_feeds import FeedAccess, NoFeed, agency_user, feed_queue
from services.subscriptions.memory_store import InMemorySubscriptionsStore
from shared.messaging.management import ManagementError
from shared.security.api_keys import Principal
from tests.unit.test_subscriptions_dispatcher import Outbox

AMQP = {"kind": "amqp", "event_types": ["case.*"]}
SETTINGS = workflow.ApiSettings()
POLICE = Principal("referrer", "police-gwent", "k1", subject="ref-1")
PROBATION = Principal("referrer", "probation-gwent", "k2", subject="pro-1")


class Feeds:
    """What BrokerFeeds is asked, and a broker user per agency with its password."""

    def __init__(self, failing=None):
        self.calls, self.users, self.failing = [], {}, failing

    def _call(self, *call):
        self.calls.append(call)
        if self.failing is not None:
            raise self.failing

    def access(self, agency, subscription_id):
        return FeedAccess("broker.example", 5672, "/", feed_queue(agency, subscription_id), agency_user(agency), None)

    def open_feed(self, agency, subscription_id):
        self._call("open", agency, subscription_id)
        password = None if agency in self.users else f"pw-{len(self.calls)}"
        self.users.setdefault(agency, password)
        return replace(self.access(agency, subscription_id), password=password)

    def reset_password(self, agency):
        self._call("reset", agency)
        if agency not in self.users:
            raise NoFeed(agency)
        self.users[agency] = f"pw-{len(self.calls)}"
        return self.users[agency]

    def close_feed(self, agency, subscription_id, last):
        self._call("close", agency, subscription_id, last)
        if last:
            self.users.pop(agency, None)


class FailingStore(InMemorySubscriptionsStore):
    def add_subscription(self, subscription, events=()):
        raise OSError("the database went away")


def create(store, feeds, principal=POLICE, body=AMQP):
    return workflow.create(store, Outbox(), body, principal, SETTINGS, feeds)


def test_an_amqp_subscription_answers_where_and_as_whom_to_read_and_the_password_once():
    store, feeds = InMemorySubscriptionsStore(), Feeds()
    first, granted = create(store, feeds)
    assert granted == {"amqp": {"host": "broker.example", "port": 5672, "vhost": "/",
                                "queue": f"feed.police-gwent.{first.subscription_id}",
                                "username": "agency.police-gwent", "password": feeds.users["police-gwent"]}}
    second, again = create(store, feeds)
    assert again["amqp"]["password"] is None and again["amqp"]["queue"].endswith(second.subscription_id)
    shown = workflow.view(store, first)
    assert shown["amqp"] == {"queue": granted["amqp"]["queue"], "username": "agency.police-gwent"}
    assert granted["amqp"]["password"] not in str(shown)
    # a webhook has no such thing
    hook, _ = create(store, feeds, body={"kind": "webhook", "url": "https://p.example/h", "event_types": ["case.*"]})
    assert "amqp" not in workflow.view(store, hook)


def test_without_the_admin_setting_amqp_is_refused_naming_it_and_nothing_is_stored():
    store = InMemorySubscriptionsStore()
    with pytest.raises(workflow.NotAvailable, match="SUBSCRIPTIONS_BROKER_ADMIN_URL"):
        create(store, None)
    assert store.subscriptions_of("police-gwent") == []


@pytest.mark.parametrize("failure", [ManagementError("PUT", "/api/users/x", 500),
                                     requests.ConnectionError("refused")])
def test_a_broker_that_fails_answers_unavailable_and_nothing_is_stored(failure):
    store = InMemorySubscriptionsStore()
    with pytest.raises(workflow.BrokerUnavailable) as refused:
        create(store, Feeds(failing=failure))
    assert "/api/users" not in str(refused.value) and "refused" not in str(refused.value)
    assert store.subscriptions_of("police-gwent") == []


def test_a_feed_opened_for_a_subscription_that_could_not_be_stored_is_closed_again():
    feeds = Feeds()
    with pytest.raises(OSError):
        create(FailingStore(), feeds)
    (_, agency, subscription_id), close = feeds.calls
    # its user was made by this request: gone with it, so the next attempt gets a password
    assert close == ("close", agency, subscription_id, True) and feeds.users == {}


def test_deleting_closes_the_feed_and_the_last_one_the_agency_s_user():
    store, feeds = InMemorySubscriptionsStore(), Feeds()
    one, _ = create(store, feeds)
    two, _ = create(store, feeds)
    create(store, feeds, PROBATION)
    workflow.delete(store, Outbox(), one.subscription_id, POLICE, feeds)
    assert feeds.calls[-1] == ("close", "police-gwent", one.subscription_id, False)
    workflow.delete(store, Outbox(), two.subscription_id, POLICE, feeds)
    assert feeds.calls[-1] == ("close", "police-gwent", two.subscription_id, True)
    assert store.subscriptions_of("police-gwent") == [] and set(feeds.users) == {"probation-gwent"}


def test_an_amqp_subscription_is_not_deleted_while_its_feed_cannot_be_closed():
    store, feeds = InMemorySubscriptionsStore(), Feeds()
    made, _ = create(store, feeds)
    with pytest.raises(workflow.NotAvailable, match="SUBSCRIPTIONS_BROKER_ADMIN_URL"):
        workflow.delete(store, Outbox(), made.subscription_id, POLICE, None)
    feeds.failing = requests.ConnectionError("refused")
    with pytest.raises(workflow.BrokerUnavailable):
        workflow.delete(store, Outbox(), made.subscription_id, POLICE, feeds)
    assert [s.subscription_id for s in store.subscriptions_of("police-gwent")] == [made.subscription_id]


def test_rotating_an_amqp_subscription_gives_its_agency_a_new_password():
    store, feeds = InMemorySubscriptionsStore(), Feeds()
    made, granted = create(store, feeds)
    rotated = workflow.rotate_secret(store, made.subscription_id, POLICE, SETTINGS, feeds)
    assert rotated == {"amqp": {**granted["amqp"], "password": feeds.users["police-gwent"]}}
    assert rotated["amqp"]["password"] != granted["amqp"]["password"]
    # its user removed behind the service's back: made again, with a password
    del feeds.users["police-gwent"]
    again = workflow.rotate_secret(store, made.subscription_id, POLICE, SETTINGS, feeds)
    assert again["amqp"]["password"] == feeds.users["police-gwent"] and feeds.calls[-1][0] == "open"
    with pytest.raises(workflow.NotFound):
        workflow.rotate_secret(store, made.subscription_id, PROBATION, SETTINGS, feeds)
    with pytest.raises(workflow.NotAvailable):
        workflow.rotate_secret(store, made.subscription_id, POLICE, SETTINGS, None)
