"""What the subscriptions API does, between the HTTP entrypoints and the store: an agency's
subscriptions (each answered only to its own agency: another's is "not found"), their secrets
and replays, their delivery log, and the agencies' sharing agreements.

Bad input raises InvalidSubscription / sharing.InvalidSharing naming each field at fault,
before anything is stored; each change and the event announcing it are one write (the outbox),
then published.
"""
import logging
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from services.subscriptions import subscription as rules
from services.subscriptions.broker_feeds import ADMIN_URL, NoFeed, agency_user, feed_queue
from services.subscriptions.store import AgreementTaken, agreement_id
from shared.messaging.management import ManagementError

CREATED, DELETED = "subscription.created", "subscription.deleted"
AGREEMENT_SET = "sharing.agreement_set"
DELIVERIES_LIMIT = 100

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """No such subscription, for this caller."""


class Refused(ValueError):
    """409: the subscription's state does not allow this (the message says why)."""


class NotAvailable(RuntimeError):
    """501: this deployment does not offer it (the message says what)."""


class BrokerUnavailable(RuntimeError):
    """503: the broker could not make or change an AMQP feed just now; nothing was stored."""


# an amqp subscription needs the broker's management API (BrokerFeeds); without it, say which setting
NO_FEEDS = (f"amqp subscriptions are not offered by this deployment: {ADMIN_URL} is not set "
            "(use a webhook, or ask the operator to set it)")


@dataclass(frozen=True)
class ApiSettings:
    allow_local_http: bool = False
    secret_overlap: timedelta = timedelta(days=1)


def _now():
    return datetime.now(timezone.utc)


def _changed(outbox, event_type, subscription, reason=None):
    data = {"subscription_id": subscription.subscription_id, "agency": subscription.agency, "kind": subscription.kind}
    if reason:
        data["reason"] = reason
    return outbox.event(event_type, subscription.subscription_id, data, correlationid=subscription.subscription_id)


def create(store, outbox, body, principal, settings, feeds=None):
    """A new subscription for the caller's agency: (its view, and what the caller must keep:
    the webhook secret, or the AMQP feed's access)."""
    asked, start = rules.read_create(body, settings.allow_local_http)
    reached = store.highest_position()
    if start != rules.START_NOW and start > reached + 1:
        raise rules.InvalidSubscription({"start": [f"The ledger holds positions 0 to {reached} so far."]})
    if asked["kind"] == "amqp" and feeds is None:
        raise NotAvailable(NO_FEEDS)
    secret = rules.new_secret() if asked["kind"] == "webhook" else None
    subscription = rules.new_subscription(asked, principal, _now(), rules.start_after(start, reached), secret)
    granted = {"secret": secret}
    if subscription.kind == "amqp":
        first = not _other_feeds(store, subscription)
        with _broker():
            granted = {"amqp": _access(feeds.open_feed(subscription.agency, subscription.subscription_id))}
    event = _changed(outbox, CREATED, subscription)
    try:
        store.add_subscription(subscription, [event])
    except Exception:
        if subscription.kind == "amqp":
            # not stored, so nobody would ever close it: and a user made here would keep a
            # password the agency never saw
            with suppress(Exception):
                feeds.close_feed(subscription.agency, subscription.subscription_id, last=first)
        raise
    outbox.flush(store.SUBSCRIPTIONS, subscription.subscription_id, [event])
    return subscription, granted


def _other_feeds(store, subscription):
    return [s for s in store.subscriptions_of(subscription.agency)
            if s.kind == "amqp" and s.subscription_id != subscription.subscription_id]


def _access(access):
    """An AMQP feed's access as the API answers it (the password only when one was made)."""
    return {"host": access.host, "port": access.port, "vhost": access.vhost, "queue": access.queue,
            "username": access.username, "password": access.password}


@contextmanager
def _broker():
    """The broker's failures (unreachable, refusing), as a 503 saying nothing of its answer."""
    try:
        yield
    except (OSError, RuntimeError) as error:   # requests' errors, ManagementError
        if isinstance(error, (NotAvailable, BrokerUnavailable)):
            raise
        # ManagementError names the request and the broker's status only; other errors by their kind
        log.warning("the broker's management API failed: %s",
                    error if isinstance(error, ManagementError) else type(error).__name__)
        raise BrokerUnavailable("the message broker could not set up the feed just now; try again later")


def owned(store, subscription_id, principal):
    """The caller's agency's subscription, or NotFound (as for one that does not exist)."""
    found = store.subscription(subscription_id) if len(subscription_id) <= 100 else None
    if found is None or found.agency != principal.agency or found.status == "deleted":
        raise NotFound("no such subscription")
    return found


def listing(store, principal):
    return [view(store, s) for s in store.subscriptions_of(principal.agency)]


def view(store, subscription):
    """A subscription as its owner sees it: its settings and where its delivery stands."""
    cursor = store.cursor(subscription.subscription_id)
    shown = subscription.view()
    if subscription.kind == "amqp":
        # where to read it (never a password)
        shown["amqp"] = {"queue": feed_queue(subscription.agency, subscription.subscription_id),
                         "username": agency_user(subscription.agency)}
    shown["delivery"] = {
        "status": "disabled" if cursor and cursor.disabled else "active",
        "disabled_reason": cursor.disabled if cursor else None,
        "position": cursor.position if cursor else subscription.start_after,
        "failures": cursor.failures if cursor else 0,
        "next_attempt_at": _iso(cursor.next_attempt_at) if cursor and cursor.in_flight else None,
        "attempts": cursor.attempts if cursor else 0,
    }
    return shown


def change(store, subscription_id, body, principal, settings):
    current = owned(store, subscription_id, principal)
    changed = rules.read_change(body, current, settings.allow_local_http)
    store.save_subscription(changed)
    return changed


def delete(store, outbox, subscription_id, principal, feeds=None):
    current = owned(store, subscription_id, principal)
    gone = replace(current, status="deleted")
    if current.kind == "amqp":
        # its queue (and, with the agency's last feed, its broker user) goes first: a feed left
        # open after the subscription is gone would be access nobody can see or close
        if feeds is None:
            raise NotAvailable(NO_FEEDS)
        with _broker():
            feeds.close_feed(current.agency, current.subscription_id, last=not _other_feeds(store, current))
    event = _changed(outbox, DELETED, gone)
    store.save_subscription(gone, [event])
    outbox.flush(store.SUBSCRIPTIONS, gone.subscription_id, [event])


def rotate_secret(store, subscription_id, principal, settings, feeds=None):
    """A new secret; the old ones keep signing beside it until the overlap ends. For an amqp
    subscription: a new password for the agency's broker user (one for all its feeds), which
    replaces the old one at once."""
    current = owned(store, subscription_id, principal)
    if current.kind == "amqp":
        return {"amqp": _access(_new_password(feeds, current))}
    if current.kind != "webhook":
        raise Refused("only a webhook subscription has a signing secret")
    now = _now()
    secret, rotated = current.rotated(now, settings.secret_overlap)
    store.save_subscription(rotated)
    return {"secret": secret, "previous_secrets_sign_until": (now + settings.secret_overlap).isoformat()}


def _new_password(feeds, subscription):
    if feeds is None:
        raise NotAvailable(NO_FEEDS)
    agency, subscription_id = subscription.agency, subscription.subscription_id
    with _broker():
        try:
            return replace(feeds.access(agency, subscription_id), password=feeds.reset_password(agency))
        except NoFeed:
            # its user is gone (an operator removed it): made again, with its queue and a password
            return feeds.open_feed(agency, subscription_id)


def replay(store, subscription_id, body, principal):
    """Ask for delivery again from a ledger position; the dispatcher applies it."""
    current = owned(store, subscription_id, principal)
    position, reached = rules.read_replay(body), store.highest_position()
    if position > reached + 1:
        raise rules.InvalidSubscription({"from_position": [f"The ledger holds positions 0 to {reached} so far."]})
    cursor = store.cursor(subscription_id)
    if cursor is not None and cursor.disabled:
        raise Refused("this subscription is disabled; create a new one starting from the position you need")
    asked = rules.replay_request(current, position, principal, _now())
    store.save_subscription(asked)
    return {"replay_id": asked.replay.replay_id, "from_position": position}


def deliveries(store, subscription_id, principal, before=None, limit=50):
    """The subscription's delivery attempts, newest first, a page at a time."""
    owned(store, subscription_id, principal)
    cursor = store.cursor(subscription_id)
    latest = cursor.attempts if cursor else 0
    before = latest + 1 if before is None else min(before, latest + 1)
    items = store.attempts(subscription_id, before, limit)
    return {"items": [{"attempt": a.number, "positions": list(a.positions), "retry": a.retry, "at": _iso(a.at),
                       "result": a.result, "status_code": a.status, "error": a.error,
                       "duration_ms": round(a.seconds * 1000, 1), "next_retry_at": _iso(a.next_retry_at)}
                      for a in items],
            "next_before": items[-1].number if items and items[-1].number > 1 else None}


def _iso(seconds):
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc).isoformat()


# --- sharing agreements ---------------------------------------------------------------------------

def set_sharing(store, outbox, agency, body, principal, sharing):
    """A coordinator sets an agency's agreement: a new version, announced on the bus."""
    request = sharing.read_request(body)
    sharing.check_may_set(principal, agency, request)
    versions = store.agreements_of(agency)
    agreement = sharing.next_version(versions[-1] if versions else None, request, principal, _now(), agency=agency)
    event = outbox.event(AGREEMENT_SET, agency, agreement.event_data(), correlationid=agency)
    try:
        store.add_agreement(agreement, [event])
    except AgreementTaken:
        raise Refused("another coordinator changed this agreement at the same moment; look and try again")
    outbox.flush(store.AGREEMENTS, agreement_id(agency, agreement.version), [event])
    return agreement


def sharing_view(store, agency):
    versions = store.agreements_of(agency)
    shown = [_agreement_view(a) for a in versions]
    return {"agency": agency, "current": shown[-1] if shown else None, "versions": shown}


def _agreement_view(agreement):
    return {"profile": agreement.profile, "regions": list(agreement.regions),
            "agreement_reference": agreement.agreement_reference, "version": agreement.version,
            "set_by": agreement.set_by, "set_at": agreement.set_at.isoformat()}
