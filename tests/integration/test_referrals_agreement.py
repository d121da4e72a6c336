"""The outcome agreement through the real HTTP API, broker and FerretDB: recorded and
monitored, refused with nothing stored, its outcome recorded once even when the timer and
a request race for the last item, and the timer's reminders and missed items once each,
across ticks and across two referrals processes."""
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import entrypoint_hook

from services.referrals.cases import next_change
from services.referrals.deadlines import today_in_london
from services.referrals.service import ReferralsService
from tests.factories import referral_body
from tests.integration.test_referrals_api import running_referrals
from tests.integration.test_referrals_sessions import decide_safety
from tests.support import free_port, wait_until

TO_PREPARATION = ("TRIAGE", "CONTACTING", "ASSESSMENT", "ALLOCATED", "PREPARATION")


@pytest.fixture
def api(service_config, amqp_uri, monkeypatch):
    with running_referrals(service_config, amqp_uri, monkeypatch) as running:
        yield running


def day(offset):
    return (today_in_london() + timedelta(days=offset)).isoformat()


def in_intervention(api, body=None):
    """A case a coordinator moved on to INTERVENTION (no facilitator holds it): through
    preparation, where the risk is assessed with both parties and the safety decision made
    (the gate the move needs open), each through its endpoint."""
    case_id = api.refer(body or referral_body(0))
    for status in TO_PREPARATION:
        moved = api.call("POST", f"/v1/cases/{case_id}/transitions", json={"to": status})
        assert moved.status_code == 200, moved.text
    decide_safety(api, case_id, "indirect_only", key="coordinator")
    moved = api.call("POST", f"/v1/cases/{case_id}/transitions", json={"to": "INTERVENTION"})
    assert moved.status_code == 200, moved.text
    return case_id


def parties(api, case_id):
    return {p["role"]: p["party_id"] for p in api.store.load_case(case_id).participants}


def record(api, case_id, *items, key="coordinator"):
    harmer = parties(api, case_id)["harmer"]
    items = items or ({"kind": "apology", "owner_id": harmer, "due_on": day(10),
                       "description": f"Letter to the shopkeeper {MARK}"},
                      {"kind": "restitution", "owner_id": harmer, "due_on": day(30), "amount_pence": 12500,
                       "description": f"Pay for the window {MARK}"})
    return api.call("POST", f"/v1/cases/{case_id}/agreement", key, json={"items": list(items), "agreed_on": day(0)})


MARK = f"CANARY{uuid.uuid4().hex[:10]}"


def the_clock_moves_on(api, case_id, days):
    """Every open item of the case falls due `days` earlier: as if that many days had passed
    (the item's due day, and so its day bucket, moves; nothing else does). Never to before
    yesterday: the timer's sweep stays a day behind today, and a due day is never set
    before the day it is recorded, so a real one never falls behind the sweep."""
    case = api.store.load_case(case_id)
    moved = {**case.agreement, "items": [
        {**i, "due_on": (datetime.fromisoformat(i["due_on"]) - timedelta(days=days)).date().isoformat()}
        for i in case.agreement["items"]]}
    assert api.store.record_change(case, next_change(case, {"agreement": moved}, [], "test:clock"))


def tick(container):
    with entrypoint_hook(container, "check_aftercare") as run:
        run()


def settled(api, types, count):
    """The events of `types` once `count` have been seen, after a pause for any extra copy."""
    try:
        wait_until(lambda: len(api.events(*types)) >= count, timeout=20)
    except AssertionError:
        raise AssertionError(f"{count} of {types} expected, seen {[(e['type'], e['data']) for e in api.events(*types)]}")
    eventlet.sleep(0.5)
    return api.events(*types)


def test_an_agreement_is_recorded_monitored_and_settled_once(api):
    case_id = in_intervention(api)
    recorded = record(api, case_id)
    assert recorded.status_code == 201, recorded.text
    answer = recorded.json()
    assert answer["status"] == "AGREEMENT_MONITORING" and MARK not in recorded.text
    first, second = (i["item_id"] for i in answer["agreement"]["items"])
    # the coordinator sees the descriptions; the referrer and the auditor see the monitoring only
    seen = api.call("GET", f"/v1/cases/{case_id}").json()["agreement"]["items"]
    assert seen[0]["description"] == f"Letter to the shopkeeper {MARK}" and seen[1]["amount_pence"] == 12500
    for role in ("referrer", "auditor"):
        view = api.call("GET", f"/v1/cases/{case_id}", role)
        assert view.status_code == 200 and MARK not in view.text and "description" not in view.text
        assert view.json()["agreement"]["items"][0]["status"] == "open"
    path = f"/v1/cases/{case_id}/agreement/items"
    done = api.call("POST", f"{path}/{first}", json={"status": "completed", "note": f"Read aloud {MARK}"})
    assert done.status_code == 200 and done.json()["status"] == "AGREEMENT_MONITORING"
    again = api.call("POST", f"{path}/{first}", json={"status": "waived"})
    assert again.status_code == 409 and again.json()["item_status"] == "completed"
    # a facilitator with no part in the case does not know it exists; an auditor may not act
    assert api.call("POST", f"{path}/{second}", "facilitator", json={"status": "missed"}).status_code == 404
    assert api.call("POST", f"{path}/{second}", "auditor", json={"status": "missed"}).status_code == 403
    last = api.call("POST", f"{path}/{second}", json={"status": "missed"})
    assert last.status_code == 200 and last.json()["status"] == "FOLLOW_UP"
    assert last.json()["agreement"]["outcome"] == "agreement_not_completed"
    events = settled(api, ("agreement.recorded", "agreement.item_completed", "agreement.item_missed",
                           "case.outcome_recorded"), 4)
    assert [e["type"] for e in events] == ["agreement.recorded", "agreement.item_completed",
                                           "agreement.item_missed", "case.outcome_recorded"]
    assert events[-1]["data"] == {"case_id": case_id, "outcome": "agreement_not_completed"}
    assert MARK not in str(api.events())
    closed = api.call("POST", f"/v1/cases/{case_id}/agreement/items/{second}", json={"status": "completed"})
    assert closed.status_code == 409 and closed.json()["status"] == "FOLLOW_UP"
    assert api.call("POST", f"{path}/agi-{'0' * 32}", json={"status": "completed"}).status_code == 404
    assert api.call("POST", f"{path}/not-an-item", json={"status": "completed"}).status_code == 404


def test_a_bad_or_misplaced_agreement_is_refused_and_stores_nothing(api):
    early = api.refer()
    case_id = in_intervention(api)
    harmer = parties(api, case_id)["harmer"]
    before = api.counts()
    cases = [
        ({"items": [{"kind": "hug", "owner_id": "p-1", "due_on": "soon", "description": "", "amount_pence": "5"}],
          "agreed_on": day(1)}, {"items", "agreed_on"}),
        ({"items": [{"kind": "apology", "owner_id": harmer, "due_on": day(-1), "description": "x"}],
          "agreed_on": day(0)}, {"items"}),
        ({"items": [{"kind": "apology", "owner_id": "p-" + "a" * 32, "due_on": day(1), "description": "x"}],
          "agreed_on": day(0)}, {"items"}),
        ({"items": [], "agreed_on": day(0), "extra": 1}, {"items", "extra"}),
    ]
    for body, fields in cases:
        answer = api.call("POST", f"/v1/cases/{case_id}/agreement", json=body)
        assert answer.status_code == 400 and set(answer.json()["fields"]) == fields, answer.text
    item_faults = api.call("POST", f"/v1/cases/{case_id}/agreement", json=cases[0][0]).json()["fields"]["items"]["0"]
    assert set(item_faults) == {"kind", "owner_id", "due_on", "description", "amount_pence"}
    wrong_state = record(api, early)
    assert wrong_state.status_code == 409 and wrong_state.json()["status"] == "RECEIVED"
    assert api.call("POST", f"/v1/cases/{case_id}/agreement", "referrer", json=cases[1][0]).status_code == 403
    assert api.call("POST", f"/v1/cases/{uuid.uuid4()}/agreement", json=cases[1][0]).status_code == 404
    assert api.counts() == before
    assert api.store.load_case(case_id).agreement == {} and api.events("agreement.recorded") == []


def test_the_timer_reminds_then_misses_once_each_across_ticks_and_two_processes(api, service_config):
    case_id = in_intervention(api)
    harmer = parties(api, case_id)["harmer"]
    assert record(api, case_id, {"kind": "apology", "owner_id": harmer, "due_on": day(2), "description": "soon"},
                  {"kind": "community_work", "owner_id": harmer, "due_on": day(40),
                   "description": "later"}).status_code == 201
    soon, later = (i["item_id"] for i in api.store.load_case(case_id).agreement["items"])
    other = ServiceContainer(ReferralsService, dict(api.config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"))
    other.start()
    try:
        def both_tick():
            pool = eventlet.GreenPool(4)
            for container in (api.container, other, api.container, other):
                pool.spawn(tick, container)
            pool.waitall()

        both_tick()
        due = settled(api, ("agreement.item_due",), 1)
        assert [(e["data"]["item_id"], e["data"]["owner_id"]) for e in due] == [(soon, harmer)]
        the_clock_moves_on(api, case_id, 3)   # the first item's day has passed; the second is still far off
        both_tick()
        missed = settled(api, ("agreement.item_missed",), 1)
        assert [(e["data"]["item_id"], e["data"]["detected"]) for e in missed] == [(soon, "due_date_passed")]
        the_clock_moves_on(api, case_id, 36)   # the second falls due within the reminder's three days
        both_tick()
        the_clock_moves_on(api, case_id, 2)    # and then passes (yesterday was its day)
        both_tick()
        both_tick()
    finally:
        other.stop()
    events = settled(api, ("agreement.item_due", "agreement.item_missed", "case.outcome_recorded"), 5)
    assert [(e["type"], e["data"].get("item_id")) for e in events] == [
        ("agreement.item_due", soon), ("agreement.item_missed", soon), ("agreement.item_due", later),
        ("agreement.item_missed", later), ("case.outcome_recorded", None)]
    case = api.store.load_case(case_id)
    assert case.status == "FOLLOW_UP" and case.agreement["outcome"] == "agreement_not_completed"
    assert [h["by"] for h in case.history][-1] == "timer:agreements"


def test_the_outcome_is_recorded_once_when_the_timer_and_a_request_race_for_the_last_item(api):
    outcomes = {}
    for attempt in range(3):
        case_id = in_intervention(api)
        harmer = parties(api, case_id)["harmer"]
        assert record(api, case_id, {"kind": "explanation", "owner_id": harmer, "due_on": day(1),
                                     "description": "why"}).status_code == 201
        (item,) = (i["item_id"] for i in api.store.load_case(case_id).agreement["items"])
        the_clock_moves_on(api, case_id, 2)   # overdue: the timer will record it missed
        pool = eventlet.GreenPool(2)
        request = pool.spawn(api.call, "POST", f"/v1/cases/{case_id}/agreement/items/{item}",
                             json={"status": "completed"})
        pool.spawn(tick, api.container)
        pool.waitall()
        answer = request.wait()
        assert answer.status_code in (200, 409), answer.text
        outcomes[case_id] = (answer.status_code, api.store.load_case(case_id).agreement["items"][0]["status"])
    recorded = settled(api, ("case.outcome_recorded",), 3)
    assert sorted(e["data"]["case_id"] for e in recorded) == sorted(outcomes)   # once per case
    for event in recorded:
        status, item_status = outcomes[event["data"]["case_id"]]
        # whoever made the change that settled the item decided the outcome
        assert (status, item_status, event["data"]["outcome"]) in (
            (200, "completed", "agreement_completed"), (409, "missed", "agreement_not_completed"))
