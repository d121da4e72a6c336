"""The in-memory roster never lets a stale copy of the registry decide: a change made
after its last refresh is applied before an offer stands."""
from datetime import date, datetime, timedelta, timezone

import pytest

from services.matching import assignments, facilitators, suitability_policy, workflow
from services.matching.roster import Roster
from services.matching.store import MatchingStore
from tests.integration.test_matching_properties import BrokerOutbox
from tests.support import disconnect_all

REQUIREMENT = {"level": "intermediate", "region": "south-wales", "languages": ["en"], "endorsements": [],
               "prison_vetting": False, "co_facilitation": False, "preferred_endorsements": [],
               "conflicts": ["agency:swp", "participant:p-1", "participant:p-2", "referrer:r-1"]}


@pytest.fixture
def setup(amqp_uri, db_prefix):
    from shared.messaging import topology
    topology.declare(amqp_uri)
    store = MatchingStore.open({"AMQP_URI": amqp_uri, "AMENDS_DB_PREFIX": db_prefix})
    for fid, regions in (("fac-a", ["south-wales"]), ("fac-b", ["gwent", "south-wales"])):
        facilitators.register(store, {"facilitator_id": fid, "level": "intermediate", "regions": regions, "languages": ["en"],
                               "capacity": 2, "trained_on": (date.today() - timedelta(days=30)).isoformat()})
    roster = Roster(store, refresh_every=3600).load()  # it will not refresh by itself during the test
    run = workflow.Settings(policy=suitability_policy.load(), roster=roster)
    yield roster, run, BrokerOutbox(amqp_uri, store), store
    disconnect_all()


def staff(case_id, run, outbox, store):
    store.insert_assignment(assignments.new_case(case_id, f"as-{case_id}", "south-wales", REQUIREMENT, ["p-1", "p-2"]))
    case = workflow.staff_case(case_id, outbox, run, store)
    return [s.facilitator_id for s in case.slots if s.state == "offered"]


def test_a_conflict_declared_after_the_roster_last_looked_still_excludes(setup):
    roster, run, outbox, store = setup
    facilitators.update(store, "fac-a", {"conflicts": [{"kind": "participant", "ref": "p-2"}]})
    assert roster.base["fac-a"].conflicts == frozenset()  # the roster has not seen it
    assert staff("case-1", run, outbox, store) == ["fac-b"]
    assert store.holders("case-1") == ["fac-b"]


def test_a_deactivation_after_the_roster_last_looked_still_excludes(setup):
    roster, run, outbox, store = setup
    facilitators.deactivate(store, "fac-a")
    facilitators.deactivate(store, "fac-b")
    assert staff("case-2", run, outbox, store) == []
    assert store.get_assignment("case-2").status == "waitlisted"
    assert store.holders("case-2") == []


def test_a_facilitator_registered_after_the_roster_loaded_is_found_before_waitlisting(setup):
    roster, run, outbox, store = setup
    facilitators.deactivate(store, "fac-a")
    facilitators.deactivate(store, "fac-b")
    roster.refresh(force=True)
    facilitators.register(store, {"facilitator_id": "fac-new", "level": "advanced", "regions": ["south-wales"],
                           "languages": ["en"], "capacity": 1, "last_process_on": date.today().isoformat()})
    assert staff("case-3", run, outbox, store) == ["fac-new"]


def test_the_sweep_finishes_a_withdrawal_that_the_registry_request_did_not(setup):
    roster, run, outbox, store = setup
    assert staff("case-1", run, outbox, store) == ["fac-a"]
    assert staff("case-2", run, outbox, store) == ["fac-b"]  # the caseloads balance
    before = datetime.now(timezone.utc)
    # fac-a is deactivated, and the request dies before handing their case on
    facilitators.deactivate(store, "fac-a")
    assert workflow.withdraw_after_changes(outbox, run, store, before) == 1
    case = store.get_assignment("case-1")
    assert [(s.facilitator_id, s.state, s.reason) for s in case.slots] == [
        ("fac-a", "released", "deactivated"), ("fac-b", "offered", None)]
    assert sorted(store.caseloads(["fac-b"])["fac-b"]) == ["case-1", "case-2"]
    assert store.caseloads(["fac-a"])["fac-a"] == []
    assert workflow.withdraw_after_changes(outbox, run, store, before) == 0  # a second sweep: nothing more to do
    # fac-b declares a conflict with p-1, a party to both cases: nobody is left to take them
    facilitators.update(store, "fac-b", {"conflicts": [{"kind": "participant", "ref": "p-1"}]})
    assert workflow.withdraw_after_changes(outbox, run, store, before) == 2
    assert store.caseloads(["fac-b"])["fac-b"] == []
    for case_id in ("case-1", "case-2"):
        case = store.get_assignment(case_id)
        assert [s.reason for s in case.slots if s.facilitator_id == "fac-b"] == ["no_longer_eligible"]
        assert case.status == "waitlisted" and not assignments.active_slots(case)
