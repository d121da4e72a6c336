"""Referrals through the whole pipeline, each service a `nameko run` process of its own, and the
reports service's figures for them: what the referrals sent and the ledger's decisions imply,
worked out here, for a coordinator of each region, as JSON and as CSV."""
import csv
import io
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import requests

from services.matching import facilitators
from services.matching.store import MatchingStore
from tests.factories import days_ago, referral_body
from tests.support import issue_key, provision_keys, wait_until

LONDON = ZoneInfo("Europe/London")


def month(time):
    return datetime.fromisoformat(time.replace("Z", "+00:00")).astimezone(LONDON).strftime("%Y-%m")


def test_the_reports_count_what_went_through_the_pipeline(platform):
    config, ports, _ = platform
    keys = provision_keys(config)
    gwent = issue_key(config, "coordinator", "gwent-rj", "coord-gwent-e2e", regions=("gwent",))
    store = MatchingStore.open(config)
    facilitators.register(store, {"facilitator_id": "fac-e2e", "level": "advanced", "regions": ["south-wales", "gwent"],
                                  "languages": ["en"], "capacity": 3, "last_active": days_ago(30)})
    bodies = [referral_body(i) for i in range(3)]
    cases = {}
    for body in bodies:
        made = requests.post(f"http://127.0.0.1:{ports['referrals']}/v1/referrals", json=body,
                             headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=10)
        assert made.status_code == 201, made.text
        cases[made.json()["case_id"]] = body
    auth = {"Authorization": f"Bearer {keys['coordinator']}"}

    def assessed(case_id):
        answer = requests.get(f"http://127.0.0.1:{ports['records']}/v1/cases/{case_id}/timeline", headers=auth,
                              timeout=5)
        entries = answer.json()["entries"] if answer.status_code == 200 else []
        types = [e["type"] for e in entries]
        return entries if "referral.received" in types and "case.assessed" in types else None

    timelines = {case_id: wait_until(lambda: assessed(case_id), timeout=90) for case_id in cases}
    received = {c: next(e for e in t if e["type"] == "referral.received") for c, t in timelines.items()}
    decisions = Counter((month(e["time"]), cases[c]["region"], e["data"]["decision"])
                        for c, t in timelines.items() for e in t if e["type"] == "case.assessed")
    url = f"http://127.0.0.1:{ports['reports']}/v1/reports"

    def report(name, key, **headers):
        return requests.get(f"{url}/{name}", headers={"Authorization": f"Bearer {key}", **headers}, timeout=10)

    def counted():
        rows = report("suitability", keys["coordinator"]).json()["rows"]
        return rows if sum(r["decisions"] for r in rows) >= sum(decisions.values()) else None

    wait_until(counted, timeout=60)
    for key, regions in ((keys["coordinator"], {"south-wales", "gwent"}), (gwent, {"gwent"})):
        expected = Counter((month(received[c]["time"]), body["region"], "test-police", body["offence"]["category"])
                           for c, body in cases.items() if body["region"] in regions)
        rows = report("referrals", key).json()["rows"]
        assert Counter({(r["period"], r["region"], r["agency"], r["offence_category"]): r["referrals"]
                        for r in rows}) == expected
        as_csv = list(csv.DictReader(io.StringIO(report("referrals", key, Accept="text/csv").text)))
        assert Counter({(r["period"], r["region"], r["agency"], r["offence_category"]): int(r["referrals"])
                        for r in as_csv}) == expected
        suitability = report("suitability.csv", key).text
        assert Counter({(r["period"], r["region"], r["decision"]): int(r["decisions"])
                        for r in csv.DictReader(io.StringIO(suitability))}) == Counter(
            {k: n for k, n in decisions.items() if k[1] in regions})
    assert report("referrals", keys["referrer"]).status_code == 403
