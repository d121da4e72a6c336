import requests

from services.records import entries, ledger
from services.records.service import RecordsService
from shared.events import new_event
from tests.factories import referral_received_data
from tests.support import provision_keys, publish_event, wait_until


def case_events(case_id):
    data = referral_received_data(case_id=case_id)
    received = new_event("referral.received", case_id, data, source="/amends/test/referrals",
                         region="test", correlationid=case_id)
    assessed = new_event("case.assessed", case_id, {
        "case_id": case_id, "assessment_id": "a-1", "decision": "suitable",
        "reasons": [{"code": "responsibility_accepted", "text": "ok"}], "risk_level": "low",
        "required_level": "intermediate", "co_facilitation": False, "process_types": ["shuttle"],
        "policy_version": "t"}, source="/amends/test/matching", region="test",
        correlationid=case_id, causationid=received["id"])
    return [received, assessed]


def test_every_event_is_appended_once_and_served_in_order(run_services, amqp_uri):
    with run_services(RecordsService, max_workers=1) as (url, config):
        keys = provision_keys(config)
        events = case_events("case-a") + case_events("case-b")
        for event in events:
            publish_event(amqp_uri, event)
        for _ in range(4):
            publish_event(amqp_uri, events[0])  # redelivered five times in all
        wait_until(lambda: entries.LedgerEntry.objects.count() == 4)
        assert entries.LedgerEntry.objects(event_id=events[0]["id"]).count() == 1
        assert ledger.verify(entries.stream()) == 4
        auth = {"Authorization": f"Bearer {keys['coordinator']}"}
        timeline = requests.get(f"{url}/v1/cases/case-a/timeline", headers=auth, timeout=10).json()
        assert [e["type"] for e in timeline["entries"]] == ["referral.received", "case.assessed"]
        assert timeline["entries"][0]["leaf_hash"] == ledger.leaf_hash(events[0]).hex()
        # the referring agency's referrer may read it; another agency's may not
        agency_key = provision_keys(config, agency="south-wales-police")["referrer"]
        assert requests.get(f"{url}/v1/cases/case-a/timeline",
                            headers={"Authorization": f"Bearer {agency_key}"}).status_code == 200
        assert requests.get(f"{url}/v1/cases/case-a/timeline",
                            headers={"Authorization": f"Bearer {keys['referrer']}"}).status_code == 403
        assert requests.get(f"{url}/v1/cases/nope/timeline", headers=auth).status_code == 404


def test_tampering_in_the_database_is_found(run_services, amqp_uri):
    with run_services(RecordsService, max_workers=1) as (url, config):
        keys = provision_keys(config)
        for event in case_events("case-c"):
            publish_event(amqp_uri, event)
        wait_until(lambda: entries.LedgerEntry.objects.count() == 2)
        entries.LedgerEntry._get_collection().update_one({"_id": 1}, {"$set": {"event.data.decision": "unsuitable"}})
        answer = requests.get(f"{url}/v1/ledger/verify", headers={"Authorization": f"Bearer {keys['auditor']}"}).json()
        assert answer["valid"] is False and answer["first_bad_seq"] == 1
