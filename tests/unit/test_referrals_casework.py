"""The casework workflows on the in-memory store: preparation contacts, risk assessed with
each party, the safety decision and its supervision, the parties' items and their release.
Each write is one change of the case with its events; a refused request stores nothing."""
import json

import pytest

from services.referrals import cases, workflow
from services.referrals.cases import change_key
from services.referrals.deadlines import today_in_london
from shared.web import BadRequest, Conflict, NotFound
from tests.factories import referral_body
from tests.unit.test_referrals_workflow import (  # noqa: F401  (fixtures: store, outbox, vault)
    COORDINATOR, matching_event, outbox, principal, refer, store, vault)

FACILITATOR = principal("facilitator", subject="fac-1")
SUPERVISOR = principal("coordinator", subject="supervisor-1")
FACTORS = {"safety": "low", "power_imbalance": "medium", "capacity": "none", "substance_use": "none",
           "mental_health": "low", "support_needs": "low", "access_needs": "none"}
SECRET = "Canary-7f3e: the words only the harmed person and the facilitator know"


def allocated(store, outbox, vault, body=None, process_types=("direct_conference", "shuttle")):
    """A case matching assessed, offered to fac-1 and accepted: ALLOCATED. (case id, harmed, harmer)"""
    case_id, _ = refer(store, outbox, vault, body=body)
    assessed = {"assessment_id": "a-1", "decision": "suitable", "risk_level": "low",
                "process_types": list(process_types), "reasons": []}
    workflow.advance_for_event(store, matching_event("case.assessed", case_id, **assessed), outbox)
    for event_type in ("facilitator.assigned", "assignment.accepted"):
        workflow.advance_for_event(store, matching_event(event_type, case_id, facilitator_id="fac-1"), outbox)
    case = store.load_case(case_id)
    assert case.status == "ALLOCATED"
    return case_id, case.participants[0]["party_id"], case.participants[1]["party_id"]


def events(outbox, *types):
    return [e for _, _, flushed in outbox.flushed for e in flushed if not types or e["type"] in types]


def contact(participant_id, **extra):
    return {"participant_id": participant_id, "method": "visit", "outcome": "reached",
            "held_on": today_in_london().isoformat(), **extra}


def assess(store, outbox, vault, case_id, participant_id, who=FACILITATOR, **levels):
    return workflow.record_risk_assessment(store, case_id, {"participant_id": participant_id,
                                                            "factors": dict(FACTORS, **levels)}, who, outbox, vault)


def decided(store, outbox, vault, case_id, parties, decision="indirect_only", who=FACILITATOR):
    for party in parties:
        assess(store, outbox, vault, case_id, party)
    return workflow.decide_safety(store, case_id, {"decision": decision, "reasons": ["both_willing"]}, who,
                                  outbox, vault)


def stored(store):
    """Everything at rest, as text: to look for what must not be there."""
    return json.dumps([doc for _, doc in store.documents()], default=str)


# --- preparation contacts ---------------------------------------------------------

def test_the_first_contact_starts_preparation_and_reaching_the_victim_meets_the_clock(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    first = workflow.record_contact(store, case_id, contact(harmer, outcome="no_answer"), FACILITATOR, outbox, vault)
    assert first["status"] == "PREPARATION" and first["contact_id"].startswith("contact-")
    case = store.load_case(case_id)
    assert case.victim_told_at is None and [h["to"] for h in case.history][-1] == "PREPARATION"
    change = store.change(change_key(case_id, case.version))
    assert [e["type"] for e in change.outbox] == ["preparation.contact_recorded", "case.status_changed"]
    assert change.outbox[0]["data"] == {"case_id": case_id, "participant_id": harmer, "participant_role": "harmer",
                                        "method": "visit", "outcome": "no_answer"}
    reached = workflow.record_contact(store, case_id, contact(harmed, notes=SECRET), FACILITATOR, outbox, vault)
    case = store.load_case(case_id)
    assert reached["status"] == "PREPARATION" and case.victim_told_at is not None
    assert [e["type"] for e in store.change(change_key(case_id, case.version)).outbox] == [
        "preparation.contact_recorded"]
    # the notes are sealed under the harmed person's own key, and nowhere in the clear
    record = case.preparation_contacts[1]
    assert record["has_notes"] and cases.unseal(store, vault, harmed, record["sealed"]) == {"notes": SECRET}
    assert SECRET not in stored(store) and SECRET not in json.dumps(events(outbox))
    told = case.victim_told_at
    workflow.record_contact(store, case_id, contact(harmed), FACILITATOR, outbox, vault)
    assert store.load_case(case_id).victim_told_at == told


def test_a_refused_contact_stores_nothing(store, outbox, vault):
    case_id, harmed, _ = allocated(store, outbox, vault)
    before = store.counts()
    with pytest.raises(BadRequest) as bad:
        workflow.record_contact(store, case_id, {"participant_id": harmed, "method": "pigeon"}, FACILITATOR,
                                outbox, vault)
    assert set(bad.value.details["fields"]) == {"method", "outcome", "held_on"}
    referrer = store.load_case(case_id).referrer["party_id"]
    with pytest.raises(BadRequest) as unknown:
        workflow.record_contact(store, case_id, contact(referrer), FACILITATOR, outbox, vault)
    assert set(unknown.value.details["fields"]) == {"participant_id"}
    assert store.counts() == before
    early, _ = refer(store, outbox, vault)
    early_harmed = store.load_case(early).participants[0]["party_id"]
    with pytest.raises(Conflict) as not_yet:
        workflow.record_contact(store, early, contact(early_harmed), COORDINATOR, outbox, vault)
    assert not_yet.value.details["reason"] == "not_allocated"
    workflow.erase_participant(store, case_id, harmed, COORDINATOR, outbox)
    before = store.counts()
    with pytest.raises(Conflict) as erased:
        workflow.record_contact(store, case_id, contact(harmed), FACILITATOR, outbox, vault)
    assert erased.value.details["reason"] == "personal_data_erased" and store.counts() == before


# --- risk and the safety decision ---------------------------------------------------

def test_risk_is_assessed_with_each_party_and_a_later_assessment_replaces_the_earlier(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault, body=referral_body(1))   # with an appropriate adult
    adult = store.load_case(case_id).participants[2]["party_id"]
    with pytest.raises(BadRequest) as not_a_party:
        assess(store, outbox, vault, case_id, adult)
    assert set(not_a_party.value.details["fields"]) == {"participant_id"}
    first = assess(store, outbox, vault, case_id, harmer, safety="high")
    assert first["overall"] == "high" and first["participant_role"] == "harmer"
    assert events(outbox, "risk.assessed")[-1]["data"] == {
        "case_id": case_id, "participant_id": harmer, "participant_role": "harmer",
        "factors": dict(FACTORS, safety="high"), "overall": "high"}
    with pytest.raises(Conflict) as missing:
        workflow.decide_safety(store, case_id, {"decision": "stop", "reasons": ["risk"]}, FACILITATOR, outbox, vault)
    assert missing.value.details["reason"] == "risk_assessment_missing"
    assess(store, outbox, vault, case_id, harmed)
    with pytest.raises(Conflict) as high:
        workflow.decide_safety(store, case_id, {"decision": "direct", "reasons": ["both_willing"]}, FACILITATOR,
                               outbox, vault)
    assert high.value.details["reason"] == "party_safety_high"
    assess(store, outbox, vault, case_id, harmer, safety="low")
    view = workflow.case_view(store, case_id, COORDINATOR, vault)
    assert [(r["participant_id"], r["current"]) for r in view["risk_assessments"]] == [
        (harmer, False), (harmed, True), (harmer, True)]
    answer = workflow.decide_safety(store, case_id, {"decision": "direct", "reasons": ["both_willing"]},
                                    FACILITATOR, outbox, vault)
    assert answer["decision"] == "direct" and answer["communication_refused"] is None


def test_direct_is_refused_when_matching_allows_no_meeting(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault, process_types=("shuttle", "letter_exchange"))
    for party in (harmed, harmer):
        assess(store, outbox, vault, case_id, party)
    before = store.counts()
    with pytest.raises(Conflict) as refused:
        workflow.decide_safety(store, case_id, {"decision": "direct", "reasons": ["both_willing"]}, FACILITATOR,
                               outbox, vault)
    assert refused.value.details["reason"] == "assessment_excludes_direct" and store.counts() == before
    assert workflow.decide_safety(store, case_id, {"decision": "indirect_only", "reasons": ["matching"]},
                                  FACILITATOR, outbox, vault)["decision"] == "indirect_only"


def test_stop_closes_the_case_for_safety_in_the_same_change(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    answer = decided(store, outbox, vault, case_id, (harmed, harmer), "stop")
    assert answer["status"] == "CLOSED" and answer["communication_refused"] == "safety_stop"
    case = store.load_case(case_id)
    assert case.closure["reason"] == "safety_stop"
    assert [e["type"] for e in store.change(change_key(case_id, case.version)).outbox] == [
        "case.safety_decided", "case.status_changed", "case.closed"]
    assert events(outbox, "case.closed")[-1]["data"]["reason"] == "safety_stop"
    with pytest.raises(Conflict) as closed:
        workflow.decide_safety(store, case_id, {"decision": "direct", "reasons": ["x"]}, FACILITATOR, outbox, vault)
    assert closed.value.details["reason"] == "case_closed"


def test_safety_notes_are_sealed_under_the_case_record_and_read_back_only_by_who_may(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    for party in (harmed, harmer):
        assess(store, outbox, vault, case_id, party)
    workflow.record_contact(store, case_id, contact(harmer, notes="harmer notes " + SECRET), FACILITATOR, outbox,
                            vault)
    decision = workflow.decide_safety(store, case_id, {"decision": "indirect_only", "reasons": ["fear"],
                                                       "notes": SECRET}, FACILITATOR, outbox, vault)
    assert SECRET not in stored(store) and "notes" not in decision
    logged = len(store.all_accesses())
    view = workflow.case_view(store, case_id, FACILITATOR, vault)
    assert view["safety_decisions"][0]["notes"] == SECRET
    assert view["preparation_contacts"][0]["notes"] == "harmer notes " + SECRET
    reads = store.all_accesses()[logged:]
    owner = store.load_case(case_id).sensitive["owner_id"]
    assert {(a.party_id, tuple(a.fields_released)) for a in reads if a.fields_released and
            a.fields_released[0].endswith(".notes")} == {
        (harmer, (f"{view['preparation_contacts'][0]['contact_id']}.notes",)),
        (owner, (f"{decision['decision_id']}.notes",))}
    hidden = workflow.case_view(store, case_id, principal("auditor", national=True), vault)
    assert SECRET not in json.dumps(hidden) and "notes" not in hidden["safety_decisions"][0]
    assert hidden["safety"]["decision"] == "indirect_only" and "sealed" not in json.dumps(hidden)


# --- supervision --------------------------------------------------------------------

def test_a_supervisor_other_than_the_decider_signs_off_and_a_new_decision_resets_it(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault, body=referral_body(2, region="south-wales"))  # DA
    with pytest.raises(Conflict) as nothing:
        workflow.decide_supervision(store, case_id, {"decision": "approved"}, SUPERVISOR, outbox)
    assert nothing.value.details["reason"] == "safety_decision_missing"
    decision = decided(store, outbox, vault, case_id, (harmed, harmer), who=SUPERVISOR)
    assert decision["supervision_required"] and decision["communication_refused"] == "supervision_signoff_missing"
    with pytest.raises(Conflict) as own:
        workflow.decide_supervision(store, case_id, {"decision": "approved"}, SUPERVISOR, outbox)
    assert own.value.details["reason"] == "supervisor_made_the_decision"
    decision = workflow.decide_safety(store, case_id, {"decision": "indirect_only", "reasons": ["fear"]},
                                      FACILITATOR, outbox, vault)
    signed = workflow.decide_supervision(store, case_id, {"decision": "approved"}, SUPERVISOR, outbox)
    assert signed["communication_refused"] is None and signed["decision_id"] == decision["decision_id"]
    assert events(outbox, "case.supervision_decided")[-1]["data"] == {
        "case_id": case_id, "decision": "approved", "safety_decision": "indirect_only"}
    with pytest.raises(Conflict) as twice:
        workflow.decide_supervision(store, case_id, {"decision": "refused"}, COORDINATOR, outbox)
    assert twice.value.details["reason"] == "supervision_already_decided"
    workflow.decide_safety(store, case_id, {"decision": "indirect_only", "reasons": ["changed"]}, FACILITATOR,
                           outbox, vault)
    case = store.load_case(case_id)
    assert case.supervision == {} and len(case.safety_decisions) == 3 and len(case.supervisions) == 1
    view = workflow.case_view(store, case_id, COORDINATOR, vault)
    assert view["communication_refused"] == "supervision_signoff_missing" and len(view["supervisions"]) == 1


def test_a_case_without_supervision_refuses_a_sign_off(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    decided(store, outbox, vault, case_id, (harmed, harmer))
    with pytest.raises(Conflict) as refused:
        workflow.decide_supervision(store, case_id, {"decision": "approved"}, SUPERVISOR, outbox)
    assert refused.value.details["reason"] == "supervision_not_required"
    with pytest.raises(BadRequest) as bad:
        workflow.decide_supervision(store, case_id, {"decision": "maybe", "reason": "Not a code"}, SUPERVISOR, outbox)
    assert set(bad.value.details["fields"]) == {"decision", "reason"}


# --- the parties' items ---------------------------------------------------------------

def grant_share(store, outbox, case_id, author, named, to_role, granted=True):
    workflow.record_consent(store, case_id, {"participant_id": author, "scope": "share_item", "granted": granted,
                                             "item": named, "with_role": to_role}, FACILITATOR, outbox)


def test_an_item_is_sealed_under_its_author_and_goes_to_the_other_party_only_through_the_gate_with_consent(
        store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    item = workflow.record_item(store, case_id, {"author_id": harmed, "kind": "impact_statement", "content": SECRET},
                                FACILITATOR, outbox, vault)
    item_id = item["item_id"]
    assert events(outbox, "voice.item_recorded")[-1]["data"] == {
        "case_id": case_id, "item_id": item_id, "author_role": "harmed", "kind": "impact_statement"}
    assert SECRET not in stored(store) and SECRET not in json.dumps(events(outbox)) and "content" not in item
    release = {"to_role": "harmer"}

    def refused():
        before = store.counts()
        with pytest.raises(Conflict) as conflict:
            workflow.release_item(store, case_id, item_id, release, FACILITATOR, outbox)
        assert store.counts() == before
        return conflict.value.details["reason"]

    assert refused() == "safety_decision_missing"
    decided(store, outbox, vault, case_id, (harmed, harmer))
    assert refused() == "share_consent_missing"
    grant_share(store, outbox, case_id, harmed, item_id, "supporter")
    assert refused() == "share_consent_missing"
    grant_share(store, outbox, case_id, harmed, "impact_statement", "harmer")
    grant_share(store, outbox, case_id, harmed, item_id, "harmer", granted=False)
    assert refused() == "share_consent_missing"
    grant_share(store, outbox, case_id, harmed, item_id, "harmer")
    released = workflow.release_item(store, case_id, item_id, release, FACILITATOR, outbox)
    assert (released["to_role"], released["by"], released["via"]) == ("harmer", "facilitator:fac-1", "shuttle")
    assert released["consent"]["item"] == item_id and released["consent"]["granted"] is True
    assert events(outbox, "voice.item_released")[-1]["data"] == {
        "case_id": case_id, "item_id": item_id, "kind": "impact_statement", "author_role": "harmed",
        "to_role": "harmer"}
    assert refused() == "already_released"
    with pytest.raises(NotFound):
        workflow.release_item(store, case_id, "item-" + "0" * 32, release, FACILITATOR, outbox)
    view = workflow.case_view(store, case_id, principal("auditor", national=True), vault)
    assert view["voice_items"][0]["releases"][0]["to_role"] == "harmer" and SECRET not in json.dumps(view)


def test_items_are_read_back_by_caseworkers_who_may_and_every_read_is_logged(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    question = workflow.record_item(store, case_id, {"author_id": harmed, "kind": "question",
                                                     "content": "Why our house?"}, FACILITATOR, outbox, vault)
    workflow.record_item(store, case_id, {"author_id": harmer, "kind": "answer", "in_reply_to": question["item_id"],
                                          "content": SECRET}, FACILITATOR, outbox, vault)
    logged = len(store.all_accesses())
    listed = workflow.list_items(store, case_id, FACILITATOR, vault)["items"]
    assert [(i["kind"], i["content"]) for i in listed] == [("question", "Why our house?"), ("answer", SECRET)]
    assert listed[1]["in_reply_to"] == question["item_id"]
    reads = store.all_accesses()[logged:]
    assert sorted((a.party_id, a.purpose, a.granted) for a in reads) == sorted(
        [(harmed, "voice_items", True), (harmer, "voice_items", True)])
    offered = principal("facilitator", subject="fac-2")
    workflow.advance_for_event(store, matching_event("facilitator.assigned", case_id, facilitator_id="fac-2",
                                                     assignment_id="a-2"), outbox)
    hidden = workflow.list_items(store, case_id, offered, vault)["items"]
    assert all("content" not in i for i in hidden) and len(store.all_accesses()) == logged + 2
    with pytest.raises(BadRequest) as bad:
        workflow.record_item(store, case_id, {"author_id": harmer, "kind": "impact_statement", "content": "x"},
                             FACILITATOR, outbox, vault)
    assert set(bad.value.details["fields"]) == {"kind"}


def test_an_erased_authors_items_are_unreadable_and_never_released(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    letter = workflow.record_item(store, case_id, {"author_id": harmer, "kind": "letter", "content": SECRET},
                                  FACILITATOR, outbox, vault)
    workflow.record_contact(store, case_id, contact(harmer, notes="notes " + SECRET), FACILITATOR, outbox, vault)
    decided(store, outbox, vault, case_id, (harmed, harmer))
    grant_share(store, outbox, case_id, harmer, "letter", "harmed")
    with pytest.raises(BadRequest) as unread:
        workflow.release_item(store, case_id, letter["item_id"], {"to_role": "harmed"}, FACILITATOR, outbox)
    assert set(unread.value.details["fields"]) == {"reviewed"}
    workflow.erase_participant(store, case_id, harmer, COORDINATOR, outbox)
    case = store.load_case(case_id)
    assert case.voice_items[0]["sealed"] is None and case.preparation_contacts[0]["sealed"] is None
    assert workflow.case_view(store, case_id, COORDINATOR, vault)["preparation_contacts"][0]["notes"] is None
    listed = workflow.list_items(store, case_id, COORDINATOR, vault)["items"]
    assert listed[0]["content"] is None and listed[0]["erased"] is True
    assert store.all_accesses()[-1].reason == "personal_data_erased"
    with pytest.raises(Conflict) as erased:
        workflow.release_item(store, case_id, letter["item_id"], {"to_role": "harmed", "reviewed": True},
                              FACILITATOR, outbox)
    assert erased.value.details["reason"] == "author_erased"
    with pytest.raises(Conflict):
        workflow.record_item(store, case_id, {"author_id": harmer, "kind": "message", "content": "x"}, FACILITATOR,
                             outbox, vault)


def test_the_intervention_cannot_start_before_the_gate_opens(store, outbox, vault):
    case_id, harmed, harmer = allocated(store, outbox, vault)
    workflow.record_contact(store, case_id, contact(harmed), FACILITATOR, outbox, vault)
    with pytest.raises(Conflict) as refused:
        workflow.transition_case(store, case_id, {"to": "INTERVENTION"}, FACILITATOR, outbox)
    assert refused.value.details["reason"] == "safety_decision_missing"
    assert store.load_case(case_id).status == "PREPARATION"
    decided(store, outbox, vault, case_id, (harmed, harmer))
    moved = workflow.transition_case(store, case_id, {"to": "INTERVENTION"}, FACILITATOR, outbox)
    assert moved["status"] == "INTERVENTION"
