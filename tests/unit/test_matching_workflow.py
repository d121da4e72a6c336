"""The matching workflows on the in-memory store: staffing, offers, closure, and the
idempotency and lease paths, without a database or a broker."""
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from services.matching import assignments, facilitators, suitability_policy, workflow
from services.matching.assessments import Assessment
from services.matching.assignments import LEASE, Busy
from services.matching.memory_store import InMemoryMatchingStore
from services.matching.roster import Roster
from shared.events import new_event
from tests.factories import referral_received_data

TODAY = date.today()


class FakeOutbox:
    """Makes events as a worker's outbox does; `flush` publishes (records) and takes them
    out of the document's outbox, unless the broker is `down`."""

    def __init__(self, store):
        self.store = store
        self.published = []
        self.down = False

    def event(self, event_type, subject, data, correlationid=None):
        return new_event(event_type, subject, data, source="/amends/test/matching", region="test",
                         correlationid=correlationid or subject)

    def flush(self, collection, doc_id, events=None):
        if self.down:
            return 0
        events = self.store.pending_events(collection, doc_id) if events is None else events
        self.published += events
        self.store.pull_events(collection, doc_id, events)
        return len(events)

    def types(self):
        return [e["type"] for e in self.published]


@pytest.fixture
def world():
    store = InMemoryMatchingStore()
    outbox = FakeOutbox(store)
    settings = workflow.Settings(policy=suitability_policy.load(), roster=Roster(store, refresh_every=3600))
    return store, outbox, settings


def register(store, fid, **changes):
    record = {"facilitator_id": fid, "level": "intermediate", "regions": ["south-wales"], "languages": ["en"],
              "capacity": 1, "trained_on": (TODAY - timedelta(days=30)).isoformat()}
    record.update(changes)
    return facilitators.register(store, record)


def referral(case_id="case-1", participants=None, **changes):
    data = referral_received_data(case_id=case_id, **changes)
    if participants:
        data["participants"] = [
            {"participant_id": p, "role": role, "age_band": "35_49", "language": "en", "access_needs": []}
            for p, role in zip(participants, ("harmed", "harmer"))]
    return new_event("referral.received", case_id, data, source="/amends/test/referrals", region="test",
                     correlationid=case_id)


def refer(world, **changes):
    store, outbox, settings = world
    return workflow.handle_referral_received(referral(**changes), outbox, settings, store)


def offers(store, case_id):
    return [(s.facilitator_id, s.state) for s in store.get_assignment(case_id).slots]


def test_a_referral_is_assessed_and_staffed_once_however_often_it_arrives(world):
    store, outbox, settings = world
    register(store, "fac-a")
    event = referral()
    workflow.handle_referral_received(event, outbox, settings, store)
    workflow.handle_referral_received(event, outbox, settings, store)  # redelivered
    assert outbox.types() == ["case.assessed", "facilitator.assigned"]
    assert store.count_assessments() == 1
    assert offers(store, "case-1") == [("fac-a", "offered")]
    assert store.get_assignment("case-1").status == assignments.OFFERED
    assert store.caseloads(["fac-a"]) == {"fac-a": ["case-1"]}
    assert store.pending_events(store.ASSIGNMENTS, "case-1") == []  # relayed and taken out


def test_events_stay_in_the_document_when_the_broker_is_down(world):
    store, outbox, settings = world
    register(store, "fac-a")
    outbox.down = True
    assessment = refer(world)
    assert outbox.published == []
    assert [e["type"] for e in store.pending_events(store.ASSESSMENTS, assessment.assessment_id)] == ["case.assessed"]
    assert [e["type"] for e in store.pending_events(store.ASSIGNMENTS, "case-1")] == ["facilitator.assigned"]


def test_a_case_nobody_fits_is_waitlisted_once_and_staffed_when_someone_registers(world):
    store, outbox, settings = world
    refer(world)
    assert store.get_assignment("case-1").status == assignments.WAITLISTED
    assert workflow.retry_waitlist(outbox, settings, store) == 0
    assert outbox.types().count("assignment.waitlisted") == 1  # announced once
    register(store, "fac-a")
    settings.roster.refresh(force=True)
    assert workflow.retry_waitlist(outbox, settings, store) == 1
    assert offers(store, "case-1") == [("fac-a", "offered")]


def test_accepting_twice_and_declining_twice_have_no_second_effect(world):
    store, outbox, settings = world
    register(store, "fac-a")
    register(store, "fac-b", regions=["gwent", "south-wales"])
    refer(world)
    (first,) = store.get_assignment("case-1").slots
    with pytest.raises(workflow.NotYours):
        workflow.respond(first.assignment_id, True, outbox, settings, store, acting_for="fac-b")
    workflow.respond(first.assignment_id, False, outbox, settings, store)
    workflow.respond(first.assignment_id, False, outbox, settings, store)
    assert offers(store, "case-1") == [("fac-a", "declined"), ("fac-b", "offered")]
    assert store.caseloads(["fac-a", "fac-b"]) == {"fac-a": [], "fac-b": ["case-1"]}
    second = store.get_assignment("case-1").slots[1]
    case, slot = workflow.respond(second.assignment_id, True, outbox, settings, store, acting_for="fac-b")
    workflow.respond(second.assignment_id, True, outbox, settings, store)
    assert outbox.types().count("assignment.accepted") == 1 and outbox.types().count("assignment.declined") == 1
    assert store.get_assignment("case-1").status == assignments.ACCEPTED
    assert store.facilitators_seen(["p-1"]) == {"fac-b"}
    with pytest.raises(workflow.InvalidTransition) as late:
        workflow.respond(first.assignment_id, True, outbox, settings, store)
    assert late.value.code == "offer_declined"
    with pytest.raises(workflow.NotFound):
        workflow.respond("no-such-offer", True, outbox, settings, store)
    assert store.lease_holder("case-1") is None  # every path gave the lease back


def test_an_offer_not_answered_in_time_passes_to_the_next_candidate(world):
    store, outbox, settings = world
    register(store, "fac-a")
    register(store, "fac-b", regions=["gwent", "south-wales"])
    refer(world)
    slot = store.get_assignment("case-1").slots[0]
    with pytest.raises(workflow.InvalidTransition):
        workflow.respond(slot.assignment_id, True, outbox, settings, store, now=slot.expires_at)
    assert workflow.expire_offers(outbox, settings, store, now=slot.expires_at - timedelta(seconds=1)) == 0
    assert workflow.expire_offers(outbox, settings, store, now=slot.expires_at) == 1
    assert [(s.facilitator_id, s.state, s.reason) for s in store.get_assignment("case-1").slots] == [
        ("fac-a", "expired", "offer_expired"), ("fac-b", "offered", None)]


def test_closing_a_case_frees_its_facilitator_for_the_case_waiting_longest(world):
    store, outbox, settings = world
    register(store, "fac-a")
    refer(world)
    refer(world, case_id="case-2", participants=["p-3", "p-4"])
    assert store.get_assignment("case-2").status == assignments.WAITLISTED
    assert workflow.close_case("case-1", "completed_direct", outbox, settings, store) == ["fac-a"]
    assert workflow.close_case("case-1", "completed_direct", outbox, settings, store) == []  # redelivered
    assert outbox.types().count("facilitator.released") == 1
    assert store.get_assignment("case-1").status == assignments.CLOSED
    assert offers(store, "case-2") == [("fac-a", "offered")]
    assert store.caseloads(["fac-a"]) == {"fac-a": ["case-2"]}


def test_a_case_closed_before_it_was_opened_is_never_staffed(world):
    store, outbox, settings = world
    register(store, "fac-a")
    assert workflow.close_case("case-1", "harmed_declined", outbox, settings, store) == []
    assert store.get_assignment("case-1").status == assignments.CLOSED
    assert workflow.staff_case("case-1", outbox, settings, store).status == assignments.CLOSED
    assert store.caseloads(["fac-a"]) == {"fac-a": []} and store.lease_holder("case-1") is None


def test_a_case_held_by_another_worker_is_busy_and_left_alone(world):
    store, outbox, settings = world
    register(store, "fac-a")
    store.insert_assignment(assignments.new_case("case-1", "as-1", "south-wales", _requirement(), ["p-1", "p-2"]))
    other = store.claim("case-1")
    with pytest.raises(Busy):
        workflow.staff_case("case-1", outbox, settings, store)
    assert store.lease_holder("case-1") == other.owner  # theirs, untouched
    assert store.caseloads(["fac-a"]) == {"fac-a": []}
    store.release_lease(other)
    assert offers(store, "case-1") == [] and workflow.staff_case("case-1", outbox, settings, store) is not None
    assert offers(store, "case-1") == [("fac-a", "offered")]


def test_a_save_under_a_lease_lost_meanwhile_gives_back_its_seats_and_is_busy(world):
    store, outbox, settings = world
    register(store, "fac-a")
    store.insert_assignment(assignments.new_case("case-1", "as-1", "south-wales", _requirement(), ["p-1", "p-2"]))
    commit = store.commit

    def lapse_then_commit(lease, case, events=()):
        lease.taken_at = time.monotonic() - LEASE.total_seconds()  # it ran out...
        store.leases["case-1"] = ("someone-else", datetime.now(timezone.utc) + LEASE)  # ...and was taken
        return commit(lease, case, events)

    store.commit = lapse_then_commit
    with pytest.raises(Busy):
        workflow.staff_case("case-1", outbox, settings, store)
    assert store.caseloads(["fac-a"]) == {"fac-a": []}  # the seat taken under the lost lease is back
    assert store.get_assignment("case-1").slots == [] and "facilitator.assigned" not in outbox.types()
    assert store.lease_holder("case-1") == "someone-else"  # their lease is not ours to give back


def test_a_lease_taken_over_from_a_dead_worker_gives_back_its_stray_seats(world):
    store, outbox, settings = world
    register(store, "fac-a")
    register(store, "fac-b", regions=["gwent", "south-wales"])
    store.insert_assignment(assignments.new_case("case-1", "as-1", "south-wales", _requirement(), ["p-1", "p-2"]))
    store.claim("case-1", now=datetime.now(timezone.utc) - 2 * LEASE)  # a worker that died holding it...
    store.take_seat("fac-b", "case-1", 1)  # ...after taking a seat
    workflow.staff_case("case-1", outbox, settings, store)
    assert offers(store, "case-1") == [("fac-a", "offered")]
    assert store.caseloads(["fac-a", "fac-b"]) == {"fac-a": ["case-1"], "fac-b": []}


def test_a_redelivered_referral_waits_for_its_first_delivery_then_undoes_its_seats(world):
    store, outbox, settings = world
    register(store, "fac-a")
    event = referral()
    first = workflow.handle_referral_received(event, outbox, settings, store)
    # staffed; now make it as if this first delivery had died between its seat and its save
    store.assignments.clear()
    store.release_seat("fac-a", "case-1")
    store.take_seat("fac-a", "case-1", 1)
    with pytest.raises(workflow.InFlight):
        workflow.handle_referral_received(event, outbox, settings, store)
    store.assessments[first.assessment_id].created_at -= 2 * LEASE
    workflow.handle_referral_received(event, outbox, settings, store)
    assert offers(store, "case-1") == [("fac-a", "offered")]
    assert store.caseloads(["fac-a"]) == {"fac-a": ["case-1"]}


def test_a_coordinator_decides_a_case_under_review_once(world):
    store, outbox, settings = world
    register(store, "fac-lead", level="advanced", endorsements=["sexual_violence"])
    register(store, "fac-co", level="foundation", endorsements=["sexual_violence"])
    refer(world, offence_category="sexual_offence")
    assert store.latest_assessment("case-1").outcome["decision"] == "needs_review"
    assert store.get_assignment("case-1") is None
    decided = workflow.decide_review("case-1", "suitable", "risk_assessed", "Done.", "coord-1", outbox, settings,
                                     store)
    assert isinstance(decided, Assessment) and decided.review["decided_by"] == "coord-1"
    assert store.latest_assessment("case-1").assessment_id == decided.assessment_id
    with pytest.raises(workflow.InvalidTransition) as again:
        workflow.decide_review("case-1", "suitable", "x", "y", "coord-1", outbox, settings, store)
    assert again.value.code == "already_decided"
    assert sorted((s.role, s.facilitator_id) for s in store.get_assignment("case-1").slots) == [
        ("co_facilitator", "fac-co"), ("lead", "fac-lead")]
    with pytest.raises(workflow.NotFound):
        workflow.decide_review("case-9", "suitable", "x", "y", "coord-1", outbox, settings, store)


def consent(participant_id, role, granted, event_no=1, case_id="case-1"):
    event = new_event("consent.recorded" if granted else "consent.withdrawn", case_id, {
        "case_id": case_id, "participant_id": participant_id, "participant_role": role, "scope": "participation",
        "item": None, "with_role": None, "granted": granted}, source="/amends/test/referrals", region="test",
        correlationid=case_id)
    return event


def test_a_party_withdrawing_pauses_the_case_and_releases_its_facilitators_once(world):
    store, outbox, settings = world
    register(store, "fac-a")
    refer(world)
    withdrawn = consent("p-2", "harmer", False)
    workflow.handle_consent_changed(withdrawn, outbox, settings, store)
    workflow.handle_consent_changed(withdrawn, outbox, settings, store)  # redelivered
    latest = store.latest_assessment("case-1")
    assert latest.outcome["decision"] == "unsuitable" and latest.withdrawn_by == ["p-2"]
    assert "consent_withdrawn" in [r["code"] for r in latest.outcome["reasons"]]
    assert outbox.types().count("facilitator.released") == 1 and outbox.types().count("case.assessed") == 2
    assert assignments.paused(store.get_assignment("case-1"))
    assert store.caseloads(["fac-a"]) == {"fac-a": []}


@pytest.mark.parametrize("role", ["supporter", "interpreter", "appropriate_adult"])
def test_a_supporter_or_interpreter_withdrawing_does_not_stop_the_case(world, role):
    store, outbox, settings = world
    register(store, "fac-a")
    refer(world)
    before = store.latest_assessment("case-1").assessment_id
    assert workflow.handle_consent_changed(consent("p-3", role, False), outbox, settings, store) is None
    assert store.latest_assessment("case-1").assessment_id == before
    assert "facilitator.released" not in outbox.types()
    assert offers(store, "case-1") == [("fac-a", "offered")]
    assert store.caseloads(["fac-a"]) == {"fac-a": ["case-1"]}


def test_consent_given_in_the_ordinary_course_changes_nothing(world):
    store, outbox, settings = world
    register(store, "fac-a")
    refer(world)
    before = store.latest_assessment("case-1").assessment_id
    assert workflow.handle_consent_changed(consent("p-1", "harmed", True), outbox, settings, store) is None
    assert store.latest_assessment("case-1").assessment_id == before
    assert outbox.types().count("case.assessed") == 1


def test_a_case_is_assessed_afresh_and_staffed_again_once_every_party_consents_again(world):
    store, outbox, settings = world
    register(store, "fac-a")
    register(store, "fac-b")
    refer(world)
    workflow.handle_consent_changed(consent("p-1", "harmed", False), outbox, settings, store)
    workflow.handle_consent_changed(consent("p-2", "harmer", False), outbox, settings, store)
    assert store.latest_assessment("case-1").withdrawn_by == ["p-1", "p-2"]
    # one party back, the other still out: still paused, and nothing announced
    announced = outbox.types().count("case.assessed")
    back = workflow.handle_consent_changed(consent("p-1", "harmed", True), outbox, settings, store)
    assert back.withdrawn_by == ["p-2"] and back.outcome["decision"] == "unsuitable"
    assert outbox.types().count("case.assessed") == announced
    assert assignments.paused(store.get_assignment("case-1"))
    # both back: a fresh assessment under the policy, announced, and the case staffed again
    again = consent("p-2", "harmer", True)
    fresh = workflow.handle_consent_changed(again, outbox, settings, store)
    assert fresh.withdrawn_by == [] and fresh.outcome["decision"] == "suitable" and fresh.basis == "consent"
    assert outbox.published[-1]["type"] == "facilitator.assigned"
    assert [e["data"]["basis"] for e in outbox.published if e["type"] == "case.assessed"][-1] == "consent"
    case = store.get_assignment("case-1")
    assert case.status == assignments.OFFERED and case.assessment_id == fresh.assessment_id
    # the facilitator released on withdrawal holds a seat again, once
    assert sum(len(v) for v in store.caseloads(["fac-a", "fac-b"]).values()) == 1
    workflow.handle_consent_changed(again, outbox, settings, store)  # redelivered
    assert sum(len(v) for v in store.caseloads(["fac-a", "fac-b"]).values()) == 1


def test_a_case_closed_while_paused_is_never_opened_again(world):
    store, outbox, settings = world
    register(store, "fac-a")
    refer(world)
    workflow.handle_consent_changed(consent("p-2", "harmer", False), outbox, settings, store)
    workflow.close_case("case-1", "consent_withdrawn", outbox, settings, store)
    assert store.get_assignment("case-1").closed_reason == "consent_withdrawn"
    workflow.handle_consent_changed(consent("p-2", "harmer", True), outbox, settings, store)
    assert store.get_assignment("case-1").status == assignments.CLOSED
    assert store.caseloads(["fac-a"]) == {"fac-a": []}


def test_a_reviewed_case_assessed_afresh_goes_back_to_a_coordinator(world):
    store, outbox, settings = world
    register(store, "fac-lead", level="advanced", endorsements=["sexual_violence"])
    register(store, "fac-co", level="foundation", endorsements=["sexual_violence"])
    refer(world, offence_category="sexual_offence")
    workflow.decide_review("case-1", "suitable", "risk_assessed", "Done.", "coord-1", outbox, settings, store)
    workflow.handle_consent_changed(consent("p-1", "harmed", False), outbox, settings, store)
    assert store.caseloads(["fac-lead", "fac-co"]) == {"fac-lead": [], "fac-co": []}
    fresh = workflow.handle_consent_changed(consent("p-1", "harmed", True), outbox, settings, store)
    assert fresh.outcome["decision"] == "needs_review"
    assert assignments.paused(store.get_assignment("case-1"))  # not staffed before the review
    workflow.decide_review("case-1", "suitable", "risk_assessed", "Again.", "coord-2", outbox, settings, store)
    assert sorted(s.facilitator_id for s in assignments.active_slots(store.get_assignment("case-1"))) == [
        "fac-co", "fac-lead"]


def test_a_conflict_declared_later_hands_the_case_on(world):
    store, outbox, settings = world
    register(store, "fac-a")
    register(store, "fac-b", regions=["gwent", "south-wales"])
    refer(world)
    facilitators.update(store, "fac-a", {"capacity": 3})
    assert workflow.withdraw_unfit("fac-a", outbox, settings, store) == 0  # capacity is not a reason
    facilitators.update(store, "fac-a", {"conflicts": [{"kind": "participant", "ref": "p-2"}]})
    settings.roster.refresh(force=True)
    assert workflow.withdraw_unfit("fac-a", outbox, settings, store) == 1
    assert [(s.facilitator_id, s.state, s.reason) for s in store.get_assignment("case-1").slots] == [
        ("fac-a", "released", "no_longer_eligible"), ("fac-b", "offered", None)]
    assert store.caseloads(["fac-a", "fac-b"]) == {"fac-a": [], "fac-b": ["case-1"]}
    assert workflow.withdraw_unfit("fac-a", outbox, settings, store) == 0  # nothing more to do
    assert store.lease_holder("case-1") is None


def _requirement():
    return {"level": "intermediate", "region": "south-wales", "languages": ["en"], "endorsements": [],
            "prison_vetting": False, "co_facilitation": False, "preferred_endorsements": [],
            "conflicts": ["participant:p-1", "participant:p-2"]}
