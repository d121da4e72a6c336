"""A Victims' Code deadline reaches the coordinating team of the case's region, through the
real services: referrals (intake, its deadline timer) and notifications on the real broker and
FerretDB, with a real SMTP server. A late referral's clocks run out, the timer announces them,
and notifications emails the team mailbox of deploy/local/coordinators.yaml, once per event,
with no one's personal data."""
import uuid
from datetime import date
from email import message_from_bytes
from email.policy import default as default_policy

import eventlet
import requests
from nameko.testing.services import entrypoint_hook

from services.notifications import labels
from services.notifications.service import NotificationsService
from services.referrals import deadlines
from services.referrals.service import ReferralsService
from shared.messaging import topology
from tests.factories import days_ago, referral_body
from tests.integration.test_referrals_api import MASTER_KEY
from tests.support import Tap, mails, provision_keys, smtp_server, wait_until

TEAM = "rj-coordinators.south-wales@example.org"


def test_a_missed_deadline_is_emailed_to_the_coordinating_team(run_services, amqp_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", MASTER_KEY)
    mail_dir = str(tmp_path / "mail")
    # reported a fortnight ago: both clocks have run out (5 and 2 working days), whatever the day
    reported = days_ago(14)
    body = referral_body(0, crime_reported_on=reported, crime_reference=f"SWP/26/{uuid.uuid4().hex[:8]}")
    body["participants"][0]["contact_safe"] = False   # not contacted, so not told about RJ either
    personal = [body["crime_reference"], body["referrer"]["officer_name"], body["referrer"]["contact"]["email"]] + [
        value for p in body["participants"] for value in [p["name"], *p["contact"].values()]]
    with smtp_server(mail_dir) as smtp_port:
        monkeypatch.setenv("SMTP_PORT", str(smtp_port))
        # each on a port of its own (one container per HTTP server)
        with run_services(ReferralsService) as (url, config), run_services(NotificationsService):
            tap = Tap(amqp_uri, [(s, "#") for s in topology.SERVICES], name=f"tap-{uuid.uuid4().hex[:8]}")
            keys = provision_keys(config)
            answer = requests.post(f"{url}/v1/referrals", json=body, timeout=10,
                                   headers={"Authorization": f"Bearer {keys['referrer']}"})
            assert answer.status_code == 201, answer.text
            case_id = answer.json()["case_id"]

            def inbox():
                return [message_from_bytes(bytes(m), policy=default_policy) for m in mails(mail_dir)]

            # notifications has heard of the case: the referrer was told
            wait_until(lambda: [m for m in inbox() if m["To"] == body["referrer"]["contact"]["email"]], timeout=30)
            referrals = next(c for c in run_services.containers if c.service_name == "referrals")
            with entrypoint_hook(referrals, "check_deadlines") as tick:
                tick()
            alerts = wait_until(lambda: (lambda found: found if len(found) >= 4 else None)(
                [m for m in inbox() if m["To"] == TEAM]), timeout=30)
            eventlet.sleep(1)
            with entrypoint_hook(referrals, "check_deadlines") as tick:
                tick()   # a second tick owes nothing: no second copy
            eventlet.sleep(1)
            alerts = [m for m in inbox() if m["To"] == TEAM]
            events = [e for e in tap.drain() if e["type"].startswith("case.deadline")]
            tap.close()

    assert sorted((e["type"], e["data"]["deadline"]) for e in events) == [
        ("case.deadline_due", "support_referral"), ("case.deadline_due", "victim_told_about_rj"),
        ("case.deadline_missed", "support_referral"), ("case.deadline_missed", "victim_told_about_rj")]
    assert sorted(str(m["Subject"]) for m in alerts) == sorted([
        f"Case {case_id}: Victims' Code deadline running out (referring the person harmed to support services)",
        f"Case {case_id}: Victims' Code deadline running out (telling the person harmed about restorative justice)",
        f"Case {case_id}: Victims' Code deadline missed (referring the person harmed to support services)",
        f"Case {case_id}: Victims' Code deadline missed (telling the person harmed about restorative justice)"])
    missed = next(m for m in alerts if "missed (referring" in str(m["Subject"]))
    text = missed.get_body(preferencelist=("plain",)).get_content()
    assert text.startswith("Hello South Wales restorative justice coordinators,")
    last_day = deadlines.add_working_days(date.fromisoformat(reported), 2).isoformat()   # the support clock's
    assert f"Last day: {labels.day_words('en')(last_day)}" in text and "What to do" in text and case_id in text
    for mail in alerts:
        everything = " ".join([str(mail["Subject"])] + [mail.get_body(preferencelist=(kind,)).get_content()
                                                        for kind in ("plain", "html")])
        assert case_id in everything and [value for value in personal if value in everything] == []
