"""Residency on the real broker and database: a referral for a region this deployment does
not serve (AMENDS_REGIONS) is a 400 naming `region`, and nothing of it is stored or sent: no
case, no idempotency fingerprint, no data key, no event on the bus or in the ledger's queue.
A region it serves still goes through."""
import uuid

import requests
from kombu import Connection

from services.referrals import workflow
from services.referrals.protection import Vault, load_master_key
from services.referrals.service import ReferralsService
from services.referrals.store import STATE
from shared.messaging import topology
from tests.factories import referral_body
from tests.integration.referrals_helpers import referrals_store
from tests.support import Tap, issue_key, provision_keys, wait_until

MASTER_KEY = "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk="


def ledger_queue_depth(amqp_uri):
    """Messages waiting in records' ledger queue (declared by the test's topology; no
    records runs here, so every event published stays there)."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        _, depth, _ = channel.queue_declare(topology.consumer_queue_name("records", "ledger"), passive=True)
        return depth


def test_a_referral_for_a_region_not_served_is_refused_and_nothing_is_stored_or_sent(run_services, amqp_uri,
                                                                                     monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", MASTER_KEY)
    with run_services(ReferralsService, AMENDS_REGIONS="south-wales,gwent") as (url, config):
        keys = provision_keys(config)
        # a key that covers the region: the refusal is the deployment's, not the key's
        referrer = issue_key(config, "referrer", "test-police", "ref-anywhere",
                             regions=("south-wales", "gwent", "north-wales"))
        tap = Tap(amqp_uri, [("referrals", "#")])
        idempotency_key = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {referrer}", "Idempotency-Key": idempotency_key}
        body = referral_body(0, region="north-wales")
        refused = requests.post(f"{url}/v1/referrals", json=body, headers=headers, timeout=10)
        assert refused.status_code == 400, refused.text
        assert list(refused.json()["fields"]) == ["region"]
        message = refused.json()["fields"]["region"][0]
        assert "not served by this deployment" in message
        for personal in ("Sian Jones", "SWP/26/104455", "north-wales"):
            assert personal not in refused.text
        # the same again, and without a key: refused the same way
        assert requests.post(f"{url}/v1/referrals", json=body, headers=headers, timeout=10).status_code == 400
        assert requests.post(f"{url}/v1/referrals", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {referrer}"}).status_code == 400
        # listing by a region not served: the same rule
        listing = requests.get(f"{url}/v1/cases", params={"region": "north-wales"}, timeout=10,
                               headers={"Authorization": f"Bearer {keys['auditor']}"})
        assert listing.status_code == 400 and list(listing.json()["fields"]) == ["region"]

        # the case it would have had (its id comes from the key's fingerprint) does not exist
        vault = Vault(load_master_key(MASTER_KEY))
        key_id, _ = workflow.intake_fingerprints(vault, "test-police", idempotency_key, body)
        would_be = str(uuid.uuid5(workflow.INTAKE_NAMESPACE, key_id))
        with referrals_store(config) as store:
            assert store.load_case(would_be) is None
            assert store.intake_fingerprint(would_be) is None
            # no case (nor its outbox), change, data key or access; only the timers' own state
            assert {name for name, _ in store.documents()} <= {STATE}

        # a region served still works, and its event is the only one on the bus and in the ledger's queue
        served = requests.post(f"{url}/v1/referrals", json=referral_body(2), timeout=10,
                               headers={"Authorization": f"Bearer {referrer}", "Idempotency-Key": str(uuid.uuid4())})
        assert served.status_code == 201, served.text
        case_id = served.json()["case_id"]
        events = wait_until(lambda: tap.drain())
        assert [(e["type"], e["subject"]) for e in events] == [("referral.received", case_id)]
        wait_until(lambda: ledger_queue_depth(amqp_uri) == 1)
        with referrals_store(config) as store:
            assert store.counts()["cases"] == 1 and store.load_case(case_id).region == "gwent"
            assert store.load_case(would_be) is None
        assert requests.get(f"{url}/v1/cases", params={"region": "gwent"}, timeout=10,
                            headers={"Authorization": f"Bearer {keys['auditor']}"}).json()["total"] == 1
        tap.close()
