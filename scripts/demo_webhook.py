"""The demo police force's webhook subscription, for scripts/demo.py: a receiver on 127.0.0.1
(scripts/webhook_receiver.py) that checks every delivery with the `standardwebhooks` verifier,
subscribed to the force's own cases, and a printout of what it received.

    with PoliceWebhook(subscriptions_url, keys) as hook:
        ... submit referrals ...
        hook.wait_for_position(last_ledger_position)
        for line in hook.report():
            print(line)

On the way in it makes sure the agency has a data-sharing agreement (`own_cases`, set with
the coordinator's key when it has none) and subscribes with the agency's referrer key,
starting from now. On the way out it deletes the subscription, so that nothing keeps
failing once the receiver has stopped, and stops the receiver.
"""
import json
import time

import eventlet
import requests

from scripts.webhook_receiver import Receiver, verifies

AGENCY = "dev-police"
# what a police force wants to hear of its referrals (the profile passes no more than own_cases allows)
EVENT_TYPES = ["referral.received", "case.*", "facilitator.*", "assignment.*", "intervention.*"]
AGREEMENT_REFERENCE = "DEMO/dev-police/own-cases"


class PoliceWebhook:
    def __init__(self, subscriptions_url, keys, agency=AGENCY, timeout=10):
        """`keys`: the role -> key map of var/dev-keys.json (its referrer is the agency's)."""
        self.url = subscriptions_url
        self.keys = keys
        self.agency = agency
        self.timeout = timeout
        self.receiver = Receiver()
        self.subscription_id = None
        self.secret = None

    def _auth(self, role):
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def __enter__(self):
        self.receiver.__enter__()
        try:
            self._share()
            answer = requests.post(f"{self.url}/v1/subscriptions", headers=self._auth("referrer"), timeout=self.timeout,
                                   json={"kind": "webhook", "url": self.receiver.url, "event_types": EVENT_TYPES})
            if answer.status_code != 201:
                raise RuntimeError(f"the subscription was refused: {answer.status_code} {answer.text[:300]}")
            self.subscription_id, self.secret = answer.json()["subscription_id"], answer.json()["secret"]
            self.receiver.secrets.append(self.secret)
        except BaseException:
            self.receiver.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.subscription_id:
                requests.delete(f"{self.url}/v1/subscriptions/{self.subscription_id}", headers=self._auth("referrer"),
                                timeout=self.timeout)
        finally:
            self.receiver.__exit__(*exc)

    def _share(self):
        """The agency's own cases, unless an agreement is already in force."""
        sharing = f"{self.url}/v1/agencies/{self.agency}/sharing"
        current = requests.get(sharing, headers=self._auth("coordinator"), timeout=self.timeout)
        if current.status_code == 200 and (current.json().get("current") or {}).get("profile") not in (None, "none"):
            return
        answer = requests.put(sharing, headers=self._auth("coordinator"), timeout=self.timeout, json={
            "profile": "own_cases", "regions": [], "agreement_reference": AGREEMENT_REFERENCE})
        if answer.status_code != 200:
            raise RuntimeError(f"the data-sharing agreement was refused: {answer.status_code} {answer.text[:300]}")

    def delivery(self):
        """Where the subscription's delivery stands (GET /v1/subscriptions/{id}: `delivery`)."""
        answer = requests.get(f"{self.url}/v1/subscriptions/{self.subscription_id}", headers=self._auth("referrer"),
                              timeout=self.timeout)
        return answer.json()["delivery"] if answer.status_code == 200 else {}

    def wait_for_position(self, position, timeout=30):
        """Wait until the subscription has settled every ledger entry up to `position` (those it
        is not sent just move its cursor); False if it has not within `timeout` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            settled = self.delivery().get("position")
            if settled is not None and settled >= position:
                return True
            eventlet.sleep(0.5)
        return False

    def verified(self, request):
        """Whether a delivery verifies under the subscription's secret (as it arrived, or now)."""
        return self.secret in request.verified_by or verifies(self.secret, request)

    def report(self):
        """What the receiver received, a line each: position, type, verified, the (redacted) data."""
        requests_ = list(self.receiver.requests)
        events = [(request, event) for request in requests_ for event in request.events]
        unverified = [r for r in requests_ if not self.verified(r)]
        lines = [f"Webhook deliveries to {self.agency}'s receiver ({self.receiver.url}; subscription "
                 f"{self.subscription_id}): {len(requests_)} requests, {len(events)} events, "
                 f"signatures verified: {'yes' if requests_ and not unverified else 'no'}"]
        for request, event in events:
            lines.append(f"  #{event.get('ledgerposition', '-'):<4} {event['type']:<24} "
                         f"verified {'yes' if self.verified(request) else 'no '}  "
                         f"{json.dumps(event.get('data'), sort_keys=True)}")
        return lines
