"""The notifications service on the real broker, FerretDB, a real SMTP server (aiosmtpd)
and a local HTTP server standing in for the SMS gateway.

Contact details come over real RPC from the test-only "referrals" and "matching"
services in notifications_holders.py (CONTRACTS.md shapes, fixture data).
"""
import base64
import hashlib
import hmac
import json
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

import pytest
import requests
from services.notifications.deliveries import DeliveryExists
from services.notifications.service import NotificationsService
from services.notifications.store import NotificationsStore
from shared.events import new_event
from tests.factories import referral_received_data
from tests.integration.conftest import refused_start
from tests.integration.notifications_holders import PEOPLE, Matching, Referrals, SmsRecorder, refusing_smtp_server
from shared.config import settings_for
from shared.storage import connect
from tests.support import Tap, mails, provision_keys, publish_event, read_dead_letters, smtp_server, wait_until

SERVICE_ID, SECRET = str(uuid.uuid4()), str(uuid.uuid4())
NOTIFY_KEY = f"amends_test-{SERVICE_ID}-{SECRET}"


class Platform:
    def __init__(self, url, config, mail_dir, tap, keys, amqp_uri, sms):
        self.url, self.config, self.mail_dir, self.tap, self.keys = url, config, mail_dir, tap, keys
        self.amqp_uri, self.sms = amqp_uri, sms
        self.published = []

    def publish(self, event_type, case_id, data, producer, times=1):
        event = new_event(event_type, case_id, data, source=f"/amends/test/{producer}", region="test",
                          correlationid=case_id)
        for _ in range(times):
            publish_event(self.amqp_uri, event)
        self.published.append(event)
        return event

    def emitted(self, event_type=None):
        """What notifications published, one per event id (the outbox may publish a copy)."""
        unique = {e["id"]: e for e in self.tap.drain()}
        return [e for e in unique.values() if event_type is None or e["type"] == event_type]

    def mails(self):
        return [message_from_bytes(bytes(m), policy=default_policy) for m in mails(self.mail_dir)]

    def store(self):
        """The service's store, on the service's own database connection."""
        return NotificationsStore(connect("notifications", settings_for("notifications", self.config)))

    def delivery(self, case_id, recipient_role):
        return next(d for d in self.store().deliveries_for_case(case_id) if d.recipient_role == recipient_role)

    def listing(self, case_id, key="coordinator"):
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return requests.get(f"{self.url}/v1/notifications", params={"case": case_id}, headers=headers, timeout=10)


@pytest.fixture
def platform(run_services, amqp_uri, tmp_path, monkeypatch):
    """Start notifications (and the stand-in contact holders) against a local SMTP server."""
    PEOPLE.reset()

    @contextmanager
    def start(refusals=0, code=451, sms=False, sms_statuses=(), **config):
        mail_dir = str(tmp_path / f"mail-{uuid.uuid4().hex[:6]}")
        with ExitStack() as inner:
            if refusals:
                port = inner.enter_context(refusing_smtp_server(mail_dir, refusals, code))
            else:
                port = inner.enter_context(smtp_server(mail_dir))
            recorder = inner.enter_context(SmsRecorder(sms_statuses)) if sms else None
            monkeypatch.setenv("SMTP_PORT", str(port))
            monkeypatch.setenv("SMS_API_KEY", NOTIFY_KEY)
            if recorder:
                config["SMS_GATEWAY_URL"] = recorder.url
            url, service_config = inner.enter_context(
                run_services(Referrals, Matching, NotificationsService, **config))
            tap = Tap(amqp_uri, [("notifications", "#")])
            inner.callback(tap.close)
            yield Platform(url, service_config, mail_dir, tap, provision_keys(service_config), amqp_uri, recorder)

    yield start
    PEOPLE.reset()


def new_case(harmed=None, harmer=None, referrer=None, **data):
    """A case with fresh ids; details of each person go into the stand-in holders."""
    tag = uuid.uuid4().hex[:6]
    case_id, ref, harmed_id, harmer_id = f"case-{tag}", f"ref-{tag}", f"ph-{tag}", f"px-{tag}"
    PEOPLE.parties[ref] = {"role": "referrer", "name": "PC Dafydd Morgan", "email": f"dafydd.{tag}@police.example",
                           "language": "en", **(referrer or {})}
    PEOPLE.parties[harmed_id] = {"role": "harmed", "name": "Siân Jones", "email": f"sian.{tag}@mail.example",
                                 "phone": "+447700900111", "language": "cy", "preferred_channels": ["email"],
                                 "safe_contact_windows": [], **(harmed or {})}
    PEOPLE.parties[harmer_id] = {"role": "harmer", "name": "Liam Evans", "email": f"liam.{tag}@mail.example",
                                 "phone": "+447700900222", "language": "en", "preferred_channels": ["sms"],
                                 "safe_contact_windows": [], **(harmer or {})}
    received = referral_received_data(case_id=case_id, referrer_id=ref, participants=[
        {"participant_id": harmed_id, "role": "harmed", "age_band": "50_64", "language": "cy", "access_needs": []},
        {"participant_id": harmer_id, "role": "harmer", "age_band": "25_34", "language": "en",
         "access_needs": ["plain_language"]}], **data)
    return received, {"referrer": ref, "harmed": harmed_id, "harmer": harmer_id}


def personal_values(ids):
    values = []
    for party_id in ids.values():
        party = PEOPLE.parties[party_id]
        values += [party[k] for k in ("name", "email", "phone") if party.get(k)]
    for facilitator in PEOPLE.facilitators.values():
        values += [facilitator["name"], facilitator["email"]]
    return values


def assessed(case_id, decision="suitable"):
    return {"case_id": case_id, "assessment_id": f"as-{case_id}", "decision": decision,
            "reasons": [{"code": "harmer_denies_responsibility", "text": "The harmer does not accept responsibility."}]
            if decision == "unsuitable" else [],
            "risk_level": "medium", "required_level": "intermediate", "co_facilitation": False,
            "process_types": ["direct_conference", "shuttle"], "policy_version": "2026.1"}


def assigned(case_id, facilitator_id, role="lead", assignment_id=None):
    return {"case_id": case_id, "assignment_id": assignment_id or f"asg-{facilitator_id}",
            "assessment_id": f"as-{case_id}", "facilitator_id": facilitator_id, "role": role}


def text_and_html(mail):
    assert mail.is_multipart() and mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_a_case_from_referral_to_outcome_sends_the_expected_messages(platform):
    """The e2e-style test: every message of a case's life, to the right people, in their language."""
    with platform(sms=True) as p:
        received, ids = new_case()
        case_id = received["case_id"]
        PEOPLE.facilitators["fac-1"] = {"name": "Gwen Facilitator", "email": "gwen@rj.example", "language": "en"}
        p.publish("referral.received", case_id, received, "referrals")
        wait_until(lambda: len(p.mails()) >= 1)  # the referrer's; the parties hear once it is assessed
        p.publish("case.assessed", case_id, assessed(case_id), "matching")
        p.publish("facilitator.assigned", case_id, assigned(case_id, "fac-1"), "matching")
        # the facilitator accepts once they have the offer
        wait_until(lambda: "gwen@rj.example" in [m["To"] for m in p.mails()] and len(p.mails()) >= 5
                   and len(p.sms.received) >= 1, timeout=30)
        p.publish("assignment.accepted", case_id,
                  {"case_id": case_id, "assignment_id": "asg-fac-1", "facilitator_id": "fac-1"}, "matching")
        p.publish("case.outcome_recorded", case_id, {"case_id": case_id, "outcome": "agreement_completed"}, "referrals")
        # the referrer is told the outcome too (the outcome code only)
        sent = wait_until(lambda: (lambda s: s if len(s) >= 10 else None)(p.emitted("notification.sent")), timeout=30)

        by_recipient = {}
        for mail in p.mails():
            by_recipient.setdefault(mail["To"], []).append(mail)
        referrer, harmed = PEOPLE.parties[ids["referrer"]], PEOPLE.parties[ids["harmed"]]
        assert sorted(by_recipient) == sorted([referrer["email"], harmed["email"], "gwen@rj.example"])
        assert sorted(str(m["Subject"]) for m in by_recipient[referrer["email"]]) == sorted([
            f"Referral {case_id} received", f"Referral {case_id}: assessment outcome",
            f"Referral {case_id}: facilitator assigned", f"Referral {case_id}: outcome of the agreement"])
        assert sorted(str(m["Subject"]) for m in by_recipient[harmed["email"]]) == sorted([
            "Cyfiawnder adferol: gwybodaeth i chi", "Cyfiawnder adferol: bydd hwylusydd yn cysylltu â chi",
            "Cyfiawnder adferol: diweddariad am y cytundeb"])
        for mail in by_recipient[harmed["email"]]:
            text, html = text_and_html(mail)
            assert mail["Content-Language"] == "cy" and text.startswith("Helo Siân Jones,") and 'lang="cy"' in html
            assert mail["Reply-To"] == "Amends restorative justice service <rj-replies@amends.local>"
        offer_text, offer_html = text_and_html(by_recipient["gwen@rj.example"][0])
        assert f"Case {case_id} has been offered to you as lead facilitator." in offer_text
        assert "burglary" in offer_text and "person responsible, 25 to 34, English" in offer_text
        assert "plain language" in offer_html
        others = personal_values(ids)
        for recipient, received_mails in by_recipient.items():
            own = [v for v in others if v in (recipient, referrer["name"] if recipient == referrer["email"] else None,
                                             harmed["name"] if recipient == harmed["email"] else None,
                                             "Gwen Facilitator" if recipient == "gwen@rj.example" else None)]
            for mail in received_mails:
                body = "\n".join(text_and_html(mail))
                assert [v for v in others if v in body and v not in own] == []

        # the harmer chose SMS: two texts through the Notify-shaped gateway, nothing by email
        assert len(p.sms.received) == 2
        for request in p.sms.received:
            assert request["path"] == "/v2/notifications/sms"
            assert request["json"]["phone_number"] == "+447700900222"
            assert "reply NO" in request["json"]["body"] and "Siân" not in request["json"]["body"]
            header, claims, signature = request["headers"]["Authorization"].removeprefix("Bearer ").split(".")
            expected = hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
            assert base64.urlsafe_b64decode(signature + "==") == expected
            assert json.loads(base64.urlsafe_b64decode(claims + "=="))["iss"] == SERVICE_ID
        assert {e["data"]["notification_id"] for e in sent if e["data"]["channel"] == "sms"} == \
               {r["json"]["reference"] for r in p.sms.received}

        # the events say who and how, never with personal data
        assert len(sent) == 10
        assert sorted((e["data"]["recipient_role"], e["data"]["channel"], e["data"]["language"]) for e in sent) == sorted(
            [("referrer", "email", "en")] * 4 + [("harmed", "email", "cy")] * 3 + [("harmer", "sms", "en")] * 2
            + [("facilitator", "email", "en")])
        assert not [v for v in others if v in json.dumps(sent)]
        assert {(party, purpose) for party, purpose, _ in PEOPLE.calls} >= {
            (ids["harmed"], "participant_information"), (ids["harmed"], "outcome_update"),
            (ids["harmer"], "participant_information"), (ids["referrer"], "referrer_update"),
            ("fac-1", "assignment_offer")}
        assert {requester for _, _, requester in PEOPLE.calls} == {"notifications"}

        listed = p.listing(case_id)
        assert listed.status_code == 200
        assert [n["status"] for n in listed.json()["notifications"]] == ["sent"] * 10
        assert not [v for v in others if v in listed.text]


def test_the_same_events_delivered_five_times_send_one_message_each(platform):
    with platform() as p:
        received, ids = new_case(harmed={"unsafe": True})
        case_id = received["case_id"]
        PEOPLE.facilitators["fac-2"] = {"name": "Huw", "email": "huw@rj.example", "language": "cy"}
        p.publish("referral.received", case_id, received, "referrals", times=5)
        p.publish("case.assessed", case_id, assessed(case_id, "unsuitable"), "matching", times=5)
        p.publish("facilitator.assigned", case_id, assigned(case_id, "fac-2"), "matching", times=5)
        wait_until(lambda: len(p.mails()) >= 4 and len(p.emitted()) >= 4, timeout=30)
        wait_until(lambda: False if p.listing(case_id).json()["notifications"] == [] else True)
        time.sleep(2)  # let every redelivery and retry run its course
        assert sorted(m["To"] for m in p.mails()) == sorted(
            [PEOPLE.parties[ids["referrer"]]["email"]] * 3 + ["huw@rj.example"])
        welsh_offer = next(m for m in p.mails() if m["To"] == "huw@rj.example")
        assert welsh_offer["Subject"] == f"Achos newydd wedi'i gynnig i chi: {case_id}"
        # the outbox publishes at least once: a copy racing the first flush has the same event id
        types = {e["id"]: e["type"] for e in p.emitted()}
        assert sorted(types.values()) == ["notification.sent"] * 4
        assert len(p.store().deliveries_for_case(case_id)) == 4
        assert read_dead_letters(p.amqp_uri, "notifications") == []
        # the delivery key is unique, and so is (event, recipient) whatever the channel
        done = p.delivery(case_id, "facilitator")
        for key in (done.key, done.key.rsplit(":", 1)[0] + ":sms"):
            with pytest.raises(DeliveryExists):
                p.store().insert_delivery(replace(done, key=key, channel=key.rsplit(":", 1)[1]))


def test_refusals_are_suppressed_with_their_reason_and_nothing_is_sent(platform):
    with platform() as p:
        received, ids = new_case(harmed={"consent": "withdrawn"}, harmer={"preferred_channels": ["letter"]})
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        p.publish("case.assessed", case_id, assessed(case_id), "matching")
        p.publish("facilitator.assigned", case_id, assigned(case_id, "fac-unknown", role="co_facilitator"), "matching")
        suppressed = wait_until(
            lambda: (lambda s: s if len(s) >= 3 else None)(p.emitted("notification.suppressed")), timeout=30)
        wait_until(lambda: len(p.mails()) >= 2)
        reasons = {(e["data"]["recipient_role"], e["data"]["reason"]) for e in suppressed}
        assert reasons == {("harmed", "consent_withdrawn"), ("harmer", "channel_not_preferred"),
                           ("facilitator", "unknown_facilitator")}
        assert [m["To"] for m in p.mails()] == [PEOPLE.parties[ids["referrer"]]["email"]] * 2
        statuses = {(n["recipient_role"], n["status"], n["reason"]) for n in p.listing(case_id).json()["notifications"]}
        assert ("harmed", "suppressed", "consent_withdrawn") in statuses


def test_an_smtp_server_refusing_twice_gets_the_message_on_the_third_attempt(platform):
    with platform(refusals=2, code=451) as p:
        received, ids = new_case()
        PEOPLE.parties[ids["harmed"]]["unsafe"] = True  # only the referrer is emailed
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        wait_until(lambda: p.mails(), timeout=30)
        wait_until(lambda: p.emitted("notification.sent"))
        delivery = p.delivery(case_id, "referrer")
        assert (delivery.status, delivery.attempts) == ("sent", 3)
        assert len(p.mails()) == 1 and p.emitted("notification.failed") == []
        assert read_dead_letters(p.amqp_uri, "notifications") == []


def test_after_the_last_retry_the_notification_fails_and_the_event_is_dead_lettered(platform):
    with platform(refusals=100, code=550) as p:
        received, ids = new_case(harmed={"unsafe": True})
        case_id = received["case_id"]
        event = p.publish("referral.received", case_id, received, "referrals")
        failed = wait_until(lambda: p.emitted("notification.failed"), timeout=30)
        assert failed[0]["data"]["reason"] == "smtp_550" and failed[0]["data"]["attempts"] == 3
        assert failed[0]["data"]["recipient_role"] == "referrer" and failed[0]["causationid"] == event["id"]
        letters = wait_until(lambda: read_dead_letters(p.amqp_uri, "notifications"), timeout=20)
        body, headers = letters[0]
        assert json.loads(body)["id"] == event["id"]
        assert "smtp_550 after 3 attempts" in headers["x-amends-error"] and headers["x-amends-attempts"] == 3
        assert p.mails() == []
        listed = p.listing(case_id).json()["notifications"]
        assert {(n["recipient_role"], n["status"], n["reason"], n["attempts"]) for n in listed} >= {
            ("referrer", "failed", "smtp_550", 3)}


def test_an_sms_gateway_error_is_retried_and_the_text_sent_once(platform):
    with platform(sms=True, sms_statuses=(503, 429)) as p:
        received, ids = new_case(harmed={"unsafe": True})
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        p.publish("case.assessed", case_id, assessed(case_id), "matching")
        wait_until(lambda: p.emitted("notification.suppressed"))  # the harmed person: not safe to contact
        sent = wait_until(lambda: [e for e in p.emitted("notification.sent") if e["data"]["channel"] == "sms"],
                          timeout=30)
        assert sent[0]["data"]["recipient_role"] == "harmer"
        assert len(p.sms.received) == 3  # 503, 429, then accepted
        assert len({r["json"]["reference"] for r in p.sms.received}) == 1
        delivery = p.delivery(case_id, "harmer")
        assert (delivery.status, delivery.attempts, delivery.channel) == ("sent", 3, "sms")


def _window_opening_next_minute():
    london = datetime.now(ZoneInfo("Europe/London"))
    # at least ten seconds away, so the first attempt surely finds it closed
    start = (london + timedelta(minutes=1, seconds=10)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=10)
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[start.weekday()]
    return start.astimezone(timezone.utc), {"days": [day], "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}


def test_a_closed_safe_contact_window_defers_the_message_until_it_opens(platform):
    opens, window = _window_opening_next_minute()
    with platform(NOTIFICATIONS_DUE_INTERVAL="0.5") as p:
        received, ids = new_case(harmed={"safe_contact_windows": [window]})
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        p.publish("case.assessed", case_id, assessed(case_id), "matching")  # the harmed person's first message
        deferred = wait_until(lambda: p.emitted("notification.deferred"), timeout=30)
        assert deferred[0]["data"]["recipient_role"] == "harmed" and deferred[0]["data"]["channel"] == "email"
        assert datetime.fromisoformat(deferred[0]["data"]["until"]) == opens
        harmed_email = PEOPLE.parties[ids["harmed"]]["email"]
        assert harmed_email not in [m["To"] for m in p.mails()]
        wait_until(lambda: harmed_email in [m["To"] for m in p.mails()], timeout=100)
        assert datetime.now(timezone.utc) >= opens
        sent = wait_until(lambda: [e for e in p.emitted("notification.sent") if e["data"]["recipient_role"] == "harmed"])
        assert sent[0]["data"]["language"] == "cy"
        time.sleep(1.5)  # more timer ticks send nothing more
        assert [m["To"] for m in p.mails()].count(harmed_email) == 1
        assert p.delivery(case_id, "harmed").status == "sent"


def test_closing_a_case_withdraws_what_waits_for_a_window(platform):
    next_week = datetime.now(ZoneInfo("Europe/London")) - timedelta(hours=2)
    window = {"days": [("mon", "tue", "wed", "thu", "fri", "sat", "sun")[next_week.weekday()]],
              "start": next_week.strftime("%H:%M"), "end": (next_week + timedelta(minutes=30)).strftime("%H:%M")}
    with platform() as p:
        received, ids = new_case(harmed={"safe_contact_windows": [window]})
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        p.publish("case.assessed", case_id, assessed(case_id), "matching")  # the harmed person's first message
        wait_until(lambda: p.emitted("notification.deferred"), timeout=30)
        p.publish("case.closed", case_id, {"case_id": case_id, "from_status": "TRIAGE", "reason": "safety_stop"},
                  "referrals")
        withdrawn = wait_until(lambda: [e for e in p.emitted("notification.suppressed")
                                        if e["data"]["recipient_role"] == "harmed"], timeout=30)
        assert withdrawn[0]["data"]["reason"] == "case_closed"
        assert p.delivery(case_id, "harmed").status == "suppressed"


def test_the_status_listing_needs_a_staff_key_and_a_case(platform):
    with platform() as p:
        assert p.listing("case-x", key=None).status_code == 401
        assert p.listing("case-x", key="referrer").status_code == 403
        missing = requests.get(f"{p.url}/v1/notifications",
                               headers={"Authorization": f"Bearer {p.keys['coordinator']}"}, timeout=10)
        assert missing.status_code == 400 and "case" in missing.json()["fields"]
        # a case notifications has never heard of, like one the caller may not see, is a 404
        assert p.listing("case-x").status_code == 404


# -- Victims' Code deadlines: the coordinating team of the case's region ------------------

def deadline(case_id, name="support_referral", measured_from="crime_reported"):
    return {"case_id": case_id, "deadline": name, "due_at": "2026-11-21T00:00:00+00:00", "enhanced_rights": False,
            "measured_from": measured_from}


def test_a_missed_deadline_emails_the_coordinating_team_of_the_case_region_once(platform):
    with platform() as p:
        received, ids = new_case(region="north-wales")   # a Welsh-speaking team (deploy/local/coordinators.yaml)
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        wait_until(lambda: p.store().case(case_id))   # the directory knows the case (and its region)
        p.publish("case.deadline_missed", case_id, deadline(case_id, measured_from="referral_received"), "referrals",
                  times=3)
        team = "rj-coordinators.north-wales@example.org"
        alerts = wait_until(lambda: [m for m in p.mails() if m["To"] == team], timeout=30)
        time.sleep(1.5)   # every copy of the event has had its turn
        alerts = [m for m in p.mails() if m["To"] == team]
        assert len(alerts) == 1
        text, html = text_and_html(alerts[0])
        assert alerts[0]["Subject"] == (f"Achos {case_id}: methwyd terfyn amser Cod y Dioddefwyr "
                                        "(atgyfeirio'r person a niweidiwyd at wasanaethau cymorth)")
        assert alerts[0]["Content-Language"] == "cy" and alerts[0]["X-Amends-Template"] == \
            "coordinator.case_deadline_missed"
        assert text.startswith("Helo Cydlynwyr cyfiawnder adferol Gogledd Cymru,")
        assert "Dydd Gwener 20 Tachwedd 2026" in text and "gynharach" in text and case_id in html
        assert [v for v in personal_values(ids) if v in text + html] == []
        sent = [e for e in p.emitted("notification.sent") if e["data"]["recipient_role"] == "coordinator"]
        assert [(e["data"]["recipient_id"], e["data"]["template"]) for e in sent] == [
            ("coordinators.north-wales", "coordinator.case_deadline_missed")]
        listed = {(n["recipient_role"], n["status"]) for n in p.listing(case_id).json()["notifications"]}
        assert ("coordinator", "sent") in listed and team not in p.listing(case_id).text
        # the team is notifications' own configuration: nobody was asked for its address
        assert "coordinators.north-wales" not in [party for party, _, _ in PEOPLE.calls]


def test_a_deadline_in_a_region_without_a_team_is_dead_lettered_naming_the_region(platform):
    with platform() as p:
        received, ids = new_case(region="ynys-enlli")
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        wait_until(lambda: p.store().case(case_id))
        event = p.publish("case.deadline_due", case_id, deadline(case_id, "victim_told_about_rj"), "referrals")
        letters = wait_until(lambda: read_dead_letters(p.amqp_uri, "notifications"), timeout=30)
        body, headers = letters[0]
        assert json.loads(body)["id"] == event["id"]
        assert "no coordinating team is configured for region 'ynys-enlli'" in headers["x-amends-error"]
        assert headers["x-amends-attempts"] == 3   # retried first (AMENDS_RETRY_DELAYS), then set aside
        assert [d for d in p.store().deliveries_for_case(case_id) if d.recipient_role == "coordinator"] == []
        assert not [m for m in p.mails() if "coordinators" in str(m["To"])]


def test_a_coordinating_teams_file_it_cannot_use_stops_the_service(service_config, tmp_path):
    from services.notifications.coordinators import CoordinatorTeamsError
    bad = tmp_path / "teams.yaml"
    bad.write_text("teams:\n  gwent:\n    name: Gwent\n    email: nobody\n    language: en\n")
    refused = refused_start(NotificationsService, service_config(NOTIFICATIONS_COORDINATOR_TEAMS=str(bad)),
                            CoordinatorTeamsError)
    assert str(refused) == f"{bad}: teams.gwent.email: Not a valid email address."
