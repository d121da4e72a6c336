"""The matching store's contract, run against the in-memory fake and against the real
store on the running FerretDB: the workflows' unit tests trust the fake to behave so."""
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.matching import assignments
from services.matching.assessments import Assessment
from services.matching.assignments import LEASE, Busy, Slot
from services.matching.facilitators import AlreadyRegistered, Facilitator
from services.matching.memory_store import InMemoryMatchingStore
from services.matching.store import MatchingStore
from tests.conftest import MONGO_URI
from tests.support import disconnect_all

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TODAY = NOW.date()
TRAINED_ON = TODAY - timedelta(days=330)


@pytest.fixture(params=["memory", "ferretdb"])
def store(request):
    if request.param == "memory":
        yield InMemoryMatchingStore()
        return
    prefix = request.getfixturevalue("db_prefix")
    yield MatchingStore.open({"AMENDS_DB_PREFIX": prefix, "MONGO_URI": MONGO_URI})
    disconnect_all()


def event(n=1):
    return {"id": f"ev-{n}-{uuid.uuid4().hex[:6]}", "type": "case.assessed", "time": NOW.isoformat()}


def assessment(case_id="case-1", trigger="ev-referral", created_at=NOW, events=()):
    return Assessment(assessment_id=str(uuid.uuid4()), case_id=case_id, trigger_event_id=trigger,
                      outcome={"decision": "suitable"}, referral={"region": "south-wales"},
                      outbox=list(events), created_at=created_at)


def case(case_id="case-1", region="south-wales", **changes):
    found = assignments.new_case(case_id, "as-1", region, {"co_facilitation": False}, ["p-1", "p-2"])
    for key, value in changes.items():
        setattr(found, key, value)
    return found


def offered(facilitator_id, expires_at=NOW + timedelta(hours=1), state="offered"):
    return Slot(assignment_id=str(uuid.uuid4()), role="lead", facilitator_id=facilitator_id, state=state,
                offered_at=NOW, expires_at=expires_at)


def facilitator(fid="fac-1", **changes):
    values = dict(facilitator_id=fid, level="intermediate", languages=["en"], regions=["south-wales", "gwent"],
                  capacity=2, name="Ann Example", email="ann@rj.example", trained_on=TRAINED_ON,
                  conflicts=[{"kind": "participant", "ref": "p-9"}], created_at=NOW, updated_at=NOW)
    values.update(changes)
    return Facilitator(**values)


# --- assessments ---------------------------------------------------------------------------

def test_an_assessment_is_stored_once_per_trigger_with_its_events(store):
    events = [event(1), event(2)]
    first = assessment(events=events)
    assert store.insert_assessment(first) is True
    assert store.insert_assessment(assessment(trigger="ev-referral")) is False  # a redelivery
    found = store.assessment_by_trigger("ev-referral")
    assert isinstance(found, Assessment)
    assert (found.assessment_id, found.case_id, found.outcome) == (first.assessment_id, "case-1", {"decision": "suitable"})
    assert store.pending_events(store.ASSESSMENTS, first.assessment_id) == events
    assert store.assessment_by_trigger("nothing") is None
    assert store.count_assessments() == 1


def test_the_latest_assessment_of_a_case_is_the_newest(store):
    older = assessment(trigger="ev-a", created_at=NOW - timedelta(minutes=5))
    newer = assessment(trigger="review:case-1", created_at=NOW)
    store.insert_assessment(newer)
    store.insert_assessment(older)
    store.insert_assessment(assessment(case_id="case-2", trigger="ev-b", created_at=NOW + timedelta(minutes=1)))
    assert store.latest_assessment("case-1").assessment_id == newer.assessment_id
    assert store.latest_assessment("case-3") is None


# --- assignments ---------------------------------------------------------------------------

def test_a_case_has_one_assignment_and_a_tombstone_only_if_never_opened(store):
    slot = offered("fac-1")
    first = case(slots=[slot], offer_ids=[slot.assignment_id], status=assignments.OFFERED,
                 next_expiry=slot.expires_at)
    assert store.insert_assignment(first, [event()]) is True
    assert store.insert_assignment(case()) is False
    assert store.close_unopened("case-1", "withdrawn") is False
    found = store.get_assignment("case-1")
    assert found.status == "offered" and found.slots == [slot] and found.participant_ids == ["p-1", "p-2"]
    assert store.case_of_offer(slot.assignment_id) == "case-1" and store.case_of_offer("nope") is None
    assert store.close_unopened("case-9", "withdrawn") is True
    assert (store.get_assignment("case-9").status, store.get_assignment("case-9").closed_reason) == ("closed", "withdrawn")
    assert store.get_assignment("case-404") is None


def test_waiting_cases_come_longest_waiting_first_in_the_regions_asked(store):
    store.insert_assignment(case("c-new", status=assignments.WAITLISTED, waitlisted_at=NOW))
    store.insert_assignment(case("c-old", status=assignments.WAITLISTED, waitlisted_at=NOW - timedelta(hours=2)))
    store.insert_assignment(case("c-pending"))
    store.insert_assignment(case("c-gwent", region="gwent", status=assignments.WAITLISTED,
                                 waitlisted_at=NOW - timedelta(hours=9)))
    store.insert_assignment(case("c-offered", status=assignments.OFFERED))
    assert store.waiting() == ["c-pending", "c-gwent", "c-old", "c-new"]
    assert store.waiting({"south-wales"}) == ["c-pending", "c-old", "c-new"]
    assert store.waiting({"south-wales", "gwent"}, limit=2) == ["c-pending", "c-gwent"]
    assert store.waiting({"dorset"}) == []


def test_expired_offers_and_the_cases_a_facilitator_holds(store):
    lapsed, live, done = offered("fac-1", NOW - timedelta(minutes=1)), offered("fac-2"), offered("fac-3", state="declined")
    store.insert_assignment(case("c-1", slots=[lapsed], next_expiry=lapsed.expires_at, status="offered"))
    store.insert_assignment(case("c-2", slots=[live, done], next_expiry=live.expires_at, status="offered"))
    assert store.expired_offers(NOW) == ["c-1"]
    assert store.expired_offers(NOW + timedelta(hours=2)) == ["c-1", "c-2"]
    assert store.cases_held_by("fac-2") == {"c-2"}
    assert store.cases_held_by("fac-3") == set()  # a declined offer holds nothing
    # a save that answers the offer takes the case out of both
    with store.lease("c-1") as held:
        held.assignment.slots[0].state = "accepted"
        held.assignment.next_expiry = None
        assert store.commit(held, held.assignment)
    assert store.expired_offers(NOW) == [] and store.cases_held_by("fac-1") == {"c-1"}


# --- the lease -----------------------------------------------------------------------------

def test_a_lease_is_held_once_and_given_back_on_leaving_the_block(store):
    store.insert_assignment(case())
    with store.lease("case-1") as held:
        assert held.assignment.case_id == "case-1" and not held.taken_over
        assert store.lease_holder("case-1") == held.owner
        with pytest.raises(Busy):
            with store.lease("case-1"):
                pass  # never runs
        assert store.lease_holder("case-1") == held.owner  # the refused one took nothing
    assert store.lease_holder("case-1") is None
    with store.lease("case-1") as again:
        assert again.owner != held.owner


def test_a_lease_is_given_back_when_the_block_raises(store):
    store.insert_assignment(case())
    with pytest.raises(RuntimeError):
        with store.lease("case-1"):
            raise RuntimeError("boom")
    assert store.lease_holder("case-1") is None


def test_a_lease_given_back_early_is_not_given_back_twice(store):
    store.insert_assignment(case())
    with store.lease("case-1") as held:
        store.release_lease(held)
        other = store.claim("case-1")  # someone else takes it meanwhile
    assert store.lease_holder("case-1") == other.owner  # leaving the block did not take theirs
    store.release_lease(other)


def test_a_lease_on_no_case_is_given_back_at_once(store):
    with store.lease("case-404") as held:
        assert held.assignment is None and held.released
        assert store.lease_holder("case-404") is None


def test_a_lapsed_lease_is_taken_over_and_its_holder_can_no_longer_save(store):
    store.insert_assignment(case())
    dead = store.claim("case-1", now=NOW - LEASE - timedelta(seconds=5))
    dead.taken_at = time.monotonic() - LEASE.total_seconds()  # old enough to have lapsed
    with store.lease("case-1") as held:
        assert held.taken_over
        assert store.commit(dead, dead.assignment, [event()]) is False
        held.assignment.status = assignments.WAITLISTED
        assert store.commit(held, held.assignment, [event()]) is True
    assert store.get_assignment("case-1").status == assignments.WAITLISTED


def test_a_patient_lease_waits_for_the_holder(store):
    store.insert_assignment(case())
    first = store.claim("case-1")
    with pytest.raises(Busy):
        store.claim_patiently("case-1", wait=0.1)
    store.release_lease(first)
    with store.lease("case-1", wait=0.1) as held:
        assert held.assignment is not None


def test_a_commit_saves_the_state_and_appends_its_events_in_one_write(store):
    first_events, more = [event(1)], [event(2)]
    store.insert_assignment(case(), first_events)
    with store.lease("case-1") as held:
        slot = offered("fac-1")
        held.assignment.slots.append(slot)
        held.assignment.offer_ids.append(slot.assignment_id)
        held.assignment.status = assignments.OFFERED
        assert store.commit(held, held.assignment, more)
    found = store.get_assignment("case-1")
    assert found.status == "offered" and found.slots == [slot] and found.version == 1
    assert store.pending_events(store.ASSIGNMENTS, "case-1") == first_events + more
    # a change not committed is not stored
    found.status = "closed"
    assert store.get_assignment("case-1").status == "offered"


# --- seats ---------------------------------------------------------------------------------

def test_seats_are_taken_by_unique_insert_within_capacity_and_once_per_case(store):
    assert store.take_seat("fac-1", "c-1", 2) == (0, set())
    assert store.take_seat("fac-1", "c-1", 2)[0] is None  # this case holds one of theirs already
    assert store.take_seat("fac-1", "c-2", 2, known_taken={0}) == (1, set())
    assert store.take_seat("fac-1", "c-3", 2) == (None, {0, 1})
    assert sorted(store.holders("c-2")) == ["fac-1"]
    assert {k: sorted(v) for k, v in store.caseloads(["fac-1", "fac-2"]).items()} == {
        "fac-1": ["c-1", "c-2"], "fac-2": []}
    assert store.release_seat("fac-1", "c-1") == 0
    assert store.release_seat("fac-1", "c-1") is None
    assert [(s.facilitator_id, s.seat, s.case_id) for s in store.all_seats()] == [("fac-1", 1, "c-2")]
    assert store.take_seat("fac-1", "c-3", 2) == (0, set())


# --- the registry --------------------------------------------------------------------------

def test_a_facilitator_is_registered_once_read_back_typed_and_changed(store):
    store.insert_facilitator(facilitator())
    with pytest.raises(AlreadyRegistered):
        store.insert_facilitator(facilitator())
    found = store.get_facilitator("fac-1")
    assert isinstance(found, Facilitator)
    assert (found.trained_on, found.available_from, found.current_until) == (
        TRAINED_ON, None, TRAINED_ON + timedelta(days=365))
    assert found.conflict_keys == ["participant:p-9"] and found.email == "ann@rj.example"
    back_from_leave = TODAY + timedelta(days=10)
    changed = facilitator(capacity=5, available_from=back_from_leave, updated_at=NOW + timedelta(seconds=1))
    store.update_facilitator(changed, {"capacity", "available_from"})
    found = store.get_facilitator("fac-1")
    assert (found.capacity, found.available_from) == (5, back_from_leave)
    assert store.deactivate_facilitator("fac-1", NOW) is True
    assert store.get_facilitator("fac-1").active is False
    assert store.deactivate_facilitator("nobody", NOW) is False
    assert store.get_facilitator("nobody") is None


def test_the_registry_is_listed_by_region_and_state_and_the_roster_sees_no_contact_details(store):
    store.insert_facilitator(facilitator("fac-b", regions=["gwent"]))
    store.insert_facilitator(facilitator("fac-a", regions=["south-wales"]))
    store.insert_facilitator(facilitator("fac-c", regions=["dorset"], active=False))
    ids = lambda found: [f.facilitator_id for f in found]  # noqa: E731
    assert ids(store.list_facilitators()) == ["fac-a", "fac-b", "fac-c"]
    assert ids(store.list_facilitators(region="gwent")) == ["fac-b"]
    assert ids(store.list_facilitators(within=["gwent", "dorset"])) == ["fac-b", "fac-c"]
    assert ids(store.list_facilitators(active=True, within=["gwent", "dorset"])) == ["fac-b"]
    roster = {f.facilitator_id: f for f in store.roster_facilitators()}
    assert set(roster) == {"fac-a", "fac-b", "fac-c"}
    assert roster["fac-a"].email is None and roster["fac-a"].name is None
    assert roster["fac-a"].conflict_keys == ["participant:p-9"] and roster["fac-a"].capacity == 2
    assert store.roster_facilitator("fac-b").regions == ["gwent"] and store.count_facilitators() == 3


def test_the_change_log_is_read_since_a_time_and_pruned(store):
    now = datetime.now(timezone.utc)
    store.log_change("fac-old", at=now - timedelta(hours=30))
    store.log_change("fac-1", at=now - timedelta(minutes=3))
    store.log_change("fac-2", at=now - timedelta(seconds=20))
    assert [c.facilitator_id for c in store.changes_since(now - timedelta(minutes=1))] == ["fac-2"]
    assert [c.facilitator_id for c in store.changes_since(now - timedelta(minutes=5))] == ["fac-1", "fac-2"]
    assert [c.facilitator_id for c in store.changes_since(now - timedelta(hours=2), "fac-1")] == ["fac-1"]
    assert [c.facilitator_id for c in store.changes_since(now - timedelta(hours=40))] == ["fac-old", "fac-1", "fac-2"]
    store.prune_changes(now - timedelta(days=1))
    assert [c.facilitator_id for c in store.changes_since(now - timedelta(hours=40))] == ["fac-1", "fac-2"]


# --- continuity ----------------------------------------------------------------------------

def test_who_worked_with_whom_is_kept_once_and_forgotten_on_erasure(store):
    store.record_worked_with(["p-1", "p-2"], "fac-1")
    store.record_worked_with(["p-1"], "fac-1")  # again: no second line
    store.record_worked_with(["p-3"], "fac-2")
    assert store.facilitators_seen(["p-1", "p-3"]) == {"fac-1", "fac-2"}
    assert store.forget_participant("p-1") == 1
    assert store.forget_participant("p-1") == 0
    assert store.facilitators_seen(["p-1"]) == frozenset() and store.facilitators_seen(["p-2"]) == {"fac-1"}
