"""Fuzz the matching API from its own OpenAPI document (tests/integration/fuzzing.py),
against the live service on the real broker and FerretDB, with a facilitator registered
and a case under review."""
import requests

from services.matching.service import MatchingService
from tests.integration.fuzzing import NO_BUDGETS, fuzz
from tests.integration.test_matching_offers import received
from tests.integration.test_matching_registry import record
from tests.support import provision_keys, publish_event, wait_until


def test_no_input_yields_a_5xx_and_every_answer_matches_the_document(run_services, amqp_uri, monkeypatch,
                                                                      record_property):
    for name, value in NO_BUDGETS.items():
        monkeypatch.setenv(name, value)
    with run_services(MatchingService) as (url, config):
        keys = provision_keys(config)
        coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
        made = requests.post(f"{url}/v1/facilitators", json=record(regions=["gwent"]), headers=coordinator,
                             timeout=30)
        assert made.status_code == 201, made.text
        publish_event(amqp_uri, received(offence_category="sexual_offence"))   # a case under review
        wait_until(lambda: requests.get(f"{url}/v1/cases/case-1/assessment", headers=coordinator,
                                        timeout=30).status_code == 200)
        keys = {role: keys[role] for role in ("coordinator", "auditor", "facilitator", "referrer")}
        report = fuzz(url, keys, known={"facilitator_id": "fac-cy-1", "case_id": "case-1"})
        print("\n" + report.summary("matching"))
        record_property("fuzz_inputs", sum(report.tried.values()))
        assert report.statuses[200] > 0 and report.statuses[400] > 0 and report.statuses[401] > 0
