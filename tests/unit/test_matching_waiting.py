"""The list of cases waiting for staff, against the in-memory store."""
from datetime import datetime, timedelta, timezone

from services.matching import assignments, waiting
from services.matching.assignments import Assignment, Slot
from services.matching.memory_store import InMemoryMatchingStore

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


SHORT = {"role": "co_facilitator", "in_region": 3, "ruled_out": {"capacity": 2, "declined_or_on_case": 1}}


def case(case_id, status, region="south-wales", since=None, reason=None, states=(), shortfall=None):
    return Assignment(case_id=case_id, status=status, region=region, waitlisted_at=since, waitlist_reason=reason,
                      waitlist_shortfall=shortfall,
                      slots=[Slot(f"{case_id}-{n}", "lead", f"fac-{n}", state) for n, state in enumerate(states)])


def test_waiting_cases_longest_first_with_why_and_what_became_of_their_offers():
    store = InMemoryMatchingStore()
    for made in (case("late", assignments.WAITLISTED, since=T0 + timedelta(hours=2), reason="no_eligible_facilitator"),
                 case("early", assignments.WAITLISTED, since=T0, reason="no_eligible_co_facilitator",
                      states=("declined", "expired", "declined"), shortfall=SHORT),
                 case("old", assignments.WAITLISTED, region="gwent", since=T0 + timedelta(hours=1)),
                 case("now", assignments.PENDING),
                 case("offered", assignments.OFFERED, states=("offered",)),
                 case("closed", assignments.CLOSED)):
        store.insert_assignment(made)
    page = waiting.page(store, None, 10, 0)
    assert [c["case_id"] for c in page["cases"]] == ["now", "early", "old", "late"]
    assert page["total"] == 4 and page["next_offset"] is None
    early = page["cases"][1]
    assert early == {"case_id": "early", "region": "south-wales", "status": "waitlisted",
                     "waiting_since": T0.isoformat(), "reason": "no_eligible_co_facilitator", "shortfall": SHORT,
                     "declined": 2, "expired": 1}
    assert [c["reason"] for c in page["cases"]] == ["being_staffed", "no_eligible_co_facilitator", "not_recorded",
                                                    "no_eligible_facilitator"]
    assert set(c["reason"] for c in page["cases"]) <= set(waiting.REASONS)
    gwent = waiting.page(store, ["gwent"], 10, 0)
    assert [c["case_id"] for c in gwent["cases"]] == ["old"]
    second = waiting.page(store, ["south-wales"], 2, 0)
    assert [c["case_id"] for c in second["cases"]] == ["now", "early"] and second["next_offset"] == 2


def test_a_staffed_case_forgets_why_it_waited():
    waited = case("c", assignments.WAITLISTED, since=T0, reason="no_eligible_facilitator", shortfall=SHORT)
    waited.slots = [Slot("c-0", "lead", "fac-0", "offered")]
    assignments.settle(waited, ["lead"])
    assert (waited.status, waited.waitlisted_at, waited.waitlist_reason, waited.waitlist_shortfall) == (
        assignments.OFFERED, None, None, None)


def test_a_waitlisted_case_records_what_ruled_out_the_region_s_facilitators():
    from tests.unit.test_matching_workflow import refer, register, world as make_world
    built = make_world.__wrapped__()
    store, outbox, settings = built
    register(store, "fac-a", capacity=0)
    register(store, "fac-b", languages=["cy"])
    register(store, "fac-c", regions=["gwent"])   # not in the region: not counted
    settings.roster.refresh(force=True)
    refer(built)
    waited = store.get_assignment("case-1")
    assert (waited.status, waited.waitlist_reason) == (assignments.WAITLISTED, "no_eligible_facilitator")
    assert waited.waitlist_shortfall == {"role": "lead", "in_region": 2,
                                         "ruled_out": {"capacity": 1, "languages": 1}}
    assert waiting.page(store, None, 10, 0)["cases"][0]["shortfall"] == waited.waitlist_shortfall
