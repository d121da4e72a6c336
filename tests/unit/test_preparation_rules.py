"""Preparation's rules (pure): the bodies, when work may be recorded, risk levels, when a
safety decision may be made, and who may sign it off."""
from datetime import timedelta

import pytest
from marshmallow import ValidationError

from services.referrals import preparation
from services.referrals.cases import Case
from services.referrals.deadlines import today_in_london

HARMED, HARMER, SUPPORTER = "p-" + "1" * 32, "p-" + "2" * 32, "p-" + "3" * 32
FACTORS = {"safety": "low", "power_imbalance": "none", "capacity": "none", "substance_use": "medium",
           "mental_health": "low", "support_needs": "none", "access_needs": "none"}


def case(status="PREPARATION", flags=(), offence="burglary", process_types=("direct_conference", "shuttle"),
         assessed=(), held_from=None, **fields):
    participants = [{"party_id": HARMED, "role": "harmed", "sealed": "x"},
                    {"party_id": HARMER, "role": "harmer", "sealed": "x"},
                    {"party_id": SUPPORTER, "role": "supporter", "sealed": "x"}]
    assessments = [{"assessment_id": f"risk-{i}", "participant_id": pid, "factors": dict(FACTORS, **levels)}
                   for i, (pid, levels) in enumerate(assessed)]
    return Case(case_id="c-1", status=status, agency="a", region="r", held_from=held_from,
                attributes={"flags": list(flags), "offence_category": offence}, referrer={"party_id": "ref-1"},
                participants=participants, assessment={"process_types": list(process_types)},
                risk_assessments=assessments, **fields)


def both(**harmer_levels):
    return [(HARMED, {}), (HARMER, harmer_levels)]


# --- the bodies -----------------------------------------------------------------

def test_a_contact_body_names_every_fault():
    schema = preparation.ContactSchema()
    with pytest.raises(ValidationError) as bad:
        schema.load({"participant_id": "ref-1", "method": "pigeon", "outcome": "maybe", "notes": "x" * 4001,
                     "extra": 1})
    assert set(bad.value.messages) == {"participant_id", "method", "outcome", "held_on", "notes", "extra"}
    tomorrow = today_in_london() + timedelta(days=1)
    with pytest.raises(ValidationError) as future:
        schema.load({"participant_id": HARMED, "method": "phone", "outcome": "reached",
                     "held_on": tomorrow.isoformat()})
    assert set(future.value.messages) == {"held_on"}
    today = schema.load({"participant_id": HARMED, "method": "visit", "outcome": "reached",
                         "held_on": today_in_london().isoformat()})
    assert "notes" not in today


def test_a_risk_assessment_needs_all_seven_factors_as_levels():
    schema = preparation.RiskAssessmentSchema()
    assert schema.load({"participant_id": HARMED, "factors": FACTORS})["factors"] == FACTORS
    partial = {k: v for k, v in FACTORS.items() if k != "capacity"}
    with pytest.raises(ValidationError) as bad:
        schema.load({"participant_id": HARMED, "factors": dict(partial, safety="extreme", mood="low")})
    assert set(bad.value.messages["factors"]) == {"capacity", "safety", "mood"}


def test_a_safety_decision_needs_a_decision_and_distinct_reason_codes():
    schema = preparation.SafetyDecisionSchema()
    for body, faults in (({"decision": "maybe", "reasons": []}, {"decision", "reasons"}),
                         ({"decision": "direct"}, {"reasons"}),
                         ({"decision": "direct", "reasons": ["Not A Code"]}, {"reasons"}),
                         ({"decision": "stop", "reasons": ["a", "a"]}, {"reasons"})):
        with pytest.raises(ValidationError) as bad:
            schema.load(body)
        assert set(bad.value.messages) == faults, body
    assert preparation.SupervisionSchema().load({"decision": "refused", "reason": "needs_more_work"})


# --- rules ----------------------------------------------------------------------

def test_work_is_recorded_from_allocation_until_closure_on_hold_too():
    assert preparation.work_refused(case("ASSESSMENT")) == "not_allocated"
    assert preparation.work_refused(case("CLOSED")) == "case_closed"
    for status in ("ALLOCATED", "PREPARATION", "INTERVENTION", "FOLLOW_UP"):
        assert preparation.work_refused(case(status)) is None
    assert preparation.work_refused(case("ON_HOLD", held_from="PREPARATION")) is None
    assert preparation.work_refused(case("ON_HOLD", held_from="TRIAGE")) == "not_allocated"


def test_overall_is_the_highest_factor():
    assert preparation.overall(FACTORS) == "medium"
    assert preparation.overall(dict.fromkeys(FACTORS, "none")) == "none"
    assert preparation.overall(dict(FACTORS, access_needs="high")) == "high"


def test_risk_is_assessed_with_the_parties_only():
    assert preparation.participant_faults({"party_id": SUPPORTER, "role": "supporter"}, parties_only=True) == {
        "participant_id": ["Risk is assessed with the parties (harmed, harmer) only."]}
    assert preparation.participant_faults({"party_id": SUPPORTER, "role": "supporter"}) == {}
    assert set(preparation.participant_faults(None)) == {"participant_id"}
    assert set(preparation.participant_faults({"party_id": "ref-1", "role": "referrer"})) == {"participant_id"}


def test_no_safety_decision_until_both_parties_are_assessed():
    assert preparation.decision_refused(case(), "indirect_only") == "risk_assessment_missing"
    assert preparation.decision_refused(case(assessed=[(HARMED, {})]), "stop") == "risk_assessment_missing"
    assert preparation.unassessed_parties(case(assessed=[(HARMED, {})])) == [HARMER]
    assert preparation.decision_refused(case(assessed=both()), "indirect_only") is None
    assert preparation.decision_refused(case("CLOSED", assessed=both()), "stop") == "case_closed"


def test_direct_needs_a_direct_process_from_matching_and_no_party_at_high_risk_to_safety():
    assert preparation.decision_refused(case(assessed=both()), "direct") is None
    assert preparation.decision_refused(case(process_types=("shuttle", "letter_exchange"), assessed=both()),
                                        "direct") == "assessment_excludes_direct"
    assert preparation.decision_refused(case(process_types=(), assessed=both()), "direct") == \
        "assessment_excludes_direct"
    assert preparation.decision_refused(case(process_types=("youth_panel",), assessed=both()), "direct") is None
    high = case(assessed=both(safety="high"))
    assert preparation.decision_refused(high, "direct") == "party_safety_high"
    assert preparation.decision_refused(high, "indirect_only") is None
    # a later assessment replaces the earlier for decisions
    reassessed = case(assessed=both(safety="high") + [(HARMER, {"safety": "low"})])
    assert preparation.decision_refused(reassessed, "direct") is None
    assert preparation.current_assessments(reassessed)[HARMER]["assessment_id"] == "risk-2"
    # other factors at high do not forbid a meeting by themselves: the facilitator weighs them
    assert preparation.decision_refused(case(assessed=both(mental_health="high")), "direct") is None


def test_a_new_decision_resets_the_sign_off_and_is_kept_in_history():
    decided = case(assessed=both(), flags=["domestic_abuse"], supervision={"decision": "approved"},
                   safety_decisions=[{"decision_id": "safety-old"}])
    record = preparation.decision_record(decided, {"decision": "indirect_only", "reasons": ["a"], "notes": "n"},
                                         "facilitator:f", "now", "sealed")
    assert record["supervision_required"] is True and record["has_notes"] is True
    state = preparation.decision_state(decided, record)
    assert state["supervision"] == {} and [d["decision_id"] for d in state["safety_decisions"]] == [
        "safety-old", record["decision_id"]]
    assert "sealed" not in state["safety"] and state["safety"]["decision"] == "indirect_only"
    stop = preparation.decision_record(decided, {"decision": "stop", "reasons": ["a"]}, "f", "now", None)
    assert stop["supervision_required"] is False   # stopping never waits for a sign-off


def test_a_supervisor_signs_off_a_current_non_stop_decision_once_and_never_their_own():
    def supervised(decision="indirect_only", by="facilitator:f", signed=None, flags=("sexual_offence",)):
        return case(flags=flags, safety={"decision": decision, "by": by, "decision_id": "safety-1"} if decision else {},
                    supervision={"decision": signed} if signed else {})

    assert preparation.supervision_refused(supervised(), "coordinator:c") is None
    assert preparation.supervision_refused(supervised(None), "coordinator:c") == "safety_decision_missing"
    assert preparation.supervision_refused(supervised("stop"), "coordinator:c") == "safety_stop"
    assert preparation.supervision_refused(supervised(flags=()), "coordinator:c") == "supervision_not_required"
    assert preparation.supervision_refused(supervised(signed="refused"), "coordinator:c") == \
        "supervision_already_decided"
    assert preparation.supervision_refused(supervised(by="coordinator:c"), "coordinator:c") == \
        "supervisor_made_the_decision"
    record = preparation.supervision_record(supervised(), {"decision": "approved"}, "coordinator:c", "now")
    assert (record["decision_id"], record["safety_decision"], record["reason"]) == ("safety-1", "indirect_only", None)


def test_a_contact_reaching_the_harmed_person_tells_them_about_rj_once():
    harmed, harmer = {"role": "harmed"}, {"role": "harmer"}
    assert preparation.tells_victim(case(), harmed, "reached")
    assert not preparation.tells_victim(case(), harmed, "no_answer")
    assert not preparation.tells_victim(case(), harmer, "reached")
    assert not preparation.tells_victim(case(victim_told_at="earlier"), harmed, "reached")
    assert preparation.starts_preparation(case("ALLOCATED")) and not preparation.starts_preparation(case())
