"""Sessions in notifications: who is told (pure rules), and the workflow on the in-memory
store: invitations, changes and cancellations to each attendee in their language, a
reminder deferred to a day before and withdrawn or re-timed by a change, notices a later
change overtakes, and in facilitator-led cases the lead facilitator's briefing only."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from services.notifications import audience, sessions, workflow
from services.notifications.deliveries import CaseDirectoryEntry
from services.notifications.memory_store import InMemoryNotificationsStore
from shared.events import new_event
from tests.factories import referral_received_data
from tests.unit.test_notifications_workflow import EVENINGS, THURSDAY_NOON, Clock, Courier, Outbox

CASE, REFERRER, HARMED, HARMER, SUPPORTER, INTERPRETER = "case-s1", "ref-s1", "ph-s1", "px-s1", "ps-s1", "pi-s1"
SESSION = "ses-" + "a" * 32
STARTS = THURSDAY_NOON + timedelta(days=5)          # Tuesday 1 December 2026, 12:00 UTC
VENUE = {"kind": "community", "name": "Grangetown Community Hub", "address": "Havelock Place, Cardiff"}


def directory(**changes):
    base = dict(case_id=CASE, referrer_id=REFERRER, summary={"offence_category": "burglary", "flags": []},
                participants=[{"participant_id": HARMED, "role": "harmed", "language": "cy"},
                              {"participant_id": HARMER, "role": "harmer", "language": "en"},
                              {"participant_id": SUPPORTER, "role": "supporter", "language": "en"}],
                assignments={"as-1": {"facilitator_id": "fac-1", "role": "lead"},
                             "as-2": {"facilitator_id": "fac-2", "role": "co_facilitator"}})
    base.update(changes)
    return CaseDirectoryEntry(**base)


def data(revision=1, starts_at=STARTS, attendees=(HARMED, SUPPORTER), **extra):
    return {"case_id": CASE, "session_id": SESSION, "revision": revision, "process_type": "shuttle",
            "starts_at": starts_at.isoformat(), "duration_minutes": 90, "venue_kind": "community",
            "attendee_ids": list(attendees), "facilitator_led": False, "facilitator_ids": ["fac-1", "fac-2"],
            **extra}


# --- who is told (pure) ----------------------------------------------------------------

def told(event_type, event_data, entry=None):
    return [(n.recipient_role, n.recipient_id, n.purpose, n.holder, n.session_id, n.template)
            for n in audience.notices({"type": event_type, "data": event_data}, entry or directory())]


def test_each_attendee_is_invited_through_referrals_with_the_session_named():
    assert told("session.scheduled", data()) == [
        ("harmed", HARMED, "session_invitation", "referrals", SESSION, "attendee.session_scheduled"),
        ("supporter", SUPPORTER, "session_invitation", "referrals", SESSION, "attendee.session_scheduled")]


def test_a_change_tells_the_attendees_and_those_taken_off_it():
    changed = data(2, attendees=[HARMED], removed_attendee_ids=[SUPPORTER])
    assert [(role, pid) for role, pid, *_ in told("session.changed", changed)] == [("harmed", HARMED),
                                                                                    ("supporter", SUPPORTER)]
    assert [t[5] for t in told("session.cancelled", data(3, reason="x"))] == ["attendee.session_cancelled"] * 2


@pytest.mark.parametrize("flags,offence,event_led", [(["domestic_abuse"], "violence_against_the_person", False),
                                                     (["gender_based_violence"], "public_order", False),
                                                     ([], "sexual_offence", False),
                                                     ([], "burglary", True)])
def test_in_facilitator_led_cases_only_the_lead_facilitator_is_briefed(flags, offence, event_led):
    entry = directory(summary={"offence_category": offence, "flags": flags})
    for event_type in sessions.EVENTS:
        assert told(event_type, data(facilitator_led=event_led, reason="x"), entry) == [
            ("facilitator", "fac-1", "assignment_offer", "matching", SESSION,
             f"facilitator.{event_type.replace('.', '_')}")]


def test_the_briefing_goes_to_whoever_holds_the_case_when_its_lead_does_not():
    entry = directory(summary={"flags": ["domestic_abuse"]})
    assert [t[1] for t in told("session.scheduled", data(facilitator_ids=["fac-2"]), entry)] == ["fac-2"]
    assert told("session.scheduled", data(facilitator_ids=[]), entry) == []


def test_a_reminder_is_due_a_day_before_for_those_attending_only():
    invited = data()
    assert sessions.reminder_due("session.scheduled", "harmed", HARMED, invited) == STARTS - timedelta(hours=24)
    assert sessions.reminder_due("session.changed", "harmed", HARMED, invited, hours=2) == STARTS - timedelta(hours=2)
    assert sessions.reminder_due("session.changed", "supporter", SUPPORTER,
                                 data(removed_attendee_ids=[SUPPORTER])) is None
    assert sessions.reminder_due("session.cancelled", "harmed", HARMED, invited) is None
    assert sessions.reminder_due("session.scheduled", "facilitator", "fac-1", invited) is None
    assert sessions.reminder_due("case.assessed", "harmed", HARMED, invited) is None


def test_the_time_is_said_in_london_time_in_both_languages():
    assert sessions.when("2026-12-01T12:00:00+00:00") == {"en": "Tuesday 1 December 2026 at 12:00",
                                                          "cy": "Dydd Mawrth 1 Rhagfyr 2026 am 12:00"}
    assert sessions.when("2027-07-01T09:30:00+00:00") == {"en": "Thursday 1 July 2027 at 10:30",
                                                          "cy": "Dydd Iau 1 Gorffennaf 2027 am 10:30"}


def answer_with(**session):
    details = {"name": "Sam", "email": "sam@mail.example", "language": "en", "preferred_channels": ["email"],
               "safe_contact_windows": [], "contact_safe": True,
               "session": {"session_id": SESSION, "revision": 1, "status": "scheduled",
                           "starts_at": STARTS.isoformat(), "attending": True, "venue": VENUE, **session}}
    return {"granted": True, "reason": "granted", "details": details}


def test_a_notice_the_session_has_moved_on_from_is_refused_at_send_time():
    made_from = {"session_id": SESSION, "revision": 1}
    now = THURSDAY_NOON
    assert sessions.screen("session.scheduled", made_from, answer_with(), now)["granted"]
    assert sessions.screen("session.scheduled", made_from, answer_with(revision=2), now)["reason"] == "session_changed"
    assert sessions.screen("session.reminder", made_from, answer_with(revision=2, status="cancelled"),
                           now)["reason"] == "session_cancelled"
    assert sessions.screen("session.cancelled", {"revision": 2}, answer_with(revision=2, status="cancelled"),
                           now)["granted"]
    assert sessions.screen("session.reminder", made_from, answer_with(), STARTS)["reason"] == "session_started"
    assert sessions.screen("session.reminder", made_from, answer_with(status="held"), now)["reason"] == \
        "session_started"
    refused = {"granted": False, "reason": "consent_withdrawn", "details": {}}
    assert sessions.screen("session.scheduled", made_from, refused, now) is refused
    briefing = {"granted": True, "reason": "granted", "details": {"email": "fac@rj.example"}}   # from matching
    assert sessions.screen("session.scheduled", made_from, briefing, now) is briefing
    assert sessions.released(answer_with()) == {"venue": VENUE} and sessions.released(briefing) == {"venue": None}


# --- the workflow on the in-memory store ---------------------------------------------

class Referrals:
    """The holder of the attendees' details: their own, and the session as referrals has it now."""

    def __init__(self):
        self.people = {HARMED: {"name": "Siân", "email": "sian@mail.example", "language": "cy"},
                       HARMER: {"name": "Liam", "email": "liam@mail.example", "language": "en"},
                       SUPPORTER: {"name": "Nia", "phone": "+447700900999", "language": "en",
                                   "preferred_channels": ["sms"]},
                       "fac-1": {"name": "Gwen", "email": "gwen@rj.example", "language": "en"},
                       # told of the case's closure (audience: what follows the intervention)
                       REFERRER: {"name": "PC Jones", "email": "officer@police.example", "language": "en"}}
        self.windows = {}
        self.session = {"session_id": SESSION, "revision": 1, "status": "scheduled", "starts_at": STARTS.isoformat(),
                        "venue": VENUE, "attending": True}
        self.asked = []

    def lookup(self, notice):
        self.asked.append((notice.recipient_id, notice.purpose, notice.session_id))
        details = {"preferred_channels": ["email"], "safe_contact_windows": self.windows.get(notice.recipient_id, []),
                   "contact_safe": True, **self.people[notice.recipient_id]}
        if notice.purpose == "session_invitation":
            details["session"] = dict(self.session)
        return {"granted": True, "reason": "granted", "details": details}


class World:
    def __init__(self, **summary):
        self.store = InMemoryNotificationsStore()
        self.outbox = Outbox(self.store)
        self.clock = Clock(THURSDAY_NOON)
        self.holder = Referrals()
        self.courier = Courier()
        self.sent_messages = []
        real_send = self.courier.send

        def keep(channel, address, message, notification_id):
            self.sent_messages.append((address, message))
            real_send(channel, address, message, notification_id)

        self.courier.send = keep
        self.ports = workflow.Ports(store=self.store, outbox=self.outbox, contacts=self.holder,
                                    couriers=self.courier, retry_delays=(0.2, 0.4), now=self.clock)
        received = referral_received_data(case_id=CASE, referrer_id=REFERRER, participants=[
            {"participant_id": HARMED, "role": "harmed", "age_band": "50_64", "language": "cy", "access_needs": []},
            {"participant_id": HARMER, "role": "harmer", "age_band": "25_34", "language": "en", "access_needs": []},
            {"participant_id": SUPPORTER, "role": "supporter", "age_band": "35_49", "language": "en",
             "access_needs": []}], **summary)
        workflow.remember(new_event("referral.received", CASE, received, source="/amends/test/referrals",
                                    region="test", correlationid=CASE), self.store)
        self.store.record_assignment(CASE, "as-1", {"facilitator_id": "fac-1", "role": "lead"})

    def event(self, event_type, event_data):
        return new_event(event_type, CASE, event_data, source="/amends/test/referrals", region="test",
                         correlationid=CASE)

    def deliveries(self, event_type=None):
        return [d for d in self.store.deliveries_for_case(CASE) if event_type is None or d.event_type == event_type]

    def sent(self):
        return [(address, message.template, message.language) for address, message in self.sent_messages]


@pytest.fixture
def world():
    return World()


def test_an_invitation_goes_to_each_attendee_with_the_venue_and_a_reminder_waits_for_the_day_before(world):
    scheduled = world.event("session.scheduled", data())
    workflow.handle(scheduled, world.ports)
    assert sorted(world.sent()) == [("+447700900999", "attendee.session_scheduled", "en"),
                                    ("sian@mail.example", "attendee.session_scheduled", "cy")]
    welsh = next(m for a, m in world.sent_messages if a == "sian@mail.example")
    assert "Grangetown Community Hub, Havelock Place, Cardiff" in welsh.text and "Dydd Mawrth 1 Rhagfyr" in welsh.text
    assert welsh.text.startswith("Helo Siân,") and "Liam" not in welsh.text + welsh.html
    assert ("sian@mail.example", "session_invitation", SESSION) not in world.holder.asked   # ids, never addresses
    assert (HARMED, "session_invitation", SESSION) in world.holder.asked
    reminders = world.deliveries("session.reminder")
    assert sorted((d.recipient_id, d.channel, d.status, d.due_at, d.template) for d in reminders) == [
        (HARMED, "email", "deferred", STARTS - timedelta(hours=24), "attendee.session_reminder"),
        (SUPPORTER, "sms", "deferred", STARTS - timedelta(hours=24), "attendee.session_reminder")]
    deferred = world.outbox.emitted("notification.deferred")
    assert sorted(e["data"]["until"] for e in deferred) == [(STARTS - timedelta(hours=24)).isoformat()] * 2
    # the venue is rendered at send time, never kept
    assert "Grangetown" not in repr(world.deliveries()) and "Havelock" not in repr(world.outbox.published)
    # a redelivered event sends and plans nothing more
    workflow.handle(scheduled, world.ports)
    assert len(world.sent()) == 2 and len(world.deliveries("session.reminder")) == 2
    # the day before, the timer sends the reminders, asking afresh about each person and the session
    world.clock.now = STARTS - timedelta(hours=24)
    assert workflow.send_due(world.ports) == 2
    assert sorted(t for _, t, _ in world.sent()[2:]) == ["attendee.session_reminder"] * 2
    reminder = next(m for a, m in world.sent_messages[2:] if a == "sian@mail.example")
    assert "nodyn atgoffa" in reminder.subject.lower() and "Grangetown Community Hub" in reminder.text
    assert world.holder.asked.count((HARMED, "session_invitation", SESSION)) == 2
    assert workflow.send_due(world.ports) == 0


def test_the_reminder_hours_are_a_setting_and_a_session_sooner_than_that_has_none(world):
    ports = replace(world.ports, reminder_hours=2)
    workflow.handle(world.event("session.scheduled", data()), ports)
    assert {d.due_at for d in world.deliveries("session.reminder")} == {STARTS - timedelta(hours=2)}
    soon = World()
    soon_start = THURSDAY_NOON + timedelta(hours=20)
    soon.holder.session["starts_at"] = soon_start.isoformat()
    workflow.handle(soon.event("session.scheduled", data(starts_at=soon_start)), soon.ports)
    assert len(soon.sent()) == 2 and soon.deliveries("session.reminder") == []


def test_a_change_withdraws_the_old_reminder_tells_everyone_and_reminds_at_the_new_time(world):
    workflow.handle(world.event("session.scheduled", data(attendees=(HARMED, SUPPORTER))), world.ports)
    later = STARTS + timedelta(days=2)
    world.holder.session.update(revision=2, status="changed", starts_at=later.isoformat())
    changed = world.event("session.changed", data(2, starts_at=later, attendees=[HARMED],
                                                  removed_attendee_ids=[SUPPORTER]))
    workflow.handle(changed, world.ports)
    old = [d for d in world.deliveries("session.reminder") if d.event_id != sessions.reminder_event_id(changed["id"])]
    assert {(d.status, d.reason) for d in old} == {("suppressed", "session_changed")}
    assert sorted(e["data"]["reason"] for e in world.outbox.emitted("notification.suppressed")) == [
        "session_changed"] * 2
    notices = {(a, t) for a, t, _ in world.sent()[2:]}
    assert notices == {("sian@mail.example", "attendee.session_changed"), ("+447700900999", "attendee.session_changed")}
    removed = next(m for a, m in world.sent_messages[2:] if a == "+447700900999")
    assert "no longer needed" in removed.text and "Grangetown" not in removed.text   # no venue for them
    moved = next(m for a, m in world.sent_messages[2:] if a == "sian@mail.example")
    assert "Dydd Iau 3 Rhagfyr" in moved.text
    new = [d for d in world.deliveries("session.reminder") if d.status == "deferred"]
    assert [(d.recipient_id, d.due_at) for d in new] == [(HARMED, later - timedelta(hours=24))]
    # the old reminder's time passes: nothing; the new one's: the harmed person alone
    world.clock.now = STARTS - timedelta(hours=24)
    assert workflow.send_due(world.ports) == 0
    world.clock.now = later - timedelta(hours=24)
    assert workflow.send_due(world.ports) == 1
    assert world.sent()[-1] == ("sian@mail.example", "attendee.session_reminder", "cy")
    # a late copy of the first event withdraws nothing and sends nothing new
    before = len(world.sent())
    workflow.handle(world.event("session.scheduled", data()), world.ports)
    assert [d.status for d in world.deliveries("session.reminder")
            if d.event_id == sessions.reminder_event_id(changed["id"])] == ["sent"]
    late = [d for d in world.deliveries("session.scheduled") if d.reason == "session_changed"]
    assert len(world.sent()) == before and len(late) == 2   # overtaken: suppressed when it finally came


def test_a_cancellation_withdraws_the_reminder_and_tells_each_attendee(world):
    workflow.handle(world.event("session.scheduled", data()), world.ports)
    world.holder.session.update(revision=2, status="cancelled")
    workflow.handle(world.event("session.cancelled", data(2, reason="venue_unavailable")), world.ports)
    assert {(d.status, d.reason) for d in world.deliveries("session.reminder")} == {("suppressed", "session_cancelled")}
    assert sorted(t for _, t, _ in world.sent()[2:]) == ["attendee.session_cancelled"] * 2
    cancelled = next(m for a, m in world.sent_messages[2:] if a == "sian@mail.example")
    assert "wedi'i ganslo" in cancelled.text and "venue_unavailable" not in cancelled.text + cancelled.html
    world.clock.now = STARTS - timedelta(hours=24)
    assert workflow.send_due(world.ports) == 0


def test_a_reminder_of_a_session_changed_before_its_event_arrived_is_not_sent(world):
    workflow.handle(world.event("session.scheduled", data()), world.ports)
    world.holder.session.update(revision=2, status="changed")   # referrals knows; the event is still on its way
    world.clock.now = STARTS - timedelta(hours=24)
    assert workflow.send_due(world.ports) == 2
    assert {(d.status, d.reason) for d in world.deliveries("session.reminder")} == {("suppressed", "session_changed")}
    assert [t for _, t, _ in world.sent()].count("attendee.session_reminder") == 0


def test_an_invitation_waiting_for_a_window_is_withdrawn_by_a_change(world):
    world.holder.windows[HARMED] = EVENINGS
    workflow.handle(world.event("session.scheduled", data()), world.ports)
    invitation = next(d for d in world.deliveries("session.scheduled") if d.recipient_id == HARMED)
    assert invitation.status == "deferred"
    assert {d.recipient_id for d in world.deliveries("session.reminder")} == {HARMED, SUPPORTER}
    world.holder.session.update(revision=2, status="changed")
    workflow.handle(world.event("session.changed", data(2)), world.ports)
    withdrawn = next(d for d in world.deliveries("session.scheduled") if d.recipient_id == HARMED)
    assert (withdrawn.status, withdrawn.reason) == ("suppressed", "session_changed")
    assert next(d for d in world.deliveries("session.changed") if d.recipient_id == HARMED).status == "deferred"


def test_a_closed_case_withdraws_the_reminders(world):
    workflow.handle(world.event("session.scheduled", data()), world.ports)
    closed = world.event("case.closed", {"case_id": CASE, "from_status": "INTERVENTION", "reason": "safety_stop"})
    assert workflow.handle(closed, world.ports) == 2
    assert {(d.status, d.reason) for d in world.deliveries("session.reminder")} == {("suppressed", "case_closed")}
    # and then the closure itself is told: the referrer, and the harmed person that the intervention has ended
    assert {(template, language) for _, template, language in world.sent()} >= {
        ("referrer.case_closed", "en"), ("harmed.case_closed", "cy")}


def test_in_a_domestic_abuse_case_only_the_lead_facilitator_is_briefed_once_per_event():
    world = World(flags=["domestic_abuse"], offence_category="violence_against_the_person")
    for event_type, revision in (("session.scheduled", 1), ("session.changed", 2), ("session.cancelled", 3)):
        extra = {"reason": "x"} if event_type == "session.cancelled" else {}
        event = world.event(event_type, data(revision, facilitator_led=True, **extra))
        workflow.handle(event, world.ports)
        workflow.handle(event, world.ports)   # once each, however often it comes
    assert world.sent() == [("gwen@rj.example", "facilitator.session_scheduled", "en"),
                            ("gwen@rj.example", "facilitator.session_changed", "en"),
                            ("gwen@rj.example", "facilitator.session_cancelled", "en")]
    briefing = world.sent_messages[0][1]
    assert "Amends has not written to the attendees" in briefing.text
    assert "person harmed, supporter" in briefing.text and "Grangetown" not in briefing.text
    assert {recipient for recipient, _, _ in world.holder.asked} == {"fac-1"}
    assert {(purpose, session) for _, purpose, session in world.holder.asked} == {("assignment_offer", SESSION)}
    assert world.deliveries("session.reminder") == []
