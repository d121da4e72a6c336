import requests

from services.notifications.deliveries import Delivery
from services.notifications.service import NotificationsService
from services.referrals.cases import Case
from services.referrals.service import ReferralsService
from shared.events import new_event
from tests.factories import referral_body
from tests.support import Tap, mails, provision_keys, publish_event, smtp_server, wait_until


def test_the_referrer_is_emailed_once_however_often_the_event_arrives(run_services, amqp_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk=")
    mail_dir = str(tmp_path / "mail")
    with smtp_server(mail_dir) as smtp_port:
        monkeypatch.setenv("SMTP_PORT", str(smtp_port))
        with run_services(ReferralsService) as (url, config), run_services(NotificationsService) as (n_url, _):
            keys = provision_keys(config)
            tap = Tap(amqp_uri, [("notifications", "#")])
            response = requests.post(f"{url}/v1/referrals", json=referral_body(0),
                                     headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=10)
            case_id = response.json()["case_id"]
            wait_until(lambda: Case.objects(case_id=case_id, outbox__size=0).first())
            assigned = new_event("facilitator.assigned", case_id, {
                "case_id": case_id, "assignment_id": "as-1", "assessment_id": "a-1",
                "facilitator_id": "fac-1", "role": "lead"}, source="/amends/test/matching",
                region="test", correlationid=case_id)
            for _ in range(5):
                publish_event(amqp_uri, assigned)
            sent = wait_until(lambda: [e for e in tap.drain() if e["type"] == "notification.sent"])
            wait_until(lambda: len(mails(mail_dir)) >= 1)
            assert len(mails(mail_dir)) == 1
            assert Delivery.objects(case_id=case_id).count() == 1
            email = mails(mail_dir)[0]
            assert email["To"] == "dafydd.morgan@police.example"
            assert case_id in email["Subject"]
            body = email.get_payload()
            for other_party in ("Sian Jones", "Liam Evans", "sian.jones@mail.example", "+44 7700 900123"):
                assert other_party not in body
            assert sent[0]["data"]["recipient_role"] == "referrer"
            assert sent[0]["causationid"] == assigned["id"]
            assert "dafydd" not in str(sent[0])
            listed = requests.get(f"{n_url}/v1/notifications", params={"case": case_id},
                                  headers={"Authorization": f"Bearer {keys['coordinator']}"}).json()
            assert [n["status"] for n in listed["notifications"]] == ["sent"]
            tap.close()
