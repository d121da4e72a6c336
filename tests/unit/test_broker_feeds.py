"""The rules of agencies' AMQP feeds, without a broker: names, the read permission each agency
gets (a RabbitMQ regex, checked here with Python's, which reads these the same way), the
feeds' policy, and what BrokerFeeds does when the broker fails it half-way."""
import re
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.subscriptions import broker_feeds
from services.subscriptions.broker_feeds import (AmqpChannel, BrokerFeeds, agency_grant, agency_user, feed_policy,
                                                 feed_queue, new_password)
from shared.config import StartRefused
from shared.messaging.management import ManagementError
from tests.support import free_port


def may_read(agency, queue):
    """Whether the broker lets `agency`'s user consume `queue` (RabbitMQ: an unanchored
    search with the regex, which anchors itself)."""
    return re.search(agency_grant(agency).read, queue) is not None


def test_names():
    assert feed_queue("police-gwent", "sub_1") == "feed.police-gwent.sub_1"
    assert agency_user("police-gwent") == "agency.police-gwent"


@pytest.mark.parametrize("agency", ["", "police\n", "Police", "-police", ".police", "police gwent", "police/gwent",
                                    "a" * 101, None, 7])
def test_what_is_not_an_agency_code_is_refused(agency):
    with pytest.raises(ValueError, match="agency"):
        feed_queue(agency, "s1")
    with pytest.raises(ValueError, match="agency"):
        agency_grant(agency)


@pytest.mark.parametrize("subscription_id", ["", "s1\n", "s.1", "s 1", "-s1", "s/1", "s" * 65, None])
def test_what_is_not_a_subscription_id_is_refused(subscription_id):
    with pytest.raises(ValueError, match="subscription_id"):
        feed_queue("police", subscription_id)


def test_an_agency_may_read_its_own_queues_and_do_nothing_else():
    grant = agency_grant("police")
    assert (grant.configure, grant.write, grant.topics) == ("^$", "^$", {})
    assert may_read("police", "feed.police.s1")
    assert may_read("police", "feed.police.9f1c-AB_2")
    for queue in ("feed.police", "feed.police.", "feed.police.s1.dead", "xfeed.police.s1", "feed.police.s1x.y",
                  "referrals.dead-letters", "records.ledger", "feed.yot.s1", "amq.gen-x"):
        assert not may_read("police", queue), queue


@pytest.mark.parametrize("agency, other", [
    ("police", "police-gwent"),   # a code that starts another's
    ("a.b", "a-b"),               # the dot is a dot, not any character
    ("a.b", "axb"),
    ("a", "a.b"),                 # a prefix ending where the other's dot begins
    ("a", "a_b"),
])
def test_an_agency_cannot_read_the_queues_of_one_whose_code_starts_the_same(agency, other):
    for subscription_id in ("s1", "b", "b-s1"):
        assert not may_read(agency, feed_queue(other, subscription_id))
        assert not may_read(other, feed_queue(agency, subscription_id))


agency_codes = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,12}\Z")
subscription_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,12}\Z")


@st.composite
def agency_pairs(draw):
    """Two agency codes, often near each other: one the other's start (`a`, `a.b`), or the same
    but for one character where a regex could take a dot for any (`a.b`, `a-b`)."""
    agency = draw(agency_codes)
    kind = draw(st.sampled_from(["unrelated", "longer", "one character"]))
    if kind == "unrelated":
        return agency, draw(agency_codes)
    if kind == "longer":
        return agency, agency + draw(st.text(alphabet="a0_.-", min_size=1, max_size=4))
    at = draw(st.integers(min_value=1, max_value=len(agency))) - 1
    other = agency[:at] + draw(st.sampled_from("a0_.-".replace(agency[at], "") if at else "a0")) + agency[at + 1:]
    return agency, other


@given(agency_pairs(), subscription_ids)
def test_no_agency_reads_another_agencys_queue(pair, subscription_id):
    agency, other = pair
    for reader, owner in ((agency, other), (other, agency)):
        assert may_read(owner, feed_queue(owner, subscription_id))
        assert may_read(reader, feed_queue(owner, subscription_id)) == (reader == owner)


def test_the_policy_refuses_rather_than_drops():
    assert feed_policy(500, "3.10.8") == {"max-length": 500, "overflow": "reject-publish"}
    assert feed_policy(500, "3.13.7") == {"max-length": 500, "overflow": "reject-publish"}
    # RabbitMQ 4 would drop a message redelivered 20 times: no delivery limit there
    assert feed_policy(500, "4.1.0") == {"max-length": 500, "overflow": "reject-publish", "delivery-limit": -1}
    assert broker_feeds.QUEUE_ARGUMENTS == {"x-queue-type": "quorum", "x-overflow": "reject-publish"}


def test_passwords_are_long_random_and_url_safe():
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", p) for p in passwords)


# --- BrokerFeeds against a fake of the management API ----------------------------------------

class FakeManagement:
    """The management API's users, permissions and queues, kept in dicts; `fail` names a
    method that raises as the broker would."""

    def __init__(self, fail=None):
        self.users, self.permissions, self.queues, self.bindings, self.limits = {}, {}, {}, set(), {}
        self.closed, self.policies, self.fail = [], {}, fail

    def _maybe_fail(self, method):
        if self.fail == method:
            raise ManagementError("PUT", "/api/...", 500)

    def version(self):
        return "3.10.8"

    def user(self, name):
        return {"name": name} if name in self.users else None

    def put_user(self, name, password, tags=""):
        self._maybe_fail("put_user")
        self.users[name] = password

    def delete_user(self, name):
        return self.users.pop(name, None) is not None

    def set_permissions(self, vhost, user, grant):
        self._maybe_fail("set_permissions")
        self.permissions[(vhost, user)] = grant

    def set_user_limit(self, user, limit, value):
        self.limits[(user, limit)] = value

    def close_connections_of(self, user):
        self.closed.append(user)

    def put_queue(self, vhost, name, arguments):
        self.queues[(vhost, name)] = arguments

    def delete_queue(self, vhost, name):
        return self.queues.pop((vhost, name), None) is not None

    def bind_queue(self, vhost, exchange, queue, routing_key):
        self.bindings.add((vhost, exchange, queue, routing_key))

    def put_policy(self, vhost, name, pattern, definition, apply_to="queues", priority=0):
        self.policies[(vhost, name)] = (pattern, definition, priority)


CONFIG = {"AMQP_URI": "amqp://amends-subscriptions:pw@10.0.0.5:5673/region-a"}


def test_without_the_admin_url_the_service_will_not_start(monkeypatch):
    monkeypatch.delenv(broker_feeds.ADMIN_URL, raising=False)
    with pytest.raises(StartRefused, match=broker_feeds.ADMIN_URL):
        BrokerFeeds(CONFIG)


def test_a_feed_is_a_bound_queue_under_the_policy_and_a_user_made_once():
    fake = FakeManagement()
    feeds = BrokerFeeds({**CONFIG, broker_feeds.FEED_HOST: "amqp.amends.example", broker_feeds.FEED_MAX_LENGTH: "50"},
                        management=fake)
    first = feeds.open_feed("police", "s1")
    assert (first.host, first.port, first.vhost, first.queue, first.username) == (
        "amqp.amends.example", 5673, "region-a", "feed.police.s1", "agency.police")
    assert fake.users["agency.police"] == first.password
    assert fake.queues[("region-a", "feed.police.s1")] == broker_feeds.QUEUE_ARGUMENTS
    assert ("region-a", "subscriptions.feeds", "feed.police.s1", "feed.police.s1") in fake.bindings
    assert fake.policies[("region-a", "subscriptions-feeds")] == (
        r"^feed\.", {"max-length": 50, "overflow": "reject-publish"}, broker_feeds.POLICY_PRIORITY)
    assert fake.permissions[("region-a", "agency.police")] == agency_grant("police")
    assert fake.limits[("agency.police", "max-connections")] == broker_feeds.DEFAULT_MAX_CONNECTIONS
    # again, and a second subscription: no new password, the user's stays
    assert feeds.open_feed("police", "s1").password is None
    assert feeds.open_feed("police", "s2").password is None
    assert fake.users["agency.police"] == first.password


def test_the_agency_is_told_the_brokers_own_address_by_default():
    access = BrokerFeeds(CONFIG, management=FakeManagement()).open_feed("police", "s1")
    assert (access.host, access.port) == ("10.0.0.5", 5673)


def test_a_user_whose_permissions_failed_is_taken_away_so_a_retry_hands_out_a_password():
    fake = FakeManagement(fail="set_permissions")
    feeds = BrokerFeeds(CONFIG, management=fake)
    with pytest.raises(ManagementError):
        feeds.open_feed("police", "s1")
    assert "agency.police" not in fake.users
    fake.fail = None
    access = feeds.open_feed("police", "s1")
    assert access.password and fake.users["agency.police"] == access.password


def test_reset_and_close():
    fake = FakeManagement()
    feeds = BrokerFeeds(CONFIG, management=fake)
    first = feeds.open_feed("police", "s1")
    feeds.open_feed("police", "s2")
    new = feeds.reset_password("police")
    assert new != first.password and fake.users["agency.police"] == new and fake.closed == ["agency.police"]
    with pytest.raises(broker_feeds.NoFeed):
        feeds.reset_password("yot")
    feeds.close_feed("police", "s1", last=False)
    assert ("region-a", "feed.police.s1") not in fake.queues and "agency.police" in fake.users
    feeds.close_feed("police", "s2", last=True)
    assert not fake.queues and not fake.users and fake.closed == ["agency.police"] * 2


# --- AmqpChannel without a broker ----------------------------------------------------------

def test_no_broker_is_an_unsettled_outcome_not_an_exception():
    channel = AmqpChannel(f"amqp://u:p@127.0.0.1:{free_port()}/", timeout=2)
    outcome = channel.send(SimpleNamespace(agency="police", subscription_id="s1"),
                           [{"id": "s1.1", "type": "case.assessed"}])
    assert (outcome.settled, outcome.error) == (False, "broker connection failed (ConnectionRefusedError)")
    channel.close()


def test_a_subscription_that_names_no_feed_is_not_settled():
    channel = AmqpChannel("amqp://u:p@127.0.0.1:1/", timeout=1)
    outcome = channel.send(SimpleNamespace(agency="police", subscription_id="a.b"), [{"id": "x"}])
    assert (outcome.settled, outcome.error) == (False, "not a feed: subscription_id: letters, digits, '-' and '_' "
                                                       "only (at most 64)")
