"""Agencies' AMQP feeds: a RabbitMQ user per agency, a quorum queue per subscription, and
permission to read its own queues and nothing else (docs/subscriptions.md).

    agency `police-gwent`, subscription `s1`:
    subscriptions --key feed.police-gwent.s1--> subscriptions.feeds (direct) --> feed.police-gwent.s1 (quorum)
                                                                                  ^ consumed by agency.police-gwent

The routing key is the queue's name, not the bare subscription id: were two agencies' ids ever
the same, each agency would still get only its own events.

`BrokerFeeds` makes and removes users, permissions, queues and bindings through the broker's
management HTTP API, as a broker administrator (SUBSCRIPTIONS_BROKER_ADMIN_URL): making users
and setting their permissions is an administrator's right in RabbitMQ, and no narrower one
exists. That credential is the subscriptions service's alone, from its environment only.

`AmqpChannel` is the delivery channel of amqp subscriptions: it publishes each CloudEvent as
its own persistent message, with publisher confirms and `mandatory`, so that a message the
broker could not queue (the queue gone, or full) is reported as not settled and sent again
later, never lost.
"""
import json
import re
import secrets
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, replace

from kombu import Connection, Producer

from services.subscriptions.outcome import Outcome
from shared.config import StartRefused, setting
from shared.events.vocabulary import CODE_PATTERN
from shared.messaging.management import Management
from shared.messaging.permissions import Grant, uri_user
from shared.messaging.topology import FEEDS_EXCHANGE

SERVICE = "subscriptions"
ADMIN_URL = "SUBSCRIPTIONS_BROKER_ADMIN_URL"
# where agencies connect: the broker's address as they reach it (default: AMQP_URI's host and port)
FEED_HOST, FEED_PORT = "SUBSCRIPTIONS_FEED_HOST", "SUBSCRIPTIONS_FEED_PORT"
# messages a feed's queue holds before the broker refuses more (the dispatcher then retries)
FEED_MAX_LENGTH, DEFAULT_MAX_LENGTH = "SUBSCRIPTIONS_FEED_MAX_LENGTH", 100_000
# connections an agency's user may hold open at once (each may open CHANNELS_PER_CONNECTION)
FEED_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS = "SUBSCRIPTIONS_FEED_MAX_CONNECTIONS", 10
CHANNELS_PER_CONNECTION = 8

AGENCY_CODE = re.compile(CODE_PATTERN)
AGENCY_MAX_LENGTH = 100
# No dots: `feed.<agency>.<subscription>` then splits one way only, and an agency's read
# permission (which ends at the subscription id) cannot reach the queues of an agency whose
# code is its own followed by a dot (`a` and `a.b`).
SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SUBSCRIPTION_ID_CLASS = r"[A-Za-z0-9][A-Za-z0-9_-]*"

QUEUE_PREFIX, USER_PREFIX = "feed.", "agency."
# Fixed for the life of a queue (a queue's arguments never change); the length limit, which
# may, is in the policy. reject-publish: a full queue nacks the publish, it drops nothing.
QUEUE_ARGUMENTS = {"x-queue-type": "quorum", "x-overflow": "reject-publish"}
POLICY_NAME = "subscriptions-feeds"
# above a catch-all policy an operator may have (a queue follows one policy: the highest)
POLICY_PRIORITY = 10


def _agency(agency):
    if not isinstance(agency, str) or len(agency) > AGENCY_MAX_LENGTH or not AGENCY_CODE.fullmatch(agency):
        raise ValueError("agency: not an agency code")
    return agency


def _subscription(subscription_id):
    if not isinstance(subscription_id, str) or not SUBSCRIPTION_ID.fullmatch(subscription_id):
        raise ValueError("subscription_id: letters, digits, '-' and '_' only (at most 64)")
    return subscription_id


def feed_queue(agency, subscription_id):
    return f"{QUEUE_PREFIX}{_agency(agency)}.{_subscription(subscription_id)}"


def agency_user(agency):
    return f"{USER_PREFIX}{_agency(agency)}"


def agency_grant(agency):
    """An agency's permissions: read (consume, get, purge) its own feeds' queues; configure
    and write nothing, so it can neither declare, delete nor bind a queue, nor publish."""
    read = f"^{re.escape(QUEUE_PREFIX + _agency(agency) + '.')}{SUBSCRIPTION_ID_CLASS}$"
    return Grant("^$", "^$", read, {})


def feed_policy(max_length, broker_version):
    """The feeds' policy definition. RabbitMQ 4 gives quorum queues a delivery limit (20)
    beyond which a message an agency's consumer keeps returning is dropped: lifted here, so
    that a message leaves a feed only when the agency acks or rejects it. RabbitMQ 3 has no
    such limit (and refuses -1)."""
    definition = {"max-length": int(max_length), "overflow": "reject-publish"}
    if int(broker_version.split(".")[0]) >= 4:
        definition["delivery-limit"] = -1
    return definition


def new_password():
    # 32 random bytes; handed to the agency once, never stored or logged here
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class FeedAccess:
    host: str
    port: int
    vhost: str
    queue: str
    username: str
    # None: the agency's user existed already, and its password was given out before
    password: str | None


class NoFeed(LookupError):
    """The agency has no feed user."""


class BrokerFeeds:
    """Users, permissions, queues and bindings of agencies' feeds, on the broker of AMQP_URI
    (its vhost), through the management API of SUBSCRIPTIONS_BROKER_ADMIN_URL."""

    def __init__(self, config=None, management=None):
        admin_url = setting(config, ADMIN_URL)
        if management is None and not admin_url:
            raise StartRefused(SERVICE, f"set {ADMIN_URL} to the broker's management URL with an "
                                        "administrator's user and password (agencies' feeds need it)")
        self.management = management or Management.from_url(admin_url)
        amqp = Connection(setting(config, "AMQP_URI"))
        self.vhost = amqp.virtual_host or "/"
        self.host = str(setting(config, FEED_HOST, amqp.hostname))
        self.port = int(setting(config, FEED_PORT, amqp.port or 5672))
        self.max_length = int(setting(config, FEED_MAX_LENGTH, DEFAULT_MAX_LENGTH))
        self.max_connections = int(setting(config, FEED_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS))
        self._policy_set = False
        self._locks, self._locks_lock = {}, threading.Lock()

    def _agency_lock(self, agency):
        # one user change at a time per agency in this process: two first subscriptions at
        # once must not both make the user, each handing out a password (the second replaces
        # the first's)
        with self._locks_lock:
            return self._locks.setdefault(agency, threading.Lock())

    def apply_policy(self):
        """Set the feeds' policy (length limit, overflow) in the vhost, once per process: on the
        first feed opened, or at start when the service calls it (a changed
        SUBSCRIPTIONS_FEED_MAX_LENGTH then reaches the existing queues at once)."""
        if not self._policy_set:
            definition = feed_policy(self.max_length, self.management.version())
            self.management.put_policy(self.vhost, POLICY_NAME, f"^{re.escape(QUEUE_PREFIX)}", definition,
                                       priority=POLICY_PRIORITY)
            self._policy_set = True

    def open_feed(self, agency, subscription_id):
        """The subscription's queue, bound to the feeds exchange, and the agency's user, made
        where missing; safe to call again. The password is in the answer only when this call
        made the user."""
        access = self.access(agency, subscription_id)
        self.apply_policy()
        self.management.put_queue(self.vhost, access.queue, QUEUE_ARGUMENTS)
        self.management.bind_queue(self.vhost, FEEDS_EXCHANGE, access.queue, access.queue)
        return replace(access, password=self._ensure_user(agency))

    def access(self, agency, subscription_id):
        """Where the agency reads the subscription's feed, and as whom (no password)."""
        return FeedAccess(self.host, self.port, self.vhost, feed_queue(agency, subscription_id),
                          agency_user(agency), None)

    def _ensure_user(self, agency):
        user = agency_user(agency)
        with self._agency_lock(agency):
            password = None
            if self.management.user(user) is None:
                password = new_password()
                self.management.put_user(user, password)
            try:
                self.management.set_permissions(self.vhost, user, agency_grant(agency))
                self.management.set_user_limit(user, "max-connections", self.max_connections)
                self.management.set_user_limit(user, "max-channels", self.max_connections * CHANNELS_PER_CONNECTION)
            except Exception:
                if password is not None:
                    # its password would never reach the agency: take the user away, so that
                    # the next attempt makes it afresh and hands a password out
                    with suppress(Exception):
                        self.management.delete_user(user)
                raise
            return password

    def reset_password(self, agency):
        """A new password for the agency's user (the old one stops working, and connections
        made with it are closed); raises NoFeed if the agency has no user."""
        user = agency_user(agency)
        with self._agency_lock(agency):
            if self.management.user(user) is None:
                raise NoFeed(agency)
            password = new_password()
            self.management.put_user(user, password)
            self.management.close_connections_of(user)
            return password

    def close_feed(self, agency, subscription_id, last):
        """Delete the subscription's queue (with what is in it), and, when it was the agency's
        `last` feed, the agency's user and its connections. Safe to call again."""
        self.management.delete_queue(self.vhost, feed_queue(agency, subscription_id))
        if last:
            user = agency_user(agency)
            with self._agency_lock(agency):
                self.management.delete_user(user)
                self.management.close_connections_of(user)


CONTENT_TYPE = "application/cloudevents+json"
NO_ROUTE = 312


def _failure(error, timeout):
    """Why a publish failed, in our own words (a broker's text may name anything)."""
    from amqp.exceptions import MessageNacked
    while error.__cause__ is not None:  # kombu's retry wraps what the broker said
        error = error.__cause__
    if isinstance(error, MessageNacked):
        return "the broker refused the event (the feed's queue is full or unavailable)"
    if getattr(error, "reply_code", None) == NO_ROUTE or "NO_ROUTE" in str(error):
        return "unroutable: the feed's queue is gone"
    if isinstance(error, TimeoutError):
        return f"no confirm from the broker within {timeout:g}s"
    return f"broker connection failed ({type(error).__name__})"


class AmqpChannel:
    """Publishes a subscription's CloudEvents to its queue (routing key: the queue's name),
    one persistent message each, in order, as the subscriptions service's own broker user
    (AMQP_URI), whose name the broker stamps in `user_id`.

    Safe from many greenlets: each send holds one pooled connection of its own. A connection
    that failed is dropped (a late confirm on it could otherwise be taken for the next
    message's), and made again on next use."""

    def __init__(self, amqp_uri, timeout=10.0, connections=4):
        self.timeout = float(timeout)
        self.user_id = uri_user(amqp_uri)
        # one quick reconnection within a send (a broker restarted since the last one), then
        # the send fails and the dispatcher tries again later
        self.pool = Connection(amqp_uri, connect_timeout=self.timeout, transport_options={
            "confirm_publish": True, "max_retries": 1, "interval_start": 0, "interval_step": 1,
            "interval_max": 1}).Pool(limit=connections)

    def send(self, subscription, cloud_events):
        started = time.monotonic()
        try:
            routing_key = feed_queue(subscription.agency, subscription.subscription_id)
        except ValueError as error:
            return Outcome(settled=False, error=f"not a feed: {error}")
        try:
            connection = self.pool.acquire(block=True, timeout=self.timeout)
        except Exception:  # every connection busy for the whole timeout
            return Outcome(settled=False, error="no broker connection free", seconds=time.monotonic() - started)
        failure = None
        try:
            producer = Producer(connection)
            for event in cloud_events:
                producer.publish(
                    json.dumps(event), exchange=FEEDS_EXCHANGE, routing_key=routing_key,
                    mandatory=True, delivery_mode=2, serializer=None, content_type=CONTENT_TYPE,
                    content_encoding="utf-8", message_id=event["id"], type=event.get("type"),
                    user_id=self.user_id, confirm_timeout=self.timeout,
                    retry=True, retry_policy={"max_retries": 1, "interval_start": 0})
        except Exception as error:
            failure = _failure(error, self.timeout)
        if failure is None:
            connection.release()
            return Outcome(settled=True, seconds=time.monotonic() - started)
        connection.collect()  # no goodbye to a broker that may not answer
        self.pool.replace(connection)
        return Outcome(settled=False, error=failure, seconds=time.monotonic() - started)

    def close(self):
        self.pool.force_close_all()
