"""The referrals HTTP API, RPC, consumer and timer on the real broker and FerretDB."""
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import bson
import eventlet
import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from services.referrals import deadlines
from services.referrals.cases import CaseChange, change_key
from services.referrals.protection import Vault, load_master_key
from services.referrals.service import ReferralsService
from shared.events import new_event
from shared.messaging import topology
from tests.factories import days_ago, referral_body
from tests.integration.referrals_helpers import referrals_store
from tests.support import Tap, disconnect_all, free_port, issue_key, provision_keys, publish_event, wait_until

MASTER_KEY = "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk="
ROLES = ("referrer", "coordinator", "facilitator", "auditor")


@dataclass
class Api:
    url: str
    keys: dict
    config: dict
    container: ServiceContainer
    tap: Tap
    store: object   # a ReferralsStore on the service's database

    def call(self, method, path, key="coordinator", **kwargs):
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys.get(key, key)}"
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def refer(self, body=None, key="referrer", **kwargs):
        response = self.call("POST", "/v1/referrals", key, json=body or referral_body(0), **kwargs)
        assert response.status_code == 201, response.text
        return response.json()["case_id"]

    def case(self, case_id):
        """The case document as stored (not rolled forward over changes it has not caught up with)."""
        return self.store.projected_case(case_id)

    def events(self, *types):
        self.tap.drain()
        return [e for e in self.tap.seen if not types or e["type"] in types]

    def counts(self):
        """How many documents each collection of the referrals store holds."""
        return self.store.counts()

    def rpc(self, method, *args):
        with ServiceRpcProxy("referrals", self.config) as proxy:
            return getattr(proxy, method)(*args)


@contextmanager
def running_referrals(service_config, amqp_uri, monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", MASTER_KEY)
    port = free_port()
    config = service_config(WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    topology.declare(config["AMQP_URI"], (0.2, 0.4))
    tap = Tap(amqp_uri, [(s, "#") for s in topology.SERVICES], name=f"tap-{uuid.uuid4().hex[:8]}")
    container = ServiceContainer(ReferralsService, config)
    container.start()
    try:
        with referrals_store(config) as store:
            yield Api(f"http://127.0.0.1:{port}", provision_keys(config), config, container, tap, store)
    finally:
        container.stop()
        tap.close()
        disconnect_all()


@pytest.fixture
def api(service_config, amqp_uri, monkeypatch):
    with running_referrals(service_config, amqp_uri, monkeypatch) as running:
        yield running


# --- idempotency ----------------------------------------------------------------

def test_ten_parallel_posts_with_one_key_create_one_case(api):
    body = referral_body(1)
    headers = {"Idempotency-Key": f"referral-{uuid.uuid4()}"}
    pool = eventlet.GreenPool(10)
    answers = list(pool.imap(lambda _: api.call("POST", "/v1/referrals", "referrer", json=body,
                                                headers=dict(headers)), range(10)))
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
    case_ids = {a.json()["case_id"] for a in answers}
    assert len(case_ids) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 9
    assert api.counts()["cases"] == 1
    # the referrer, three participants and the case record: no orphan keys from the losers
    assert api.counts()["data_keys"] == 5
    wait_until(lambda: api.events("referral.received"))
    eventlet.sleep(0.5)
    assert len(api.events("referral.received")) == 1
    # the same key later: the same answer, nothing new
    again = api.call("POST", "/v1/referrals", "referrer", json=body, headers=dict(headers))
    assert (again.status_code, again.json()["case_id"]) == (201, case_ids.pop())
    before = api.counts()
    changed = dict(body, region="gwent")
    conflict = api.call("POST", "/v1/referrals", "referrer", json=changed, headers=dict(headers))
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    assert api.counts() == before


def test_a_key_belongs_to_its_agency_and_bad_keys_are_named(api):
    headers = {"Idempotency-Key": "shared-key-1"}
    mine = api.call("POST", "/v1/referrals", "referrer", json=referral_body(0), headers=dict(headers))
    theirs = api.call("POST", "/v1/referrals", "coordinator", json=referral_body(0), headers=dict(headers))
    assert mine.status_code == theirs.status_code == 201
    # the coordinator key is of the same agency in these tests: same key, same body, same case
    assert mine.json()["case_id"] == theirs.json()["case_id"]
    before = api.counts()
    bad = api.call("POST", "/v1/referrals", "referrer", json=referral_body(0), headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["fields"]
    invalid = api.call("POST", "/v1/referrals", "referrer", json=referral_body(0, region="Not Valid"),
                       headers={"Idempotency-Key": "fresh-key"})
    assert invalid.status_code == 400 and set(invalid.json()["fields"]) == {"region"}
    assert api.counts() == before


# --- the authorisation matrix ---------------------------------------------------

def hold(api, case_id, facilitator_id="fac-test", assignment_id="as-1"):
    """Matching's events: `facilitator_id` is offered the case and accepts it."""
    for event_type in ("facilitator.assigned", "assignment.accepted"):
        publish_event(api.config["AMQP_URI"], matching_event(event_type, case_id, facilitator_id=facilitator_id,
                                                             assignment_id=assignment_id))
    wait_until(lambda: facilitator_id in (api.case(case_id).held_by or []))


def test_every_role_against_every_endpoint(api):
    case_id = api.refer()
    hold(api, case_id)  # the test facilitator holds the case
    case = api.case(case_id)
    harmed, harmer = case.participants[0]["party_id"], case.participants[1]["party_id"]
    consent = {"participant_id": harmed, "scope": "participation", "granted": True}
    endpoints = [
        ("POST", "/v1/referrals", lambda: {"json": referral_body(0)}, {"referrer", "coordinator"}, 201),
        ("GET", "/v1/cases", dict, set(ROLES), 200),
        ("GET", f"/v1/cases/{case_id}", dict, set(ROLES), 200),
        ("POST", f"/v1/cases/{case_id}/consents", lambda: {"json": consent}, {"coordinator", "facilitator"}, 201),
        ("GET", f"/v1/cases/{case_id}/access-log", dict, {"coordinator", "auditor"}, 200),
        ("POST", f"/v1/cases/{case_id}/support-referrals", lambda: {"json": {
            "participant_id": harmed, "outcome": "referred", "service": "victim_support"}},
         {"coordinator", "facilitator"}, 201),
        # ALLOCATED -> PREPARATION once, then PREPARATION -> ON_HOLD: each allowed role makes a legal move
        ("POST", f"/v1/cases/{case_id}/transitions", None, {"coordinator", "facilitator"}, 200),
        ("POST", f"/v1/cases/{case_id}/participants/{harmer}/erasure", dict, {"coordinator"}, 200),
    ]
    moves = iter(["PREPARATION", "ON_HOLD"])
    results = {}
    for method, path, kwargs, allowed, ok in endpoints:
        for role in ROLES:
            extra = {"json": {"to": next(moves)}} if kwargs is None and role in allowed else (
                {"json": {"to": "TRIAGE"}} if kwargs is None else kwargs())
            answer = api.call(method, path, role, **extra)
            results[(path, role)] = answer.status_code
            expected = ok if role in allowed else 403
            assert answer.status_code == expected, (method, path, role, answer.text)
            if expected == 403:
                assert answer.json()["error"] == "forbidden"
        extra = {"json": {"to": "TRIAGE"}} if kwargs is None else kwargs()
        assert api.call(method, path, None, **extra).status_code == 401
        assert api.call(method, path, "amk_unknown", **extra).status_code == 401
    assert len(results) == len(endpoints) * len(ROLES)
    # another agency's referrer may not see this case (it does not exist for them), nor list it
    assert api.call("GET", f"/v1/cases/{case_id}", "other_agency_referrer").status_code == 404
    assert api.call("GET", "/v1/cases", "other_agency_referrer").json()["total"] == 0
    assert api.call("GET", "/v1/cases?agency=test-police", "other_agency_referrer").json()["total"] == 0
    assert api.call("GET", "/v1/openapi.json", None).status_code == 200


def test_personal_data_goes_only_to_roles_that_need_it(api):
    case_id = api.refer()
    views = {role: api.call("GET", f"/v1/cases/{case_id}", role) for role in ROLES}
    assert views["facilitator"].status_code == 404  # offered nothing, holding nothing: no such case
    for role in ("referrer", "auditor"):
        text = views[role].text
        assert "Sian Jones" not in text and "SWP/26/104455" not in text and "personal_data" not in text, role
    coordinator = views["coordinator"].json()
    assert coordinator["participants"][0]["personal_data"]["name"] == "Sian Jones"
    assert coordinator["record"]["crime_reference"] == "SWP/26/104455"
    # the coordinator's read is in the access log, one entry per person, naming the person
    log = api.call("GET", f"/v1/cases/{case_id}/access-log", "auditor").json()["entries"]
    assert {e["purpose"] for e in log} == {"case_view"} and len(log) == 3
    assert {e["requester"] for e in log} == {"coordinator:dev-coordinator"} and all(e["key_id"] for e in log)
    # another facilitator accepts the case: the test facilitator still cannot see it
    hold(api, case_id, facilitator_id="fac-1", assignment_id="as-other")
    assert api.call("GET", f"/v1/cases/{case_id}", "facilitator").status_code == 404
    # an open offer shows the case without personal data; accepting it shows personal data
    publish_event(api.config["AMQP_URI"], matching_event("facilitator.assigned", case_id, facilitator_id="fac-test",
                                                         assignment_id="as-mine"))
    wait_until(lambda: "fac-test" in (api.case(case_id).offered_to or []))
    offered = api.call("GET", f"/v1/cases/{case_id}", "facilitator")
    assert offered.status_code == 200 and "Liam Evans" not in offered.text and "personal_data" not in offered.text
    assert api.call("POST", f"/v1/cases/{case_id}/transitions", "facilitator",
                    json={"to": "ON_HOLD", "reason": "awaiting_sentence"}).status_code == 403
    hold(api, case_id, assignment_id="as-mine")
    assert api.call("GET", f"/v1/cases/{case_id}", "facilitator").json()["participants"][1][
        "personal_data"]["name"] == "Liam Evans"
    # released from it, they see nothing again
    publish_event(api.config["AMQP_URI"], matching_event("facilitator.released", case_id, facilitator_id="fac-test",
                                                         assignment_id="as-mine", reason="case_closed"))
    wait_until(lambda: "fac-test" not in (api.case(case_id).held_by or []))
    assert api.call("GET", f"/v1/cases/{case_id}", "facilitator").status_code == 404


def test_a_referral_goes_only_into_a_region_the_key_covers(api):
    elsewhere = issue_key(api.config, "referrer", "test-police", "ref-north", regions=("north-wales",))
    before = api.counts()
    refused = api.call("POST", "/v1/referrals", elsewhere, json=referral_body(0))  # a south-wales referral
    assert refused.status_code == 403 and set(refused.json()["fields"]) == {"region"}
    assert api.counts() == before
    assert api.call("POST", "/v1/referrals", elsewhere, json=referral_body(0, region="north-wales")).status_code == 201


def test_listing_filters_and_pages(api):
    ids = [api.refer(referral_body(i)) for i in range(5)]
    api.refer(referral_body(0), key="other_agency_referrer")
    page = api.call("GET", "/v1/cases?limit=2", "coordinator").json()
    assert (page["total"], len(page["items"]), page["next_offset"]) == (6, 2, 2)
    last = api.call("GET", "/v1/cases?limit=2&offset=4", "coordinator").json()
    assert len(last["items"]) == 2 and last["next_offset"] is None
    seen = {c["case_id"] for o in (0, 2, 4) for c in api.call(
        "GET", f"/v1/cases?limit=2&offset={o}", "coordinator").json()["items"]}
    assert len(seen) == 6
    gwent = api.call("GET", "/v1/cases?region=gwent", "auditor").json()
    assert [c["case_id"] for c in gwent["items"]] == [ids[2]]
    mine = api.call("GET", "/v1/cases?status=RECEIVED", "referrer").json()
    assert mine["total"] == 5 and {c["agency"] for c in mine["items"]} == {"test-police"}
    assert api.call("GET", "/v1/cases?agency=other-agency", "coordinator").json()["total"] == 1
    bad = api.call("GET", "/v1/cases?status=LIMBO&limit=0&colour=red", "coordinator")
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"status", "limit", "colour"}
    assert all("personal_data" not in str(c) for c in page["items"])


# --- the lifecycle --------------------------------------------------------------

def test_transitions_follow_the_state_machine(api):
    case_id = api.refer()
    path = f"/v1/cases/{case_id}/transitions"
    illegal = api.call("POST", path, json={"to": "ALLOCATED"})
    assert illegal.status_code == 409
    assert illegal.json()["allowed"] == ["TRIAGE", "ON_HOLD", "CLOSED"] and illegal.json()["status"] == "RECEIVED"
    no_reason = api.call("POST", path, json={"to": "CLOSED"})
    assert no_reason.status_code == 400 and set(no_reason.json()["fields"]) == {"reason"}
    assert api.call("POST", path, json={"to": "TRIAGE"}).json()["status"] == "TRIAGE"
    held = api.call("POST", path, json={"to": "ON_HOLD", "reason": "awaiting_sentence"}).json()
    assert (held["status"], held["held_from"]) == ("ON_HOLD", "TRIAGE")
    assert api.call("POST", path, json={"to": "CONTACTING"}).json()["allowed"] == ["TRIAGE", "CLOSED"]
    assert api.call("POST", path, json={"to": "TRIAGE"}).json()["status"] == "TRIAGE"
    closed = api.call("POST", path, json={"to": "CLOSED", "reason": "harmed_declined"}).json()
    assert closed["status"] == "CLOSED" and closed["closure"]["reason"] == "harmed_declined"
    assert [h["to_status"] for h in closed["history"]] == ["TRIAGE", "ON_HOLD", "TRIAGE", "CLOSED"]
    final = api.call("POST", path, json={"to": "TRIAGE"})
    assert final.status_code == 409 and final.json()["allowed"] == []
    events = wait_until(lambda: (lambda e: e if len(e) == 5 else None)(
        api.events("case.status_changed", "case.closed")))
    assert [(e["type"], e["data"].get("to_status")) for e in events] == [
        ("case.status_changed", "TRIAGE"), ("case.status_changed", "ON_HOLD"), ("case.status_changed", "TRIAGE"),
        ("case.status_changed", "CLOSED"), ("case.closed", None)]
    assert events[-1]["data"] == {"case_id": case_id, "from_status": "TRIAGE", "reason": "harmed_declined"}
    assert api.case(case_id).outbox == []
    assert api.call("POST", "/v1/cases/not-a-case/transitions", json={"to": "TRIAGE"}).status_code == 404
    assert api.call("POST", f"/v1/cases/{uuid.uuid4()}/transitions", json={"to": "TRIAGE"}).status_code == 404


def matching_event(event_type, case_id, facilitator_id="fac-1", assignment_id="as-1", **data):
    base = {"case_id": case_id, "assessment_id": "a-1", "assignment_id": assignment_id,
            "facilitator_id": facilitator_id}
    payload = {
        "case.assessed": lambda: {"case_id": case_id, "assessment_id": "a-1", "decision": "suitable", "reasons": [],
                                  "risk_level": "low", "required_level": "intermediate", "co_facilitation": False,
                                  "process_types": ["direct_conference"], "policy_version": "1", **data},
        "facilitator.assigned": lambda: {**base, "role": "lead"},
        "assignment.accepted": lambda: {k: base[k] for k in ("case_id", "assignment_id", "facilitator_id")},
        "facilitator.released": lambda: {**{k: base[k] for k in ("case_id", "assignment_id", "facilitator_id")},
                                         "reason": data.get("reason", "case_closed")},
    }[event_type]()
    return new_event(event_type, case_id, payload, source="/amends/test/matching", region="test",
                     correlationid=case_id)


def test_the_status_follows_matching_events_once(api):
    case_id = api.refer()
    for event_type, status in (("case.assessed", "CONTACTING"), ("facilitator.assigned", "ASSESSMENT"),
                               ("assignment.accepted", "ALLOCATED")):
        event = matching_event(event_type, case_id)
        publish_event(api.config["AMQP_URI"], event)
        wait_until(lambda: api.case(case_id).status == status)
        publish_event(api.config["AMQP_URI"], event)   # a redelivery: no second change
    late = matching_event("case.assessed", case_id)    # a late, out-of-order event: never backwards
    publish_event(api.config["AMQP_URI"], late)
    eventlet.sleep(1.0)
    case = api.case(case_id)
    assert case.status == "ALLOCATED"
    assert [(h["from"], h["to"]) for h in case.history] == [
        ("RECEIVED", "CONTACTING"), ("CONTACTING", "ASSESSMENT"), ("ASSESSMENT", "ALLOCATED")]
    changed = api.events("case.status_changed")
    assert [e["data"]["to_status"] for e in changed] == ["CONTACTING", "ASSESSMENT", "ALLOCATED"]
    assert all(e["causationid"] for e in changed)


# --- consent and contact --------------------------------------------------------

def test_consent_is_recorded_and_withdrawn_and_get_contact_obeys_it(api):
    case_id = api.refer()
    case = api.case(case_id)
    harmed = case.participants[0]["party_id"]
    path = f"/v1/cases/{case_id}/consents"
    assert api.rpc("get_contact", harmed, "participant_information", "notifications")["granted"] is True
    hold(api, case_id)
    granted = api.call("POST", path, "facilitator", json={"participant_id": harmed, "scope": "participation",
                                                          "granted": True, "method": "verbal"})
    assert granted.status_code == 201 and granted.json()["granted"] is True
    share = api.call("POST", path, json={"participant_id": harmed, "scope": "share_item", "granted": True,
                                         "item": "victim_impact_statement", "with_role": "harmer"})
    assert share.status_code == 201
    before = api.counts()
    for bad, fields in (({"participant_id": harmed, "scope": "share_item", "granted": True}, {"item", "with_role"}),
                        ({"participant_id": "p-" + "0" * 32, "scope": "participation", "granted": True},
                         {"participant_id"}),
                        ({"scope": "everything", "granted": "maybe"}, {"participant_id", "scope", "granted"})):
        answer = api.call("POST", path, json=bad)
        assert answer.status_code == 400 and set(answer.json()["fields"]) == fields, answer.text
    assert api.counts() == before
    withdrawn = api.call("POST", path, json={"participant_id": harmed, "scope": "participation", "granted": False})
    assert withdrawn.status_code == 201
    refused = api.rpc("get_contact", harmed, "participant_information", "notifications")
    assert refused == {"granted": False, "reason": "consent_withdrawn", "details": {}}
    events = wait_until(lambda: (lambda e: e if len(e) == 3 else None)(
        api.events("consent.recorded", "consent.withdrawn")))
    assert [(e["type"], e["data"]["scope"]) for e in events] == [
        ("consent.recorded", "participation"), ("consent.recorded", "share_item"),
        ("consent.withdrawn", "participation")]
    assert events[1]["data"]["item"] == "victim_impact_statement" and events[1]["data"]["with_role"] == "harmer"
    # matching judges a withdrawal by who withdrew: only a party's stops the case
    assert {e["data"]["participant_role"] for e in events} == {"harmed"}
    # the harmed person consented, so they had been told about RJ: the clock is met
    assert api.case(case_id).victim_told_at is not None


def test_get_contact_follows_the_contract_and_logs_every_call(api):
    body = referral_body(0)
    body["participants"][0].update(language="cy", safe_contact_windows=[
        {"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}], preferred_channels=["email", "letter"])
    body["participants"][1]["contact_safe"] = False
    body["participants"].append({"role": "interpreter", "name": "Ieuan Ifans", "age_band": "35_49",
                                 "contact": {"email": "ieuan@interpreters.example"}})
    case_id = api.refer(body)
    case = api.case(case_id)
    harmed, harmer, interpreter = (p["party_id"] for p in case.participants)
    answer = api.rpc("get_contact", harmed, "participant_information", "notifications")
    assert answer == {"granted": True, "reason": "granted", "details": {
        "name": "Sian Jones", "email": "sian.jones@mail.example", "language": "cy", "preferred_channels": ["email"],
        "safe_contact_windows": [{"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}], "contact_safe": True}}
    assert api.rpc("get_contact", harmed, "outcome_update", "notifications")["granted"] is True
    refusals = [
        (harmer, "participant_information", "contact_unsafe"),
        (harmer, "outcome_update", "purpose_does_not_cover_role"),
        (interpreter, "participant_information", "purpose_does_not_cover_role"),
        (harmed, "referrer_update", "purpose_does_not_cover_role"),
        (harmed, "marketing", "unknown_purpose"),
        ("p-" + "f" * 32, "participant_information", "unknown_party"),
        ({"$ne": None}, "participant_information", "unknown_party"),
    ]
    for party_id, purpose, reason in refusals:
        assert api.rpc("get_contact", party_id, purpose, "notifications") == {
            "granted": False, "reason": reason, "details": {}}, (purpose, reason)
    log = api.store.all_accesses()
    assert len(log) == 2 + len(refusals)
    assert [a.reason for a in log[2:]] == [r for _, _, r in refusals]
    assert log[0].fields_released == sorted(answer["details"]) and log[0].requester == "notifications"


# --- erasure --------------------------------------------------------------------

def test_erasure_shreds_the_person_and_keeps_the_case_whole(api):
    body = referral_body(0)
    canary = f"Canary {uuid.uuid4().hex}"
    body["participants"][0].update(name=canary, contact={"email": f"{uuid.uuid4().hex}@canary.example"},
                                   safe_addresses=[f"{canary} Road"])
    case_id = api.refer(body)
    harmed = api.case(case_id).participants[0]["party_id"]
    assert api.call("GET", f"/v1/cases/{case_id}").json()["participants"][0]["personal_data"]["name"] == canary
    erased = api.call("POST", f"/v1/cases/{case_id}/participants/{harmed}/erasure")
    assert erased.status_code == 200 and erased.json()["already_erased"] is False
    again = api.call("POST", f"/v1/cases/{case_id}/participants/{harmed}/erasure")
    assert again.status_code == 200 and again.json()["already_erased"] is True
    # the case stays whole: the participant's role and statistics remain, the lifecycle goes on
    view = api.call("GET", f"/v1/cases/{case_id}").json()
    entry = view["participants"][0]
    assert (entry["role"], entry["age_band"], entry["erased"], entry["personal_data"]) == ("harmed", "50_64", True, None)
    assert view["participants"][1]["personal_data"]["name"] == "Liam Evans"
    assert api.call("POST", f"/v1/cases/{case_id}/transitions", json={"to": "TRIAGE"}).status_code == 200
    assert api.rpc("get_contact", harmed, "participant_information", "notifications")["reason"] == \
        "personal_data_erased"
    consent = api.call("POST", f"/v1/cases/{case_id}/consents",
                       json={"participant_id": harmed, "scope": "participation", "granted": True})
    assert consent.status_code == 409
    erased_events = wait_until(lambda: api.events("participant.erased"))
    assert [e["data"] for e in erased_events] == [{"case_id": case_id, "participant_id": harmed}]
    # by any means: no document of any collection holds the values, and no stored key
    # (unwrapped with the master key itself) opens any stored ciphertext to reveal them
    vault = Vault(load_master_key(MASTER_KEY))
    assert api.store.data_key(harmed) is None
    stored = list(api.store.documents())
    keys = [(k["_id"], vault.unwrap(k["_id"], k["wrapped"])) for name, k in stored if name == "data_keys"]
    assert keys and harmed not in {owner for owner, _ in keys}
    blobs = []
    for name, doc in stored:
        raw = bson.encode(doc)
        assert canary.encode() not in raw and b"canary.example" not in raw
        blobs += _sealed_strings(doc)
    assert blobs, "the other people's data is still sealed in the case"
    opened = []
    for blob in blobs:
        for owner, key in keys:
            try:
                opened.append(str(Vault.open(key, owner, blob)))
            except Exception:
                continue
    assert opened and not any(canary in text or "canary.example" in text for text in opened)
    assert any("Liam Evans" in text for text in opened)   # the method would have found it
    assert api.call("POST", f"/v1/cases/{case_id}/participants/p-{'0' * 32}/erasure").status_code == 404
    assert api.call("POST", f"/v1/cases/{case_id}/participants/{harmed}/erasure", "facilitator").status_code == 403


def _sealed_strings(value):
    if isinstance(value, dict):
        return [s for v in value.values() for s in _sealed_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _sealed_strings(v)]
    return [value] if isinstance(value, str) and len(value) > 40 else []


# --- Victims' Code clocks -------------------------------------------------------

def test_the_clock_announces_due_and_missed_once_each(api):
    # a fortnight: the longest run of five working days (from Christmas Eve) takes twelve
    reported = days_ago(14)
    late = api.refer(referral_body(0, crime_reported_on=reported))
    enhanced_today = api.refer(referral_body(2))     # reported today: its day has not begun to run out
    told = api.refer(referral_body(0, crime_reported_on=reported))   # as late, but the victim was told
    harmed = api.case(told).participants[0]["party_id"]
    api.call("POST", f"/v1/cases/{told}/consents", json={"participant_id": harmed, "scope": "participation",
                                                         "granted": True})
    with entrypoint_hook(api.container, "check_deadlines") as tick:
        tick()
        tick()
    eventlet.sleep(0.5)
    with entrypoint_hook(api.container, "check_deadlines") as tick:
        tick()
    events = wait_until(lambda: api.events("case.deadline_due", "case.deadline_missed"))
    eventlet.sleep(0.5)
    # this clock's: the support referral clock of the same cases is another (see below)
    events = [e for e in api.events("case.deadline_due", "case.deadline_missed")
              if e["data"]["deadline"] == "victim_told_about_rj"]
    assert sorted((e["type"], e["subject"]) for e in events) == [
        ("case.deadline_due", late), ("case.deadline_missed", late)]
    data = events[0]["data"]
    assert data["deadline"] == "victim_told_about_rj" and data["enhanced_rights"] is False
    assert data["due_at"] == deadlines.victim_told_about_rj(date.fromisoformat(reported), False).due_at.isoformat()
    assert data["measured_from"] == "crime_reported"
    assert api.case(enhanced_today).deadline["enhanced_rights"] is True
    assert not api.case(enhanced_today).deadline_due_sent


def test_a_support_referral_meets_its_clock_and_the_timer_announces_the_ones_still_owed(api):
    reported = days_ago(14)   # a fortnight: both clocks have run out, whatever the day
    referred = api.refer(referral_body(0, crime_reported_on=reported))
    owed = api.refer(referral_body(0, crime_reported_on=reported))
    harmed, harmer = (p["party_id"] for p in api.case(referred).participants)
    path = f"/v1/cases/{referred}/support-referrals"
    for body, field in (({"participant_id": harmed, "outcome": "referred"}, "service"),
                        ({"participant_id": harmed, "outcome": "perhaps"}, "outcome"),
                        ({"participant_id": harmer, "outcome": "declined"}, "participant_id")):
        refused = api.call("POST", path, json=body)
        assert refused.status_code == 400 and field in refused.json()["fields"], refused.text
    assert api.call("POST", f"/v1/cases/{uuid.uuid4()}/support-referrals",
                    json={"participant_id": harmed, "outcome": "declined"}).status_code == 404
    assert api.call("POST", path, "auditor", json={"participant_id": harmed, "outcome": "declined"}).status_code == 403
    assert api.case(referred).support_referrals == []
    answer = api.call("POST", path, json={"participant_id": harmed, "outcome": "referred", "service": "victim_support"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["support_referral"]["state"] == "met_late"   # 2 working days after the report
    recorded = wait_until(lambda: api.events("support.referral_recorded"))[0]
    assert recorded["data"] == {"case_id": referred, "participant_id": harmed, "outcome": "referred",
                                "service": "victim_support"}
    view = api.call("GET", f"/v1/cases/{referred}", "auditor").json()
    assert view["support_referral"]["referrals"][0]["service"] == "victim_support"
    reported_on = date.fromisoformat(reported)
    assert view["support_referral"]["last_day"] == deadlines.add_working_days(reported_on, 2).isoformat()
    assert view["deadline"]["last_day"] == deadlines.add_working_days(reported_on, 5).isoformat()
    with entrypoint_hook(api.container, "check_deadlines") as tick:
        tick()
    wanted = {("case.deadline_due", owed), ("case.deadline_missed", owed)}
    support = lambda: [e for e in api.events("case.deadline_due", "case.deadline_missed")  # noqa: E731
                       if e["data"]["deadline"] == "support_referral"]
    events = wait_until(lambda: (lambda found: found if {(e["type"], e["subject"]) for e in found} >= wanted
                                 else None)(support()))
    assert {(e["type"], e["subject"]) for e in events} == wanted
    assert events[0]["data"]["due_at"] == deadlines.support_referral(reported_on, False).due_at.isoformat()
    # a closed case, or an erased person, takes no record
    harmed_owed = api.case(owed).participants[0]["party_id"]
    assert api.call("POST", f"/v1/cases/{owed}/participants/{harmed_owed}/erasure").status_code == 200
    assert api.call("POST", f"/v1/cases/{owed}/support-referrals",
                    json={"participant_id": harmed_owed, "outcome": "declined"}).status_code == 409
    assert api.call("GET", f"/v1/cases/{owed}").json()["support_referral"]["state"] == "stopped"


def test_the_full_record_is_kept_sealed_and_given_back_to_a_coordinator(api):
    from tests.factories import full_referral_body
    body = full_referral_body()
    case_id = api.refer(body)
    raw = bson.encode(next(doc for name, doc in api.store.documents() if name == "cases" and doc["_id"] == case_id))
    for value in ("Siop y Gornel", "Ieuan Ifans", "Nia Hughes", "+44 7700 900999", "Cardiff YOT", "SWP/26/104981"):
        assert value.encode() not in raw
    view = api.call("GET", f"/v1/cases/{case_id}").json()
    assert [p["role"] for p in view["participants"]] == [
        "harmed", "harmer", "appropriate_adult", "interpreter", "supporter"]
    harmed = view["participants"][0]
    assert harmed["language"] == "cy" and harmed["personal_data"]["safe_addresses"] == [
        "Siop y Gornel, Heol y Frenhines, Caerdydd"]
    assert harmed["personal_data"]["safe_contact_windows"][0]["start"] == "09:00"
    assert view["participants"][4]["access_needs"] == ["hearing_loop"]
    assert view["referrer"]["personal_data"]["team"] == "Cardiff YOT"
    offence = body["offence"]["date"]   # reported the day it happened
    assert view["record"] == {"crime_reference": "SWP/26/104981", "offence_date": offence,
                              "crime_reported_on": offence}
    last_day = deadlines.add_working_days(date.fromisoformat(offence), 5).isoformat()
    assert view["attributes"]["flags"] == ["youth"] and view["deadline"]["last_day"] == last_day
    assert view["measured_from"] == view["deadline"]["measured_from"] == "crime_reported"
    received = wait_until(lambda: api.events("referral.received"))[0]["data"]
    assert [p["role"] for p in received["participants"]] == [p["role"] for p in view["participants"]]
    assert "Siop" not in str(received) and "Ieuan" not in str(received)


def test_a_referral_without_the_day_of_the_report_is_taken_and_shows_its_clocks_run_from_receipt(api):
    from datetime import datetime
    from zoneinfo import ZoneInfo
    without = api.refer(referral_body(0))   # no crime_reported_on
    given = api.refer(referral_body(0, crime_reported_on=days_ago(14)))
    view = api.call("GET", f"/v1/cases/{without}").json()
    assert view["measured_from"] == view["deadline"]["measured_from"] == "referral_received"
    assert view["record"]["crime_reported_on"] is None
    # measured from the day it was received, in London
    received = datetime.fromisoformat(view["created_at"]).astimezone(ZoneInfo("Europe/London")).date()
    from services.referrals import deadlines
    assert view["deadline"]["last_day"] == deadlines.add_working_days(received, 5).isoformat()
    assert api.call("GET", f"/v1/cases/{given}").json()["measured_from"] == "crime_reported"
    listed = api.call("GET", "/v1/cases", params={"measured_from": "referral_received", "limit": 100}).json()
    assert without in [i["case_id"] for i in listed["items"]] and given not in [i["case_id"] for i in listed["items"]]
    assert {i["measured_from"] for i in listed["items"]} == {"referral_received"}
    bad = api.call("GET", "/v1/cases", params={"measured_from": "yesterday"})
    assert bad.status_code == 400 and "measured_from" in bad.json()["fields"]


def test_hostile_bodies_get_a_400_and_store_nothing(api):
    before = api.counts()
    for data in (b"[" * 100000, b'{"a":' * 50000, b"\xff\xfe", b"null", b"[]", b'"text"', b"{}"):
        answer = api.call("POST", "/v1/referrals", "referrer", data=data,
                          headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (data[:10], answer.status_code, answer.text)
    not_json = api.call("POST", "/v1/referrals", "referrer", data=b"a=b",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_json.status_code == 400
    case_id = api.refer()
    for path in ("transitions", "consents"):
        answer = api.call("POST", f"/v1/cases/{case_id}/{path}", data=b"[" * 100000,
                          headers={"Content-Type": "application/json"})
        assert answer.status_code == 400
    assert api.counts()["cases"] == before.get("cases", 0) + 1


def test_parallel_transitions_of_one_case_apply_once(api):
    case_id = api.refer()
    pool = eventlet.GreenPool(10)
    answers = list(pool.imap(lambda _: api.call("POST", f"/v1/cases/{case_id}/transitions",
                                                json={"to": "TRIAGE"}), range(10)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 9, [a.text for a in answers]
    assert all(a.json()["allowed"] == ["CONTACTING", "ON_HOLD", "CLOSED"] for a in answers if a.status_code == 409)
    case = api.case(case_id)
    assert [(h["from"], h["to"]) for h in case.history] == [("RECEIVED", "TRIAGE")]
    wait_until(lambda: api.events("case.status_changed"))
    eventlet.sleep(0.5)
    assert len(api.events("case.status_changed")) == 1


def test_parallel_consents_are_all_kept(api):
    case_id = api.refer(referral_body(1))
    parties = [p["party_id"] for p in api.case(case_id).participants]
    bodies = [{"participant_id": parties[i % 3], "scope": "share_item", "granted": True,
               "item": f"item_{i}", "with_role": "harmed"} for i in range(10)]
    pool = eventlet.GreenPool(10)
    answers = list(pool.imap(lambda b: api.call("POST", f"/v1/cases/{case_id}/consents", json=b), bodies))
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
    view = api.call("GET", f"/v1/cases/{case_id}").json()
    assert sorted(c["item"] for c in view["consents"]) == sorted(b["item"] for b in bodies)
    events = wait_until(lambda: (lambda e: e if len(e) >= 10 else None)(api.events("consent.recorded")))
    eventlet.sleep(0.5)
    assert sorted(e["data"]["item"] for e in api.events("consent.recorded")) == sorted(b["item"] for b in bodies)
    assert len(events) == 10


def test_a_change_whose_projection_was_lost_is_still_seen_and_relayed(api):
    """A crash after a change is stored but before the case document catches up: readers
    roll the case forward, and the relay timer sends the change's events."""
    from datetime import datetime, timezone
    case_id = api.refer()
    wait_until(lambda: api.events("referral.received"))
    event = new_event("case.status_changed", case_id, {"case_id": case_id, "from_status": "RECEIVED",
                                                        "to_status": "TRIAGE", "reason": None},
                      source="/amends/test/referrals", region="test", correlationid=case_id)
    api.store.insert_change(CaseChange(
        change_id=change_key(case_id, 1), case_id=case_id, version=1, by="test",
        state={"status": "TRIAGE", "history": [{"from": "RECEIVED", "to": "TRIAGE", "reason": None,
                                                "at": datetime.now(timezone.utc), "by": "test"}]},
        outbox=[event]))
    assert api.case(case_id).status == "RECEIVED"   # the projection never happened
    view = api.call("GET", f"/v1/cases/{case_id}", "auditor").json()
    assert view["status"] == "TRIAGE" and [h["to_status"] for h in view["history"]] == ["TRIAGE"]
    # the next change builds on it rather than overwriting it
    moved = api.call("POST", f"/v1/cases/{case_id}/transitions", json={"to": "CONTACTING"})
    assert moved.status_code == 200 and api.case(case_id).version == 2
    with entrypoint_hook(api.container, "relay_outbox") as relay:
        relay()
    sent = wait_until(lambda: (lambda e: e if len(e) == 2 else None)(api.events("case.status_changed")))
    assert sorted(e["data"]["to_status"] for e in sent) == ["CONTACTING", "TRIAGE"]
    assert event["id"] in {e["id"] for e in sent}
    assert api.store.change(change_key(case_id, 1)).outbox == []
