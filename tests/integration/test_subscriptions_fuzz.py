"""Fuzz the subscriptions API from its own OpenAPI document (tests/integration/fuzzing.py),
against the live service (and records, which it follows) on the real broker and FerretDB,
with a subscription and an agency's sharing agreement that exist."""
import requests

from services.records.service import RecordsService
from services.subscriptions.service import SubscriptionsService
from tests.integration.fuzzing import NO_BUDGETS, fuzz
from tests.platform import TEST_SUBSCRIPTIONS_KEY
from tests.support import provision_keys

BODY = {"kind": "webhook", "url": "https://police.example/amends", "event_types": ["case.*"]}


def test_no_input_yields_a_5xx_and_every_answer_matches_the_document(run_services, monkeypatch, record_property):
    for name, value in NO_BUDGETS.items():
        monkeypatch.setenv(name, value)
    extra = {"AMENDS_SUBSCRIPTIONS_KEY": TEST_SUBSCRIPTIONS_KEY}
    with run_services(RecordsService), run_services(SubscriptionsService, **extra) as (url, config):
        keys = provision_keys(config)
        made = requests.post(f"{url}/v1/subscriptions", json=BODY,
                             headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=30)
        assert made.status_code == 201, made.text
        keys = {role: keys[role] for role in ("referrer", "auditor", "coordinator", "other_agency_referrer")}
        report = fuzz(url, keys, known={"subscription_id": made.json()["subscription_id"], "agency": "test-police"})
        print("\n" + report.summary("subscriptions"))
        record_property("fuzz_inputs", sum(report.tried.values()))
        assert report.statuses[200] > 0 and report.statuses[400] > 0 and report.statuses[401] > 0
