"""The suitability policy (services/matching/policy/suitability-v2.yaml) on realistic
referrals: a table of input, expected decision and expected reason codes, no broker."""
import pytest

from services.matching import suitability, suitability_policy
from tests.factories import referral_received_data

POLICY = suitability_policy.load()  # the shipped defaults: no local policy allows domestic abuse cases
AFTER_SENTENCE = POLICY.with_local(court_cases_after_sentence_only=True)
# an area that has agreed a local policy allowing RJ in domestic abuse cases the harmed person asks for
DA_ALLOWED = POLICY.with_local(domestic_abuse_rj_allowed=True)
BASE = ["responsibility_accepted", "consent_to_be_obtained"]


def parties(harmed="50_64", harmer="25_34", harmed_lang="en", harmer_lang="en", extra=()):
    people = [
        {"participant_id": "p-1", "role": "harmed", "age_band": harmed, "language": harmed_lang, "access_needs": []},
        {"participant_id": "p-2", "role": "harmer", "age_band": harmer, "language": harmer_lang, "access_needs": []},
    ]
    return people + [dict(p) for p in extra]


# (name, referral changes, assess options, policy, decision, reason codes (exactly, in order))
SCENARIOS = [
    ("burglary, harmed asks, pre-sentence", {}, {}, POLICY, "suitable", BASE),
    ("theft, out-of-court disposal, harmer asks",
     {"offence_category": "theft", "cjs_stage": "out_of_court_disposal", "initiated_by": "harmer"}, {}, POLICY,
     "suitable", BASE),
    ("criminal damage pre-charge", {"offence_category": "criminal_damage", "cjs_stage": "pre_charge"}, {}, POLICY,
     "suitable", BASE),
    ("harmer denies burglary", {"harmer_accepts_responsibility": False}, {}, POLICY,
     "unsuitable", ["harmer_denies_responsibility", "consent_to_be_obtained"]),
    ("harmer denies, youth", {"harmer_accepts_responsibility": False, "flags": ["youth"]}, {}, POLICY,
     "unsuitable", ["harmer_denies_responsibility", "consent_to_be_obtained", "youth_case"]),
    ("harmed withdrew consent", {}, {"consent_withdrawn": True}, POLICY,
     "unsuitable", ["responsibility_accepted", "consent_withdrawn"]),
    ("DA asked for by the harmer", {"flags": ["domestic_abuse"], "initiated_by": "harmer"}, {}, POLICY,
     "unsuitable", BASE + ["domestic_abuse_not_harmed_initiated", "domestic_abuse_not_allowed_locally"]),
    ("DA asked for by the harmer, where allowed locally", {"flags": ["domestic_abuse"], "initiated_by": "harmer"}, {},
     DA_ALLOWED, "unsuitable", BASE + ["domestic_abuse_not_harmed_initiated"]),
    ("DA asked for by the harmed, no local policy allows it (shipped defaults)", {"flags": ["domestic_abuse"]},
     {"specialist_available": True}, POLICY,
     "unsuitable", BASE + ["domestic_abuse_not_allowed_locally", "specialist_review_domestic_abuse"]),
    ("DA asked for by the harmed, allowed locally, specialist available",
     {"flags": ["domestic_abuse"], "initiated_by": "harmed"}, {"specialist_available": True}, DA_ALLOWED,
     "needs_review", BASE + ["specialist_review_domestic_abuse"]),
    ("DA asked for by the harmed, allowed locally, no specialist", {"flags": ["domestic_abuse"]},
     {"specialist_available": False}, DA_ALLOWED,
     "unsuitable", BASE + ["domestic_abuse_no_specialist", "specialist_review_domestic_abuse"]),
    ("DA in custody, enhanced-rights victim (sample referral 3), shipped defaults",
     {"flags": ["domestic_abuse", "enhanced_rights_victim"], "cjs_stage": "custody",
      "offence_category": "violence_against_the_person", "region": "gwent"},
     {"specialist_available": True}, POLICY, "unsuitable",
     BASE + ["domestic_abuse_not_allowed_locally", "specialist_review_domestic_abuse", "serious_violence",
             "custody_prison_vetting", "enhanced_rights_victim"]),
    ("DA in custody, enhanced-rights victim (sample referral 3), allowed locally",
     {"flags": ["domestic_abuse", "enhanced_rights_victim"], "cjs_stage": "custody",
      "offence_category": "violence_against_the_person", "region": "gwent"},
     {"specialist_available": True}, DA_ALLOWED, "needs_review",
     BASE + ["specialist_review_domestic_abuse", "serious_violence", "custody_prison_vetting",
             "enhanced_rights_victim"]),
    ("GBV asked for by the harmer", {"flags": ["gender_based_violence"], "initiated_by": "harmer"}, {}, POLICY,
     "unsuitable", BASE + ["gbv_harmer_initiated"]),
    ("GBV asked for by the harmed", {"flags": ["gender_based_violence"]}, {}, POLICY,
     "needs_review", BASE + ["gbv_no_direct_meeting"]),
    ("sexual offence category, harmed asks", {"offence_category": "sexual_offence"}, {}, POLICY,
     "needs_review", BASE + ["specialist_review_sexual_offence"]),
    ("sexual offence flag on an assault, in custody",
     {"offence_category": "violence_against_the_person", "flags": ["sexual_offence"], "cjs_stage": "custody"}, {},
     POLICY, "needs_review",
     BASE + ["specialist_review_sexual_offence", "serious_violence", "custody_prison_vetting"]),
    ("sexual offence, harmer denies", {"offence_category": "sexual_offence", "harmer_accepts_responsibility": False},
     {}, POLICY, "unsuitable",
     ["harmer_denies_responsibility", "consent_to_be_obtained", "specialist_review_sexual_offence"]),
    ("hate crime category, community sentence", {"offence_category": "hate_crime", "cjs_stage": "community_sentence"},
     {}, POLICY, "suitable", BASE + ["hate_crime_specialist"]),
    ("racially aggravated public order (hate flag)", {"offence_category": "public_order", "flags": ["hate_crime"]}, {},
     POLICY, "suitable", BASE + ["hate_crime_specialist"]),
    ("common assault pre-charge", {"offence_category": "violence_against_the_person", "cjs_stage": "pre_charge"}, {},
     POLICY, "suitable", BASE + ["violence_against_the_person"]),
    ("wounding, harmer serving custody", {"offence_category": "violence_against_the_person", "cjs_stage": "custody"},
     {}, POLICY, "suitable", BASE + ["serious_violence", "custody_prison_vetting"]),
    ("robbery, harmer in custody", {"offence_category": "robbery", "cjs_stage": "custody"}, {}, POLICY,
     "suitable", BASE + ["custody_prison_vetting"]),
    ("pre-sentence where policy says after sentence only", {}, {}, AFTER_SENTENCE,
     "needs_review", BASE + ["court_case_awaiting_sentence"]),
    ("community sentence where policy says after sentence only", {"cjs_stage": "community_sentence"}, {},
     AFTER_SENTENCE, "suitable", BASE),
    ("pre-charge where policy says after sentence only", {"cjs_stage": "pre_charge"}, {}, AFTER_SENTENCE,
     "suitable", BASE),
    ("YOT referral: youth flag, out-of-court (sample referral 2)",
     {"flags": ["youth"], "cjs_stage": "out_of_court_disposal", "initiated_by": "harmer",
      "participants": parties(harmer="under_18")}, {}, POLICY, "suitable",
     BASE + ["youth_case", "youth_offender_panel"]),
    ("under-18 harmer, no youth flag", {"participants": parties(harmer="under_18")}, {}, POLICY,
     "suitable", BASE + ["youth_case", "youth_offender_panel"]),
    ("under-18 victim of theft", {"offence_category": "theft", "participants": parties(harmed="under_18")}, {},
     POLICY, "suitable", BASE + ["youth_case"]),
    ("under-18 victim of an adult's assault, youth flag",
     {"offence_category": "violence_against_the_person", "flags": ["youth"],
      "participants": parties(harmed="under_18", harmer="35_49")}, {}, POLICY, "suitable",
     BASE + ["violence_against_the_person", "youth_case"]),
    ("under-18 harmer and victim, criminal damage", {"offence_category": "criminal_damage",
                                                     "participants": parties(harmed="under_18", harmer="under_18")},
     {}, POLICY, "suitable", BASE + ["youth_case", "youth_offender_panel"]),
    ("harmer aged 19", {"participants": parties(harmer="18_24")}, {}, POLICY, "suitable", BASE + ["young_adult"]),
    ("enhanced-rights victim of burglary", {"flags": ["enhanced_rights_victim"]}, {}, POLICY,
     "suitable", BASE + ["enhanced_rights_victim"]),
    ("Welsh-speaking parties, arson", {"offence_category": "arson",
                                       "participants": parties(harmed_lang="cy", harmer_lang="cy")}, {}, POLICY,
     "suitable", BASE),
    ("youth hate crime in custody",
     {"offence_category": "hate_crime", "cjs_stage": "custody", "participants": parties(harmer="under_18")}, {},
     POLICY, "suitable",
     BASE + ["hate_crime_specialist", "custody_prison_vetting", "youth_case", "youth_offender_panel"]),
    ("antisocial behaviour, harmer asks, pre-charge",
     {"offence_category": "antisocial_behaviour", "cjs_stage": "pre_charge", "initiated_by": "harmer"}, {}, POLICY,
     "suitable", BASE),
    ("fraud against an elderly victim, enhanced rights, community sentence",
     {"offence_category": "fraud", "cjs_stage": "community_sentence", "flags": ["enhanced_rights_victim"],
      "participants": parties(harmed="65_plus")}, {}, POLICY, "suitable", BASE + ["enhanced_rights_victim"]),
    ("DA and GBV, harmer asks", {"flags": ["domestic_abuse", "gender_based_violence"], "initiated_by": "harmer"}, {},
     POLICY, "unsuitable",
     BASE + ["domestic_abuse_not_harmed_initiated", "domestic_abuse_not_allowed_locally", "gbv_harmer_initiated"]),
    ("DA and youth, harmed asks, allowed locally, specialist available",
     {"flags": ["domestic_abuse", "youth"], "participants": parties(harmed="under_18", harmer="18_24")},
     {"specialist_available": True}, DA_ALLOWED, "needs_review",
     BASE + ["specialist_review_domestic_abuse", "youth_case"]),
    ("motoring offence, consent withdrawn by harmer after referral",
     {"offence_category": "motoring", "initiated_by": "harmer"}, {"consent_withdrawn": True}, POLICY,
     "unsuitable", ["responsibility_accepted", "consent_withdrawn"]),
]


@pytest.mark.parametrize("name, changes, options, policy, decision, codes", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario(name, changes, options, policy, decision, codes):
    outcome = suitability.assess(referral_received_data(**changes), policy, **options)
    assert outcome.decision == decision
    assert outcome.codes == codes
    assert all(reason.text.strip() for reason in outcome.reasons)
    assert outcome.policy_version == "suitability-v2"
    if decision == "unsuitable":
        assert outcome.process_types == []


def test_there_are_at_least_thirty_scenarios():
    assert len(SCENARIOS) >= 30


def test_outcome_fields_for_a_sexual_offence():
    outcome = suitability.assess(referral_received_data(offence_category="sexual_offence"), POLICY)
    assert (outcome.risk_level, outcome.required_level, outcome.co_facilitation) == ("high", "advanced", True)
    assert outcome.required_endorsements == ["sexual_violence"]
    assert outcome.process_types == ["direct_conference", "shuttle", "letter_exchange"]


def test_domestic_abuse_asked_for_by_the_harmed_is_refused_unless_allowed_locally():
    harmed_asks = referral_received_data(flags=["domestic_abuse"], initiated_by="harmed")
    shipped = suitability.assess(harmed_asks, POLICY, specialist_available=True)
    assert POLICY.local["domestic_abuse_rj_allowed"] is False
    assert shipped.decision == "unsuitable" and "domestic_abuse_not_allowed_locally" in shipped.codes
    assert shipped.process_types == [] and shipped.risk_level == "high"
    allowed = suitability.assess(harmed_asks, DA_ALLOWED, specialist_available=True)
    assert allowed.decision == "needs_review" and "domestic_abuse_not_allowed_locally" not in allowed.codes


def test_domestic_abuse_needs_a_specialist_and_no_meeting():
    outcome = suitability.assess(referral_received_data(flags=["domestic_abuse"]), DA_ALLOWED,
                                 specialist_available=True)
    assert outcome.required_endorsements == ["domestic_abuse"]
    assert outcome.required_level == "advanced" and outcome.co_facilitation
    assert outcome.process_types == ["shuttle", "letter_exchange"]


def test_gender_based_violence_never_gets_a_direct_meeting():
    outcome = suitability.assess(referral_received_data(flags=["gender_based_violence"]), POLICY)
    assert "direct_conference" not in outcome.process_types and "group_conference" not in outcome.process_types


def test_custody_needs_prison_vetting():
    custody = suitability.assess(referral_received_data(cjs_stage="custody"), POLICY)
    assert custody.prison_vetting and custody.risk_level == "medium"
    plain = suitability.assess(referral_received_data(), POLICY)
    assert not plain.prison_vetting and "youth_panel" not in plain.process_types
    assert (plain.risk_level, plain.required_level, plain.co_facilitation) == ("low", "intermediate", False)


@pytest.mark.parametrize("flags", [[], ["youth"]])
def test_a_child_harmed_by_an_adult_needs_youth_endorsed_facilitators_but_no_youth_panel(flags):
    outcome = suitability.assess(
        referral_received_data(flags=flags, participants=parties(harmed="under_18", harmer="25_34")), POLICY)
    assert outcome.required_endorsements == ["youth"]
    assert "youth_panel" not in outcome.process_types
    assert outcome.process_types == ["direct_conference", "shuttle", "letter_exchange", "group_conference"]


def test_the_youth_flag_alone_asks_for_endorsed_facilitators_not_a_panel():
    outcome = suitability.assess(referral_received_data(flags=["youth"]), POLICY)  # both parties adults
    assert outcome.required_endorsements == ["youth"] and "youth_panel" not in outcome.process_types


@pytest.mark.parametrize("harmed", ["50_64", "under_18"])
def test_a_harmer_under_18_makes_a_youth_offender_panel_possible(harmed):
    outcome = suitability.assess(referral_received_data(participants=parties(harmed=harmed, harmer="under_18")),
                                 POLICY)
    assert "youth_panel" in outcome.process_types and outcome.required_endorsements == ["youth"]
    assert outcome.codes[-2:] == ["youth_case", "youth_offender_panel"]


def test_young_adult_prefers_but_does_not_require_youth_experience():
    outcome = suitability.assess(referral_received_data(participants=parties(harmer="18_24")), POLICY)
    assert outcome.preferred_endorsements == ["youth"] and outcome.required_endorsements == []


def test_event_data_validates_against_the_case_assessed_schema():
    from shared.events.schemas.matching import CaseAssessed
    for _, changes, options, policy, _, _ in SCENARIOS:
        data = suitability.assess(referral_received_data(**changes), policy, **options).event_data()
        assert CaseAssessed().validate({"case_id": "case-1", "assessment_id": "a-1", **data}) == {}


def test_a_coordinator_decision_keeps_the_requirements_and_adds_a_reason():
    review = suitability.assess(referral_received_data(offence_category="sexual_offence"), POLICY)
    approved = suitability.coordinator_outcome(review, "suitable", "specialist_risk_assessment_done")
    assert approved.decision == "suitable" and approved.codes[-1] == "coordinator_approved"
    assert approved.required_endorsements == ["sexual_violence"] and approved.co_facilitation
    declined = suitability.coordinator_outcome(review, "unsuitable", "risk_too_high")
    assert declined.process_types == [] and declined.codes[-1] == "coordinator_declined"
    assert suitability.Outcome.from_data(approved.event_data()).codes == approved.codes
