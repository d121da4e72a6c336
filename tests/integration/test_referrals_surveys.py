"""Closure, satisfaction surveys and retention through the real HTTP API, broker and
FerretDB: a closure asks the parties still taking part, the link reaches notifications
through the contact RPC alone, a token answers once and expires, guessing is held to the
address's budget, the follow-up is asked for once on the timer, and a declined victim's
record is reduced to statistics once, with the event in the ledger. No token and no
comment reaches the bus or a log line."""
import logging
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pytest
import requests

from services.records.service import RecordsService
from services.referrals.cases import next_change
from services.referrals.deadlines import today_in_london
from services.referrals.service import ReferralsService
from tests.factories import referral_body
from tests.integration.referrals_helpers import referrals_store
from tests.integration.test_referrals_agreement import in_intervention, parties, settled, tick
from tests.integration.test_referrals_api import MASTER_KEY, running_referrals
from tests.integration.test_referrals_canary import Capture
from tests.support import provision_keys, wait_until

ANSWER = {"satisfied_with_process": 4, "felt_safe": 5, "would_recommend": True, "harm_repaired": 3}


@pytest.fixture
def logs():
    capture, root = Capture(), logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(level)


@pytest.fixture
def api(service_config, amqp_uri, monkeypatch):
    monkeypatch.setenv("AMENDS_AUTH_FAILURE_BURST", "5")
    monkeypatch.setenv("AMENDS_AUTH_FAILURE_LIMIT", "1")
    with running_referrals(service_config, amqp_uri, monkeypatch) as running:
        yield running


def closed_after_intervention(api, body=None, consent=("harmed", "harmer"), reason="completed_direct"):
    case_id = in_intervention(api, body)
    for role in consent:
        assert api.call("POST", f"/v1/cases/{case_id}/consents", json={
            "participant_id": parties(api, case_id)[role], "scope": "participation", "granted": True}).status_code == 201
    closed = api.call("POST", f"/v1/cases/{case_id}/transitions", json={"to": "CLOSED", "reason": reason})
    assert closed.status_code == 200, closed.text
    return case_id


def token_of(api, party_id):
    """The token, as notifications gets it: in the link the contact RPC releases for the purpose."""
    answer = api.rpc("get_contact", party_id, "survey_invitation", "notifications")
    assert answer["granted"], answer
    link = answer["details"]["survey_link"]
    assert link.startswith("http://127.0.0.1:8001/v1/surveys/")
    return link.rsplit("/", 1)[1]


def survey_path(token):
    return f"/v1/surveys/{token}"


def change(api, case_id, **state):
    case = api.store.load_case(case_id)
    assert api.store.record_change(case, next_change(case, state, [], "test:clock"))


def test_a_closure_asks_the_parties_and_each_token_answers_once(api, logs):
    body = referral_body(1)   # the harmed person writes in Welsh
    case_id = closed_after_intervention(api, body)
    who = parties(api, case_id)
    requested = settled(api, ("survey.requested",), 2)
    assert sorted((e["data"]["participant_role"], e["data"]["stage"]) for e in requested) == [
        ("harmed", "closure"), ("harmer", "closure")]
    assert {e["data"]["participant_id"] for e in requested} == {who["harmed"], who["harmer"]}
    token = token_of(api, who["harmed"])
    # no key needed: the token is the credential; the questions in the person's language
    form = api.call("GET", survey_path(token), key=None)
    assert form.status_code == 200 and form.json()["language"] == "cy" and form.json()["stage"] == "closure"
    assert [q["id"] for q in form.json()["questions"]] == [
        "satisfied_with_process", "felt_safe", "would_recommend", "harm_repaired", "comments"]
    assert form.json()["questions"][0]["text"].startswith("Pa mor fodlon")
    before = api.counts()
    bad = api.call("POST", survey_path(token), key=None, json={**ANSWER, "felt_safe": 6, "would_recommend": "yes",
                                                               "colour": "red"})
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"felt_safe", "would_recommend", "colour"}
    assert api.counts() == before
    comment = f"Diolch i Dafydd {uuid.uuid4().hex}"
    pool = eventlet.GreenPool(4)
    answers = list(pool.imap(lambda _: api.call("POST", survey_path(token), key=None,
                                                json={**ANSWER, "comments": comment}), range(4)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    assert api.call("GET", survey_path(token), key=None).status_code == 409
    answered = settled(api, ("survey.answered",), 1)
    assert [e["data"] for e in answered] == [{"case_id": case_id, "survey_id": answered[0]["data"]["survey_id"],
                                              "stage": "closure", "participant_role": "harmed", "scores": ANSWER}]
    # the answer is kept pseudonymously, the comment sealed; the view shows the scores, never a token
    view = api.call("GET", f"/v1/cases/{case_id}").json()
    assert {s["participant_role"]: s["state"] for s in view["surveys"]} == {"harmed": "answered", "harmer": "open"}
    assert token not in str(view) and comment not in str(view)
    assert not any(comment in str(doc) or token in str(doc) for _, doc in api.store.documents())
    # once the token is spent, notifications is told there is nothing to invite to
    assert api.rpc("get_contact", who["harmed"], "survey_invitation", "notifications")["reason"] == "no_open_survey"
    # nothing of the token or the comment on the bus, in a log line, or in an answer to anyone else
    bus = str(api.events())
    assert token not in bus and comment not in bus
    lines = "\n".join(line for line in logs.lines if '"logger": "urllib3.' not in line)   # but the test's client
    assert "/v1/surveys/<token>" in lines, "the access log was not captured: the check would see nothing"
    assert token not in lines and comment not in lines


def test_an_expired_or_unknown_survey_is_refused_and_guessing_is_held_back(api):
    case_id = closed_after_intervention(api, consent=("harmer",))
    harmer = parties(api, case_id)["harmer"]
    token = token_of(api, harmer)
    survey = api.store.load_case(case_id).surveys[0]
    change(api, case_id, surveys=[{**survey, "expires_at": datetime.now(timezone.utc) - timedelta(seconds=1)}])
    before = api.counts()
    assert api.call("GET", survey_path(token), key=None).status_code == 410
    assert api.call("POST", survey_path(token), key=None, json=ANSWER).status_code == 410
    assert api.counts() == before and api.events("survey.answered") == []
    # a wrong token is a 404, counted against the address: five, then a 429 for a while
    codes = [api.call("GET", survey_path(f"guess{i:02d}" + "x" * 38), key=None).status_code for i in range(5)]
    assert codes == [404] * 5
    blocked = api.call("GET", survey_path("guess99" + "x" * 38), key=None)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert api.call("GET", survey_path("short"), key=None).status_code == 429   # even a malformed one waits


def test_the_follow_up_survey_is_asked_for_once_on_the_timer(api):
    case_id = closed_after_intervention(api)
    case = api.store.load_case(case_id)
    assert case.follow_up["due_on"] == (today_in_london() + timedelta(days=90)).isoformat()
    settled(api, ("survey.requested",), 2)
    # the harmer withdraws; then the follow-up's day comes
    assert api.call("POST", f"/v1/cases/{case_id}/consents", json={
        "participant_id": parties(api, case_id)["harmer"], "scope": "participation",
        "granted": False}).status_code == 201
    tick(api.container)
    assert len(api.events("survey.requested")) == 2   # not yet due
    change(api, case_id, follow_up={**case.follow_up, "due_on": today_in_london().isoformat()})
    for _ in range(3):
        tick(api.container)
    requested = settled(api, ("survey.requested",), 3)
    follow_ups = [e["data"] for e in requested if e["data"]["stage"] == "follow_up"]
    assert [(d["participant_role"], d["participant_id"]) for d in follow_ups] == [
        ("harmed", parties(api, case_id)["harmed"])]
    assert api.store.load_case(case_id).follow_up["requested_at"] is not None


def test_a_declined_victim_is_reduced_to_statistics_once_and_the_ledger_has_it(run_services, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", MASTER_KEY)
    with run_services(ReferralsService) as (url, config), run_services(RecordsService) as (records_url, _):
        keys = provision_keys(config)
        coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
        body = referral_body(0)
        name = f"Nia {uuid.uuid4().hex}"
        body["participants"].append({"role": "supporter", "name": name, "age_band": "35_49", "language": "cy",
                                     "contact": {"email": "nia@mail.example"}, "access_needs": ["hearing_loop"]})
        created = requests.post(f"{url}/v1/referrals", json=body, timeout=10,
                                headers={"Authorization": f"Bearer {keys['referrer']}"})
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]
        closed = requests.post(f"{url}/v1/cases/{case_id}/transitions", headers=coordinator, timeout=10,
                               json={"to": "CLOSED", "reason": "harmed_declined"})
        assert closed.status_code == 200 and closed.json()["retention"]["reduced_at"] is None
        container = next(c for c in run_services.containers if c.service_name == "referrals")
        with referrals_store(config) as store:
            case = store.load_case(case_id)
            roles = {p["role"]: p["party_id"] for p in case.participants}
            tick(container)
            assert store.data_key(roles["harmed"]) is not None   # 365 days to go
            today = today_in_london().isoformat()
            assert store.record_change(case, next_change(case, {"retention": {**case.retention, "due_on": today}},
                                                         [], "test:clock"))
            pool = eventlet.GreenPool(3)
            for _ in range(3):
                pool.spawn(tick, container)
            pool.waitall()
            case = store.load_case(case_id)
            assert store.data_key(roles["harmed"]) is None and store.data_key(roles["supporter"]) is None
            assert store.data_key(roles["harmer"]) is not None
        view = requests.get(f"{url}/v1/cases/{case_id}", headers=coordinator, timeout=10).json()
        reduced = {p["role"]: p for p in view["participants"]}
        assert reduced["harmed"]["reduced_to_statistics"] and reduced["harmed"]["personal_data"] is None
        assert reduced["harmed"]["age_band"] == "50_64" and "language" not in reduced["harmed"]
        assert "access_needs" not in reduced["supporter"] and reduced["harmer"]["personal_data"]["name"]
        assert name not in str(view) and view["retention"]["reduced_at"]

        def ledger():
            answer = requests.get(f"{records_url}/v1/cases/{case_id}/timeline", headers=coordinator, timeout=10)
            entries = answer.json()["entries"] if answer.status_code == 200 else []
            reduced = [e for e in entries if e["type"] == "participant.reduced_to_statistics"]
            return entries if len(reduced) >= 2 else None

        entries = wait_until(ledger, timeout=30)
        eventlet.sleep(1.0)
        entries = ledger()
        by_type = {}
        for entry in entries:
            by_type.setdefault(entry["type"], []).append(entry)
        assert sorted(e["data"]["participant_id"] for e in by_type["participant.reduced_to_statistics"]) == \
            sorted([roles["harmed"], roles["supporter"]])
        assert {e["data"]["reason"] for e in by_type["participant.reduced_to_statistics"]} == {"retention"}
        assert all(e["data"]["retained"] == ["age_band"]
                   for e in by_type["participant.reduced_to_statistics"])
        assert len(by_type["participant.erased"]) == 2 and name not in str(entries)
