import eventlet; eventlet.monkey_patch()  # noqa: E702,E401  (first, before anything imports socket)
"""Matching benchmarks, against the running RabbitMQ and FerretDB. Prints figures; asserts nothing.

1. Assignment latency (p50, p99) over a registry of 10,000 facilitators: choosing and
   reserving a lead (and a co-facilitator where the case needs one) for varied cases,
   then the whole staffing of a case (lease, choice, reservation, save, event relayed).
   Baseline in the same run: a plain find_one by id, and an insert under a unique key.
2. Assessments per second draining a backlog of referral.received events through the
   matching service (assess, store, announce, staff).

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_matching.py            # backlog of 300
    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_matching.py --full     # backlog of 10,000
    ... --full --budget 600     # stop after ten minutes, report the part drained and the rate lately

On FerretDB (SQLite) every read and update scans its collection, so the rate falls as the
assessments and assignments collections grow; the progress lines show the recent rate.

Everything happens in a database prefix and a RabbitMQ vhost of its own, removed afterwards.
"""
import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import date, timedelta  # noqa: E402

import requests  # noqa: E402
from kombu import Connection  # noqa: E402

from services.matching import assignments, facilitators, suitability_policy, workflow  # noqa: E402
from services.matching.allocation import Requirement, staff  # noqa: E402
from services.matching.facilitator_records import parse  # noqa: E402
from services.matching.roster import Roster  # noqa: E402
from services.matching.store import MatchingStore  # noqa: E402
from shared.events import new_event  # noqa: E402
from shared.messaging import topology  # noqa: E402
from shared.messaging.outbox import Relay  # noqa: E402
from shared.messaging.publisher import EventPublisher  # noqa: E402
from tests.factories import referral_received_data  # noqa: E402
from tests.support import admin_amqp_uri, drop_databases, rabbit_admin  # noqa: E402

MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
AMQP_HOST = os.environ.get("AMENDS_TEST_AMQP_HOST", "127.0.0.1:5672")
MANAGEMENT = os.environ.get("AMENDS_TEST_RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
AUTH = rabbit_admin()
TODAY = date.today()
REGIONS = ["south-wales", "gwent", "dyfed-powys", "north-wales", "avon-somerset", "devon-cornwall", "dorset",
           "gloucestershire", "wiltshire", "west-mercia", "west-midlands", "staffordshire", "warwickshire",
           "merseyside", "cheshire", "cumbria", "lancashire", "greater-manchester", "thames-valley", "hampshire",
           "kent", "sussex"]
WELSH = {"south-wales", "gwent", "dyfed-powys", "north-wales"}
ENDORSEMENTS = ["domestic_abuse", "sexual_violence", "youth", "hate_crime"]


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(label, seconds):
    ms = [s * 1000 for s in seconds]
    print(f"  {label:<52} p50 {percentile(ms, 0.5):7.2f} ms   p99 {percentile(ms, 0.99):7.2f} ms   (n={len(ms)})")


def facilitator_record(index, rng):
    home = rng.choice(REGIONS)
    regions = [home] + rng.sample([r for r in REGIONS if r != home], rng.choice([0, 0, 1, 2]))
    welsh = home in WELSH and rng.random() < 0.35
    return {
        "facilitator_id": f"fac-{index:05d}", "name": f"Facilitator {index}", "email": f"fac{index}@rj.example",
        "level": rng.choices(["foundation", "intermediate", "advanced"], [20, 55, 25])[0],
        "complex_case_trained": rng.random() < 0.3,
        "trained_on": (TODAY - timedelta(days=rng.randint(30, 1500))).isoformat(),
        "last_process_on": (TODAY - timedelta(days=rng.randint(1, 500))).isoformat(),
        "endorsements": rng.sample(ENDORSEMENTS, rng.choice([0, 0, 1, 1, 2])),
        "prison_vetted_until": (TODAY + timedelta(days=rng.randint(-100, 700))).isoformat()
        if rng.random() < 0.4 else None,
        "languages": ["en", "cy"] if welsh else ["en"],
        "regions": regions, "capacity": rng.randint(2, 8),
        "conflicts": [{"kind": "agency", "ref": f"agency-{rng.randint(0, 40)}"}] if rng.random() < 0.1 else [],
    }


def build_registry(store, count, rng):
    store.insert_facilitators([facilitators.from_record(parse(facilitator_record(index, rng)))
                               for index in range(count)])


def random_need(rng, index):
    region = rng.choice(REGIONS)
    complex_case = rng.random() < 0.25
    return Requirement(
        level="advanced" if complex_case else "intermediate", region=region,
        languages=frozenset({"en", "cy"} if region in WELSH and rng.random() < 0.2 else {"en"}),
        endorsements=frozenset(rng.sample(ENDORSEMENTS, 1)) if complex_case else frozenset(
            {"youth"} if rng.random() < 0.2 else ()),
        prison_vetting=rng.random() < 0.15, co_facilitation=complex_case,
        conflicts=frozenset({f"participant:b{index}-h", f"participant:b{index}-o", f"agency:agency-{index % 41}"}),
    )


class BenchOutbox:
    """Stands in for shared.messaging.outbox's OutboxHandle, relaying from the store's database."""

    def __init__(self, amqp_uri, store):
        self.db = store.db
        self.relay = Relay(EventPublisher(amqp_uri, "matching"), [])

    def event(self, event_type, subject, data, correlationid=None):
        return new_event(event_type, subject, data, source="/amends/bench/matching", region="bench",
                         correlationid=correlationid or subject)

    def flush(self, collection, doc_id, events=None):
        return self.relay.flush(self.db[collection], doc_id, events)


def bench_assignment(store, amqp_uri, cases, rng):
    print(f"\n1. assignment latency over {store.count_facilitators()} facilitators")
    ids = [f"fac-{rng.randint(0, 9999):05d}" for _ in range(cases)]
    base = []
    for facilitator_id in ids:
        start = time.perf_counter()
        store.get_facilitator(facilitator_id)
        base.append(time.perf_counter() - start)
    report("baseline: get_facilitator (find_one by _id)", base)
    probe = store.db["bench_probe"]  # a collection of the bench's own, beside the store's
    inserts = []
    for _ in range(cases):
        start = time.perf_counter()
        probe.insert_one({"_id": uuid.uuid4().hex})
        inserts.append(time.perf_counter() - start)
    report("baseline: insert_one (unique _id)", inserts)

    start = time.perf_counter()
    roster = Roster(store).load()
    print(f"  (roster of {len(roster.docs)} loaded in {time.perf_counter() - start:.1f} s, once per process)")
    choose, whole, staffed = [], [], 0
    for index in range(cases):
        need = random_need(rng, index)
        case_id = f"bench-a-{index}"
        start = time.perf_counter()
        team = staff(need.roles(), need, TODAY, lambda n, role: roster.candidates(n, TODAY, role),
                     lambda c, n, role: roster.reserve(c.facilitator_id, case_id, n, TODAY, role, confirm=False))
        roster.confirm(team.reserved, need, TODAY, case_id)
        choose.append(time.perf_counter() - start)
        staffed += not team.unfilled
    report("assignment: choose, reserve, confirm (lead + co if needed)", choose)
    print(f"  ({staffed} of {cases} cases found everyone they needed)")

    outbox = BenchOutbox(amqp_uri, store)
    run = workflow.Settings(policy=suitability_policy.load(), roster=roster)
    for index in range(cases):
        need = random_need(rng, cases + index)
        case_id = f"bench-b-{index}"
        requirement = {"level": need.level, "region": need.region, "languages": sorted(need.languages),
                       "endorsements": sorted(need.endorsements), "prison_vetting": need.prison_vetting,
                       "co_facilitation": need.co_facilitation, "conflicts": sorted(need.conflicts),
                       "preferred_endorsements": []}
        store.insert_assignment(assignments.new_case(case_id, f"as-{index}", need.region, requirement,
                                                     [f"b{index}-h", f"b{index}-o"]))
        start = time.perf_counter()
        workflow.staff_case(case_id, outbox, run, store)
        whole.append(time.perf_counter() - start)
    report("whole staffing: lease, choose, reserve, save, relay event", whole)


def bench_backlog(store, config, amqp_uri, backlog, budget=None):
    from nameko.containers import ServiceContainer
    from services.matching.service import MatchingService

    print(f"\n2. assessments per second, draining a backlog of {backlog} referral.received events")
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        start = time.perf_counter()
        for index in range(backlog):
            data = referral_received_data(case_id=f"backlog-{index}", region=REGIONS[index % len(REGIONS)],
                                          participants=[
                {"participant_id": f"q{index}-h", "role": "harmed", "age_band": "35_49", "language": "en",
                 "access_needs": []},
                {"participant_id": f"q{index}-o", "role": "harmer", "age_band": "25_34", "language": "en",
                 "access_needs": []}])
            event = new_event("referral.received", data["case_id"], data, source="/amends/bench/referrals",
                              region="bench", correlationid=data["case_id"])
            producer.publish(event, exchange=topology.events_exchange("referrals"), routing_key="referral.received",
                             serializer="json")
        print(f"  queued {backlog} events in {time.perf_counter() - start:.1f} s")
    container = ServiceContainer(MatchingService, config)
    start = time.perf_counter()
    container.start()
    done, last, last_done = 0, start, 0
    try:
        while done < backlog and not (budget and time.perf_counter() - start > budget):
            time.sleep(1)
            done = store.count_assessments()
            if time.perf_counter() - last > 15:
                rate = (done - last_done) / (time.perf_counter() - last)
                last, last_done = time.perf_counter(), done
                print(f"  ... {done} assessed after {last - start:.0f} s (lately {rate:.1f}/s)")
        elapsed = time.perf_counter() - start
        staffed = sum(case.status == "offered" for case in store.all_assignments())
    finally:
        container.stop()
    print(f"  {done} of {backlog} assessed in {elapsed:.1f} s: {done / elapsed:.1f} assessments/s "
          f"(one process, {config['max_workers']} workers; {staffed} cases staffed)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="a backlog of 10,000 events (default 300)")
    parser.add_argument("--backlog", type=int, default=None)
    parser.add_argument("--cases", type=int, default=300, help="cases timed for assignment latency")
    parser.add_argument("--facilitators", type=int, default=10000)
    parser.add_argument("--budget", type=float, default=None,
                        help="stop draining after this many seconds and report the part drained")
    args = parser.parse_args(argv)
    backlog = args.backlog or (10000 if args.full else 300)
    rng = random.Random(20261126)
    prefix = f"benchmatching{uuid.uuid4().hex[:8]}"
    vhost = f"bench-matching-{uuid.uuid4().hex[:8]}"
    requests.put(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=AUTH, timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/api/permissions/{vhost}/{AUTH[0]}", auth=AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    amqp_uri = admin_amqp_uri(AMQP_HOST, vhost)
    config = {"AMQP_URI": amqp_uri, "MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": prefix, "AMENDS_REGION": "bench",
              "AMENDS_RETRY_DELAYS": "1,5", "WEB_SERVER_ADDRESS": "127.0.0.1:0", "max_workers": 10,
              # one broker user for everything here, so senders cannot be told apart
              "AMENDS_DEV_UNCHECKED_BUS": "1"}
    try:
        topology.declare(amqp_uri, (1, 5))
        store = MatchingStore.open(config)  # its indexes ensured, as the service's provider does
        start = time.perf_counter()
        build_registry(store, args.facilitators, rng)
        print(f"registry of {args.facilitators} facilitators built in {time.perf_counter() - start:.1f} s")
        bench_assignment(store, amqp_uri, args.cases, rng)
        bench_backlog(store, config, amqp_uri, backlog, args.budget)
    finally:
        drop_databases(MONGO_URI, prefix)
        requests.delete(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=AUTH, timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
