"""The facilitator registry over HTTP and RPC, on the real broker and FerretDB."""
from datetime import date, timedelta

import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from services.matching import suitability_policy
from services.matching.service import MatchingService
from services.matching.store import MatchingStore
from tests.factories import days_ago, days_ahead
from tests.integration.conftest import refused_start
from tests.support import provision_keys


def record(**changes):
    body = {
        "facilitator_id": "fac-cy-1", "name": "Carys Pritchard", "email": "carys.pritchard@rj.example",
        "language": "cy", "level": "advanced", "complex_case_trained": False, "trained_on": days_ago(1000),
        "last_process_on": days_ago(80), "endorsements": ["domestic_abuse", "youth"],
        "prison_vetted_until": days_ahead(425), "languages": ["en", "cy"], "regions": ["south-wales", "gwent"],
        "capacity": 6, "available_from": None,
        "conflicts": [{"kind": "agency", "ref": "gwent-police"}, {"kind": "participant", "ref": "p-77"}],
    }
    body.update(changes)
    return body


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_a_coordinator_registers_updates_lists_and_deactivates_a_facilitator(run_services):
    with run_services(MatchingService) as (url, config):
        keys = provision_keys(config)
        created = requests.post(f"{url}/v1/facilitators", json=record(), headers=auth(keys["coordinator"]), timeout=10)
        assert created.status_code == 201, created.text
        view = created.json()
        current_until = date.fromisoformat(record()["last_process_on"]) + timedelta(days=365)
        assert view["current_until"] == current_until.isoformat() and view["spare"] == 6 and view["caseload"] == 0
        assert view["conflicts"] == record()["conflicts"] and view["languages"] == ["en", "cy"]
        again = requests.post(f"{url}/v1/facilitators", json=record(), headers=auth(keys["coordinator"]), timeout=10)
        assert again.status_code == 409
        changed = requests.patch(f"{url}/v1/facilitators/fac-cy-1", json={"capacity": 3, "endorsements": ["youth"]},
                                 headers=auth(keys["coordinator"]), timeout=10)
        assert changed.status_code == 200, changed.text
        assert (changed.json()["capacity"], changed.json()["spare"], changed.json()["endorsements"]) == (3, 3, ["youth"])
        listed = requests.get(f"{url}/v1/facilitators?region=gwent", headers=auth(keys["auditor"]), timeout=10)
        assert [f["facilitator_id"] for f in listed.json()["facilitators"]] == ["fac-cy-1"]
        assert requests.get(f"{url}/v1/facilitators?region=north-wales", headers=auth(keys["auditor"]),
                            timeout=10).json()["facilitators"] == []
        gone = requests.post(f"{url}/v1/facilitators/fac-cy-1/deactivate", headers=auth(keys["coordinator"]),
                             timeout=10)
        assert gone.status_code == 200 and gone.json()["active"] is False
        assert requests.get(f"{url}/v1/facilitators/fac-cy-1", headers=auth(keys["coordinator"]),
                            timeout=10).json()["active"] is False
        assert requests.get(f"{url}/v1/facilitators/nobody", headers=auth(keys["coordinator"]),
                            timeout=10).status_code == 404


def test_only_coordinators_write_and_callers_must_authenticate(run_services):
    with run_services(MatchingService) as (url, config):
        keys = provision_keys(config)
        store = MatchingStore.open(config)
        for role in ("referrer", "facilitator", "auditor"):
            answer = requests.post(f"{url}/v1/facilitators", json=record(), headers=auth(keys[role]), timeout=10)
            assert answer.status_code == 403, role
        assert requests.post(f"{url}/v1/facilitators", json=record(), timeout=10).status_code == 401
        assert requests.get(f"{url}/v1/facilitators", headers=auth(keys["referrer"]), timeout=10).status_code == 403
        assert store.count_facilitators() == 0


def test_a_malformed_record_is_refused_naming_each_field_and_nothing_is_stored(run_services):
    with run_services(MatchingService) as (url, config):
        keys = provision_keys(config)
        store = MatchingStore.open(config)
        bad = record(level="expert", capacity="lots", languages=[], email="not-an-email", trained_on=days_ahead(30),
                     endorsements=["juggling"], conflicts=[{"kind": "friend", "ref": "p-1"}], regions="south-wales")
        del bad["facilitator_id"]
        answer = requests.post(f"{url}/v1/facilitators", json=bad, headers=auth(keys["coordinator"]), timeout=10)
        assert answer.status_code == 400
        assert set(answer.json()["fields"]) == {"facilitator_id", "level", "capacity", "languages", "email",
                                                "trained_on", "endorsements", "conflicts", "regions"}
        no_dates = record(trained_on=None, last_process_on=None)
        answer = requests.post(f"{url}/v1/facilitators", json=no_dates, headers=auth(keys["coordinator"]), timeout=10)
        assert answer.status_code == 400 and set(answer.json()["fields"]) == {"last_process_on"}
        garbage = requests.post(f"{url}/v1/facilitators", data=b"[1,2", timeout=10,
                                headers={**auth(keys["coordinator"]), "Content-Type": "application/json"})
        assert garbage.status_code == 400
        assert store.count_facilitators() == 0
        requests.post(f"{url}/v1/facilitators", json=record(), headers=auth(keys["coordinator"]), timeout=10)
        patch = requests.patch(f"{url}/v1/facilitators/fac-cy-1", json={"capacity": -1, "regions": []},
                               headers=auth(keys["coordinator"]), timeout=10)
        assert patch.status_code == 400 and set(patch.json()["fields"]) == {"capacity", "regions"}
        assert store.get_facilitator("fac-cy-1").capacity == 6


def test_the_registry_and_contact_details_over_rpc(run_services):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        with ServiceRpcProxy("matching", config) as matching:
            created = matching.register_facilitator(record())
            assert created["facilitator_id"] == "fac-cy-1"
            with pytest.raises(RemoteError) as refused:
                matching.register_facilitator(record(facilitator_id="fac-2", level="guru"))
            assert refused.value.exc_type == "InvalidFacilitator" and "level" in refused.value.value
            assert matching.update_facilitator("fac-cy-1", {"capacity": 2})["spare"] == 2
            assert matching.get_facilitator("fac-cy-1")["capacity"] == 2
            granted = matching.get_facilitator_contact("fac-cy-1", "assignment_offer", "notifications")
            assert granted == {"granted": True, "reason": "granted", "details": {
                "name": "Carys Pritchard", "email": "carys.pritchard@rj.example", "language": "cy"}}
            # the same details for a notice about a case they lead (notifications' case_update)
            assert matching.get_facilitator_contact("fac-cy-1", "case_update", "notifications") == granted
            assert matching.get_facilitator_contact("fac-cy-1", "marketing", "notifications") == {
                "granted": False, "reason": "unknown_purpose", "details": {}}
            assert matching.get_facilitator_contact("nobody", "assignment_offer", "notifications")["reason"] == \
                "unknown_facilitator"
            matching.register_facilitator(record(facilitator_id="fac-no-mail", email=None, name=None))
            assert matching.get_facilitator_contact("fac-no-mail", "assignment_offer", "notifications") == {
                "granted": False, "reason": "no_contact_details", "details": {}}
            assert matching.deactivate_facilitator("fac-cy-1")["active"] is False
        assert store.count_facilitators() == 2


def test_a_bad_policy_file_stops_the_service_naming_line_and_fault(service_config, tmp_path):
    text = open(suitability_policy.DEFAULT_PATH).read().replace("then: {decision: unsuitable, risk_level: high}",
                                                                "then: {decision: nope, risk_level: high}", 1)
    line = text.split("decision: nope")[0].count("\n") + 1
    bad = tmp_path / "policy.yaml"
    bad.write_text(text)
    refused = refused_start(MatchingService, service_config(MATCHING_POLICY_FILE=str(bad)),
                            suitability_policy.PolicyError)
    assert refused.line == line
    assert str(refused) == f"{bad}:{line}: rule 'harmer_denies_responsibility' then.decision: 'nope' is not " \
                                 "one of: suitable, unsuitable, needs_review"


@pytest.mark.parametrize("switches, fault", [
    ("domestic_abuse_rj_allowd=true", "unknown switch 'domestic_abuse_rj_allowd'"),
    ("domestic_abuse_rj_allowed=yes", "domestic_abuse_rj_allowed must be true or false, not 'yes'"),
])
def test_a_bad_local_switch_stops_the_service_naming_it(service_config, switches, fault, caplog):
    refused = refused_start(MatchingService, service_config(MATCHING_LOCAL_SWITCHES=switches),
                            suitability_policy.SwitchError)
    assert str(refused).startswith("MATCHING_LOCAL_SWITCHES: ") and fault in str(refused)
    assert f"suitability policy refused: {refused}" in caplog.messages
