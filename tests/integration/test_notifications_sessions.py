"""Sessions through the notifications service on the real broker, FerretDB and a real SMTP
server: invitations, changes and cancellations to the right people in their language, the
reminder deferred to a day before (and sent when due), withdrawn when the session changes or
is cancelled, and in a domestic-abuse case the facilitator alone is told.

Contact details and the session's venue come over real RPC from the test-only "referrals"
in notifications_holders.py, as referrals' `session_invitation` purpose releases them."""
import json
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tests.factories import referral_received_data
from tests.integration.notifications_holders import PEOPLE
from tests.integration.test_notifications import assessed, assigned, platform, text_and_html  # noqa: F401
from tests.support import wait_until

VENUE = {"kind": "rj_service", "name": "Canolfan Adferol Caerdydd", "address": "12 Heol y Frenhines, Caerdydd"}


def a_case(**data):
    """A case with a harmed person (Welsh, email), a harmer (English, email) and a supporter
    (English, email), each with details of their own in the stand-in holder."""
    tag = uuid.uuid4().hex[:6]
    ids = {"referrer": f"ref-{tag}", "harmed": f"ph-{tag}", "harmer": f"px-{tag}", "supporter": f"ps-{tag}"}
    PEOPLE.parties[ids["referrer"]] = {"role": "referrer", "name": "PC Dafydd Morgan", "language": "en",
                                       "email": f"dafydd.{tag}@police.example"}
    PEOPLE.parties[ids["harmed"]] = {"role": "harmed", "name": "Siân Jones", "email": f"sian.{tag}@mail.example",
                                     "phone": "+447700900111", "language": "cy", "preferred_channels": ["email"],
                                     "safe_contact_windows": []}
    PEOPLE.parties[ids["harmer"]] = {"role": "harmer", "name": "Liam Evans", "email": f"liam.{tag}@mail.example",
                                     "phone": "+447700900222", "language": "en", "preferred_channels": ["email"],
                                     "safe_contact_windows": []}
    PEOPLE.parties[ids["supporter"]] = {"role": "supporter", "name": "Nia Hughes", "email": f"nia.{tag}@mail.example",
                                        "language": "en", "preferred_channels": ["email"], "safe_contact_windows": []}
    received = referral_received_data(case_id=f"case-{tag}", referrer_id=ids["referrer"], participants=[
        {"participant_id": ids["harmed"], "role": "harmed", "age_band": "50_64", "language": "cy", "access_needs": []},
        {"participant_id": ids["harmer"], "role": "harmer", "age_band": "25_34", "language": "en", "access_needs": []},
        {"participant_id": ids["supporter"], "role": "supporter", "age_band": "35_49", "language": "en",
         "access_needs": []}], **data)
    return received, ids


def personal(ids, *people):
    return [PEOPLE.parties[ids[p]][k] for p in people for k in ("name", "email", "phone") if PEOPLE.parties[ids[p]].get(k)]


def session_data(case_id, session_id, revision, starts_at, attendees, **extra):
    return {"case_id": case_id, "session_id": session_id, "revision": revision, "process_type": "direct_conference",
            "starts_at": starts_at.isoformat(), "duration_minutes": 120, "venue_kind": VENUE["kind"],
            "attendee_ids": list(attendees), "facilitator_led": False, "facilitator_ids": ["fac-1"], **extra}


def arrange(session_id, revision, status, starts_at, attendees, removed=()):
    """What referrals holds of the session (the stand-in answers from it)."""
    PEOPLE.sessions[session_id] = {"revision": revision, "status": status, "starts_at": starts_at.isoformat(),
                                   "venue": VENUE, "attendees": list(attendees), "removed": list(removed)}


def by_template(p, template):
    return {m["To"]: m for m in p.mails() if m["X-Amends-Template"] == template}


def test_invitations_changes_and_cancellations_reach_each_attendee_in_their_language(platform):
    with platform() as p:
        received, ids = a_case()
        case_id = received["case_id"]
        email = {role: PEOPLE.parties[pid]["email"] for role, pid in ids.items()}
        p.publish("referral.received", case_id, received, "referrals")
        p.publish("case.assessed", case_id, assessed(case_id), "matching")
        session_id = f"ses-{uuid.uuid4().hex}"
        starts = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
        everyone = [ids["harmed"], ids["harmer"], ids["supporter"]]
        arrange(session_id, 1, "scheduled", starts, everyone)
        p.publish("session.scheduled", case_id, session_data(case_id, session_id, 1, starts, everyone), "referrals")

        invited = wait_until(lambda: (lambda m: m if len(m) == 3 else None)(
            by_template(p, "attendee.session_scheduled")), timeout=30)
        assert sorted(invited) == sorted([email["harmed"], email["harmer"], email["supporter"]])
        welsh = invited[email["harmed"]]
        assert welsh["Subject"] == "Cyfiawnder adferol: mae cyfarfod wedi'i drefnu" and welsh["Content-Language"] == "cy"
        text, html = text_and_html(welsh)
        assert text.startswith("Helo Siân Jones,") and "ar eich cyfer" in text
        assert f"{VENUE['name']}, {VENUE['address']}" in text and VENUE["name"] in html
        supporter_text, _ = text_and_html(invited[email["supporter"]])
        assert "you are invited as supporter" in supporter_text and VENUE["address"] in supporter_text
        assert invited[email["harmer"]]["Subject"] == "Restorative justice: a meeting has been arranged"
        # nobody's message carries anyone else's details: the venue is the venue's, not a party's
        for role, mail in ((r, invited[email[r]]) for r in ("harmed", "harmer", "supporter")):
            body = "\n".join(text_and_html(mail)) + str(mail["Subject"])
            others = [v for v in personal(ids, "referrer", "harmed", "harmer", "supporter")
                      if v not in personal(ids, role)]
            assert [v for v in others if v in body] == [], role
        # each lookup named the session; the reminders wait for the day before
        assert {(pid, sid) for pid, purpose, sid in PEOPLE.session_calls if purpose == "session_invitation"} == {
            (pid, session_id) for pid in everyone}
        reminders = wait_until(lambda: (lambda d: d if len(d) == 3 else None)(
            [n for n in p.listing(case_id).json()["notifications"] if n["event_type"] == "session.reminder"]))
        assert {(n["status"], n["template"], n["due_at"]) for n in reminders} == {
            ("deferred", "attendee.session_reminder", (starts - timedelta(hours=24)).isoformat())}
        deferred = wait_until(lambda: (lambda e: e if len(e) == 3 else None)(p.emitted("notification.deferred")))
        assert {e["data"]["until"] for e in deferred} == {(starts - timedelta(hours=24)).isoformat()}

        # moved by two days, the supporter no longer needed
        later = starts + timedelta(days=2)
        both = [ids["harmed"], ids["harmer"]]
        arrange(session_id, 2, "changed", later, both, removed=[ids["supporter"]])
        p.publish("session.changed", case_id, session_data(case_id, session_id, 2, later, both,
                                                           removed_attendee_ids=[ids["supporter"]]), "referrals")
        changed = wait_until(lambda: (lambda m: m if len(m) == 3 else None)(
            by_template(p, "attendee.session_changed")), timeout=30)
        assert sorted(changed) == sorted(email[r] for r in ("harmed", "harmer", "supporter"))
        moved_text, _ = text_and_html(changed[email["harmer"]])
        assert later.astimezone(ZoneInfo("Europe/London")).strftime("%A %-d %B %Y at %H:%M") in moved_text
        assert VENUE["name"] in moved_text
        gone_text, _ = text_and_html(changed[email["supporter"]])
        assert "no longer needed" in gone_text and VENUE["address"] not in gone_text
        assert changed[email["harmed"]]["Subject"] == "Cyfiawnder adferol: mae eich cyfarfod wedi newid"

        def reminders_now():
            return [n for n in p.listing(case_id).json()["notifications"] if n["event_type"] == "session.reminder"]

        settled = wait_until(lambda: (lambda r: r if len(r) == 5 and sum(n["status"] == "deferred" for n in r) == 2
                                      else None)(reminders_now()), timeout=30)
        assert sorted((n["recipient_id"], n["status"], n["reason"], n["due_at"]) for n in settled) == sorted(
            [(pid, "suppressed", "session_changed", None) for pid in everyone]
            + [(pid, "deferred", "session_reminder", (later - timedelta(hours=24)).isoformat()) for pid in both])

        # cancelled: the two still attending are told, and their reminders withdrawn
        arrange(session_id, 3, "cancelled", later, both, removed=[ids["supporter"]])
        p.publish("session.cancelled", case_id, session_data(case_id, session_id, 3, later, both,
                                                             reason="venue_unavailable"), "referrals")
        cancelled = wait_until(lambda: (lambda m: m if len(m) == 2 else None)(
            by_template(p, "attendee.session_cancelled")), timeout=30)
        assert sorted(cancelled) == sorted([email["harmed"], email["harmer"]])
        assert cancelled[email["harmed"]]["Subject"] == "Cyfiawnder adferol: mae cyfarfod wedi'i ganslo"
        assert "venue_unavailable" not in "\n".join(text_and_html(cancelled[email["harmer"]]))
        final = wait_until(lambda: (lambda r: r if not [n for n in r if n["status"] == "deferred"] else None)(
            reminders_now()), timeout=30)
        assert sorted(n["reason"] for n in final) == ["session_cancelled"] * 2 + ["session_changed"] * 3
        # the events say who and how, never where: no venue, no personal data
        bus = json.dumps(p.emitted())
        for value in [VENUE["name"], VENUE["address"]] + personal(ids, "referrer", "harmed", "harmer", "supporter"):
            assert value not in bus
        assert [m for m in p.mails() if m["X-Amends-Template"] == "attendee.session_reminder"] == []


def test_the_reminder_goes_out_when_it_falls_due(platform):
    # reminders an hour before, so that one falls due within the test
    with platform(NOTIFICATIONS_DUE_INTERVAL="0.5", NOTIFICATIONS_SESSION_REMINDER_HOURS="1") as p:
        received, ids = a_case()
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        session_id = f"ses-{uuid.uuid4().hex}"
        starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1, seconds=8)
        attendees = [ids["harmer"]]
        arrange(session_id, 1, "scheduled", starts, attendees)
        p.publish("session.scheduled", case_id, session_data(case_id, session_id, 1, starts, attendees,
                                                             process_type="shuttle"), "referrals")
        harmer_email = PEOPLE.parties[ids["harmer"]]["email"]
        wait_until(lambda: by_template(p, "attendee.session_scheduled"), timeout=30)
        reminder = next(d for d in p.store().deliveries_for_case(case_id) if d.event_type == "session.reminder")
        assert (reminder.status, reminder.due_at) == ("deferred", starts - timedelta(hours=1))
        assert "venue" not in reminder.facts and VENUE["name"] not in str(reminder.facts)
        sent = wait_until(lambda: by_template(p, "attendee.session_reminder"), timeout=40)
        assert list(sent) == [harmer_email] and datetime.now(timezone.utc) >= starts - timedelta(hours=1)
        text, _ = text_and_html(sent[harmer_email])
        assert "This is a reminder" in text and VENUE["name"] in text and "the other person will not be there" in text
        assert next(d for d in p.store().deliveries_for_case(case_id)
                    if d.event_type == "session.reminder").status == "sent"


def test_in_a_domestic_abuse_case_only_the_lead_facilitator_is_told(platform):
    with platform() as p:
        received, ids = a_case(flags=["domestic_abuse"], offence_category="violence_against_the_person")
        case_id = received["case_id"]
        PEOPLE.facilitators["fac-1"] = {"name": "Gwen Facilitator", "email": "gwen@rj.example", "language": "cy"}
        PEOPLE.facilitators["fac-2"] = {"name": "Huw Cofacilitator", "email": "huw@rj.example", "language": "en"}
        p.publish("referral.received", case_id, received, "referrals")
        p.publish("facilitator.assigned", case_id, assigned(case_id, "fac-1"), "matching")
        p.publish("facilitator.assigned", case_id, assigned(case_id, "fac-2", role="co_facilitator"), "matching")
        wait_until(lambda: len([m for m in p.mails() if m["X-Amends-Template"] == "facilitator.facilitator_assigned"])
                   == 2, timeout=30)
        session_id = f"ses-{uuid.uuid4().hex}"
        starts = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
        attendees = [ids["harmed"], ids["supporter"]]
        arrange(session_id, 1, "scheduled", starts, attendees)
        p.publish("session.scheduled", case_id, session_data(case_id, session_id, 1, starts, attendees,
                                                             process_type="shuttle", facilitator_led=True,
                                                             facilitator_ids=["fac-1", "fac-2"]), "referrals")
        p.publish("session.cancelled", case_id, session_data(case_id, session_id, 2, starts, attendees,
                                                             process_type="shuttle", facilitator_led=True,
                                                             facilitator_ids=["fac-1", "fac-2"],
                                                             reason="safety_concern"), "referrals")
        briefings = wait_until(lambda: (lambda m: m if len(m) == 2 else None)(
            [m for m in p.mails() if m["X-Amends-Template"].startswith("facilitator.session_")]), timeout=30)
        assert sorted(m["X-Amends-Template"] for m in briefings) == ["facilitator.session_cancelled",
                                                                     "facilitator.session_scheduled"]
        assert {m["To"] for m in briefings} == {"gwen@rj.example"}   # the lead, in Welsh
        text, _ = text_and_html(next(m for m in briefings if m["X-Amends-Template"] == "facilitator.session_scheduled"))
        assert "nid yw Amends wedi ysgrifennu at y bobl sy'n dod" in text
        assert "y person a niweidiwyd, cefnogwr" in text and VENUE["name"] not in text
        for value in personal(ids, "harmed", "harmer", "supporter"):
            assert value not in text
        # no party was written to, nor even looked up, and no reminder waits
        participants = {ids["harmed"], ids["harmer"], ids["supporter"]}
        assert [m["To"] for m in p.mails() if m["To"] in {PEOPLE.parties[pid]["email"] for pid in participants}] == []
        assert not [c for c in PEOPLE.calls if c[0] in participants]
        listed = p.listing(case_id).json()["notifications"]
        assert {(n["event_type"], n["recipient_role"]) for n in listed if n["event_type"].startswith("session.")} == {
            ("session.scheduled", "facilitator"), ("session.cancelled", "facilitator")}
