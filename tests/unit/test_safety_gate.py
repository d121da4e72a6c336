"""The gate before the parties communicate: a safety decision, then supervision where required (pure)."""
import pytest

from services.referrals import safety
from services.referrals.cases import Case


def case(flags=(), offence="burglary", decision=None, signed=None):
    return Case(case_id="c-1", status="PREPARATION", agency="a", region="r",
                attributes={"flags": list(flags), "offence_category": offence}, referrer={"party_id": "p-r"},
                safety={"decision": decision} if decision else {},
                supervision={"decision": signed} if signed else {})


def test_nothing_passes_before_the_facilitators_safety_decision():
    assert safety.communication_refused(case()) == "safety_decision_missing"
    assert safety.process_refused(case(), "shuttle") == "safety_decision_missing"


def test_a_stop_decision_refuses_everything():
    assert safety.communication_refused(case(decision="stop")) == "safety_stop"


def test_indirect_only_allows_shuttle_and_letters_but_no_meeting():
    decided = case(decision="indirect_only")
    assert safety.process_refused(decided, "shuttle") is None
    assert safety.process_refused(decided, "letter_exchange") is None
    for meeting in ("direct_conference", "group_conference", "youth_panel"):
        assert safety.process_refused(decided, meeting) == "indirect_only"
    assert safety.process_refused(case(decision="direct"), "direct_conference") is None


@pytest.mark.parametrize("flags,offence", [(["domestic_abuse"], "violence_against_the_person"),
                                           ([], "sexual_offence"), (["sexual_offence"], "other")])
def test_sexual_offence_and_domestic_abuse_need_a_supervisors_approval_too(flags, offence):
    assert safety.supervision_required(case(flags, offence))
    assert safety.communication_refused(case(flags, offence, "indirect_only")) == "supervision_signoff_missing"
    assert safety.communication_refused(case(flags, offence, "indirect_only", "refused")) == "supervision_refused"
    assert safety.communication_refused(case(flags, offence, "indirect_only", "approved")) is None


def test_other_cases_need_no_supervision():
    assert not safety.supervision_required(case(["hate_crime"], "hate_crime"))
    assert safety.communication_refused(case(["hate_crime"], "hate_crime", "direct")) is None
