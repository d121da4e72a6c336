"""What the subscriptions API does, between the HTTP entrypoints and the store: an agency's
subscriptions (each answered only to its own agency: another's is "not found"), their secrets
and replays, their delivery log, and the agencies' sharing agreements.

Bad input raises InvalidSubscription / sharing.InvalidSharing naming each field at fault,
before anything is stored; each change and the event announcing it are one write (the outbox),
then published.
"""
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from services.subscriptions import subscription as rules
from services.subscriptions.store import AgreementTaken, agreement_id

CREATED, DELETED = "subscription.created", "subscription.deleted"
AGREEMENT_SET = "sharing.agreement_set"
DELIVERIES_LIMIT = 100


class NotFound(LookupError):
    """No such subscription, for this caller."""


class Refused(ValueError):
    """409: the subscription's state does not allow this (the message says why)."""


class NotAvailable(RuntimeError):
    """501: this deployment does not offer it (the message says what)."""


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
        raise NotAvailable("amqp subscriptions are not offered by this deployment yet; use a webhook")
    secret = rules.new_secret() if asked["kind"] == "webhook" else None
    subscription = rules.new_subscription(asked, principal, _now(), rules.start_after(start, reached), secret)
    granted = {"secret": secret}
    if subscription.kind == "amqp":
        access = feeds.open_feed(subscription.agency, subscription.subscription_id)
        granted = {"amqp": {"host": access.host, "port": access.port, "vhost": access.vhost, "queue": access.queue,
                            "username": access.username, "password": access.password}}
    event = _changed(outbox, CREATED, subscription)
    store.add_subscription(subscription, [event])
    outbox.flush(store.SUBSCRIPTIONS, subscription.subscription_id, [event])
    return subscription, granted


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
    if current.kind == "amqp" and feeds is not None:
        others = [s for s in store.subscriptions_of(current.agency)
                  if s.kind == "amqp" and s.subscription_id != current.subscription_id]
        feeds.close_feed(current.agency, current.subscription_id, last=not others)
    event = _changed(outbox, DELETED, gone)
    store.save_subscription(gone, [event])
    outbox.flush(store.SUBSCRIPTIONS, gone.subscription_id, [event])


def rotate_secret(store, subscription_id, principal, settings):
    """A new secret; the old ones keep signing beside it until the overlap ends."""
    current = owned(store, subscription_id, principal)
    if current.kind != "webhook":
        raise Refused("only a webhook subscription has a signing secret")
    now = _now()
    secret, rotated = current.rotated(now, settings.secret_overlap)
    store.save_subscription(rotated)
    return {"secret": secret, "previous_secrets_sign_until": (now + settings.secret_overlap).isoformat()}


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
