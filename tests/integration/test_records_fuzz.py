"""Fuzz the records API (the ledger) from its own OpenAPI document (tests/integration/fuzzing.py),
against the live service on the real broker and FerretDB, with a signing key and cases in
the ledger."""
from tests.integration.fuzzing import NO_BUDGETS, fuzz
from tests.integration.test_records import records, three_cases_appended


def test_no_input_yields_a_5xx_and_every_answer_matches_the_document(run_services, amqp_uri, monkeypatch,
                                                                      record_property):
    for name, value in NO_BUDGETS.items():
        monkeypatch.setenv(name, value)
    with records(run_services) as (url, config):
        events, ledger, _, keys = three_cases_appended(amqp_uri, config, "case-fuzz")
        size = ledger.head().size
        keys = {role: keys[role] for role in ("referrer", "coordinator", "facilitator", "auditor")}
        report = fuzz(url, keys, known={"case_id": events[0]["subject"]})
        print("\n" + report.summary("records"))
        record_property("fuzz_inputs", sum(report.tried.values()))
        assert report.statuses[200] > 0 and report.statuses[400] > 0 and report.statuses[401] > 0
        # nothing the fuzzer sent reached the ledger: only the events published are in it
        assert ledger.head().size == size
