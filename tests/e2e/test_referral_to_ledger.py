"""One referral through all four services, each a `nameko run` process of its own."""
from email import message_from_bytes
from email.policy import default as default_policy

import requests

from services.matching import facilitators
from services.matching.store import MatchingStore
from tests.factories import days_ago, referral_body
from tests.support import mails, provision_keys, wait_until


def test_a_referral_travels_into_the_ledger(platform):
    config, ports, mail_dir = platform
    keys = provision_keys(config)
    store = MatchingStore.open(config)
    facilitators.register(store, {"facilitator_id": "fac-e2e", "level": "advanced", "regions": ["south-wales"],
                           "languages": ["en"], "capacity": 2, "last_active": days_ago(30)})
    response = requests.post(f"http://127.0.0.1:{ports['referrals']}/v1/referrals", json=referral_body(0),
                             headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=10)
    assert response.status_code == 201
    case_id = response.json()["case_id"]
    auth = {"Authorization": f"Bearer {keys['coordinator']}"}

    referrer_email = "dafydd.morgan@police.example"

    def timeline():
        answer = requests.get(f"http://127.0.0.1:{ports['records']}/v1/cases/{case_id}/timeline",
                              headers=auth, timeout=5)
        entries = answer.json()["entries"] if answer.status_code == 200 else []
        # the referrer hears three times: received, assessed, facilitator assigned
        told = [e for e in entries if e["type"] == "notification.sent" and e["data"]["recipient_role"] == "referrer"]
        return entries if len(told) >= 3 else None

    entries = wait_until(timeline, timeout=60)
    types = [e["type"] for e in entries]
    assert types[0] == "referral.received"
    assert types.index("case.assessed") < types.index("facilitator.assigned")
    assert entries[types.index("facilitator.assigned")]["data"]["facilitator_id"] == "fac-e2e"
    assert sorted(e["data"]["template"] for e in entries
                  if e["type"] == "notification.sent" and e["data"]["recipient_role"] == "referrer") == [
        "referrer.case_assessed", "referrer.facilitator_assigned", "referrer.referral_received"]
    # referrals moves the case on as matching's events arrive
    assert [e["data"]["to_status"] for e in entries if e["type"] == "case.status_changed"][:2] == [
        "CONTACTING", "ASSESSMENT"]
    assert all(e["source"].startswith("/amends/") for e in entries)
    to_referrer = wait_until(lambda: (lambda m: m if len(m) >= 3 else None)(
        [m for m in mails(mail_dir) if m["To"] == referrer_email]))
    assert sorted(" ".join(str(m["Subject"]).split()) for m in to_referrer) == sorted([
        f"Referral {case_id} received", f"Referral {case_id}: assessment outcome",
        f"Referral {case_id}: facilitator assigned"])
    for mail in to_referrer:
        parsed = message_from_bytes(bytes(mail), policy=default_policy)
        body = parsed.get_body(("plain",)).get_content() + parsed.get_body(("html",)).get_content()
        assert "Dafydd" in body
        for other_party in ("Sian Jones", "Liam Evans", "sian.jones@mail.example", "+44 7700 900123"):
            assert other_party not in body
    verified = requests.get(f"http://127.0.0.1:{ports['records']}/v1/ledger/verify", headers=auth).json()
    # more notification events may still be arriving; every one so far must verify
    assert verified["valid"] is True and verified["entries"] >= len(entries)
