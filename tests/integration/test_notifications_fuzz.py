"""Fuzz the notifications API from its own OpenAPI document (tests/integration/fuzzing.py),
against the live service on the real broker and FerretDB, with a case it knows."""
from tests.integration.fuzzing import NO_BUDGETS, fuzz
from tests.integration.test_notifications import new_case, platform  # noqa: F401  (the fixture)
from tests.support import wait_until


def test_no_input_yields_a_5xx_and_every_answer_matches_the_document(platform, monkeypatch,  # noqa: F811
                                                                      record_property):
    for name, value in NO_BUDGETS.items():
        monkeypatch.setenv(name, value)
    with platform() as p:
        received, _ = new_case()
        case_id = received["case_id"]
        p.publish("referral.received", case_id, received, "referrals")
        wait_until(lambda: p.listing(case_id).status_code == 200)
        keys = {role: p.keys[role] for role in ("coordinator", "auditor", "referrer", "facilitator")}
        report = fuzz(p.url, keys, known={})
        # the case notifications knows, as a query: the listing answers with its deliveries
        listed = p.listing(case_id)
        assert listed.status_code == 200 and listed.json()["case_id"] == case_id
        print("\n" + report.summary("notifications"))
        record_property("fuzz_inputs", sum(report.tried.values()))
        assert report.statuses[200] > 0 and report.statuses[400] > 0 and report.statuses[401] > 0
