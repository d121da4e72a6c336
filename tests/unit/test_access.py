"""Who may see and act on a case: the relation decides, never the role alone."""
import pytest

from shared.security.access import (CaseRelation, follow_staffing, holders, listing_filter, may_act, may_see,
                                    relation_from_events, sees_personal_data)
from shared.security.api_keys import Principal


def person(role, agency="gwent-police", regions=("gwent",), subject="p-1", national=False):
    return Principal(role=role, agency=agency, key_id="k", subject=subject, regions=frozenset(regions),
                     national=national)


CASE = CaseRelation(agency="gwent-police", region="gwent", offered_to=frozenset({"fac-offered"}),
                    held_by=frozenset({"fac-held"}))

# (caller, sees, acts, personal data)
TABLE = [
    (person("referrer"), True, False, False),
    (person("referrer", agency="dyfed-police"), False, False, False),
    (person("coordinator"), True, True, True),
    (person("coordinator", regions=("north-wales",)), False, False, False),
    (person("coordinator", agency="another-rj-hub"), True, True, True),  # regions decide, not agency
    (person("facilitator", subject="fac-held"), True, True, True),
    (person("facilitator", subject="fac-offered"), True, False, False),
    (person("facilitator", subject="fac-stranger"), False, False, False),
    (person("auditor"), True, False, False),
    (person("auditor", regions=("north-wales",)), False, False, False),
    (person("auditor", regions=(), national=True), True, False, False),
    # an operator: the key's regions decide, as for a coordinator, but never acts or sees personal data
    (person("operator"), True, False, False),
    (person("operator", agency="another-rj-hub"), True, False, False),
    (person("operator", regions=("north-wales",)), False, False, False),
    (person("operator", regions=(), national=True), True, False, False),
]


@pytest.mark.parametrize("caller,sees,acts,personal", TABLE)
def test_the_relation_decides(caller, sees, acts, personal):
    assert (may_see(caller, CASE), may_act(caller, CASE), sees_personal_data(caller, CASE)) == (sees, acts, personal)


def test_an_unknown_role_reaches_nothing():
    stranger = person("janitor")
    assert not may_see(stranger, CASE) and not may_act(stranger, CASE) and listing_filter(stranger) is None


def test_listings_are_narrowed_to_the_caller():
    assert listing_filter(person("referrer")) == {"agency": ["gwent-police"]}
    assert listing_filter(person("coordinator", regions=("gwent", "dyfed-powys"))) == {
        "region": ["dyfed-powys", "gwent"]}
    assert listing_filter(person("facilitator", subject="fac-9")) == {"facilitators": ["fac-9"]}
    assert listing_filter(person("auditor", national=True)) == {}
    assert listing_filter(person("operator")) is None   # an operator lists no cases


def _event(type_, **data):
    return {"type": type_, "data": data}


def test_staffing_moves_only_forward_whatever_the_order():
    events = [("facilitator.assigned", "a1", "fac-1"), ("assignment.accepted", "a1", "fac-1"),
              ("facilitator.assigned", "a2", "fac-2"), ("facilitator.released", "a1", "fac-1")]
    forward, backward = {}, {}
    for type_, aid, fid in events:
        forward = follow_staffing(forward, type_, {"assignment_id": aid, "facilitator_id": fid})
    for type_, aid, fid in reversed(events + events):  # reversed and twice over
        backward = follow_staffing(backward, type_, {"assignment_id": aid, "facilitator_id": fid})
    assert forward == backward
    assert holders(forward) == (frozenset({"fac-2"}), frozenset())


def test_the_ledger_view_of_a_case():
    relation = relation_from_events([
        _event("referral.received", agency="gwent-police", region="gwent"),
        _event("facilitator.assigned", assignment_id="a1", facilitator_id="fac-1"),
        _event("assignment.accepted", assignment_id="a1", facilitator_id="fac-1"),
        _event("case.assessed", decision="suitable"),
    ])
    assert relation == CaseRelation(agency="gwent-police", region="gwent", held_by=frozenset({"fac-1"}))
