"""What notifications does with each event it hears. Orchestration only: who is told
what is in `audience`, whether and when they may be reached in `reach`, the words in
`messages`, the I/O in `contacts` and `couriers`.

Each (event, recipient) pair becomes one Delivery document, whose id is the delivery
key. A worker claims the key before it sends, so redeliveries of an event send once.
A failed send marks the delivery `retrying` and raises, so the consumer retries the
event through its delay queues; the attempt that reaches the limit marks it `failed`,
emits notification.failed and raises again, so the event is dead-lettered with the
reason. A deferred delivery waits for `send_due`, run on a timer.
"""
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Callable, Optional

from pymongo.errors import DuplicateKeyError

from services.notifications import audience, messages, reach
from services.notifications.contacts import ContactLookupFailed
from services.notifications.couriers import SendFailed
from services.notifications.deliveries import (FINAL, NO_CHANNEL, CaseDirectory, Delivery, DeliveryClaim,
                                               EventRuns, delivery_key, notification_id, utcnow)
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
    outbox: object
    contacts: object
    couriers: object
    retry_delays: tuple = ()
    # the consumer's attempt number for this message, when the consumer tells us
    attempt: Optional[int] = None
    now: Callable = field(default=utcnow)

    @property
    def attempts_allowed(self):
        return len(self.retry_delays) + 1


# -- the case directory: non-personal facts remembered from the events ---------------

def _field_key(identifier):
    """An id made safe to use as a key inside a document."""
    return identifier.replace(".", "_").replace("$", "_")


def remember_case(data):
    try:
        _remember_case(data, upsert=True)
    except DuplicateKeyError:  # a copy of the event inserted it first
        _remember_case(data, upsert=False)


def _remember_case(data, upsert):
    CaseDirectory._get_collection().update_one({"_id": data["case_id"]}, {
        "$set": {
            "referrer_id": data["referrer_id"],
            "summary": {k: data[k] for k in ("agency", "offence_category", "cjs_stage", "flags", "region",
                                             "initiated_by")},
            "participants": [{k: p[k] for k in ("participant_id", "role", "age_band", "language", "access_needs")}
                             for p in data["participants"]],
        },
        "$setOnInsert": {"recorded_at": utcnow(), "assessment": {}, "assignments": {}},
    }, upsert=upsert)


def _update_case(case_id, changes):
    if CaseDirectory._get_collection().update_one({"_id": case_id}, {"$set": changes}).matched_count != 1:
        raise CaseNotYetKnown(f"case {case_id} is not in the directory yet")


def remember(event):
    """Record what later messages need; return the case's directory entry."""
    kind, data = event["type"], event["data"]
    case_id = data["case_id"]
    if kind == "referral.received":
        remember_case(data)
    elif kind == "case.assessed":
        _update_case(case_id, {"assessment": {
            "decision": data["decision"], "risk_level": data["risk_level"],
            "process_types": data["process_types"], "co_facilitation": data["co_facilitation"]}})
    elif kind == "facilitator.assigned":
        _update_case(case_id, {f"assignments.{_field_key(data['assignment_id'])}": {
            "facilitator_id": data["facilitator_id"], "role": data["role"]}})
    case = CaseDirectory.objects(case_id=case_id).first()
    if case is None:
        raise CaseNotYetKnown(f"case {case_id} is not in the directory yet")
    if kind == "assignment.accepted":
        key = _field_key(data["assignment_id"])
        if key not in case.assignments:
            raise CaseNotYetKnown(f"assignment {data['assignment_id']} is not known yet")
        case.assignments = {data["assignment_id"]: case.assignments[key], **case.assignments}
    return case


# -- handling an event --------------------------------------------------------------

def count_run(event_id):
    """This run's number for the event (1 the first time it is handled)."""
    runs = EventRuns._get_collection()
    change = {"$inc": {"runs": 1}, "$set": {"at": utcnow()}}
    try:
        runs.update_one({"_id": event_id}, change, upsert=True)
    except DuplicateKeyError:  # a copy of the event inserted it first
        runs.update_one({"_id": event_id}, change)
    return runs.find_one({"_id": event_id})["runs"]


def handle(event, ports):
    """Tell everyone an event concerns, once each."""
    if ports.attempt is None:
        ports = replace(ports, attempt=count_run(event["id"]))
    case = remember(event)
    if event["type"] == "case.closed":
        return withdraw_deferred(case.case_id, ports)
    problems, waiting = [], []
    for notice in audience.notices(event, case):
        try:
            deliver(notice, event, case, ports)
        except (DeliveryInProgress, ContactLookupFailed) as exc:
            waiting.append((exc, f"{notice.template}: {exc}"))
        except (SendFailed, NotificationFailed) as exc:
            # carry on with the others; the event comes back for the ones left over
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


def _fallback_language(case, notice):
    participant = case.participant(notice.recipient_id)
    return participant.get("language", "en") if participant else "en"


def deliver(notice, event, case, ports):
    """One notice: decide, then send, suppress or defer it, exactly once."""
    collection = Delivery._get_collection()
    existing = collection.find_one({"event_id": event["id"], "recipient_id": notice.recipient_id})
    now = ports.now()
    if existing is not None:
        if existing["status"] in FINAL or existing["status"] == "deferred":
            _flush(ports, existing["_id"])  # a crash may have left its event unsent
            return existing["status"]
        if existing["status"] == "sending" and _aware(existing["claimed_at"]) > now - STALE_CLAIM:
            raise DeliveryInProgress(f"delivery {existing['_id']} is being sent by another worker")
    answer = ports.contacts.lookup(notice)
    decision = reach.decide(answer, notice.recipient_role, ports.couriers.available(), now,
                            fallback_language=_fallback_language(case, notice),
                            channel=existing["channel"] if existing else None)
    facts = existing["facts"] if existing else messages.facts_for(notice, event, case)
    # rendered before any claim, so a template fault cannot leave a delivery claimed
    message = _render(notice.event_type, notice.recipient_role, decision, facts) if decision.action == "send" else None
    if existing is None:
        key = delivery_key(event["id"], notice.recipient_id, decision.channel or NO_CHANNEL)
        doc = {
            "_id": key, "event_id": event["id"], "event_type": event["type"],
            "notification_id": notification_id(event["id"], notice.recipient_id),
            "case_id": case.case_id, "recipient_role": notice.recipient_role,
            "recipient_id": notice.recipient_id, "purpose": notice.purpose, "holder": notice.holder,
            "correlationid": event.get("correlationid"),
            "channel": decision.channel or NO_CHANNEL, "template": notice.template,
            "language": decision.language, "attempts": 0, "facts": facts,
            "status": "sending", "claimed_at": now, "outbox": [], "at": now,
        }
        if decision.action != "send":
            doc.update(_settlement(ports, doc, decision))
        try:
            collection.insert_one(doc)
        except DuplicateKeyError:
            raise DeliveryInProgress(f"delivery for {notice.template} was claimed by another worker")
        if decision.action != "send":
            _flush(ports, doc["_id"])
            return doc["status"]
    else:
        doc = existing
        if not _claim(doc, now):
            raise DeliveryInProgress(f"delivery {doc['_id']} was taken over by another worker")
        doc = collection.find_one({"_id": doc["_id"]})
        if decision.action != "send":
            return _settle(ports, doc, decision)
    return _send(ports, doc, decision, message, on_failure=_retry_through_the_queue)


def _retry_through_the_queue(ports, doc, attempts, code):
    """A failed send from an event: the consumer retries the event, or dead-letters it."""
    # the consumer dead-letters the event after this run; or this delivery has had its share
    last = (ports.attempt or 0) >= ports.attempts_allowed or attempts >= ports.attempts_allowed
    if last:
        _finish(ports, doc, "failed", code, _event(ports, "notification.failed", doc, reason=code, attempts=attempts),
                attempts=attempts)
        raise NotificationFailed(f"{code} after {attempts} attempts")
    Delivery._get_collection().update_one(
        {"_id": doc["_id"], "status": "sending"},
        {"$set": {"status": "retrying", "attempts": attempts, "reason": code}})
    raise SendFailed(code)


def _render(event_type, recipient_role, decision, facts):
    return messages.render(event_type, recipient_role, decision.language, facts, name=decision.name)


def _send(ports, doc, decision, message, on_failure):
    try:
        ports.couriers.send(decision.channel, decision.address, message, doc["notification_id"])
    except SendFailed as failed:
        return on_failure(ports, doc, doc.get("attempts", 0) + 1, failed.code)
    sent = _event(ports, "notification.sent", doc, language=decision.language)
    # The mail server has it: recording that must outlast a database outage, or the claim
    # goes stale and another worker sends it again. (Past the claim's life it is raised.)
    through_outage(lambda: _finish(ports, doc, "sent", None, sent, attempts=doc.get("attempts", 0) + 1,
                                   language=decision.language),
                   patience=(STALE_CLAIM - SETTLE_MARGIN).total_seconds())
    return "sent"


# -- settling a delivery: its outcome and its event in one single-document write --------

def _event(ports, event_type, doc, **extra):
    data = {k: doc[k] for k in ("case_id", "notification_id", "recipient_role", "recipient_id", "template")}
    if event_type != "notification.suppressed":
        data["channel"] = doc["channel"]
    data.update(extra)
    return ports.outbox.event(event_type, doc["case_id"], data, correlationid=doc.get("correlationid"))


def _settlement(ports, doc, decision):
    """The fields that record a suppression or a deferral, with its event."""
    if decision.action == "suppress":
        return {"status": "suppressed", "reason": decision.reason, "due_at": None,
                "outbox": [_event(ports, "notification.suppressed", doc, reason=decision.reason)]}
    return {"status": "deferred", "due_at": decision.until, "reason": "outside_safe_contact_window",
            "outbox": [_event(ports, "notification.deferred", {**doc, "channel": decision.channel},
                              until=decision.until.isoformat())]}


def _settle(ports, doc, decision):
    changes = _settlement(ports, doc, decision)
    Delivery._get_collection().update_one({"_id": doc["_id"], "status": "sending"}, {"$set": {**changes, "at": ports.now()}})
    _flush(ports, doc["_id"])
    return changes["status"]


def _finish(ports, doc, status, reason, event, **changes):
    Delivery._get_collection().update_one({"_id": doc["_id"], "status": "sending"}, {"$set": {
        "status": status, "reason": reason, "outbox": [event], "at": ports.now(), "due_at": None, **changes}})
    _flush(ports, doc["_id"])


def _flush(ports, key):
    ports.outbox.flush("deliveries", key)


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


# -- deferred deliveries: sent when the recipient's safe-contact window opens -----------

def send_due(ports, limit=DUE_BATCH):
    """Take on deliveries whose window has opened (and any a dead worker left claimed);
    each is claimed atomically, so several instances never send one twice."""
    collection = Delivery._get_collection()
    now = ports.now()
    due = {"$or": [{"status": "deferred", "due_at": {"$lte": now}},
                   {"status": "sending", "due_at": {"$ne": None}, "claimed_at": {"$lt": now - STALE_CLAIM}}]}
    done = 0
    for candidate in collection.find(due).limit(limit):
        if not _claim(candidate, now):
            continue  # another timer took it
        done += 1
        try:
            resume(ports, collection.find_one({"_id": candidate["_id"]}))
        except Exception as exc:  # one bad delivery must not stop the others
            log.warning("deferred delivery %s not settled: %s", candidate["_id"], type(exc).__name__)
    return done


def _claim(doc, now):
    """Take a delivery from the state it was read in, or return False when another worker
    did. The exclusive step is the claim token's insert (see DeliveryClaim)."""
    state = [doc["_id"], doc["status"], _stamp(doc.get("claimed_at")), _stamp(doc.get("due_at")),
             str(doc.get("attempts", 0))]
    try:
        DeliveryClaim._get_collection().insert_one({"_id": "|".join(state), "at": now})
    except DuplicateKeyError:
        return False
    return Delivery._get_collection().update_one(
        {"_id": doc["_id"], "status": doc["status"]},
        {"$set": {"status": "sending", "claimed_at": now}}).modified_count == 1


def _stamp(moment):
    return _aware(moment).isoformat(timespec="milliseconds") if moment else "-"


def resume(ports, doc):
    """Send a claimed deferred delivery, asking afresh for consent, preferences and window."""
    notice = audience.Notice(doc["event_type"], doc["recipient_role"], doc["recipient_id"], doc["purpose"],
                             doc.get("holder", audience.REFERRALS))
    try:
        answer = ports.contacts.lookup(notice)
    except ContactLookupFailed:
        return _back_off(ports, doc, doc.get("attempts", 0) + 1, "contact_lookup_failed")
    decision = reach.decide(answer, doc["recipient_role"], ports.couriers.available(), ports.now(),
                            fallback_language=doc.get("language") or "en", channel=doc["channel"])
    if decision.action != "send":
        return _settle(ports, doc, decision)
    message = _render(doc["event_type"], doc["recipient_role"], decision, doc["facts"])
    return _send(ports, doc, decision, message, on_failure=_back_off)


def _back_off(ports, doc, attempts, code):
    """A deferred send failed: wait the next retry delay, or fail for good."""
    if attempts >= ports.attempts_allowed:
        _finish(ports, doc, "failed", code, _event(ports, "notification.failed", doc, reason=code, attempts=attempts),
                attempts=attempts)
        return "failed"
    delay = ports.retry_delays[min(attempts, len(ports.retry_delays)) - 1]
    Delivery._get_collection().update_one({"_id": doc["_id"], "status": "sending"}, {"$set": {
        "status": "deferred", "attempts": attempts, "reason": code,
        "due_at": ports.now() + timedelta(seconds=delay)}})
    return "deferred"


def withdraw_deferred(case_id, ports):
    """A closed case: nothing still waiting for a window goes out."""
    withdrawn = 0
    for doc in Delivery._get_collection().find({"case_id": case_id, "status": "deferred"}):
        if _claim(doc, ports.now()):  # else the timer is sending it right now
            _finish(ports, doc, "suppressed", "case_closed",
                    _event(ports, "notification.suppressed", doc, reason="case_closed"))
            withdrawn += 1
    return withdrawn
