"""The schemas that check matching's request bodies (and that its OpenAPI document lists)."""
import pytest

from services.matching import review
from services.matching.facilitator_records import InvalidFacilitator, parse_changes


def test_a_change_needs_only_the_fields_it_changes_but_a_conflict_given_is_whole():
    assert parse_changes({"capacity": 2}) == {"capacity": 2}
    # found by fuzzing: a conflict without its kind once reached the store and failed there
    with pytest.raises(InvalidFacilitator) as refused:
        parse_changes({"conflicts": [{}]})
    assert refused.value.errors == {"conflicts": {0: {"kind": ["Missing data for required field."],
                                                      "ref": ["Missing data for required field."]}}}
    for fixed in ("facilitator_id", "active", "last_active"):
        with pytest.raises(InvalidFacilitator) as refused:
            parse_changes({fixed: "x"})
        assert set(refused.value.errors) == {fixed}


def test_a_review_decision_names_every_field_at_fault_and_keeps_the_reason_trimmed():
    assert review.read({"decision": "suitable", "reason_code": "risk_assessed", "reason": "  Assessed.  "}) == {
        "decision": "suitable", "reason_code": "risk_assessed", "reason": "Assessed."}
    with pytest.raises(review.InvalidDecision) as refused:
        review.read({"decision": "maybe", "reason": "   ", "extra": 1})
    assert set(refused.value.errors) == {"decision", "reason_code", "reason", "extra"}
    with pytest.raises(review.InvalidDecision) as refused:
        review.read({"decision": "unsuitable", "reason_code": "Not A Code", "reason": "x" * 2001})
    assert set(refused.value.errors) == {"reason_code", "reason"}
