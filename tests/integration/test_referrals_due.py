"""GET /v1/cases by due date on the real service, broker and FerretDB: the answer after
the clocks change state (a support referral, the victim told, the timer announcing a missed
clock), the access rules, the 400s, and the backfill of cases stored before it was kept."""
from datetime import date, datetime, timedelta, timezone

from nameko.testing.services import entrypoint_hook

from services.referrals import due_dates
from services.referrals.store import SCHEMA_VERSION
from tests.factories import days_ago, referral_body
from tests.integration.test_referrals_api import api, running_referrals  # noqa: F401  (the fixture)

SOON = (date.today() + timedelta(days=30)).isoformat()


def listed(api, key="coordinator", **query):
    answer = api.call("GET", "/v1/cases", key, params=query)
    assert answer.status_code == 200, answer.text
    return [(item["case_id"], (item["next_due"] or {}).get("kind")) for item in answer.json()["items"]]


def ids(found):
    return [case_id for case_id, _ in found]


def test_cases_are_listed_by_due_date_soonest_first_and_follow_their_clocks(api):
    late = api.refer(referral_body(0, crime_reported_on=days_ago(14)))
    fresh = api.refer(referral_body(0, crime_reported_on=days_ago(0)))
    assert listed(api, due_before=SOON) == [(late, "support_referral"), (fresh, "support_referral")]
    assert ids(listed(api, overdue="true")) == [late]
    assert ids(listed(api, due_before=SOON, due_after=date.today().isoformat())) == [fresh]

    # the timer announces late's missed clocks: it stays overdue, now by the announcement
    with entrypoint_hook(api.container, "check_deadlines") as tick:
        tick()
    assert api.case(late).support_missed_sent
    assert ids(listed(api, overdue="true")) == [late]

    # fresh's support clock is met: its next due is the RJ clock, days later
    harmed = api.case(fresh).participants[0]["party_id"]
    support_due = api.case(fresh).support_due_at
    answer = api.call("POST", f"/v1/cases/{fresh}/support-referrals",
                      json={"participant_id": harmed, "outcome": "declined"})
    assert answer.status_code == 201, answer.text
    assert fresh not in ids(listed(api, due_before=(support_due + timedelta(minutes=1)).isoformat(),
                                   due_after=date.today().isoformat()))
    assert (fresh, "victim_told_about_rj") in listed(api, due_before=SOON)
    # the victim is told about RJ: nothing of fresh is due
    answer = api.call("POST", f"/v1/cases/{fresh}/consents",
                      json={"participant_id": harmed, "scope": "participation", "granted": True})
    assert answer.status_code == 201, answer.text
    assert ids(listed(api, due_before=SOON)) == [late]
    assert dict(listed(api))[fresh] is None

    # closing late stops its clocks
    answer = api.call("POST", f"/v1/cases/{late}/transitions", json={"to": "CLOSED", "reason": "harmed_declined"})
    assert answer.status_code == 200, answer.text
    assert listed(api, due_before=SOON) == []


def test_the_due_filter_keeps_the_listings_access_rules_and_names_a_bad_parameter(api):
    mine = api.refer(referral_body(0, crime_reported_on=days_ago(1)))
    assert ids(listed(api, "referrer", due_before=SOON)) == [mine]
    assert ids(listed(api, "auditor", due_before=SOON, region="south-wales")) == [mine]
    assert listed(api, "coordinator", due_before=SOON, region="gwent") == []
    too_far = (date.today() + timedelta(weeks=due_dates.MAX_WEEKS_AHEAD + 2)).isoformat()
    for query, field in (({"due_before": "tomorrow"}, "due_before"), ({"due_before": too_far}, "due_before"),
                         ({"due_after": "2026-01-01"}, "due_after"), ({"overdue": "perhaps"}, "overdue"),
                         ({"due_before": "2026-12-01T10:00:00"}, "due_before")):
        refused = api.call("GET", "/v1/cases", params=query)
        assert refused.status_code == 400 and list(refused.json()["fields"]) == [field], (query, refused.text)


def test_cases_stored_before_due_dates_were_kept_get_them_from_the_backfill(api):
    case_id = api.refer(referral_body(0, crime_reported_on=days_ago(0)))
    cases, state = api.store.db["cases"], api.store.db["store_state"]
    cases.update_one({"_id": case_id}, {"$unset": {"next_due_at": "", "next_due_kind": "", "due_bucket": ""}})
    state.update_one({"_id": "schema"}, {"$set": {"version": SCHEMA_VERSION - 1}})
    assert listed(api, due_before=SOON) == []
    api.store.migrate()
    stored = cases.find_one({"_id": case_id})
    assert stored["next_due_kind"] == "support_referral"
    assert stored["due_bucket"] == due_dates.week_of(stored["next_due_at"].replace(tzinfo=timezone.utc))
    assert listed(api, due_before=SOON) == [(case_id, "support_referral")]
    assert state.find_one({"_id": "schema"})["version"] == SCHEMA_VERSION
    assert datetime.now(timezone.utc) < stored["next_due_at"].replace(tzinfo=timezone.utc) + timedelta(days=10)


def test_a_document_that_is_not_a_whole_case_does_not_stop_the_backfill(api, caplog):
    case_id = api.refer(referral_body(0, crime_reported_on=days_ago(0)))
    cases, state = api.store.db["cases"], api.store.db["store_state"]
    cases.update_one({"_id": case_id}, {"$unset": {"next_due_at": "", "next_due_kind": "", "due_bucket": ""}})
    cases.insert_one({"_id": "c-partial", "case_id": "c-partial", "state": "received"})
    state.update_one({"_id": "schema"}, {"$set": {"version": SCHEMA_VERSION - 1}})
    api.store.migrate()
    assert cases.find_one({"_id": case_id})["next_due_kind"] == "support_referral"
    assert "next_due_at" not in cases.find_one({"_id": "c-partial"})
    assert state.find_one({"_id": "schema"})["version"] == SCHEMA_VERSION
    assert any("c-partial is not a whole case" in r.getMessage() for r in caplog.records)
