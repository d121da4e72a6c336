import pytest

from services.referrals import lifecycle
from services.referrals.lifecycle import IllegalTransition, ReasonRequired, transition


def test_each_state_moves_on_to_the_next():
    for here, there in zip(lifecycle.MAIN_LINE, lifecycle.MAIN_LINE[1:]):
        step = transition(here, there)
        assert (step.from_status, step.to_status, step.closes) == (here, there, False)


def test_states_cannot_be_skipped_or_reversed():
    with pytest.raises(IllegalTransition) as caught:
        transition("RECEIVED", "ALLOCATED")
    assert caught.value.allowed == ["TRIAGE", "ON_HOLD", "CLOSED"]
    with pytest.raises(IllegalTransition):
        transition("ALLOCATED", "ASSESSMENT")


def test_intervention_may_skip_agreement_monitoring():
    assert transition("INTERVENTION", "FOLLOW_UP").to_status == "FOLLOW_UP"
    assert "ON_HOLD" not in lifecycle.allowed_from("INTERVENTION")


def test_on_hold_only_before_intervention_and_resumes_where_it_was():
    for status in lifecycle.MAIN_LINE:
        holdable = lifecycle.MAIN_LINE.index(status) < lifecycle.MAIN_LINE.index("INTERVENTION")
        assert ("ON_HOLD" in lifecycle.allowed_from(status)) is holdable
    step = transition("PREPARATION", "ON_HOLD", "awaiting_sentence")
    assert step.held_from == "PREPARATION"
    assert lifecycle.allowed_from("ON_HOLD", "PREPARATION") == ["PREPARATION", "CLOSED"]
    assert transition("ON_HOLD", "PREPARATION", held_from="PREPARATION").to_status == "PREPARATION"
    with pytest.raises(IllegalTransition):
        transition("ON_HOLD", "INTERVENTION", held_from="PREPARATION")


def test_closing_needs_a_reason_and_is_final():
    with pytest.raises(ReasonRequired):
        transition("TRIAGE", "CLOSED")
    with pytest.raises(ReasonRequired):
        transition("TRIAGE", "CLOSED", "bored")
    step = transition("TRIAGE", "CLOSED", "not_suitable")
    assert step.closes and step.reason == "not_suitable"
    assert transition("ON_HOLD", "CLOSED", "harmed_declined", held_from="TRIAGE").closes
    assert lifecycle.allowed_from("CLOSED") == []
    with pytest.raises(IllegalTransition):
        transition("CLOSED", "RECEIVED")


def test_only_holding_and_closing_take_a_reason():
    with pytest.raises(IllegalTransition):
        transition("RECEIVED", "TRIAGE", "because")


@pytest.mark.parametrize("status, event_type, data, expected", [
    ("RECEIVED", "case.assessed", {"decision": "suitable"}, "CONTACTING"),
    ("RECEIVED", "case.assessed", {"decision": "needs_review"}, "TRIAGE"),
    ("RECEIVED", "case.needs_review", {}, "TRIAGE"),
    ("CONTACTING", "facilitator.assigned", {}, "ASSESSMENT"),
    ("ASSESSMENT", "assignment.accepted", {}, "ALLOCATED"),
    ("RECEIVED", "assignment.accepted", {}, "ALLOCATED"),       # events may overtake one another
    ("ALLOCATED", "case.assessed", {"decision": "suitable"}, None),   # never backwards
    ("ALLOCATED", "assignment.accepted", {}, None),             # a repeat changes nothing
    ("ON_HOLD", "assignment.accepted", {}, None),               # a person decides
    ("CLOSED", "assignment.accepted", {}, None),
    ("RECEIVED", "assignment.declined", {}, None),              # not a step forward
])
def test_matching_events_only_move_a_case_forward(status, event_type, data, expected):
    step = lifecycle.advance_for_event(status, event_type, data)
    assert (step.to_status if step else None) == expected


def test_the_transition_body_schema_names_the_reason():
    schema = lifecycle.TransitionSchema()
    assert "reason" in schema.validate({"to": "CLOSED"})
    assert "reason" in schema.validate({"to": "TRIAGE", "reason": "x"})
    assert "to" in schema.validate({"to": "LIMBO"})
    assert schema.validate({"to": "CLOSED", "reason": "safety_stop"}) == {}
