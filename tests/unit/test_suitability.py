import pytest

from services.matching import suitability
from tests.factories import referral_received_data


@pytest.mark.parametrize("changes, decision, code", [
    ({}, "suitable", "responsibility_accepted"),
    ({"harmer_accepts_responsibility": False}, "unsuitable", "harmer_denies_responsibility"),
    ({"flags": ["domestic_abuse"], "initiated_by": "harmer"}, "unsuitable", "domestic_abuse_not_harmed_initiated"),
    ({"flags": ["domestic_abuse"], "initiated_by": "harmed"}, "needs_review", "specialist_review_domestic_abuse"),
    ({"flags": ["sexual_offence"]}, "needs_review", "specialist_review_sexual_offence"),
    ({"flags": ["hate_crime"]}, "needs_review", "specialist_review_hate_crime"),
    ({"flags": ["youth"]}, "suitable", "youth_case"),
])
def test_decisions_carry_their_reasons(changes, decision, code):
    outcome = suitability.assess(referral_received_data(**changes))
    assert outcome.decision == decision
    assert code in [r.code for r in outcome.reasons]
    assert all(r.text for r in outcome.reasons)
    assert outcome.policy_version == suitability.POLICY_VERSION


def test_sensitive_cases_need_an_advanced_lead_and_a_co_facilitator():
    outcome = suitability.assess(referral_received_data(flags=["sexual_offence"]))
    assert outcome.required_level == "advanced"
    assert outcome.co_facilitation is True
    assert "direct_conference" not in outcome.process_types


def test_youth_cases_require_the_youth_endorsement():
    assert suitability.required_endorsements(referral_received_data(flags=["youth"])) == {"youth"}
    assert suitability.required_endorsements(referral_received_data()) == set()
