"""The notifications workflow on the in-memory store, with a clock the test moves, a
scripted contact holder and courier, and an outbox that keeps what it publishes: the
main paths (send, suppress, defer, withdraw, retry, fail) and the once-only paths
(redelivered events, claims held by other workers, stale claims, lost races).
"""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from pymongo.errors import AutoReconnect

from services.notifications import workflow
from services.notifications.couriers import SendFailed
from services.notifications.deliveries import DeliveryExists, delivery_key
from services.notifications.memory_store import InMemoryNotificationsStore
from shared.events import new_event
from tests.factories import referral_received_data

THURSDAY_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
EVENINGS = [{"days": ["thu"], "start": "18:00", "end": "20:00"}]
OPENS = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)
CASE, REFERRER, HARMED, HARMER = "case-u1", "ref-u1", "ph-u1", "px-u1"


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class Outbox:
    """Publishes by keeping: what a delivery's outbox held, or the events it was given."""

    def __init__(self, store):
        self.store = store
        self.published = []

    def event(self, event_type, subject, data, correlationid=None):
        return new_event(event_type, subject, data, source="/amends/test/notifications", region="test",
                         correlationid=correlationid or subject)

    def flush(self, collection, doc_id, events=None):
        assert collection == "deliveries"
        if events is None:
            events = self.store.pending_events(doc_id)
        self.published.extend(events)
        self.store.pull_events(doc_id, events)
        return len(events)

    def emitted(self, event_type):
        """One per event id: the outbox publishes at least once."""
        return list({e["id"]: e for e in self.published if e["type"] == event_type}.values())


class Holder:
    def __init__(self):
        self.answers = {}
        self.asked = []
        self.before_answer = None

    def lookup(self, notice):
        self.asked.append((notice.recipient_id, notice.purpose))
        if self.before_answer:
            self.before_answer(notice)
        answer = self.answers[notice.recipient_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Courier:
    def __init__(self):
        self.failures = []
        self.sent = []

    def available(self):
        return ("email", "sms")

    def send(self, channel, address, message, notification_id):
        if self.failures:
            raise SendFailed(self.failures.pop(0))
        self.sent.append((channel, address, message.template, message.language))


def person(windows=(), **details):
    base = {"name": "Sam", "email": "sam@mail.example", "language": "cy", "preferred_channels": ["email"],
            "safe_contact_windows": list(windows), "contact_safe": True}
    base.update(details)
    return {"granted": True, "reason": "granted", "details": base}


class World:
    def __init__(self):
        self.store = InMemoryNotificationsStore()
        self.outbox = Outbox(self.store)
        self.clock = Clock(THURSDAY_NOON)
        self.holder = Holder()
        self.courier = Courier()
        self.holder.answers = {REFERRER: person(language="en"), HARMED: person(), HARMER: person(language="en")}
        self.ports = workflow.Ports(store=self.store, outbox=self.outbox, contacts=self.holder,
                                    couriers=self.courier, retry_delays=(0.2, 0.4), now=self.clock)

    def event(self, event_type, data):
        return new_event(event_type, CASE, {"case_id": CASE, **data}, source="/amends/test/referrals",
                         region="test", correlationid=CASE)

    def referral(self):
        data = referral_received_data(case_id=CASE, referrer_id=REFERRER, participants=[
            {"participant_id": HARMED, "role": "harmed", "age_band": "50_64", "language": "cy", "access_needs": []},
            {"participant_id": HARMER, "role": "harmer", "age_band": "25_34", "language": "en", "access_needs": []}])
        return new_event("referral.received", CASE, data, source="/amends/test/referrals", region="test",
                         correlationid=CASE)

    def assessed(self, basis="review"):
        """A suitable assessment, the directory knowing the case (nothing sent for the
        referral itself). After a review it tells the referrer and the harmed person: the
        first message the harmed person gets."""
        workflow.remember(self.referral(), self.store)
        return self.event("case.assessed", {
            "assessment_id": "as-1", "decision": "suitable", "reasons": [], "risk_level": "low",
            "required_level": "intermediate", "co_facilitation": False, "process_types": ["shuttle"],
            "policy_version": "suitability-v1", "basis": basis})

    def delivery(self, event, recipient_id):
        return self.store.delivery_for(event["id"], recipient_id)


@pytest.fixture
def world():
    return World()


def test_an_assessment_tells_the_referrer_and_the_harmed_person_once_however_often_it_comes(world):
    event = world.assessed()
    workflow.handle(event, world.ports)
    assert sorted(world.courier.sent) == sorted([
        ("email", "sam@mail.example", "referrer.case_assessed", "en"),
        ("email", "sam@mail.example", "harmed.case_assessed", "cy")])
    for recipient in (REFERRER, HARMED):
        delivery = world.delivery(event, recipient)
        assert (delivery.status, delivery.attempts, delivery.key) == (
            "sent", 1, delivery_key(event["id"], recipient, "email"))
        assert world.store.pending_events(delivery.key) == []  # flushed
    sent = world.outbox.emitted("notification.sent")
    assert sorted((e["data"]["recipient_id"], e["data"]["language"]) for e in sent) == [(HARMED, "cy"),
                                                                                       (REFERRER, "en")]
    assert {e["correlationid"] for e in sent} == {CASE}
    for _ in range(3):
        workflow.handle(event, world.ports)
    assert len(world.courier.sent) == 2
    assert len(world.outbox.emitted("notification.sent")) == 2
    listed = world.store.deliveries_for_case(CASE)
    assert sorted(d.recipient_role for d in listed) == ["harmed", "referrer"]
    assert world.store.case(CASE).referrer_id == REFERRER


def test_a_refusal_is_suppressed_with_its_reason_and_no_channel(world):
    world.holder.answers[HARMED] = {"granted": False, "reason": "consent_withdrawn", "details": {}}
    event = world.assessed()
    workflow.handle(event, world.ports)
    delivery = world.delivery(event, HARMED)
    assert (delivery.status, delivery.reason, delivery.channel) == ("suppressed", "consent_withdrawn", "none")
    assert delivery.key.endswith(":none")
    suppressed = world.outbox.emitted("notification.suppressed")
    assert [(e["data"]["recipient_id"], e["data"]["reason"]) for e in suppressed] == [(HARMED, "consent_withdrawn")]
    assert "channel" not in suppressed[0]["data"]
    assert [t for _, _, t, _ in world.courier.sent] == ["referrer.case_assessed"]
    workflow.handle(event, world.ports)  # a copy republishes the pending event, if any, and nothing else
    assert len(world.outbox.emitted("notification.suppressed")) == 1 and len(world.courier.sent) == 1


def test_a_closed_window_defers_and_the_timer_sends_once_when_it_opens(world):
    world.holder.answers[HARMED] = person(EVENINGS)
    event = world.assessed()
    workflow.handle(event, world.ports)
    delivery = world.delivery(event, HARMED)
    assert (delivery.status, delivery.due_at, delivery.reason) == ("deferred", OPENS, "outside_safe_contact_window")
    assert [e["data"]["until"] for e in world.outbox.emitted("notification.deferred")] == [OPENS.isoformat()]
    world.clock.now = OPENS - timedelta(seconds=1)
    assert workflow.send_due(world.ports) == 0
    world.clock.now = OPENS
    assert workflow.send_due(world.ports) == 1
    assert workflow.send_due(world.ports) == 0
    workflow.handle(event, world.ports)  # a redelivery finds it sent
    harmed_sends = [s for s in world.courier.sent if s[2] == "harmed.case_assessed"]
    assert harmed_sends == [("email", "sam@mail.example", "harmed.case_assessed", "cy")]
    assert world.delivery(event, HARMED).status == "sent"
    # consent, preferences and window are asked for afresh at send time
    assert world.holder.asked.count((HARMED, "participant_information")) == 2


def test_a_due_delivery_another_timer_claimed_first_is_left_to_it(world):
    world.holder.answers[HARMED] = person(EVENINGS)
    workflow.handle(world.assessed(), world.ports)
    world.clock.now = OPENS
    read = world.store.due_deliveries(OPENS, OPENS - workflow.STALE_CLAIM, 50)
    assert len(read) == 1
    assert world.store.claim(read[0], OPENS) is not None  # the other timer
    world.store.due_deliveries = lambda *args: read      # this timer read the same, just before
    assert workflow.send_due(world.ports) == 0
    assert [s for s in world.courier.sent if s[2] == "harmed.case_assessed"] == []


def test_a_timer_that_died_mid_send_leaves_a_claim_taken_over_once_stale(world):
    world.holder.answers[HARMED] = person(EVENINGS)
    event = world.assessed()
    workflow.handle(event, world.ports)
    key = world.delivery(event, HARMED).key
    world.store.force_delivery_state(key, status="sending", claimed_at=OPENS)  # claimed, then died
    world.clock.now = OPENS + timedelta(seconds=30)
    assert workflow.send_due(world.ports) == 0
    world.clock.now = OPENS + workflow.STALE_CLAIM + timedelta(seconds=1)
    assert workflow.send_due(world.ports) == 1
    assert world.delivery(event, HARMED).status == "sent"


def test_closing_the_case_withdraws_what_waits_for_a_window(world):
    world.holder.answers[HARMED] = person(EVENINGS)
    event = world.assessed()
    workflow.handle(event, world.ports)
    closed = world.event("case.closed", {"from_status": "TRIAGE", "reason": "safety_stop"})
    assert workflow.handle(closed, world.ports) == 1
    delivery = world.delivery(event, HARMED)
    assert (delivery.status, delivery.reason, delivery.due_at) == ("suppressed", "case_closed", None)
    assert [e["data"]["reason"] for e in world.outbox.emitted("notification.suppressed")] == ["case_closed"]
    world.clock.now = OPENS
    assert workflow.send_due(world.ports) == 0
    assert workflow.handle(closed, world.ports) == 0


def test_a_failing_send_is_retried_through_the_queue_and_fails_on_the_last_run(world):
    world.holder.answers[HARMED] = {"granted": False, "reason": "consent_missing", "details": {}}
    world.courier.failures = ["smtp_451"] * 3
    event = world.referral()
    for run in (1, 2):
        with pytest.raises(workflow.NotificationsIncomplete, match="smtp_451"):
            workflow.handle(event, world.ports)
        delivery = world.delivery(event, REFERRER)
        assert (delivery.status, delivery.attempts, delivery.reason) == ("retrying", run, "smtp_451")
    with pytest.raises(workflow.NotificationsIncomplete, match="smtp_451 after 3 attempts"):
        workflow.handle(event, world.ports)
    delivery = world.delivery(event, REFERRER)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    failed = world.outbox.emitted("notification.failed")
    assert [(e["data"]["recipient_id"], e["data"]["attempts"], e["data"]["reason"]) for e in failed] == [
        (REFERRER, 3, "smtp_451")]
    workflow.handle(event, world.ports)  # settled: a later copy does nothing
    assert world.courier.sent == []


def test_the_consumers_attempt_number_when_given_decides_the_last_run(world):
    world.courier.failures = ["smtp_550"]
    event = world.referral()
    ports = replace(world.ports, attempt=3)
    with pytest.raises(workflow.NotificationsIncomplete, match="smtp_550 after 1 attempts"):
        workflow.handle(event, ports)
    assert world.delivery(event, REFERRER).status == "failed"
    assert world.store.count_run(event["id"]) == 1  # the store's count was not used


def test_a_delivery_another_worker_is_sending_waits_then_is_taken_over_once_stale(world):
    event = world.assessed()
    workflow.handle(event, world.ports)
    key = world.delivery(event, HARMED).key
    world.store.force_delivery_state(key, status="sending", claimed_at=world.clock.now)  # as if a worker died
    with pytest.raises(workflow.DeliveryInProgress, match="being sent by another worker"):
        workflow.handle(event, world.ports)
    world.clock.now += workflow.STALE_CLAIM + timedelta(seconds=1)
    workflow.handle(event, world.ports)
    assert [t for _, _, t, _ in world.courier.sent].count("harmed.case_assessed") == 2  # the one repeat
    assert world.delivery(event, HARMED).status == "sent"
    workflow.handle(event, world.ports)
    assert len(world.courier.sent) == 3


def test_a_copy_of_the_event_that_loses_the_race_to_claim_waits_and_sends_nothing(world):
    event = world.assessed()
    rival = []

    def another_worker_claims_first(notice):
        if notice.recipient_id == HARMED and not rival:
            # another copy of the event, on another channel, inserts its claim during our lookup
            from services.notifications.deliveries import Delivery, notification_id
            rival.append(Delivery(
                key=delivery_key(event["id"], HARMED, "sms"), event_id=event["id"], event_type=event["type"],
                notification_id=notification_id(event["id"], HARMED), case_id=CASE, recipient_role="harmed",
                recipient_id=HARMED, purpose=notice.purpose, holder=notice.holder, channel="sms",
                template=notice.template, status="sending", claimed_at=world.clock.now, at=world.clock.now))
            world.store.insert_delivery(rival[0])

    world.holder.before_answer = another_worker_claims_first
    with pytest.raises(workflow.DeliveryInProgress, match="claimed by another worker"):
        workflow.handle(event, world.ports)
    assert [t for _, _, t, _ in world.courier.sent] == ["referrer.case_assessed"]
    assert world.delivery(event, HARMED).key == rival[0].key
    with pytest.raises(DeliveryExists):
        world.store.insert_delivery(rival[0])


def test_a_holder_that_does_not_answer_holds_the_event_back(world):
    world.holder.answers[HARMED] = workflow.ContactLookupFailed("referrals did not answer")
    event = world.assessed()
    with pytest.raises(workflow.HolderUnavailable):
        workflow.handle(event, world.ports)
    assert world.delivery(event, HARMED) is None
    assert world.delivery(event, REFERRER).status == "sent"


def test_a_deferred_send_that_keeps_failing_backs_off_then_fails(world):
    world.holder.answers[HARMED] = person(EVENINGS)
    event = world.assessed()
    workflow.handle(event, world.ports)
    world.courier.failures = ["smtp_451"] * 3
    world.clock.now = OPENS
    assert workflow.send_due(world.ports) == 1
    delivery = world.delivery(event, HARMED)
    assert (delivery.status, delivery.attempts, delivery.due_at) == ("deferred", 1, OPENS + timedelta(seconds=0.2))
    world.clock.now = OPENS + timedelta(seconds=1)
    workflow.send_due(world.ports)
    assert (world.delivery(event, HARMED).attempts, world.delivery(event, HARMED).due_at) == (
        2, world.clock.now + timedelta(seconds=0.4))
    world.clock.now += timedelta(seconds=1)
    workflow.send_due(world.ports)
    delivery = world.delivery(event, HARMED)
    assert (delivery.status, delivery.attempts, delivery.reason) == ("failed", 3, "smtp_451")
    assert [e["data"]["attempts"] for e in world.outbox.emitted("notification.failed")] == [3]
    world.clock.now += timedelta(days=1)
    assert workflow.send_due(world.ports) == 0


def test_consent_withdrawn_or_a_moved_window_while_deferred_is_decided_afresh(world):
    world.holder.answers[HARMED] = person(EVENINGS)
    event = world.assessed()
    workflow.handle(event, world.ports)
    world.holder.answers[HARMED] = person([{"days": ["fri"], "start": "09:00", "end": "10:00"}])
    world.clock.now = OPENS
    assert workflow.send_due(world.ports) == 1
    assert world.delivery(event, HARMED).due_at == datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    world.holder.answers[HARMED] = {"granted": False, "reason": "consent_withdrawn", "details": {}}
    world.clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    assert workflow.send_due(world.ports) == 1
    delivery = world.delivery(event, HARMED)
    assert (delivery.status, delivery.reason) == ("suppressed", "consent_withdrawn")
    assert [s for s in world.courier.sent if s[2] == "harmed.case_assessed"] == []


def test_events_that_arrive_before_what_they_follow_wait(world):
    assessed = world.event("case.assessed", {
        "assessment_id": "as-1", "decision": "suitable", "reasons": [], "risk_level": "low",
        "required_level": "intermediate", "co_facilitation": False, "process_types": ["shuttle"],
        "policy_version": "2026.1"})
    with pytest.raises(workflow.CaseNotYetKnown):
        workflow.handle(assessed, world.ports)
    workflow.handle(world.referral(), world.ports)
    accepted = world.event("assignment.accepted", {"assignment_id": "asg.1", "facilitator_id": "fac-1"})
    with pytest.raises(workflow.CaseNotYetKnown, match="assignment asg.1"):
        workflow.handle(accepted, world.ports)
    assert world.courier.sent and world.store.case(CASE).assignments == {}


def test_a_lead_assignment_accepted_tells_both_parties(world):
    world.holder.answers["fac-1"] = person(language="en")
    workflow.handle(world.assessed(basis="referral"), world.ports)   # suitable on the referral itself
    workflow.handle(world.event("facilitator.assigned", {
        "assignment_id": "asg.1", "assessment_id": "as-1", "facilitator_id": "fac-1", "role": "lead"}), world.ports)
    before = len(world.courier.sent)
    workflow.handle(world.event("assignment.accepted", {"assignment_id": "asg.1", "facilitator_id": "fac-1"}),
                    world.ports)
    told = sorted(t for _, _, t, _ in world.courier.sent[before:])
    assert told == ["harmed.assignment_accepted", "harmer.assignment_accepted"]


def test_the_record_of_a_send_outlasts_a_database_outage(world, monkeypatch):
    """The mail server took the message, then the database went away for a moment: the
    worker keeps trying to record the send rather than leave a claim to go stale."""
    real_settle = world.store.settle
    lost = []

    def settle_during_an_outage(key, status, *args, **kwargs):
        if status == "sent" and not lost:
            lost.append(key)
            raise AutoReconnect("connection refused")
        return real_settle(key, status, *args, **kwargs)

    monkeypatch.setattr(world.store, "settle", settle_during_an_outage)
    world.holder.answers[HARMED] = {"granted": False, "reason": "consent_missing", "details": {}}
    event = world.referral()
    workflow.handle(event, world.ports)
    assert len(lost) == 1 and len(world.courier.sent) == 1
    assert world.delivery(event, REFERRER).status == "sent"


# -- Victims' Code deadlines: the coordinating team of the case's region -----------------

TEAM = "coordinators.south-wales"


def deadline_event(world, event_type="case.deadline_missed", deadline="support_referral"):
    return world.event(event_type, {"deadline": deadline, "due_at": "2026-11-21T00:00:00+00:00",
                                    "enhanced_rights": False, "measured_from": "referral_received"})


def test_a_missed_deadline_is_emailed_once_to_the_coordinating_team_of_the_case_region(world):
    from services.notifications.coordinators import CoordinatorTeams, Team
    teams = CoordinatorTeams({"south-wales": Team("south-wales", "South Wales RJ coordinators",
                                                  "rj.south-wales@example.org", "cy")})
    world.holder.answers[TEAM] = teams.lookup(TEAM)
    workflow.handle(world.referral(), world.ports)
    event = deadline_event(world)
    for _ in range(3):   # however often it comes
        workflow.handle(event, world.ports)
    assert [s for s in world.courier.sent if s[2].startswith("coordinator.")] == [
        ("email", "rj.south-wales@example.org", "coordinator.case_deadline_missed", "cy")]
    delivery = world.delivery(event, TEAM)
    assert (delivery.recipient_role, delivery.purpose, delivery.holder, delivery.status) == (
        "coordinator", "deadline_alert", "coordinators", "sent")
    assert delivery.facts["deadline"] == "support_referral" and delivery.facts["last_day"] == "2026-11-20"
    sent = [e for e in world.outbox.emitted("notification.sent") if e["data"]["recipient_role"] == "coordinator"]
    assert [e["data"]["recipient_id"] for e in sent] == [TEAM]
    # no participant is asked for, or told
    assert [asked for asked in world.holder.asked if asked[0] not in (REFERRER, HARMED)] == [(TEAM, "deadline_alert")]


def test_a_deadline_for_a_region_without_a_team_is_refused_loudly_and_stores_nothing(world, caplog):
    from services.notifications.coordinators import CoordinatorTeams
    world.holder.lookup = lambda notice: CoordinatorTeams({}).lookup(notice.recipient_id)
    world.store.record_referral(CASE, REFERRER, summary={"region": "south-wales"}, participants=[])
    event = deadline_event(world, "case.deadline_due", "victim_told_about_rj")
    with pytest.raises(workflow.NotificationsIncomplete, match="no coordinating team is configured for region "
                                                               "'south-wales'"):
        workflow.handle(event, world.ports)
    assert "south-wales" in caplog.text and "coordinator.case_deadline_due" in caplog.text
    assert world.store.deliveries_for_case(CASE) == [] and world.courier.sent == []


def test_the_coordinating_teams_answer_lookups_and_a_missing_region_names_itself():
    from services.notifications.audience import Notice
    from services.notifications.contacts import Contacts
    from services.notifications.coordinators import CoordinatorTeams, NoCoordinatingTeam, Team
    teams = CoordinatorTeams({"gwent": Team("gwent", "Gwent RJ coordinators", "rj.gwent@example.org", "en")})
    contacts = Contacts(referrals=None, matching=None, coordinators=teams)
    answer = contacts.lookup(Notice("case.deadline_due", "coordinator", "coordinators.gwent", "deadline_alert",
                                    "coordinators"))
    assert answer == {"granted": True, "reason": "granted", "details": {
        "name": "Gwent RJ coordinators", "email": "rj.gwent@example.org", "language": "en",
        "preferred_channels": ["email"]}}
    with pytest.raises(NoCoordinatingTeam) as missing:
        contacts.lookup(Notice("case.deadline_due", "coordinator", "coordinators.dyfed-powys", "deadline_alert",
                               "coordinators"))
    assert missing.value.region == "dyfed-powys"
