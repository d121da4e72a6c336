"""The list of cases waiting for staff, against the in-memory store."""
from datetime import datetime, timedelta, timezone

from services.matching import assignments, waiting
from services.matching.assignments import Assignment, Slot
from services.matching.memory_store import InMemoryMatchingStore

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def case(case_id, status, region="south-wales", since=None, reason=None, states=()):
    return Assignment(case_id=case_id, status=status, region=region, waitlisted_at=since, waitlist_reason=reason,
                      slots=[Slot(f"{case_id}-{n}", "lead", f"fac-{n}", state) for n, state in enumerate(states)])


def test_waiting_cases_longest_first_with_why_and_what_became_of_their_offers():
    store = InMemoryMatchingStore()
    for made in (case("late", assignments.WAITLISTED, since=T0 + timedelta(hours=2), reason="no_eligible_facilitator"),
                 case("early", assignments.WAITLISTED, since=T0, reason="no_eligible_co_facilitator",
                      states=("declined", "expired", "declined")),
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
                     "waiting_since": T0.isoformat(), "reason": "no_eligible_co_facilitator", "declined": 2,
                     "expired": 1}
    assert [c["reason"] for c in page["cases"]] == ["being_staffed", "no_eligible_co_facilitator", "not_recorded",
                                                    "no_eligible_facilitator"]
    assert set(c["reason"] for c in page["cases"]) <= set(waiting.REASONS)
    gwent = waiting.page(store, ["gwent"], 10, 0)
    assert [c["case_id"] for c in gwent["cases"]] == ["old"]
    second = waiting.page(store, ["south-wales"], 2, 0)
    assert [c["case_id"] for c in second["cases"]] == ["now", "early"] and second["next_offset"] == 2


def test_a_staffed_case_forgets_why_it_waited():
    waited = case("c", assignments.WAITLISTED, since=T0, reason="no_eligible_facilitator")
    waited.slots = [Slot("c-0", "lead", "fac-0", "offered")]
    assignments.settle(waited, ["lead"])
    assert (waited.status, waited.waitlisted_at, waited.waitlist_reason) == (assignments.OFFERED, None, None)
