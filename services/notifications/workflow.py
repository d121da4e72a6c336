"""What notifications does with each event it hears. Orchestration only: who is told
what is in `audience`, whether and when they may be reached in `reach`, the words in
`messages`, the I/O in `contacts` and `couriers`, the storage in the store (`ports.store`:
store.NotificationsStore, or memory_store.InMemoryNotificationsStore in tests).

Each (event, recipient) pair becomes one Delivery, whose key is the delivery key. A
worker claims the key before it sends, so redeliveries of an event send once. A failed
send marks the delivery `retrying` and raises, so the consumer retries the event through
its delay queues; the attempt that reaches the limit marks it `failed`, emits
notification.failed and raises again, so the event is dead-lettered with the reason. A
deferred delivery waits for `send_due`, run on a timer.
"""
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Callable, Optional

from services.notifications import audience, messages, owners, reach, sessions
from services.notifications.agencies import NoAgencyContact
from services.notifications.contacts import ContactLookupFailed
from services.notifications.coordinators import NoCoordinatingTeam
from services.notifications.couriers import SendFailed
from services.notifications.deliveries import (FINAL, NO_CHANNEL, Delivery, DeliveryExists, delivery_key,
                                               field_key, notification_id, utcnow)
from shared.messaging.consumer import TooEarly
from shared.outages import through_outage

log = logging.getLogger(__name__)

# A claim this old belongs to a worker that died mid-send: a send is bounded by the
# contact lookup timeout (10 s) and the SMTP or SMS timeout (20 s or 15 s).
STALE_CLAIM = timedelta(seconds=90)
# how long before its claim goes stale a worker stops trying to record a send it made
SETTLE_MARGIN = timedelta(seconds=20)
# Deferred deliveries a timer tick takes on at most.
DUE_BATCH = 50


class CaseNotYetKnown(TooEarly):
    """An event for a case (or assignment) whose earlier event has not reached us yet;
    waiting will fix it."""


class DeliveryInProgress(TooEarly):
    """Another worker holds this delivery's claim; waiting finds it finished, or stale
    (its worker died) and ours to take over."""


class HolderUnavailable(TooEarly):
    """The service holding a recipient's contact details did not answer (it may be
    restarting): not the event's fault, so waiting for it spends no retry."""


class NotificationFailed(RuntimeError):
    """A delivery failed for the last time; the event is dead-lettered with this reason."""


class NotificationsIncomplete(RuntimeError):
    """Some of an event's notifications could not be settled this time."""


@dataclass
class Ports:
    """What the workflow needs from the service around it."""
    store: object
    outbox: object
    contacts: object
    couriers: object
    retry_delays: tuple = ()
    # the consumer's attempt number for this message, when the consumer tells us
    attempt: Optional[int] = None
    now: Callable = field(default=utcnow)
    # how long before a session its reminder goes (NOTIFICATIONS_SESSION_REMINDER_HOURS)
    reminder_hours: float = sessions.REMINDER_HOURS

    @property
    def attempts_allowed(self):
        return len(self.retry_delays) + 1


# -- the case directory: non-personal facts remembered from the events ---------------

def remember(event, store):
    """Record what later messages need; return the case's directory entry."""
    kind, data = event["type"], event["data"]
    case_id = data["case_id"]
    if kind == "referral.received":
        store.record_referral(
            case_id, data["referrer_id"],
            summary={k: data[k] for k in ("agency", "offence_category", "cjs_stage", "flags", "region",
                                          "initiated_by")},
            participants=[{k: p[k] for k in ("participant_id", "role", "age_band", "language", "access_needs")}
                          for p in data["participants"]])
    elif kind == "case.assessed":
        if not store.record_assessment(case_id, {
                "decision": data["decision"], "risk_level": data["risk_level"],
                "process_types": data["process_types"], "co_facilitation": data["co_facilitation"],
                "basis": data.get("basis", "referral")}):
            raise CaseNotYetKnown(f"case {case_id} is not in the directory yet")
    elif kind == "facilitator.assigned":
        if not store.record_assignment(case_id, data["assignment_id"],
                                       {"facilitator_id": data["facilitator_id"], "role": data["role"]}):
            raise CaseNotYetKnown(f"case {case_id} is not in the directory yet")
    case = store.case(case_id)
    if case is None:
        raise CaseNotYetKnown(f"case {case_id} is not in the directory yet")
    if kind == "assignment.accepted":
        assignment = case.assignment(data["assignment_id"])
        if assignment is None:
            raise CaseNotYetKnown(f"assignment {data['assignment_id']} is not known yet")
        # who holds the lead now: notices for the lead facilitator go to them (audience.lead_facilitator)
        store.record_acceptance(case_id, data["assignment_id"], utcnow())
        # audience looks the assignment up by the event's own id
        case = replace(case, assignments={data["assignment_id"]: assignment, **case.assignments})
    elif kind in audience.AFTERCARE:
        # what follows the intervention may be for the lead facilitator: who accepted what, and when
        accepted = {field_key(aid): at for aid, at in store.acceptances(case_id).items()}
        case = replace(case, assignments={key: {**a, "accepted_at": accepted[key]} if key in accepted else a
                                          for key, a in case.assignments.items()})
    return case


# -- handling an event --------------------------------------------------------------

def handle(event, ports):
    """Tell everyone an event concerns, once each."""
    if ports.attempt is None:
        ports = replace(ports, attempt=ports.store.count_run(event["id"]))
    if event["type"] in owners.EVENTS:
        return tell_owner(event, ports)
    case = remember(event, ports.store)
    # a closed case first withdraws what still waits for a window; then its closure is told
    withdrawn = withdraw_deferred(case.case_id, ports) if event["type"] == "case.closed" else None
    if event["type"] in sessions.SUPERSEDING:
        withdraw_superseded(event, ports)
    problems, waiting = [], []
    for notice in audience.notices(event, case):
        try:
            deliver(notice, event, case, ports)
            plan_reminder(notice, event, ports)
        except (DeliveryInProgress, ContactLookupFailed) as exc:
            waiting.append((exc, f"{notice.template}: {exc}"))
        except (SendFailed, NotificationFailed) as exc:
            # carry on with the others; the event comes back for the ones left over
            problems.append(f"{notice.template}: {exc}")
        except NoCoordinatingTeam as exc:
            # nobody to tell: never dropped quietly. The event is retried, then dead-lettered
            # with this reason, to be replayed once the region's team is configured.
            log.error("%s for case %s not delivered: %s", notice.template, case.case_id, exc)
            problems.append(f"{notice.template}: {exc}")
    reasons = "; ".join(problems + [text for _, text in waiting])
    if problems:
        raise NotificationsIncomplete(reasons)
    # only other workers' claims, or a holder that did not answer, stand in the way: wait,
    # without spending a retry
    if any(isinstance(exc, ContactLookupFailed) for exc, _ in waiting):
        raise HolderUnavailable(reasons)
    if waiting:
        raise DeliveryInProgress(reasons)
    return withdrawn


def _fallback_language(case, notice):
    participant = case.participant(notice.recipient_id)
    return participant.get("language", "en") if participant else "en"


def tell_owner(event, ports):
    """A subscription's owning agency is told it was disabled: once, by email, in its language.
    No case is involved: the delivery has no case id, and no notification event is emitted
    (those are case events; the ledger already holds subscription.disabled). A failed send is
    retried through the queue, as any other."""
    notice = owners.notice(event)
    try:
        return _deliver(notice, event, ports, case_id=None, make_facts=lambda: owners.facts(event),
                        fallback_language="en")
    except NoAgencyContact as exc:
        # nobody to tell: never dropped quietly. The event is retried, then dead-lettered with
        # this reason, to be replayed once the agency's contact is configured.
        log.error("subscription %s disabled, owner not told: %s", event["data"]["subscription_id"], exc)
        raise


def deliver(notice, event, case, ports):
    """One notice about a case: decide, then send, suppress or defer it, exactly once."""
    return _deliver(notice, event, ports, case_id=case.case_id,
                    make_facts=lambda: messages.facts_for(notice, event, case),
                    fallback_language=_fallback_language(case, notice))


def _deliver(notice, event, ports, case_id, make_facts, fallback_language):
    """One notice: decide, then send, suppress or defer it, exactly once. `make_facts` gives
    the facts its message is made from (kept with the delivery, for a deferred send)."""
    store = ports.store
    existing = store.delivery_for(event["id"], notice.recipient_id)
    now = ports.now()
    if existing is not None:
        if existing.status in FINAL or existing.status == "deferred":
            _flush(ports, existing.key)  # a crash may have left its event unsent
            return existing.status
        if existing.status == "sending" and existing.claimed_at > now - STALE_CLAIM:
            raise DeliveryInProgress(f"delivery {existing.key} is being sent by another worker")
    answer = ports.contacts.lookup(notice)
    facts = existing.facts if existing else make_facts()
    answer = sessions.screen(notice.event_type, facts, answer, now)   # a session since changed: not sent
    decision = reach.decide(answer, notice.recipient_role, ports.couriers.available(), now,
                            fallback_language=fallback_language,
                            channel=existing.channel if existing else None)
    decision = reach.link_required(decision, notice.purpose)
    # rendered before any claim, so a template fault cannot leave a delivery claimed
    message = _render(notice.event_type, notice.recipient_role, decision, facts,
                      sessions.released(answer)) if decision.action == "send" else None
    if existing is None:
        channel = decision.channel or NO_CHANNEL
        delivery = Delivery(
            key=delivery_key(event["id"], notice.recipient_id, channel), event_id=event["id"],
            event_type=event["type"], notification_id=notification_id(event["id"], notice.recipient_id),
            case_id=case_id, recipient_role=notice.recipient_role, recipient_id=notice.recipient_id,
            purpose=notice.purpose, holder=notice.holder, correlationid=event.get("correlationid"),
            channel=channel, template=notice.template, language=decision.language, attempts=0, facts=facts,
            status="sending", claimed_at=now, at=now,
        )
        events = []
        if decision.action != "send":
            changes, events = _settlement(ports, delivery, decision)
            delivery = replace(delivery, **changes)
        try:
            store.insert_delivery(delivery, events)
        except DeliveryExists:
            raise DeliveryInProgress(f"delivery for {notice.template} was claimed by another worker")
        if decision.action != "send":
            _flush(ports, delivery.key, events)
            return delivery.status
    else:
        delivery = store.claim(existing, now)
        if delivery is None:
            raise DeliveryInProgress(f"delivery {existing.key} was taken over by another worker")
        if decision.action != "send":
            return _settle(ports, delivery, decision)
    return _send(ports, delivery, decision, message, on_failure=_retry_through_the_queue)


def _retry_through_the_queue(ports, delivery, attempts, code):
    """A failed send from an event: the consumer retries the event, or dead-letters it."""
    # the consumer dead-letters the event after this run; or this delivery has had its share
    last = (ports.attempt or 0) >= ports.attempts_allowed or attempts >= ports.attempts_allowed
    if last:
        _finish(ports, delivery, "failed", code,
                _event(ports, "notification.failed", delivery, reason=code, attempts=attempts), attempts=attempts)
        raise NotificationFailed(f"{code} after {attempts} attempts")
    ports.store.mark_retrying(delivery.key, attempts, code)
    raise SendFailed(code)


def _render(event_type, recipient_role, decision, facts, released=None):
    """One recipient's message. `released`: what the holder released with their details for
    this message alone (a session's venue); a survey invitation's link, released the same
    way, comes with the decision. Neither is stored."""
    if decision.link:
        released = {**(released or {}), "survey_link": decision.link}
    return messages.render(event_type, recipient_role, decision.language, facts, name=decision.name,
                           released=released)


def _send(ports, delivery, decision, message, on_failure):
    try:
        ports.couriers.send(decision.channel, decision.address, message, delivery.notification_id)
    except SendFailed as failed:
        return on_failure(ports, delivery, delivery.attempts + 1, failed.code)
    sent = _event(ports, "notification.sent", delivery, language=decision.language)
    # The mail server has it: recording that must outlast a database outage, or the claim
    # goes stale and another worker sends it again. (Past the claim's life it is raised.)
    through_outage(lambda: _finish(ports, delivery, "sent", None, sent, attempts=delivery.attempts + 1,
                                   language=decision.language),
                   patience=(STALE_CLAIM - SETTLE_MARGIN).total_seconds())
    return "sent"


# -- settling a delivery: its outcome and its event in one single-document write --------

def _event(ports, event_type, delivery, **extra):
    """The notification event a delivery's change causes; None for a delivery about no case
    (a subscription's owner told), since notification events are case events."""
    if delivery.case_id is None:
        return None
    data = {"case_id": delivery.case_id, "notification_id": delivery.notification_id,
            "recipient_role": delivery.recipient_role, "recipient_id": delivery.recipient_id,
            "template": delivery.template}
    if event_type != "notification.suppressed":
        data["channel"] = delivery.channel
    data.update(extra)
    return ports.outbox.event(event_type, delivery.case_id, data, correlationid=delivery.correlationid)


def _settlement(ports, delivery, decision):
    """What records a suppression or a deferral: the delivery's new fields, and its events."""
    if decision.action == "suppress":
        return ({"status": "suppressed", "reason": decision.reason, "due_at": None},
                _some(_event(ports, "notification.suppressed", delivery, reason=decision.reason)))
    return ({"status": "deferred", "due_at": decision.until, "reason": "outside_safe_contact_window"},
            _some(_event(ports, "notification.deferred", replace(delivery, channel=decision.channel),
                         until=decision.until.isoformat())))


def _some(event):
    return [event] if event is not None else []


def _settle(ports, delivery, decision):
    changes, events = _settlement(ports, delivery, decision)
    settled = ports.store.settle(delivery.key, changes["status"], changes["reason"], events, at=ports.now(),
                                 due_at=changes["due_at"])
    _flush(ports, delivery.key, events if settled else None)
    return changes["status"]


def _finish(ports, delivery, status, reason, event, attempts=None, language=None):
    settled = ports.store.settle(delivery.key, status, reason, _some(event), at=ports.now(), due_at=None,
                                 attempts=attempts, language=language)
    _flush(ports, delivery.key, _some(event) if settled else None)


def _flush(ports, key, events=None):
    """Publish a delivery's pending events: `events` when this worker has just stored them
    (sparing a read), else whatever its outbox holds."""
    ports.outbox.flush(ports.store.outbox_collection, key, events)


# -- deferred deliveries: sent when the recipient's safe-contact window opens -----------

def send_due(ports, limit=DUE_BATCH):
    """Take on deliveries whose window has opened (and any a dead worker left claimed);
    each is claimed atomically, so several instances never send one twice."""
    now = ports.now()
    done = 0
    for candidate in ports.store.due_deliveries(now, now - STALE_CLAIM, limit):
        delivery = ports.store.claim(candidate, now)
        if delivery is None:
            continue  # another timer took it
        done += 1
        try:
            resume(ports, delivery)
        except Exception as exc:  # one bad delivery must not stop the others
            log.warning("deferred delivery %s not settled: %s", candidate.key, type(exc).__name__)
    return done


def resume(ports, delivery):
    """Send a claimed deferred delivery, asking afresh for consent, preferences and window."""
    notice = audience.Notice(delivery.event_type, delivery.recipient_role, delivery.recipient_id, delivery.purpose,
                             delivery.holder, session_id=(delivery.facts or {}).get("session_id"))
    try:
        answer = ports.contacts.lookup(notice)
    except ContactLookupFailed:
        return _back_off(ports, delivery, delivery.attempts + 1, "contact_lookup_failed")
    answer = sessions.screen(delivery.event_type, delivery.facts, answer, ports.now())
    decision = reach.decide(answer, delivery.recipient_role, ports.couriers.available(), ports.now(),
                            fallback_language=delivery.language or "en", channel=delivery.channel)
    decision = reach.link_required(decision, delivery.purpose)
    if decision.action != "send":
        return _settle(ports, delivery, decision)
    message = _render(delivery.event_type, delivery.recipient_role, decision, delivery.facts,
                      sessions.released(answer))
    return _send(ports, delivery, decision, message, on_failure=_back_off)


def _back_off(ports, delivery, attempts, code):
    """A deferred send failed: wait the next retry delay, or fail for good."""
    if attempts >= ports.attempts_allowed:
        _finish(ports, delivery, "failed", code,
                _event(ports, "notification.failed", delivery, reason=code, attempts=attempts), attempts=attempts)
        return "failed"
    delay = ports.retry_delays[min(attempts, len(ports.retry_delays)) - 1]
    ports.store.back_off(delivery.key, attempts, code, ports.now() + timedelta(seconds=delay))
    return "deferred"


def withdraw_deferred(case_id, ports):
    """A closed case: nothing still waiting for a window goes out (but what the closure
    itself sets off: the end of the intervention, the outcome, the surveys)."""
    withdrawn = 0
    for deferred in ports.store.deferred_for_case(case_id):
        if deferred.event_type in audience.CLOSURE_EVENTS:
            continue
        delivery = ports.store.claim(deferred, ports.now())
        if delivery is not None:  # else the timer is sending it right now
            _finish(ports, delivery, "suppressed", "case_closed",
                    _event(ports, "notification.suppressed", delivery, reason="case_closed"))
            withdrawn += 1
    return withdrawn


# -- sessions: reminders, and notices a later change overtakes (rules: sessions.py) -----

def plan_reminder(notice, event, ports):
    """The reminder of a session, `ports.reminder_hours` before it starts: a deferred delivery
    on the channel of the notice just settled, which send_due sends when it falls due (asking
    afresh for consent, the window and the session). None when there is none to plan: not
    a session notice, the session is sooner, or the notice itself reached nobody."""
    due = sessions.reminder_due(notice.event_type, notice.recipient_role, notice.recipient_id, event["data"],
                                ports.reminder_hours)
    if due is None or due <= ports.now():
        return None
    reminder_id = sessions.reminder_event_id(event["id"])
    existing = ports.store.delivery_for(reminder_id, notice.recipient_id)
    if existing is not None:
        _flush(ports, existing.key)   # a crash may have left its event unsent
        return existing.status
    notified = ports.store.delivery_for(event["id"], notice.recipient_id)
    if notified is None or notified.status not in ("sent", "deferred"):
        return None   # refused, or not settled yet (the event comes back for it)
    template = replace(notice, event_type=sessions.REMINDER).template
    reminder = replace(
        notified, key=delivery_key(reminder_id, notice.recipient_id, notified.channel), event_id=reminder_id,
        event_type=sessions.REMINDER, notification_id=notification_id(reminder_id, notice.recipient_id),
        template=template, status="deferred", attempts=0, claimed_at=None, due_at=due, reason="session_reminder",
        facts={**notified.facts, "event_type": sessions.REMINDER}, at=ports.now())
    events = [_event(ports, "notification.deferred", reminder, until=due.isoformat())]
    try:
        ports.store.insert_delivery(reminder, events)
    except DeliveryExists:
        return None   # another copy of the event planned it
    _flush(ports, reminder.key, events)
    return "deferred"


def withdraw_superseded(event, ports):
    """A session changed or cancelled: what still waits about it from an earlier revision (an
    invitation or change notice waiting for a window, a reminder) is withdrawn; what this
    event brings replaces it. An earlier revision's event arriving late withdraws nothing."""
    reason = sessions.SUPERSEDING[event["type"]]
    withdrawn = 0
    for deferred in ports.store.deferred_for_case(event["data"]["case_id"]):
        if not sessions.superseded(deferred, event):
            continue
        delivery = ports.store.claim(deferred, ports.now())
        if delivery is not None:  # else the timer is sending it right now, and its screen will stop it
            _finish(ports, delivery, "suppressed", reason,
                    _event(ports, "notification.suppressed", delivery, reason=reason))
            withdrawn += 1
    return withdrawn
