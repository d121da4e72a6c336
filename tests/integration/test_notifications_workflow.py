"""The notifications workflow on real FerretDB and RabbitMQ, with a clock the test moves:
deferral to a safe-contact window, the timer that sends what is due (once, even when
two timers race), back-off and failure of a deferred send, and the run counting that
makes the last retry of an event emit notification.failed.

Contact answers (CONTRACTS.md shape) and the courier are scripted here: the real SMTP
and HTTP paths are covered in test_notifications.py.
"""
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pytest

from services.notifications import workflow
from services.notifications.couriers import SendFailed
from services.notifications.store import NotificationsStore
from shared.config import settings_for
from shared.events import new_event
from shared.messaging import topology
from shared.messaging.outbox import Relay
from shared.messaging.publisher import EventPublisher
from shared.storage import connect
from tests.factories import referral_received_data
from tests.support import Tap, disconnect_all

THURSDAY_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
EVENINGS = [{"days": ["thu"], "start": "18:00", "end": "20:00"}]
OPENS = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class OutboxHandle:
    """The outbox as a worker sees it, publishing for real on the test's vhost."""

    def __init__(self, amqp_uri, db):
        self.publisher = EventPublisher(amqp_uri, "notifications")
        self.db = db

    def event(self, event_type, subject, data, correlationid=None):
        return new_event(event_type, subject, data, source="/amends/test/notifications", region="test",
                         correlationid=correlationid or subject)

    def flush(self, collection, doc_id, events=None):
        return Relay(self.publisher, []).flush(self.db[collection], doc_id, events)


class Holder:
    def __init__(self):
        self.answers = {}
        self.asked = []

    def lookup(self, notice):
        self.asked.append((notice.recipient_id, notice.purpose))
        return self.answers[notice.recipient_id]


class Courier:
    def __init__(self, failures=()):
        self.failures = list(failures)
        self.sent = []

    def available(self):
        return ("email", "sms")

    def send(self, channel, address, message, notification_id):
        eventlet.sleep(0.05)  # let a racing timer run in between
        if self.failures:
            raise SendFailed(self.failures.pop(0))
        self.sent.append((channel, address, message.template, message.language, notification_id))


def person(**details):
    base = {"name": "Sam", "email": f"sam-{uuid.uuid4().hex[:6]}@mail.example", "language": "cy",
            "preferred_channels": ["email"], "safe_contact_windows": EVENINGS, "contact_safe": True}
    base.update(details)
    return {"granted": True, "reason": "granted", "details": base}


@pytest.fixture
def world(service_config, amqp_uri):
    config = service_config()
    topology.declare(amqp_uri, (0.2, 0.4))
    settings = settings_for("notifications", config)
    db = connect("notifications", settings)
    store = NotificationsStore(db)
    store.ensure_indexes(settings.ferretdb_postgresql_url)
    tap = Tap(amqp_uri, [("notifications", "#")])

    def make(failures=()):
        clock, holder, courier = Clock(THURSDAY_NOON), Holder(), Courier(failures)
        ports = workflow.Ports(store=store, outbox=OutboxHandle(amqp_uri, db), contacts=holder, couriers=courier,
                               retry_delays=(0.2, 0.4), now=clock)
        tag = uuid.uuid4().hex[:6]
        data = referral_received_data(case_id=f"case-{tag}", referrer_id=f"ref-{tag}", participants=[
            {"participant_id": f"ph-{tag}", "role": "harmed", "age_band": "50_64", "language": "cy",
             "access_needs": []}])
        holder.answers[f"ref-{tag}"] = {"granted": False, "reason": "consent_missing", "details": {}}
        holder.answers[f"ph-{tag}"] = person()
        received = new_event("referral.received", data["case_id"], data, source="/amends/test/referrals",
                             region="test", correlationid=data["case_id"])
        workflow.remember(received, store)  # the directory knows the case
        # a suitable case, after a review: the harmed person's first message (and the referrer's)
        event = new_event("case.assessed", data["case_id"], {
            "case_id": data["case_id"], "assessment_id": f"as-{tag}", "decision": "suitable", "reasons": [],
            "risk_level": "low", "required_level": "intermediate", "co_facilitation": False,
            "process_types": ["shuttle"], "policy_version": "suitability-v1", "basis": "review"},
            source="/amends/test/matching", region="test", correlationid=data["case_id"])
        return ports, clock, holder, courier, event, f"ph-{tag}"

    yield make, tap
    tap.close()
    disconnect_all()


def emitted(tap, event_type):
    return list({e["id"]: e for e in tap.drain() if e["type"] == event_type}.values())


def test_a_deferred_message_is_sent_once_when_its_window_opens(world):
    make, tap = world
    ports, clock, holder, courier, event, harmed = make()
    workflow.handle(event, ports)
    delivery = ports.store.delivery_for(event["id"], harmed)
    assert (delivery.status, delivery.channel) == ("deferred", "email")
    assert delivery.due_at == OPENS
    deferred = emitted(tap, "notification.deferred")
    assert [datetime.fromisoformat(e["data"]["until"]) for e in deferred] == [OPENS]

    clock.now = OPENS - timedelta(seconds=1)
    assert workflow.send_due(ports) == 0 and courier.sent == []
    clock.now = OPENS
    racing = [eventlet.spawn(workflow.send_due, ports) for _ in range(3)]
    assert sum(thread.wait() for thread in racing) == 1
    assert [(c, t, lang) for c, _, t, lang, _ in courier.sent] == [("email", "harmed.case_assessed", "cy")]
    assert workflow.send_due(ports) == 0 and len(courier.sent) == 1
    # a redelivered event finds it settled and sends nothing either
    workflow.handle(event, ports)
    assert len(courier.sent) == 1
    assert ports.store.delivery_for(event["id"], harmed).status == "sent"
    assert [e["data"]["recipient_id"] for e in emitted(tap, "notification.sent")] == [harmed]
    # consent, preferences and window are asked for afresh at send time
    assert holder.asked.count((harmed, "participant_information")) == 2


def test_consent_withdrawn_while_deferred_suppresses_at_send_time(world):
    make, tap = world
    ports, clock, holder, courier, event, harmed = make()
    workflow.handle(event, ports)
    holder.answers[harmed] = {"granted": False, "reason": "consent_withdrawn", "details": {}}
    clock.now = OPENS
    assert workflow.send_due(ports) == 1
    assert courier.sent == []
    delivery = ports.store.delivery_for(event["id"], harmed)
    assert (delivery.status, delivery.reason) == ("suppressed", "consent_withdrawn")
    assert ("harmed", "consent_withdrawn") in [
        (e["data"]["recipient_role"], e["data"]["reason"]) for e in emitted(tap, "notification.suppressed")]


def test_a_window_moved_while_deferred_defers_again(world):
    make, tap = world
    ports, clock, holder, courier, event, harmed = make()
    workflow.handle(event, ports)
    holder.answers[harmed] = person(safe_contact_windows=[{"days": ["fri"], "start": "09:00", "end": "10:00"}])
    clock.now = OPENS
    assert workflow.send_due(ports) == 1 and courier.sent == []
    delivery = ports.store.delivery_for(event["id"], harmed)
    assert (delivery.status, delivery.due_at) == ("deferred", datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc))


def test_a_deferred_send_that_keeps_failing_backs_off_then_fails(world):
    make, tap = world
    ports, clock, holder, courier, event, harmed = make(failures=["smtp_451", "smtp_451", "smtp_451"])
    workflow.handle(event, ports)
    clock.now = OPENS
    assert workflow.send_due(ports) == 1
    delivery = ports.store.delivery_for(event["id"], harmed)
    assert (delivery.status, delivery.attempts, delivery.due_at) == ("deferred", 1, OPENS + timedelta(seconds=0.2))
    clock.now = OPENS + timedelta(seconds=0.1)
    assert workflow.send_due(ports) == 0  # not yet due
    clock.now = OPENS + timedelta(seconds=1)
    workflow.send_due(ports)
    delivery = ports.store.delivery_for(event["id"], harmed)
    assert (delivery.status, delivery.attempts) == ("deferred", 2)
    assert delivery.due_at == clock.now + timedelta(seconds=0.4)
    clock.now += timedelta(seconds=1)
    workflow.send_due(ports)
    delivery = ports.store.delivery_for(event["id"], harmed)
    assert (delivery.status, delivery.attempts, delivery.reason) == ("failed", 3, "smtp_451")
    failed = emitted(tap, "notification.failed")
    assert [(e["data"]["recipient_id"], e["data"]["attempts"], e["data"]["reason"]) for e in failed] == [
        (harmed, 3, "smtp_451")]
    clock.now += timedelta(days=1)
    assert workflow.send_due(ports) == 0 and courier.sent == []


def test_the_last_run_of_an_event_fails_the_notification_even_when_earlier_runs_never_sent(world):
    """Runs are counted per event: a run lost to a lookup outage still counts, so the run the
    consumer will dead-letter is the one that emits notification.failed."""
    make, tap = world
    ports, clock, holder, courier, event, harmed = make(failures=["smtp_421", "smtp_421"])
    holder.answers[harmed] = person(safe_contact_windows=[])
    outage = holder.answers.pop(harmed)

    def down(notice):
        raise workflow.ContactLookupFailed("referrals did not answer")

    holder.lookup, lookup = down, holder.lookup
    with pytest.raises(workflow.HolderUnavailable):  # the consumer holds it back, spending no retry
        workflow.handle(event, ports)  # run 1: no lookup, no send
    holder.lookup = lookup
    holder.answers[harmed] = outage
    with pytest.raises(workflow.NotificationsIncomplete, match="smtp_421"):
        workflow.handle(event, ports)  # run 2: first send fails
    assert ports.store.delivery_for(event["id"], harmed).status == "retrying"
    with pytest.raises(workflow.NotificationsIncomplete, match="smtp_421 after 2 attempts"):
        workflow.handle(event, ports)  # run 3 of 3: the last; the consumer dead-letters it
    delivery = ports.store.delivery_for(event["id"], harmed)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert [e["data"]["attempts"] for e in emitted(tap, "notification.failed")] == [2]
    workflow.handle(event, ports)  # a later copy of the event finds it settled
    assert courier.sent == []


def test_concurrent_copies_of_an_event_send_once(world):
    make, tap = world
    ports, clock, holder, courier, event, harmed = make()
    holder.answers[harmed] = person(safe_contact_windows=[])

    def attempt():
        try:
            workflow.handle(event, ports)
            return "done"
        except workflow.DeliveryInProgress as busy:  # held back by the consumer, no retry spent
            assert "being sent by another worker" in str(busy) or "claimed by another worker" in str(busy)
            return "retry later"

    [thread.wait() for thread in [eventlet.spawn(attempt) for _ in range(5)]]
    assert len(courier.sent) == 1
    workflow.handle(event, ports)  # the retries find it sent
    assert len(courier.sent) == 1


def test_a_claim_left_by_a_dead_worker_is_taken_over_once_stale(world):
    make, tap = world
    ports, clock, holder, courier, event, harmed = make()
    holder.answers[harmed] = person(safe_contact_windows=[])
    workflow.handle(event, ports)
    key = ports.store.delivery_for(event["id"], harmed).key
    # as if the worker had died between claiming and sending
    ports.store.force_delivery_state(key, status="sending", claimed_at=clock.now)
    with pytest.raises(workflow.DeliveryInProgress, match="being sent by another worker"):
        workflow.handle(event, ports)
    clock.now += workflow.STALE_CLAIM + timedelta(seconds=1)
    workflow.handle(event, ports)
    assert len(courier.sent) == 2  # the one repeat a takeover risks, and no more
    assert ports.store.delivery_for(event["id"], harmed).status == "sent"
    workflow.handle(event, ports)
    assert len(courier.sent) == 2


def test_a_send_whose_record_meets_a_database_outage_is_recorded_once_it_ends(world, monkeypatch):
    """The mail server took the message, then the database went away for a moment: the
    worker keeps trying to record the send rather than leave a claim that goes stale and
    is sent again."""
    from pymongo.errors import AutoReconnect
    make, tap = world
    ports, clock, holder, courier, event, harmed = make()
    holder.answers[harmed] = person(safe_contact_windows=[])
    real_settle = ports.store.settle
    lost = []

    def settle_during_an_outage(key, status, *args, **kwargs):
        if status == "sent" and len(lost) < 3:
            lost.append(1)
            raise AutoReconnect("connection refused")  # what pymongo raises from the store
        return real_settle(key, status, *args, **kwargs)

    monkeypatch.setattr(ports.store, "settle", settle_during_an_outage)
    workflow.handle(event, ports)
    assert len(lost) == 3 and len(courier.sent) == 1
    assert ports.store.delivery_for(event["id"], harmed).status == "sent"
    workflow.handle(event, ports)  # a redelivery finds it sent
    assert len(courier.sent) == 1
