"""The webhook receiver the demo and the tests use (scripts/webhook_receiver.py): a real HTTP
server on 127.0.0.1 that checks every request with the `standardwebhooks` verifier, and the
demo's printout of what it received (scripts/demo_webhook.py)."""
import json
from datetime import datetime, timezone

import requests
from standardwebhooks import Webhook

from scripts.demo_webhook import PoliceWebhook
from scripts.webhook_receiver import Receiver, verifies
from services.subscriptions.subscription import new_secret

EVENT = {"id": "sub-1.7", "type": "case.assessed", "ledgerposition": 7,
         "data": {"case_id": "case-1", "decision": "suitable", "reasons": []}}


def post(receiver, secret, body, message_id="sub-1.7"):
    now = datetime.now(timezone.utc)
    signature = Webhook(secret).sign(message_id, now, body)
    return requests.post(receiver.url, data=body, timeout=5, headers={
        "webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature,
        "content-type": "application/cloudevents+json"})


def test_a_signed_delivery_verifies_and_a_forged_one_does_not():
    secret, other = new_secret(), new_secret()
    with Receiver(secrets=[secret], answers=[500]) as receiver:
        body = json.dumps(EVENT)
        assert post(receiver, secret, body).status_code == 500      # answered as told, then the default
        assert post(receiver, secret, body).status_code == 204
        assert post(receiver, other, body, "sub-1.8").status_code == 204
    first, again, forged = receiver.requests
    assert first.verified_by == (secret,) and again.verified_by == (secret,) and forged.verified_by == ()
    assert verifies(other, forged) and not verifies(secret, forged)
    assert [e["id"] for e in receiver.unique_events()] == ["sub-1.7"]   # a retry's copy dropped by id
    assert not receiver.all_verify(secret)


def test_the_demo_report_says_what_arrived_and_whether_each_delivery_verified():
    secret = new_secret()
    hook = PoliceWebhook("http://127.0.0.1:1", {"referrer": "k", "coordinator": "k"})
    hook.secret, hook.subscription_id = secret, "sub-1"
    with hook.receiver:
        post(hook.receiver, secret, json.dumps(EVENT))
        post(hook.receiver, new_secret(), json.dumps(dict(EVENT, id="sub-1.9", ledgerposition=9)), "sub-1.9")
    report = hook.report()
    assert report[0].endswith("2 requests, 2 events, signatures verified: no")
    assert report[1].startswith("  #7    case.assessed") and " verified yes " in report[1]
    assert '{"case_id": "case-1", "decision": "suitable", "reasons": []}' in report[1]
    assert report[2].startswith("  #9 ") and " verified no " in report[2]
