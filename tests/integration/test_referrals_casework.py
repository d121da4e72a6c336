"""Preparation, risk, the safety decision and its supervision, and the parties' items, through
the real HTTP API, broker and FerretDB: bad input named and nothing stored, the gate before
anything passes between the parties, the author's consent to share, personal content never
on the bus or in a log, erasure, and who may reach a case."""
import json
import logging
import uuid
from datetime import timedelta

import bson
import eventlet

from services.referrals.deadlines import today_in_london
from tests.factories import referral_body
from tests.integration.test_referrals_api import (  # noqa: F401  (api: the running service's fixture)
    api, hold, matching_event)
from tests.support import issue_key, publish_event, wait_until

FACTORS = {"safety": "low", "power_imbalance": "low", "capacity": "none", "substance_use": "none",
           "mental_health": "low", "support_needs": "medium", "access_needs": "none"}


def allocated(api, body=None, process_types=("direct_conference", "shuttle", "letter_exchange"),
              facilitator_id="fac-test"):
    """A case matching assessed, and `facilitator_id` accepted: ALLOCATED. (case id, harmed, harmer)"""
    case_id = api.refer(body)
    publish_event(api.config["AMQP_URI"], matching_event("case.assessed", case_id, process_types=list(process_types)))
    wait_until(lambda: api.case(case_id).assessment)
    hold(api, case_id, facilitator_id=facilitator_id)
    wait_until(lambda: api.case(case_id).status == "ALLOCATED")
    case = api.case(case_id)
    return case_id, case.participants[0]["party_id"], case.participants[1]["party_id"]


def post(api, case_id, path, body, key="facilitator"):
    return api.call("POST", f"/v1/cases/{case_id}/{path}", key, json=body)


def assess_both(api, case_id, harmed, harmer, **harmer_levels):
    for party, levels in ((harmed, {}), (harmer, harmer_levels)):
        answer = post(api, case_id, "risk-assessments", {"participant_id": party, "factors": dict(FACTORS, **levels)})
        assert answer.status_code == 201, answer.text


def item(api, case_id, author, kind, content, key="facilitator", **extra):
    answer = post(api, case_id, "items", {"author_id": author, "kind": kind, "content": content, **extra}, key)
    assert answer.status_code == 201, answer.text
    return answer.json()["item_id"]


def share(api, case_id, author, named, to_role, granted=True):
    answer = post(api, case_id, "consents", {"participant_id": author, "scope": "share_item", "granted": granted,
                                             "item": named, "with_role": to_role})
    assert answer.status_code == 201, answer.text


def refused(answer, reason):
    assert answer.status_code == 409, answer.text
    assert answer.json()["reason"] == reason, answer.text
    return True


def settled(api, *types):
    """The events of these types once the outbox has drained (a moment for stragglers)."""
    eventlet.sleep(0.5)
    return api.events(*types)


# --- bad input ----------------------------------------------------------------------

def test_bad_input_is_named_field_by_field_and_stores_nothing(api):
    case_id, harmed, harmer = allocated(api, referral_body(1))   # with an appropriate adult
    adult = api.case(case_id).participants[2]["party_id"]
    tomorrow = today_in_london() + timedelta(days=1)
    cases = [
        ("preparation/contacts", {"participant_id": harmed, "method": "pigeon", "outcome": "reached",
                                  "held_on": tomorrow.isoformat(), "notes": "x" * 4001},
         {"method", "held_on", "notes"}),
        ("preparation/contacts", {"participant_id": f"p-{'0' * 32}", "method": "phone", "outcome": "reached",
                                  "held_on": today_in_london().isoformat()}, {"participant_id"}),
        ("risk-assessments", {"participant_id": adult, "factors": FACTORS}, {"participant_id"}),
        ("risk-assessments", {"participant_id": harmed, "factors": {"safety": "grave"}}, {"factors"}),
        ("safety-decision", {"decision": "maybe", "reasons": []}, {"decision", "reasons"}),
        ("items", {"author_id": adult, "kind": "letter", "content": "Dear"}, {"author_id"}),
        ("items", {"author_id": harmer, "kind": "impact_statement", "content": "x"}, {"kind"}),
        ("items", {"author_id": harmed, "kind": "poem", "content": "", "in_reply_to": "nope"},
         {"kind", "content", "in_reply_to"}),
    ]
    before = api.counts()
    for path, body, fields in cases:
        answer = post(api, case_id, path, body)
        assert answer.status_code == 400 and set(answer.json()["fields"]) == fields, (path, answer.text)
    supervision = post(api, case_id, "supervision", {"decision": "yes", "reason": "Not A Code"}, "coordinator")
    assert supervision.status_code == 400 and set(supervision.json()["fields"]) == {"decision", "reason"}
    assert api.counts() == before
    letter = item(api, case_id, harmed, "letter", "Dear Liam")
    before = api.counts()
    for body, fields in (({"to_role": "harmed", "reviewed": True}, {"to_role"}),
                         ({"to_role": "harmer"}, {"reviewed"}),
                         ({"to_role": "court", "reviewed": "perhaps"}, {"to_role", "reviewed"})):
        answer = post(api, case_id, f"items/{letter}/release", body)
        assert answer.status_code == 400 and set(answer.json()["fields"]) == fields, answer.text
    assert post(api, case_id, f"items/item-{'0' * 32}/release", {"to_role": "harmer"}).status_code == 404
    assert api.counts() == before
    assert api.case(case_id).status == "ALLOCATED" and not api.case(case_id).risk_assessments


# --- preparation, risk and the safety decision ---------------------------------------

def test_the_first_contact_starts_preparation_and_tells_the_victim(api):
    case_id, harmed, harmer = allocated(api)
    first = post(api, case_id, "preparation/contacts", {"participant_id": harmer, "method": "phone",
                                                         "outcome": "no_answer", "held_on": today_in_london().isoformat()})
    assert first.status_code == 201 and first.json()["status"] == "PREPARATION", first.text
    assert api.case(case_id).victim_told_at is None
    reached = post(api, case_id, "preparation/contacts", {"participant_id": harmed, "method": "visit",
                                                           "outcome": "reached", "held_on": today_in_london().isoformat()})
    assert reached.status_code == 201 and api.case(case_id).victim_told_at is not None
    events = wait_until(lambda: (lambda e: e if len(e) == 2 else None)(api.events("preparation.contact_recorded")))
    assert [e["data"] for e in events] == [
        {"case_id": case_id, "participant_id": harmer, "participant_role": "harmer", "method": "phone",
         "outcome": "no_answer"},
        {"case_id": case_id, "participant_id": harmed, "participant_role": "harmed", "method": "visit",
         "outcome": "reached"}]
    moved = [e["data"] for e in settled(api, "case.status_changed")]
    assert moved[-1] == {"case_id": case_id, "from_status": "ALLOCATED", "to_status": "PREPARATION", "reason": None}
    assert sum(e["to_status"] == "PREPARATION" for e in moved) == 1
    view = api.call("GET", f"/v1/cases/{case_id}", "auditor").json()
    assert [c["outcome"] for c in view["preparation_contacts"]] == ["no_answer", "reached"]


def test_direct_needs_matching_and_the_parties_safety_and_stop_closes_the_case(api):
    case_id, harmed, harmer = allocated(api, process_types=("shuttle", "letter_exchange"))
    decide = {"decision": "direct", "reasons": ["both_willing"]}
    before = api.counts()
    assert refused(post(api, case_id, "safety-decision", decide), "risk_assessment_missing")
    assess_both(api, case_id, harmed, harmer, safety="high")
    assert refused(post(api, case_id, "safety-decision", decide), "assessment_excludes_direct")
    assessed = wait_until(lambda: (lambda e: e if len(e) == 2 else None)(api.events("risk.assessed")))
    assert assessed[1]["data"]["overall"] == "high" and assessed[1]["data"]["factors"]["safety"] == "high"
    publish_event(api.config["AMQP_URI"], matching_event("case.assessed", case_id, assessment_id="a-2",
                                                         process_types=["direct_conference", "shuttle"]))
    wait_until(lambda: "direct_conference" in api.case(case_id).assessment["process_types"])
    assert refused(post(api, case_id, "safety-decision", decide), "party_safety_high")
    assert api.counts()["case_changes"] == before["case_changes"] + 3   # two assessments, one new assessment
    stop = post(api, case_id, "safety-decision", {"decision": "stop", "reasons": ["risk_to_harmed"],
                                                  "notes": "The harmer's threats on the second visit"})
    assert stop.status_code == 200, stop.text
    assert (stop.json()["status"], stop.json()["communication_refused"]) == ("CLOSED", "safety_stop")
    case = api.case(case_id)
    assert (case.status, case.closure["reason"]) == ("CLOSED", "safety_stop")
    decided = wait_until(lambda: api.events("case.safety_decided"))
    assert decided[0]["data"] == {"case_id": case_id, "decision": "stop", "reasons": ["risk_to_harmed"],
                                  "supervision_required": False}
    closed = wait_until(lambda: api.events("case.closed"))
    assert closed[0]["data"] == {"case_id": case_id, "from_status": "ALLOCATED", "reason": "safety_stop"}
    assert refused(post(api, case_id, "safety-decision", {"decision": "indirect_only", "reasons": ["x"]}),
                   "case_closed")


# --- the gate, supervision and consent to share ----------------------------------------

def test_in_a_domestic_abuse_case_nothing_passes_before_a_safety_decision_and_its_sign_off(api):
    case_id, harmed, harmer = allocated(api, referral_body(2))   # domestic abuse: supervised
    statement = item(api, case_id, harmed, "impact_statement", "It changed how I live.")
    release = {"to_role": "harmer"}
    assert refused(post(api, case_id, f"items/{statement}/release", release), "safety_decision_missing")
    assess_both(api, case_id, harmed, harmer)
    decided = post(api, case_id, "safety-decision", {"decision": "indirect_only", "reasons": ["domestic_abuse"]})
    assert decided.status_code == 200 and decided.json()["supervision_required"] is True
    assert refused(post(api, case_id, f"items/{statement}/release", release), "supervision_signoff_missing")
    # the supervisor is a coordinator; the facilitator cannot sign off
    assert post(api, case_id, "supervision", {"decision": "approved"}).status_code == 403
    signed = post(api, case_id, "supervision", {"decision": "approved"}, "coordinator")
    assert signed.status_code == 200 and signed.json()["communication_refused"] is None, signed.text
    # the gate is open; the author's consent decides
    before = api.counts()
    assert refused(post(api, case_id, f"items/{statement}/release", release), "share_consent_missing")
    share(api, case_id, harmed, statement, "supporter")
    assert refused(post(api, case_id, f"items/{statement}/release", release), "share_consent_missing")
    share(api, case_id, harmed, statement, "harmer")
    share(api, case_id, harmed, statement, "harmer", granted=False)
    assert refused(post(api, case_id, f"items/{statement}/release", release), "share_consent_missing")
    assert api.counts()["case_changes"] == before["case_changes"] + 3   # the three consents, nothing else
    share(api, case_id, harmed, "impact_statement", "harmer")   # the latest word: every impact statement
    released = post(api, case_id, f"items/{statement}/release", release)
    assert released.status_code == 200, released.text
    body = released.json()
    assert (body["to_role"], body["by"], body["consent"]["item"], body["consent"]["place"]) == (
        "harmer", "facilitator:fac-test", "impact_statement", 3)
    events = wait_until(lambda: api.events("voice.item_released"))
    assert events[0]["data"] == {"case_id": case_id, "item_id": statement, "kind": "impact_statement",
                                 "author_role": "harmed", "to_role": "harmer"}
    assert refused(post(api, case_id, f"items/{statement}/release", release), "already_released")
    # a coordinator's new decision needs signing off again, by someone else
    redecided = post(api, case_id, "safety-decision", {"decision": "indirect_only", "reasons": ["reviewed"]},
                     "coordinator")
    assert redecided.status_code == 200 and redecided.json()["communication_refused"] == "supervision_signoff_missing"
    assert refused(post(api, case_id, "supervision", {"decision": "approved"}, "coordinator"),
                   "supervisor_made_the_decision")
    answer = item(api, case_id, harmer, "apology", "I am sorry.")
    share(api, case_id, harmer, answer, "harmed")
    assert refused(post(api, case_id, f"items/{answer}/release", {"to_role": "harmed"}), "supervision_signoff_missing")
    supervisor = issue_key(api.config, "coordinator", "test-police", f"coord-{uuid.uuid4().hex[:6]}")
    assert post(api, case_id, "supervision", {"decision": "approved"}, supervisor).status_code == 200
    assert post(api, case_id, f"items/{answer}/release", {"to_role": "harmed"}).status_code == 200
    supervised = [e["data"] for e in settled(api, "case.supervision_decided")]
    assert supervised == [{"case_id": case_id, "decision": "approved", "safety_decision": "indirect_only"}] * 2
    view = api.call("GET", f"/v1/cases/{case_id}", "auditor").json()
    assert len(view["safety_decisions"]) == 2 and len(view["supervisions"]) == 2
    assert [len(i["releases"]) for i in view["voice_items"]] == [1, 1]


# --- personal content, erasure and who may reach it -------------------------------------

def test_content_is_never_on_the_bus_or_in_a_log_and_an_erased_authors_item_is_gone(api, caplog):
    caplog.set_level(logging.DEBUG)
    canary = f"Canary {uuid.uuid4().hex}"
    case_id, harmed, harmer = allocated(api)
    # a facilitator with no part in the case finds nothing there
    stranger = issue_key(api.config, "facilitator", "test-police", "fac-stranger")
    for path in ("preparation/contacts", "risk-assessments", "safety-decision", "items",
                 f"items/item-{'1' * 32}/release"):
        assert post(api, case_id, path, {}, stranger).status_code == 404, path
    assert post(api, case_id, "supervision", {}, stranger).status_code == 403   # no facilitator signs off
    assert api.call("GET", f"/v1/cases/{case_id}/items", stranger).status_code == 404
    assert post(api, case_id, "preparation/contacts", {
        "participant_id": harmer, "method": "visit", "outcome": "reached", "held_on": today_in_london().isoformat(),
        "notes": f"contact {canary}"}).status_code == 201
    assert post(api, case_id, "risk-assessments", {"participant_id": harmer, "factors": FACTORS,
                                                   "notes": f"risk {canary}"}).status_code == 201
    assess_both(api, case_id, harmed, harmer)
    assert post(api, case_id, "safety-decision", {"decision": "direct", "reasons": ["both_willing"],
                                                  "notes": f"safety {canary}"}).status_code == 200
    letter = item(api, case_id, harmer, "letter", f"letter {canary}")
    question = item(api, case_id, harmed, "question", f"question {canary}")
    share(api, case_id, harmed, question, "harmer")
    assert post(api, case_id, f"items/{question}/release", {"to_role": "harmer"}).status_code == 200
    # the holder reads it all back; a facilitator only offered the case sees the items without content
    listed = api.call("GET", f"/v1/cases/{case_id}/items", "facilitator").json()["items"]
    assert [i["content"] for i in listed] == [f"letter {canary}", f"question {canary}"]
    view = api.call("GET", f"/v1/cases/{case_id}", "facilitator").json()
    assert view["preparation_contacts"][0]["notes"] == f"contact {canary}"
    assert view["risk_assessments"][0]["notes"] == f"risk {canary}"
    assert view["safety_decisions"][0]["notes"] == f"safety {canary}"
    offered = issue_key(api.config, "facilitator", "test-police", "fac-offered")
    publish_event(api.config["AMQP_URI"], matching_event("facilitator.assigned", case_id, facilitator_id="fac-offered",
                                                         assignment_id="as-offered"))
    wait_until(lambda: "fac-offered" in api.case(case_id).offered_to)
    hidden = api.call("GET", f"/v1/cases/{case_id}/items", offered)
    assert hidden.status_code == 200 and canary not in hidden.text and "content" not in hidden.json()["items"][0]
    assert canary not in api.call("GET", f"/v1/cases/{case_id}", offered).text
    assert post(api, case_id, f"items/{letter}/release", {"to_role": "harmed", "reviewed": True},
                offered).status_code == 403
    for role in ("auditor", "referrer"):
        assert canary not in api.call("GET", f"/v1/cases/{case_id}", role).text
    # every read of the content is in the access log
    reads = api.call("GET", f"/v1/cases/{case_id}/access-log", "auditor").json()["entries"]
    assert {(e["party_id"], e["fields_released"][0]) for e in reads if e["purpose"] == "voice_items"} == {
        (harmer, letter), (harmed, question)}
    # the author is erased: their content is gone, and their item cannot go to anyone
    share(api, case_id, harmer, "letter", "harmed")
    assert post(api, case_id, f"participants/{harmer}/erasure", {}, "coordinator").status_code == 200
    listed = api.call("GET", f"/v1/cases/{case_id}/items", "coordinator").json()["items"]
    assert (listed[0]["content"], listed[0]["erased"]) == (None, True)
    assert listed[1]["content"] == f"question {canary}"
    assert refused(post(api, case_id, f"items/{letter}/release", {"to_role": "harmed", "reviewed": True}),
                   "author_erased")
    # nothing personal on the bus (so in no ledger), in any log line, or in the clear at rest
    events = settled(api)
    assert {"voice.item_recorded", "voice.item_released", "risk.assessed", "case.safety_decided",
            "preparation.contact_recorded"} <= {e["type"] for e in events}
    assert canary not in json.dumps(events)
    assert any(r.getMessage() == "request refused" for r in caplog.records)   # the service's lines are here
    assert canary not in caplog.text and not any(canary in str(r.args) for r in caplog.records)
    for _, doc in api.store.documents():
        assert canary.encode() not in bson.encode(doc)
