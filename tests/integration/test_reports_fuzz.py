"""Fuzz the reports API from its own OpenAPI document (tests/integration/fuzzing.py), against
the live service following a live records service's ledger on the real broker and FerretDB,
with events folded so that the answers hold rows (a coordinator's regional figures and the
national auditor's, small numbers hidden)."""
from tests.integration.fuzzing import NO_BUDGETS, fuzz
from tests.integration.test_reports_api import caught_up, platform, published, reports  # noqa: F401 (fixture)


def test_no_input_yields_a_5xx_and_every_answer_matches_the_document(platform, run_services, amqp_uri,  # noqa: F811
                                                                      monkeypatch, record_property):
    for name, value in NO_BUDGETS.items():
        monkeypatch.setenv(name, value)
    config, keys = platform
    sent = published(amqp_uri)
    with reports(run_services) as (url, _):
        body = caught_up(url, keys["south"], len(sent) - 1)
        assert body["rows"]   # the answers fuzzed hold figures, not only empty reports
        roles = {who: keys[who] for who in ("south", "national", "auditor", "referrer", "facilitator")}
        report = fuzz(url, roles)
        print("\n" + report.summary("reports"))
        record_property("fuzz_inputs", sum(report.tried.values()))
        assert report.statuses[200] > 0 and report.statuses[400] > 0 and report.statuses[401] > 0
        assert report.statuses[403] > 0 and report.statuses[404] > 0
