import requests

from services.referrals.service import ReferralsService
from tests.factories import referral_body
from tests.integration.referrals_helpers import referrals_store
from tests.support import Tap, provision_keys, wait_until


def post(url, body, key):
    return requests.post(f"{url}/v1/referrals", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_a_referral_is_stored_and_announced_in_one_write(run_services, amqp_uri, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk=")
    with run_services(ReferralsService) as (url, config):
        keys = provision_keys(config)
        tap = Tap(amqp_uri, [("referrals", "#")])
        response = post(url, referral_body(0), keys["referrer"])
        assert response.status_code == 201, response.text
        case_id = response.json()["case_id"]
        events = wait_until(lambda: tap.drain())
        assert [e["type"] for e in events] == ["referral.received"]
        assert events[0]["subject"] == case_id and events[0]["correlationid"] == case_id
        with referrals_store(config) as store:
            case = store.load_case(case_id)
            assert case.status == "RECEIVED"
            assert case.outbox == []  # relayed, then pulled from the document
            # the stored document holds no personal data in the clear
            raw = [doc for name, doc in store.documents() if name == "cases"]
        assert [doc["_id"] for doc in raw] == [case_id]
        text = str(raw)
        for value in ("Sian Jones", "Liam Evans", "dafydd.morgan@police.example", "SWP/26/104455"):
            assert value not in text
        # the case is visible to its agency; to another, it does not exist
        mine = requests.get(f"{url}/v1/cases/{case_id}", headers={"Authorization": f"Bearer {keys['referrer']}"})
        theirs = requests.get(f"{url}/v1/cases/{case_id}",
                              headers={"Authorization": f"Bearer {keys['other_agency_referrer']}"})
        assert mine.status_code == 200 and mine.json()["status"] == "RECEIVED"
        assert theirs.status_code == 404
        tap.close()


def test_bad_input_is_named_and_nothing_is_stored(run_services, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk=")
    with run_services(ReferralsService) as (url, config):
        keys = provision_keys(config)
        body = referral_body(0, cjs_stage=12)
        del body["region"]
        response = post(url, body, keys["referrer"])
        assert response.status_code == 400
        assert set(response.json()["fields"]) == {"cjs_stage", "region"}
        garbage = requests.post(f"{url}/v1/referrals", data=b"{not json", timeout=10,
                                headers={"Authorization": f"Bearer {keys['referrer']}",
                                         "Content-Type": "application/json"})
        assert garbage.status_code == 400 and "JSON" in garbage.json()["message"]
        with referrals_store(config) as store:
            assert store.counts()["cases"] == 0


def test_unauthenticated_and_unauthorised_callers_are_told_apart(run_services, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk=")
    with run_services(ReferralsService) as (url, config):
        keys = provision_keys(config)
        assert requests.post(f"{url}/v1/referrals", json={}).status_code == 401
        assert post(url, referral_body(0), "amk_not-a-real-key").status_code == 401
        assert post(url, referral_body(0), keys["auditor"]).status_code == 403
        with referrals_store(config) as store:
            assert store.counts()["cases"] == 0


def test_get_contact_releases_only_what_the_purpose_needs_and_logs_it(run_services, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk=")
    from nameko.standalone.rpc import ServiceRpcProxy
    with run_services(ReferralsService) as (url, config):
        keys = provision_keys(config)
        case_id = post(url, referral_body(0), keys["referrer"]).json()["case_id"]
        with referrals_store(config) as store:
            case = store.load_case(case_id)
        with ServiceRpcProxy("referrals", config) as referrals:
            granted = referrals.get_contact(case.referrer["party_id"], "referrer_update", "notifications")
            refused = referrals.get_contact(case.participants[0]["party_id"], "referrer_update", "notifications")
        assert granted == {"granted": True, "reason": "granted",
                           "details": {"name": "PC Dafydd Morgan", "email": "dafydd.morgan@police.example",
                                       "language": "en"}}
        assert refused["granted"] is False and refused["details"] == {}
        with referrals_store(config) as store:
            log = store.access_log(case_id)
        assert [(a.granted, a.requester, a.purpose) for a in log] == [
            (True, "notifications", "referrer_update"), (False, "notifications", "referrer_update")]
