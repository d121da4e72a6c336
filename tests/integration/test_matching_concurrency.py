"""Two matching processes on one vhost and database, racing for too little capacity;
and malformed events on the new consumer going to the dead-letter queue."""
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import requests
from kombu import Connection

from services.matching import facilitators
from services.matching.service import MatchingService
from services.matching.store import MatchingStore
from shared.events import new_event
from shared.messaging import topology
from tests.conftest import MANAGEMENT, RABBIT_AUTH
from tests.factories import ROOT, days_ago, referral_received_data
from tests.platform import stop_all
from tests.support import disconnect_all, free_port, publish_event, read_dead_letters, wait_until

CASES = 200
FACILITATORS = 20
CAPACITY = 3  # 60 seats for 200 cases


def referral(index):
    data = referral_received_data(case_id=f"case-{index:03d}", referrer_id=f"ref-{index}", participants=[
        {"participant_id": f"p-{index}-h", "role": "harmed", "age_band": "35_49", "language": "en", "access_needs": []},
        {"participant_id": f"p-{index}-o", "role": "harmer", "age_band": "25_34", "language": "en",
         "access_needs": []}])
    return new_event("referral.received", data["case_id"], data, source="/amends/test/referrals", region="test",
                     correlationid=data["case_id"])


def start_matching(config, port):
    env = dict(os.environ, AMQP_URI=config["AMQP_URI"], MONGO_URI=config["MONGO_URI"],
               AMENDS_DB_PREFIX=config["AMENDS_DB_PREFIX"], AMENDS_RETRY_DELAYS="0.5,1,2", PYTHONPATH=ROOT,
               MATCHING_HTTP_ADDRESS=f"127.0.0.1:{port}", MATCHING_MAX_WORKERS="10",
               # the test publishes as the admin, as every process here connects: no sender to check
               AMENDS_DEV_UNCHECKED_BUS=config["AMENDS_DEV_UNCHECKED_BUS"])
    nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
    return subprocess.Popen([nameko, "run", "--config", "services/matching/config.yaml",
                             "services.matching.service:MatchingService"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def healthy(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def consumers_on(vhost, queue):
    answer = requests.get(f"{MANAGEMENT}/api/queues/{vhost}/{queue}", auth=RABBIT_AUTH, timeout=10)
    return answer.json().get("consumers", 0) if answer.status_code == 200 else 0


@pytest.fixture
def matching_db(service_config):
    config = service_config()
    topology.declare(config["AMQP_URI"], (0.5, 1, 2))
    store = MatchingStore.open(config)
    yield config, store
    disconnect_all()


def progress(store):
    return sum(a.status in ("offered", "waitlisted") for a in store.all_assignments())


def test_two_processes_never_book_beyond_capacity_and_waitlist_the_rest(matching_db, vhost):
    config, store = matching_db
    for index in range(FACILITATORS):
        facilitators.register(store, {"facilitator_id": f"fac-{index:02d}", "level": "intermediate",
                               "regions": ["south-wales"], "languages": ["en"], "capacity": CAPACITY,
                               "trained_on": days_ago(450), "last_process_on": days_ago(60)})
    ports = [free_port(), free_port()]
    processes = [start_matching(config, port) for port in ports]
    try:
        for port in ports:
            wait_until(lambda: healthy(port), timeout=60)
        wait_until(lambda: consumers_on(vhost, "matching.assess") == 2, timeout=30)
        with Connection(config["AMQP_URI"]) as connection:
            producer = connection.Producer()
            for index in range(CASES):
                producer.publish(json.dumps(referral(index)), exchange=topology.events_exchange("referrals"),
                                 routing_key="referral.received", content_type="application/json",
                                 content_encoding="utf-8", serializer=None)
        wait_until(lambda: progress(store) == CASES, timeout=400, interval=1)
    finally:
        stop_all(processes, timeout=30)
    assert store.count_assessments() == CASES
    cases = store.all_assignments()
    statuses = Counter(case.status for case in cases)
    assert statuses == {"offered": FACILITATORS * CAPACITY, "waitlisted": CASES - FACILITATORS * CAPACITY}
    seats = store.all_seats()
    per_facilitator = Counter(seat.facilitator_id for seat in seats)
    assert len(per_facilitator) == FACILITATORS and set(per_facilitator.values()) == {CAPACITY}
    assert all(0 <= seat.seat < CAPACITY for seat in seats)
    per_case = Counter(seat.case_id for seat in seats)
    assert set(per_case.values()) == {1}  # no case booked twice
    for case in cases:
        active = [s for s in case.slots if s.state == "offered"]
        if case.status == "offered":
            assert len(active) == 1 and per_case[case.case_id] == 1
            assert {s.facilitator_id for s in seats if s.case_id == case.case_id} == {active[0].facilitator_id}
        else:
            assert active == [] and per_case[case.case_id] == 0
            assert store.pending_events(store.ASSIGNMENTS, case.case_id) == []


def test_malformed_case_closed_events_are_dead_lettered_with_the_reason(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        good = new_event("case.closed", "case-1", {"case_id": "case-1", "from_status": "ALLOCATED",
                                                   "reason": "harmed_declined"},
                         source="/amends/test/referrals", region="test", correlationid="case-1")
        bad = json.loads(json.dumps(good))
        bad["data"]["reason"] = "got_bored"
        publish_event(amqp_uri, bad)
        publish_event(amqp_uri, good, body=b'{"specversion": "1.0", "type": ')
        letters = []
        wait_until(lambda: letters.extend(read_dead_letters(amqp_uri, "matching")) or len(letters) >= 2)
        reasons = sorted(headers["x-amends-error"] for _, headers in letters)
        assert reasons[0].startswith("invalid event: data.reason")
        assert reasons[1] == "malformed JSON body"
        assert {headers["x-amends-queue"] for _, headers in letters} == {"matching.release"}
        assert {headers["x-amends-original-routing-key"] for _, headers in letters} == {"case.closed"}
        assert store.all_assignments() == []
