"""The reports service on the real broker and FerretDB, following a real records service's
ledger: events published as their services would, the figures read over HTTP (JSON and CSV)
and compared with what those events imply, worked out here by hand; each coordinator sees
their own regions only, the national auditor small-number-suppressed national figures; a
restart and a rebuild from position 0 give the same figures, nothing counted twice."""
import csv
import io
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from services.records.service import RecordsService
from services.reports import rebuild as rebuild_command
from services.reports.service import ReportsService
from services.reports.store import ReportsStore
from shared.config import settings_for
from shared.events import catalogue, validate_event
from shared.storage import connect
from tests.factories import referral_received_data, valid_event
from tests.support import issue_key, publish_event, wait_until

LONDON = ZoneInfo("Europe/London")
SOUTH, GWENT = "south-wales", "gwent"

# (case, region, agency, offence, referred at (UTC)): 22:30 UTC on 31 March is March in London,
# 23:30 UTC is April; six burglaries in south Wales in ISO week 15 (the national view shows 5+)
REFERRALS = [
    ("c1", SOUTH, "south-wales-police", "burglary", "2026-03-02T09:00:00+00:00"),
    ("c2", SOUTH, "south-wales-police", "burglary", "2026-03-31T22:30:00+00:00"),
    ("c3", SOUTH, "victim-support", "robbery", "2026-03-31T23:30:00+00:00"),
    ("c4", GWENT, "gwent-police", "burglary", "2026-04-02T10:00:00+00:00"),
    ("c5", GWENT, "gwent-police", "theft", "2026-04-03T10:00:00+00:00"),
] + [(f"w{i}", SOUTH, "south-wales-police", "burglary", f"2026-04-0{7 + i % 2}T1{i}:00:00+00:00") for i in range(6)]
# (case, decision, at)
ASSESSED = [("c1", "suitable", "2026-03-03T10:00:00+00:00"), ("c2", "unsuitable", "2026-04-01T09:00:00+00:00"),
            ("c4", "suitable", "2026-04-02T11:00:00+00:00")]
CLOSED = [("c2", "TRIAGE", "not_suitable", "2026-04-01T10:00:00+00:00")]
LATE = ("c9", GWENT, "gwent-police", "theft", "2026-05-04T10:00:00+00:00")


def ev(event_type, at, **data):
    """A valid event of `event_type` at `at`, from the service that owns it."""
    made = valid_event(event_type)
    made["data"] = referral_received_data(**data) if event_type == "referral.received" else {**made["data"], **data}
    made.update(time=at, subject=data["case_id"], correlationid=data["case_id"],
                source=f"/amends/test/{catalogue.spec(event_type).producer}")
    return validate_event(made)


def referral(case, region, agency, offence, at):
    return ev("referral.received", at, case_id=case, region=region, agency=agency, offence_category=offence)


def events():
    made = [referral(*r) for r in REFERRALS]
    made += [ev("case.assessed", at, case_id=case, assessment_id=f"{case}-a", decision=decision, basis="referral",
                reasons=[{"code": "why", "text": "t"}]) for case, decision, at in ASSESSED]
    made += [ev("case.closed", at, case_id=case, from_status=status, reason=reason)
             for case, status, reason, at in CLOSED]
    return made


def published(amqp_uri):
    """The events, published as their services would; records appends them to the ledger."""
    sent = events()
    for event in sent:
        publish_event(amqp_uri, event)
    return sent


def month(at):
    return datetime.fromisoformat(at).astimezone(LONDON).strftime("%Y-%m")


def week(at):
    year, number, _ = datetime.fromisoformat(at).isocalendar()
    return f"{year}-W{number:02d}"


def region_of(case):
    return next(r[1] for r in REFERRALS + [LATE] if r[0] == case)


def expected_referrals(referrals, regions):
    return Counter({(month(at), region, agency, offence): 0 for _, region, agency, offence, at in referrals
                    if region in regions}) + Counter(
        (month(at), region, agency, offence) for _, region, agency, offence, at in referrals if region in regions)


def auth(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def platform(run_services, amqp_uri):
    with run_services(RecordsService, RECORDS_CHECKPOINT_INTERVAL="3600") as (_, config):
        keys = {"south": issue_key(config, "coordinator", "south-wales-rj", "coord-south", regions=(SOUTH,)),
                "gwent": issue_key(config, "coordinator", "gwent-rj", "coord-gwent", regions=(GWENT,)),
                "national": issue_key(config, "auditor", "moj", "auditor-national", regions=(), national=True),
                "auditor": issue_key(config, "auditor", "gwent-rj", "auditor-gwent", regions=(GWENT,)),
                "referrer": issue_key(config, "referrer", "gwent-police", "ref-gwent", regions=(GWENT,)),
                "facilitator": issue_key(config, "facilitator", "gwent-rj", "fac-gwent", regions=(GWENT,))}
        yield config, keys


def reports(run_services):
    return run_services(ReportsService, REPORTS_FEED_INTERVAL="0.2", REPORTS_SAVE_INTERVAL="1")


def caught_up(url, key, position):
    """The referrals report, once the service has folded the ledger up to `position`."""
    def ready():
        body = requests.get(f"{url}/v1/reports/referrals", headers=auth(key), timeout=10).json()
        return body if body["ledger_position"] == position else None
    return wait_until(ready, timeout=60)


def figures(rows, keys, value):
    return Counter({tuple(r[k] for k in keys): r[value] for r in rows})


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_the_reports_are_the_figures_the_events_imply_for_each_coordinator_as_json_and_csv(
        platform, run_services, amqp_uri):
    config, keys = platform
    sent = published(amqp_uri)
    with reports(run_services) as (url, _):
        body = caught_up(url, keys["south"], len(sent) - 1)
        assert body["view"] == "regional" and body["regions"] == [SOUTH] and body["period"] == "month"
        for who, regions in (("south", {SOUTH}), ("gwent", {GWENT})):
            as_json = requests.get(f"{url}/v1/reports/referrals", headers=auth(keys[who]), timeout=10).json()
            expected = expected_referrals(REFERRALS, regions)
            assert figures(as_json["rows"], ("period", "region", "agency", "offence_category"), "referrals") == expected
            by_accept = requests.get(f"{url}/v1/reports/referrals", headers={**auth(keys[who]), "Accept": "text/csv"},
                                     timeout=10)
            by_suffix = requests.get(f"{url}/v1/reports/referrals.csv", headers=auth(keys[who]), timeout=10)
            assert by_accept.headers["Content-Type"].startswith("text/csv") and by_accept.text == by_suffix.text
            assert "attachment" in by_suffix.headers["Content-Disposition"]
            rows = csv_rows(by_suffix.text)
            assert Counter({(r["period"], r["region"], r["agency"], r["offence_category"]): int(r["referrals"])
                            for r in rows}) == expected

        # suitability: each decision once, in the London month it was made; gwent's are not south Wales'
        decisions = requests.get(f"{url}/v1/reports/suitability", headers=auth(keys["south"]), timeout=10).json()
        assert figures(decisions["rows"], ("period", "region", "decision", "basis"), "decisions") == Counter(
            {(month(at), SOUTH, decision, "referral"): 1
             for case, decision, at in ASSESSED if region_of(case) == SOUTH})
        # closures: c2, unsuitable, closed in April from TRIAGE: the furthest it got was its assessment
        closed = csv_rows(requests.get(f"{url}/v1/reports/closures.csv", headers=auth(keys["south"]), timeout=10).text)
        assert closed == [{"period": "2026-04", "region": SOUTH, "stage": "assessed", "closure_class": "not_suitable",
                           "closure_reason": "not_suitable", "cases": "1"}]
        assert csv_rows(requests.get(f"{url}/v1/reports/closures.csv", headers=auth(keys["gwent"])).text) == []

        # a quarter, narrowed to the days asked for
        q2 = requests.get(f"{url}/v1/reports/referrals", headers=auth(keys["gwent"]),
                          params={"period": "quarter", "from": "2026-04-01", "to": "2026-06-30"}, timeout=10).json()
        assert figures(q2["rows"], ("period", "offence_category"), "referrals") == Counter(
            {("2026-Q2", "burglary"): 1, ("2026-Q2", "theft"): 1})
        series = {s["label"]: s["values"]["referrals"] for s in q2["series"]}
        assert q2["periods"] == ["2026-Q2"] and series == {"gwent · gwent-police · burglary": [1],
                                                           "gwent · gwent-police · theft": [1]}


def test_the_national_auditor_sees_de_identified_figures_with_small_numbers_hidden(platform, run_services, amqp_uri):
    config, keys = platform
    sent = published(amqp_uri)
    with reports(run_services) as (url, _):
        caught_up(url, keys["south"], len(sent) - 1)
        body = requests.get(f"{url}/v1/reports/referrals", headers=auth(keys["national"]), timeout=10).json()
        assert body["view"] == "national" and body["period"] == "week"
        counts = Counter((week(at), offence) for _, _, _, offence, at in REFERRALS)
        assert {(r["period"], r["offence_category"]): r["referrals"] for r in body["rows"]} == {
            key: (n if n >= 5 else None) for key, n in counts.items()}
        assert counts[("2026-W15", "burglary")] == 6 and {r["region"] for r in body["rows"]} == {"test"}
        assert all("agency" not in r for r in body["rows"])
        shown = csv_rows(requests.get(f"{url}/v1/reports/referrals.csv", headers=auth(keys["national"])).text)
        assert {(r["period"], r["offence_category"]): r["referrals"] for r in shown} == {
            key: (str(n) if n >= 5 else "[c]") for key, n in counts.items()}
        for ids in ("c1", "c2", "w0", "south-wales-police"):
            assert ids not in str(body) and ids not in str(shown)
        listed = requests.get(f"{url}/v1/reports", headers=auth(keys["national"]), timeout=10).json()
        assert "attrition" not in [m["name"] for m in listed["items"]] and listed["view"] == "national"
        attrition = requests.get(f"{url}/v1/reports/attrition", headers=auth(keys["national"]), timeout=10)
        assert attrition.status_code == 404 and "national view" in attrition.json()["message"]
        month_asked = requests.get(f"{url}/v1/reports/referrals?period=month", headers=auth(keys["national"]))
        assert month_asked.status_code == 400 and month_asked.json()["param"] == "period"


def test_who_may_ask_and_bad_queries_are_refused_naming_the_parameter(platform, run_services):
    config, keys = platform
    with reports(run_services) as (url, _):
        assert requests.get(f"{url}/v1/reports", timeout=10).status_code == 401
        for who in ("referrer", "facilitator", "auditor"):
            assert requests.get(f"{url}/v1/reports/referrals", headers=auth(keys[who]), timeout=10).status_code == 403
            assert requests.get(f"{url}/v1/reports", headers=auth(keys[who]), timeout=10).status_code == 403
        listed = requests.get(f"{url}/v1/reports", headers=auth(keys["gwent"]), timeout=10).json()
        assert [m["name"] for m in listed["items"]][:2] == ["referrals", "suitability"]
        assert listed["items"][0]["title"] == "Referrals by agency, region and offence"
        missing = requests.get(f"{url}/v1/reports/nonesuch", headers=auth(keys["gwent"]), timeout=10)
        assert missing.status_code == 404
        for params, param in (({"period": "decade"}, "period"), ({"from": "1 April"}, "from"),
                              ({"to": "2026-02-30"}, "to"), ({"from": "2026-05-01", "to": "2026-04-01"}, "to")):
            refused = requests.get(f"{url}/v1/reports/referrals", headers=auth(keys["gwent"]), params=params)
            assert refused.status_code == 400 and refused.json()["param"] == param, params
            assert "Traceback" not in refused.text


def test_a_restart_resumes_where_it_stood_and_a_rebuild_from_0_gives_the_same_figures(
        platform, run_services, amqp_uri):
    config, keys = platform
    sent = published(amqp_uri)
    with reports(run_services) as (url, _):
        before = caught_up(url, keys["gwent"], len(sent) - 1)
    store = ReportsStore(connect("reports", settings_for("reports", config), alias="reports-test"))
    stopped_at = store.latest()
    assert (stopped_at.generation, stopped_at.position) == (0, len(sent) - 1)

    publish_event(amqp_uri, referral(*LATE))   # appended while the service is down
    with reports(run_services) as (url, _):
        after = caught_up(url, keys["gwent"], len(sent))
        expected = expected_referrals(REFERRALS + [LATE], {GWENT})
        assert figures(after["rows"], ("period", "region", "agency", "offence_category"), "referrals") == expected
        assert figures(before["rows"], ("period", "region", "agency", "offence_category"), "referrals") == \
            expected_referrals(REFERRALS, {GWENT})
        resumed = store.latest()
        assert (resumed.generation, resumed.position) == (0, len(sent))
        csv_before = requests.get(f"{url}/v1/reports/suitability.csv", headers=auth(keys["south"])).text

        assert rebuild_command.main([], settings=settings_for("reports", config)) == 0
        wait_until(lambda: store.latest().generation == 1 and store.latest().position == len(sent), timeout=60)
        rebuilt = caught_up(url, keys["gwent"], len(sent))
        assert rebuilt["rows"] == after["rows"]
        assert requests.get(f"{url}/v1/reports/suitability.csv", headers=auth(keys["south"])).text == csv_before


def test_two_processes_one_folding_and_both_answering_the_same_figures(platform, run_services, amqp_uri):
    config, keys = platform
    sent = published(amqp_uri)
    with reports(run_services) as (first, _), reports(run_services) as (second, _):
        one, two = caught_up(first, keys["south"], len(sent) - 1), caught_up(second, keys["south"], len(sent) - 1)
        assert one["rows"] == two["rows"] and one["rows"]
        store = ReportsStore(connect("reports", settings_for("reports", config), alias="reports-test-lease"))
        assert len(list(store.db[store.LEASES].find())) == 1   # one holder of the follower's lease
        assert store.latest().position == len(sent) - 1


def test_without_records_serving_the_service_waits_and_answers_from_nothing_folded(
        run_services, caplog):
    with reports(run_services) as (url, config):
        key = issue_key(config, "coordinator", "gwent-rj", "coord-alone", regions=(GWENT,))
        wait_until(lambda: "records is not serving its feed" in caplog.text, timeout=30)
        body = requests.get(f"{url}/v1/reports/attrition", headers=auth(key), timeout=10).json()
        assert (body["rows"], body["ledger_position"], body["as_of"]) == ([], -1, None)
        assert requests.get(f"{url}/health", timeout=10).status_code == 200
