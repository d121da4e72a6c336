"""Properties of the registry and staffing on the real FerretDB and broker (hypothesis).

Each example builds a random registry, then runs random operations (refer a case, close
one, decline an offer, raise a capacity, deactivate someone, declare a conflict) in concurrent batches of
green threads, so reservations race as they do between matching workers. Afterwards:
  - nobody is over capacity (raising a capacity only ever adds seats);
  - every caseload entry is an active offer and every active offer is in a caseload
    (no double booking, nothing leaked);
  - nobody conflicted, not current, under-levelled or otherwise unfit holds an offer;
  - a staffed case that needs a co-facilitator has one, who is not the lead.
"""
from datetime import date, timedelta

import eventlet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.matching import assignments, facilitators, workflow
from services.matching.assignments import Busy
from services.matching.store import MatchingStore
from shared.events import new_event
from shared.messaging import topology
from shared.messaging.outbox import Relay
from shared.messaging.publisher import EventPublisher
from services.matching import suitability_policy
from services.matching.roster import Roster
from tests.support import disconnect_all

TODAY = date.today()
LEVELS = ["foundation", "intermediate", "advanced"]
REGIONS = ["south-wales", "gwent"]
ENDORSEMENTS = ["domestic_abuse", "sexual_violence", "youth"]
CONFLICTS = [{"kind": "participant", "ref": "p-1"}, {"kind": "agency", "ref": "swp"}, {"kind": "referrer", "ref": "r-9"}]


class BrokerOutbox:
    """The outbox as a worker sees it, publishing for real to the test's vhost. (It
    stands in for shared.messaging.outbox's OutboxHandle, which relays from the
    service's database directly, as this does from the store's.)"""

    def __init__(self, amqp_uri, store):
        self.db = store.db
        self.relay = Relay(EventPublisher(amqp_uri, "matching"), [])

    def event(self, event_type, subject, data, correlationid=None):
        return new_event(event_type, subject, data, source="/amends/test/matching", region="test",
                         correlationid=correlationid or subject)

    def flush(self, collection, doc_id, events=None):
        return self.relay.flush(self.db[collection], doc_id, events)


def day(offset):
    return (TODAY + timedelta(days=offset)).isoformat()


facilitator_records = st.fixed_dictionaries({
    "level": st.sampled_from(LEVELS),
    "complex_case_trained": st.booleans(),
    "trained_on": st.integers(-700, 0).map(day),
    "last_process_on": st.one_of(st.none(), st.integers(-700, 0).map(day)),
    "endorsements": st.lists(st.sampled_from(ENDORSEMENTS), unique=True),
    "prison_vetted_until": st.one_of(st.none(), st.integers(-30, 300).map(day)),
    "languages": st.lists(st.sampled_from(["en", "cy"]), min_size=1, unique=True),
    "regions": st.lists(st.sampled_from(REGIONS), min_size=1, unique=True),
    "capacity": st.integers(0, 3),
    "available_from": st.one_of(st.none(), st.integers(-5, 5).map(day)),
    "conflicts": st.lists(st.sampled_from(CONFLICTS), max_size=2, unique_by=lambda c: c["ref"]),
})

case_needs = st.fixed_dictionaries({
    "level": st.sampled_from(["intermediate", "advanced"]),
    "region": st.sampled_from(REGIONS),
    "languages": st.lists(st.sampled_from(["en", "cy"]), min_size=1, unique=True).map(sorted),
    "endorsements": st.lists(st.sampled_from(ENDORSEMENTS), max_size=1, unique=True),
    "prison_vetting": st.booleans(),
    "co_facilitation": st.booleans(),
    "conflicts": st.lists(st.sampled_from(["participant:p-1", "agency:swp", "referrer:r-9", "participant:p-5"]),
                          max_size=2, unique=True).map(sorted),
    "preferred_endorsements": st.just([]),
})

operations = st.lists(st.one_of(
    st.tuples(st.just("refer"), case_needs),
    st.tuples(st.just("close"), st.integers(0, 30)),
    st.tuples(st.just("decline"), st.integers(0, 30)),
    st.tuples(st.just("capacity"), st.integers(0, 7), st.integers(1, 3)),
    st.tuples(st.just("deactivate"), st.integers(0, 7)),
    st.tuples(st.just("conflict"), st.integers(0, 7), st.sampled_from(CONFLICTS)),
), min_size=1, max_size=30)


@pytest.fixture
def matching_db(amqp_uri, db_prefix):
    config = {"AMQP_URI": amqp_uri, "AMENDS_DB_PREFIX": db_prefix, "MONGO_URI": "mongodb://127.0.0.1:27017/"}
    topology.declare(amqp_uri)
    store = MatchingStore.open(config)
    yield store, BrokerOutbox(amqp_uri, store)
    disconnect_all()


def oracle_fit(fac, need, role):
    """The hard constraints, restated over the stored record."""
    dates = [d for d in (fac.trained_on, fac.last_process_on) if d]
    if not dates or (TODAY - max(dates)).days > 365:
        return "not current"
    if role == "lead":
        ok = fac.level != "foundation" and (
            LEVELS.index(fac.level) >= LEVELS.index(need["level"])
            or (need["level"] == "advanced" and fac.level == "intermediate" and fac.complex_case_trained))
        if not ok:
            return "under-levelled"
    if not fac.active:
        return "inactive"
    if fac.available_from is not None and fac.available_from > TODAY:
        return "on leave"
    if need["region"] not in fac.regions or not set(need["languages"]) <= set(fac.languages):
        return "region or language"
    if not set(need["endorsements"]) <= set(fac.endorsements):
        return "endorsement"
    if need["prison_vetting"] and not (fac.prison_vetted_until and fac.prison_vetted_until >= TODAY):
        return "vetting"
    if {f"{c['kind']}:{c['ref']}" for c in fac.conflicts} & set(need["conflicts"]):
        return "conflicted"
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(registry=st.lists(facilitator_records, min_size=1, max_size=8), ops=operations)
def test_staffing_invariants_hold_under_concurrent_operations(matching_db, registry, ops):
    store, outbox = matching_db
    store.clear()
    for index, record in enumerate(registry):
        facilitators.register(store, {"facilitator_id": f"fac-{index}", **record})
    run = workflow.Settings(policy=suitability_policy.load(), roster=Roster(store).load(), offer_for=timedelta(hours=1))
    cases = []

    def apply(op):
        kind = op[0]
        try:
            if kind == "refer":
                case_id = f"case-{len(cases)}"
                cases.append(case_id)
                store.insert_assignment(assignments.new_case(case_id, f"as-{case_id}", op[1]["region"], op[1],
                                                             ["p-1", "p-2"]))
                workflow.staff_case(case_id, outbox, run, store)
            elif kind == "close" and cases:
                workflow.close_case(cases[op[1] % len(cases)], "completed_direct", outbox, run, store)
            elif kind == "decline" and cases:
                case = store.get_assignment(cases[op[1] % len(cases)])
                offered = [s for s in (case.slots if case else []) if s.state == "offered"]
                if offered:
                    workflow.respond(offered[0].assignment_id, False, outbox, run, store)
            elif kind == "capacity" and op[1] < len(registry):
                facilitators.update(store, f"fac-{op[1]}",
                                    {"capacity": store.get_facilitator(f"fac-{op[1]}").capacity + op[2]})
            elif kind == "deactivate" and op[1] < len(registry):
                facilitators.deactivate(store, f"fac-{op[1]}")
                workflow.withdraw_unfit(f"fac-{op[1]}", outbox, run, store)
            elif kind == "conflict" and op[1] < len(registry):
                conflicts = store.get_facilitator(f"fac-{op[1]}").conflicts
                if op[2] not in conflicts:
                    facilitators.update(store, f"fac-{op[1]}", {"conflicts": conflicts + [op[2]]})
                    workflow.withdraw_unfit(f"fac-{op[1]}", outbox, run, store)
        except Busy:
            pass  # a real handler would be retried; the invariants must hold meanwhile too
        except workflow.InvalidTransition:
            pass  # the offer was released meanwhile (a 409 over HTTP)

    pool = eventlet.GreenPool(6)
    for start in range(0, len(ops), 6):  # concurrent batches
        list(pool.imap(apply, ops[start:start + 6]))
    workflow.retry_waitlist(outbox, run, store)

    holding = {}
    for case in store.all_assignments():
        active = assignments.active_slots(case)
        roles = [s.role for s in active]
        assert len(roles) == len(set(roles)), case.case_id
        for slot in active:
            holding.setdefault(slot.facilitator_id, []).append(case.case_id)
            fac = store.get_facilitator(slot.facilitator_id)
            assert oracle_fit(fac, case.requirement, slot.role) is None, (slot, oracle_fit(
                fac, case.requirement, slot.role))
        if case.status in ("offered", "accepted"):
            assert "lead" in roles
            if case.requirement["co_facilitation"]:
                assert set(roles) == {"lead", "co_facilitator"}
                assert len({s.facilitator_id for s in active}) == 2
    seats = store.all_seats()
    for fac in store.list_facilitators():
        mine = [s for s in seats if s.facilitator_id == fac.facilitator_id]
        caseload = [s.case_id for s in mine]
        assert len(caseload) <= fac.capacity, fac.facilitator_id
        assert all(0 <= s.seat < fac.capacity for s in mine)
        assert sorted(caseload) == sorted(holding.get(fac.facilitator_id, [])), fac.facilitator_id
