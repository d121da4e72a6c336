"""The cases waiting for staff (GET /v1/waiting), on the real broker and FerretDB."""
import requests

from services.matching.service import MatchingService
from services.matching.store import MatchingStore
from tests.integration.test_matching_offers import auth, received, register, wait_for
from tests.support import Tap, facilitator_key, issue_key, provision_keys, publish_event, wait_until

OTHERS = [{"participant_id": "p-3", "role": "harmed", "age_band": "35_49", "language": "en", "access_needs": []},
          {"participant_id": "p-4", "role": "harmer", "age_band": "18_24", "language": "en", "access_needs": []}]


def waiting(url, key, **query):
    answer = requests.get(f"{url}/v1/waiting", params=query, headers=auth(key), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_cases_nobody_could_be_offered_longest_waiting_first_in_the_callers_regions(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        keys = provision_keys(config)
        north = issue_key(config, "coordinator", "rj-hub", "coord-north", regions=("north-wales",))
        register(store, "fac-only")   # room for one case, in south-wales
        tap = Tap(amqp_uri, [("matching", "#")])
        publish_event(amqp_uri, received(case_id="case-1"))
        offer = wait_for(tap, "facilitator.assigned")[0]["data"]
        publish_event(amqp_uri, received(case_id="case-2", participants=OTHERS))
        wait_for(tap, "assignment.waitlisted")
        publish_event(amqp_uri, received(case_id="case-3", participants=OTHERS, region="gwent"))   # nobody there
        wait_for(tap, "assignment.waitlisted", count=2)

        page = waiting(url, keys["coordinator"])
        assert [c["case_id"] for c in page["cases"]] == ["case-2", "case-3"]   # offered case-1 is not waiting
        assert page["total"] == 2 and page["next_offset"] is None
        first = page["cases"][0]
        assert set(first) == {"case_id", "region", "status", "waiting_since", "reason", "shortfall", "declined",
                              "expired"}
        assert (first["region"], first["status"], first["reason"], first["declined"], first["expired"]) == (
            "south-wales", "waitlisted", "no_eligible_facilitator", 0, 0)
        assert first["waiting_since"] <= page["cases"][1]["waiting_since"]
        # why, in counts: the one facilitator of south-wales is at capacity; nobody works in gwent
        assert first["shortfall"] == {"role": "lead", "in_region": 1, "ruled_out": {"capacity": 1}}
        assert page["cases"][1]["shortfall"] == {"role": "lead", "in_region": 0, "ruled_out": {}}

        # the offer of case-1 declined: its seat goes to case-2, and case-1 waits (declined once)
        declined = requests.post(f"{url}/v1/assignments/{offer['assignment_id']}/decline",
                                 headers=auth(facilitator_key(config, "fac-only")), timeout=10)
        assert declined.status_code == 200, declined.text
        wait_until(lambda: [c["case_id"] for c in waiting(url, keys["coordinator"])["cases"]] == ["case-3", "case-1"],
                   timeout=30, interval=0.3)
        case_1 = waiting(url, keys["coordinator"])["cases"][1]
        assert (case_1["declined"], case_1["reason"]) == (1, "no_eligible_facilitator")
        assert "declined_or_on_case" in case_1["shortfall"]["ruled_out"]
        assert store.get_assignment("case-2").status == "offered"

        # pages, and what each caller may see
        one = waiting(url, keys["coordinator"], limit=1)
        assert [c["case_id"] for c in one["cases"]] == ["case-3"] and one["next_offset"] == 1
        assert [c["case_id"] for c in waiting(url, keys["coordinator"], limit=1, offset=1)["cases"]] == ["case-1"]
        assert [c["case_id"] for c in waiting(url, keys["auditor"], region="gwent")["cases"]] == ["case-3"]
        assert waiting(url, keys["auditor"])["total"] == 2   # national
        assert waiting(url, north)["cases"] == []             # not their region
        assert waiting(url, north, region="gwent")["cases"] == []
        for role in ("facilitator", "referrer"):
            assert requests.get(f"{url}/v1/waiting", headers=auth(keys[role]), timeout=10).status_code == 403
        assert requests.get(f"{url}/v1/waiting", timeout=10).status_code == 401
        bad = requests.get(f"{url}/v1/waiting", params={"limit": "0"}, headers=auth(keys["coordinator"]), timeout=10)
        assert bad.status_code == 400 and "limit" in bad.json()["fields"]
