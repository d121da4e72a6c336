"""Reading the declarative policy file: a bad file is refused with its line and fault."""
import os

import pytest

from services.matching import suitability_policy
from services.matching.suitability_policy import Condition, PolicyError, parse

GOOD = """\
version: test-1
local:
  court_cases_after_sentence_only: false
defaults:
  decision: suitable
  risk_level: low
  required_level: intermediate
  co_facilitation: false
  process_types: [direct_conference, shuttle]
rules:
  - code: harmer_denies_responsibility
    text: The harmer does not accept responsibility.
    when: {harmer_accepts_responsibility: false}
    then: {decision: unsuitable}
  - code: awaiting_sentence
    text: Before sentence.
    when: {cjs_stage: pre_sentence, local.court_cases_after_sentence_only: true}
    then: {decision: needs_review}
"""


def broken(old, new):
    assert old in GOOD
    return GOOD.replace(old, new)


POLICY_DIR = os.path.dirname(suitability_policy.DEFAULT_PATH)


def test_the_repository_policy_loads():
    policy = suitability_policy.load()
    assert policy.version == "suitability-v2"
    assert len(policy.rules) >= 15
    assert {"court_cases_after_sentence_only", "domestic_abuse_rj_allowed"} <= set(policy.local)


def test_every_local_switch_ships_in_its_cautious_state():
    # an area turns them on (MATCHING_LOCAL_SWITCHES) once it has agreed a local policy
    assert suitability_policy.load().local == {"court_cases_after_sentence_only": False,
                                               "domestic_abuse_rj_allowed": False}


def test_v1_stays_beside_v2_as_the_record_and_v2_changes_only_what_it_says():
    v1 = suitability_policy.load(os.path.join(POLICY_DIR, "suitability-v1.yaml"))
    v2 = suitability_policy.load()
    assert v1.version == "suitability-v1" and v1.local["domestic_abuse_rj_allowed"] is True
    assert v2.local == {**v1.local, "domestic_abuse_rj_allowed": False}
    assert v2.defaults == v1.defaults

    def rules(policy):
        return {r.code: (r.text, r.when, r.then) for r in policy.rules}
    old, new = rules(v1), rules(v2)
    # the youth offender panel moved from any youth case to a harmer under 18
    assert old["youth_case"][2] == {"endorsements": ("youth",), "add_process_types": ("youth_panel",)}
    assert new["youth_case"][1:] == (old["youth_case"][1], {"endorsements": ("youth",)})
    assert new["youth_offender_panel"][1:] == ((Condition("harmer_under_18", "equals", True),),
                                               {"add_process_types": ("youth_panel",)})
    changed = {"youth_case", "youth_offender_panel"}
    assert set(new) == set(old) | changed
    assert {c: r for c, r in new.items() if c not in changed} == {c: r for c, r in old.items() if c not in changed}


def test_a_good_policy_parses():
    policy = parse(GOOD, "p.yaml")
    assert [r.code for r in policy.rules] == ["harmer_denies_responsibility", "awaiting_sentence"]
    assert policy.rules[1].line == 15


@pytest.mark.parametrize("text, line, fault", [
    (broken("decision: unsuitable}", "decision: unsuitable"), 15, "not valid YAML"),
    (broken("    then: {decision: unsuitable}", "    then: {decision: maybe}"), 14,
     "rule 'harmer_denies_responsibility' then.decision: 'maybe' is not one of"),
    (broken("when: {cjs_stage: pre_sentence,", "when: {cjs_stage: before_trial,"), 17,
     "rule 'awaiting_sentence' when.cjs_stage: 'before_trial' is not one of"),
    (broken("when: {harmer_accepts_responsibility: false}", "when: {harmer_accepts: false}"), 13,
     "rule 'harmer_denies_responsibility' when: unknown key 'harmer_accepts'"),
    (broken("  - code: awaiting_sentence", "  - code: harmer_denies_responsibility"), 15,
     "rule code 'harmer_denies_responsibility' is used twice"),
    (broken("local.court_cases_after_sentence_only: true", "local.after_sentence: true"), 17,
     "'local.after_sentence' is not a switch in 'local'"),
    (broken("  court_cases_after_sentence_only: false", "  court_cases_after_sentence_only: sometimes"), 3,
     "local.court_cases_after_sentence_only must be true or false"),
    (broken("  risk_level: low\n", ""), 5, "defaults: 'risk_level' is missing"),
    (broken("version: test-1", "version: Test 1"), 1, "version 'Test 1' must be lower-case"),
    (broken("    text: Before sentence.\n", ""), 15, "rule: 'text' is missing"),
    (broken("process_types: [direct_conference, shuttle]", "process_types: [direct_conference, zoom]"), 9,
     "defaults.process_types: 'zoom' is not one of"),
    (broken("  decision: suitable", "  decision: needs_review"), 5, "defaults.decision must be 'suitable'"),
    (broken("    then: {decision: unsuitable}", "    then: {decision: unsuitable, decision: suitable}"), 14,
     "'decision' is given twice"),
    (broken("then: {decision: needs_review}", "then: {co_facilitation: yes please}"), 18,
     "then.co_facilitation must be true or false"),
    ("", 1, "the policy file is empty"),
])
def test_a_bad_policy_names_the_line_and_the_fault(text, line, fault):
    with pytest.raises(PolicyError) as raised:
        parse(text, "p.yaml")
    assert raised.value.line == line, str(raised.value)
    assert fault in raised.value.fault, str(raised.value)
    assert str(raised.value).startswith(f"p.yaml:{line}: ")


# --- local switches a deployment sets (MATCHING_LOCAL_SWITCHES) ---

def test_local_switches_are_read_from_name_equals_value():
    policy = suitability_policy.load()
    assert suitability_policy.local_switches(None, policy) == {}
    assert suitability_policy.local_switches("  ", policy) == {}
    switched = suitability_policy.local_switches(
        "domestic_abuse_rj_allowed=true, court_cases_after_sentence_only = false", policy)
    assert switched == {"domestic_abuse_rj_allowed": True, "court_cases_after_sentence_only": False}
    assert policy.with_local(**switched).local["domestic_abuse_rj_allowed"] is True


@pytest.mark.parametrize("text, fault", [
    ("domestic_abuse_allowed=true", "unknown switch 'domestic_abuse_allowed' (policy test-1 has: "
                                    "court_cases_after_sentence_only)"),
    ("court_cases_after_sentence_only=yes", "court_cases_after_sentence_only must be true or false, not 'yes'"),
    ("court_cases_after_sentence_only=True", "must be true or false, not 'True'"),
    ("court_cases_after_sentence_only=", "must be true or false, not ''"),
    ("court_cases_after_sentence_only", "'court_cases_after_sentence_only' is not <switch>=true|false"),
    ("court_cases_after_sentence_only=true,", "'' is not <switch>=true|false"),
    ("court_cases_after_sentence_only=true,court_cases_after_sentence_only=false", "is given twice"),
    ({"court_cases_after_sentence_only": True}, "must be text like"),
])
def test_a_bad_local_switch_is_refused_naming_it(text, fault):
    with pytest.raises(suitability_policy.SwitchError) as refused:
        suitability_policy.local_switches(text, parse(GOOD, "p.yaml"))
    assert str(refused.value).startswith("MATCHING_LOCAL_SWITCHES")
    assert fault in str(refused.value), str(refused.value)


def test_with_local_takes_only_known_switches_and_booleans():
    policy = parse(GOOD, "p.yaml")
    with pytest.raises(KeyError):
        policy.with_local(after_sentence=True)
    with pytest.raises(TypeError):
        policy.with_local(court_cases_after_sentence_only="false")  # a truthy string would mislead
