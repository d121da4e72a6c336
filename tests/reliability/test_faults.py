"""The fault suite: a steady load of referrals while services are killed, the broker
restarts, the database goes away, and poison messages arrive. Afterwards nothing
accepted is lost, nothing is doubled, every poison message is dead-lettered with its
reason, and the platform still takes new referrals.

Runs on a RabbitMQ node and a FerretDB of its own, so that restarting them disturbs
no other test. AMENDS_CHAOS=quick (the default, in `make test`) or long (`make chaos`).
The per-fault table is printed and written to var/reliability/<mode>.txt.
"""
import json
import os
import time
import uuid

import eventlet
import pytest
import requests
from kombu import Connection, Queue, binding

from shared.events.envelope import now_rfc3339
from shared.messaging import deadletters, topology
from shared.messaging.consumer import event_consumer
from shared.storage import Database
from tests.factories import ROOT, referral_body, referral_received_data
from tests.platform import FerretDB, Platform, RabbitNode
from tests.reliability import history
from tests.reliability.audit import audit_cases, duplicate_mails
from tests.support import mails, provision_keys, smtp_server, wait_until

MODE = os.environ.get("AMENDS_CHAOS", "quick")
PROFILES = {
    # seconds between referrals, seconds of database outage, rounds of service kills
    "quick": {"interval": 1.0, "db_outage": 20, "kill_rounds": 1, "settle": 2},
    "long": {"interval": 1.0, "db_outage": 20, "kill_rounds": 3, "settle": 5},
}
PROFILE = PROFILES[MODE]
# What every suitable sample referral leaves in the ledger, whatever else it does.
REQUIRED = ("referral.received", "case.assessed", "facilitator.assigned", "notification.sent")
SUITABLE_SAMPLE = 0
# After the load stops the platform works through the backlog the faults left. It is
# judged stuck, and the run fails, when the ledger gains nothing for STALL_LIMIT seconds
# while cases are incomplete: longer than any timer between a crash and the work being
# picked up again (a notification claim goes stale after 90 s, a lease after 30 s, the
# sweep runs every 30 s). SETTLE_CAP bounds the whole wait. A backlog that is slow to
# clear is reported (the time it took is printed), not mistaken for a loss.
STALL_LIMIT = 150
SETTLE_CAP = 1800
TAP = "reliability.tap"
pytestmark = pytest.mark.reliability


@pytest.fixture
def platform(tmp_path, db_prefix):
    rabbit, ferret = RabbitNode(str(tmp_path)), FerretDB(str(tmp_path))
    rabbit.start()
    rabbit.create_accounts()   # as the bootstrap does: a user per service, guest gone
    ferret.start()
    mail_dir = str(tmp_path / "mail")
    try:
        topology.declare(rabbit.uri, (0.5, 1, 2))
        _declare_tap(rabbit.uri)
        with smtp_server(mail_dir) as smtp_port:
            services = Platform(rabbit.uri, ferret.uri, db_prefix, smtp_port, str(tmp_path / "logs"),
                                service_uris=rabbit.service_uris,
                                extra_env={"AMENDS_FERRETDB_POSTGRESQL_URL": ferret.postgresql_url})
            config = {"AMQP_URI": rabbit.uri, "MONGO_URI": ferret.uri, "AMENDS_DB_PREFIX": db_prefix}
            keys = provision_keys(config, agency="south-wales-police")
            _seed_facilitators(config)
            services.start()
            try:
                yield services, rabbit, ferret, keys, mail_dir, config
            finally:
                services.stop()
    finally:
        from tests.support import disconnect_all
        disconnect_all()
        ferret.remove()
        rabbit.stop()


def _declare_tap(amqp_uri):
    """A durable queue that sees every event every service publishes, across broker restarts."""
    with Connection(amqp_uri) as connection:
        Queue(TAP, bindings=[binding(topology.events_exchange(s), routing_key="#") for s in topology.SERVICES],
              durable=True, queue_arguments={"x-queue-type": "quorum"}).bind(connection.channel()).declare()


def _drain_tap(amqp_uri):
    events = []
    with Connection(amqp_uri) as connection:
        queue = Queue(TAP, durable=True, queue_arguments={"x-queue-type": "quorum"}).bind(connection.channel())
        while (message := queue.get(no_ack=False)) is not None:
            try:
                events.append(json.loads(message.body))
            except ValueError:
                pass  # the malformed poison message, which the tap sees too
            message.ack()
    return events


def _seed_facilitators(config):
    """The demo registry, with room for every referral the load sends."""
    from services.matching import facilitator_records, facilitators, seed_file
    from services.matching.store import MatchingStore
    store = MatchingStore.open(config)
    records = seed_file.read(os.path.join(ROOT, "deploy", "local", "facilitators.yaml"))
    for copy in range(10):  # ten of each, full capacity: seats for every referral of the long mode
        for record in records:
            facilitators.register(store, {**record, "facilitator_id": f"{record['facilitator_id']}-{copy}",
                                   "capacity": facilitator_records.MAX_CAPACITY})


class Load:
    """Referrals at a steady rate, each retried with its Idempotency-Key until accepted,
    as a well-behaved client would; each remembers the fault under way when it was sent."""

    def __init__(self, url, key, interval):
        self.url, self.key, self.interval = url, key, interval
        self.phase = "warm-up"
        self.sent = []       # (phase, idempotency key)
        self.accepted = {}   # idempotency key -> (phase, case id)
        self.refused = []    # 4xx answers: the load is well-formed, so any is a fault
        self.running = True
        self.pool = eventlet.GreenPool(200)

    def run(self):
        while self.running:
            key = uuid.uuid4().hex
            self.sent.append((self.phase, key))
            self.pool.spawn_n(self._submit, self.phase, key)
            eventlet.sleep(self.interval)

    def _submit(self, phase, key, deadline=300):
        started, pause = time.monotonic(), 1.0
        while time.monotonic() - started < deadline:
            try:
                answer = requests.post(f"{self.url}/v1/referrals", json=referral_body(SUITABLE_SAMPLE), timeout=15,
                                       headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": key})
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code in (200, 201):
                self.accepted[key] = (phase, answer.json()["case_id"])
                return
            if answer is not None and 400 <= answer.status_code < 500:
                self.refused.append((phase, answer.status_code, answer.text[:200]))
                return
            eventlet.sleep(pause)  # back off, as a well-behaved client does, so recovery is not a stampede
            pause = min(pause * 2, 16.0)

    def stop(self):
        self.running = False
        self.pool.waitall()


def _ledger(records_url, key):
    """Every ledger entry, through the replay feed."""
    events, after = [], -1
    while True:
        page = requests.get(f"{records_url}/v1/ledger/entries", params={"after": after, "limit": 1000},
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)
        page.raise_for_status()
        items = page.json()["items"]
        if not items:
            return events
        events += [item["event"] for item in items]
        after = items[-1]["seq"]


def _bound_queues(producer, routing_key):
    return sorted(topology.consumer_queue_name(service, consumer)
                  for (service, consumer), bindings in topology.CONSUMERS.items()
                  if any(p == producer and k in (routing_key, "#") for p, k in bindings))


class AlwaysFailingService:
    """A consumer on the platform's own machinery whose handler always raises."""
    name = "faulty"
    db = Database()

    @event_consumer("always-fails")
    def on_event(self, event):
        raise RuntimeError("this handler always fails")


@pytest.fixture
def always_failing(platform, monkeypatch):
    from nameko.containers import ServiceContainer
    monkeypatch.setitem(topology.CONSUMERS, ("faulty", "always-fails"), [])
    services, rabbit, ferret, keys, mail_dir, config = platform
    container = ServiceContainer(AlwaysFailingService, {**config, "AMENDS_RETRY_DELAYS": "0.5,1,2",
                                                        "AMENDS_REGION": "test"})
    container.start()
    yield container
    container.stop()


def _poison(amqp_uri):
    """Three kinds of poison, sent with referrals' own credentials (so from a sender the
    consumers believe): what each should leave, in which dead-letter queues."""
    exchange = topology.events_exchange("referrals")
    broken = {"specversion": "1.0", "id": f"poison-{uuid.uuid4().hex[:8]}", "type": "referral.received",
              "source": "/amends/test/referrals", "subject": "case-poison", "time": now_rfc3339(),
              "datacontenttype": "application/json", "correlationid": "case-poison", "causationid": None,
              "region": "test",
              "schemaversion": 1, "data": {"case_id": "case-poison", "cjs_stage": "whenever"}}
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        sender = {"user_id": connection.userid}
        for body in (b"{not json at all", json.dumps(broken).encode()):
            producer.publish(body, exchange=exchange, routing_key="referral.received", serializer=None,
                             content_type="application/json", content_encoding="utf-8", delivery_mode=2, **sender)
        # a valid event, straight into the queue of a handler that always raises
        good = json.loads(json.dumps(broken))
        good["data"] = referral_received_data(case_id=good["subject"])
        producer.publish(json.dumps(good), exchange="", routing_key="faulty.always-fails", serializer=None,
                         content_type="application/json", content_encoding="utf-8", delivery_mode=2, **sender)
    queues = _bound_queues("referrals", "referral.received")
    return {"faulty": [("faulty.always-fails", "RuntimeError: (details withheld)")],
            **{queue.split(".")[0]: [(queue, "malformed JSON body"), (queue, "invalid event: data.")]
               for queue in queues}}


def _faults(services, rabbit, ferret, load):
    settle = PROFILE["settle"]
    for round_ in range(PROFILE["kill_rounds"]):
        for name in ("referrals", "matching", "notifications", "records"):
            load.phase = f"kill -9 {name}"
            eventlet.sleep(settle)
            services.kill9(name)
            eventlet.sleep(1)
            services.start(name)
    load.phase = "restart RabbitMQ"
    eventlet.sleep(settle)
    rabbit.restart()
    wait_until(lambda: all(services.healthy(n) for n in services.processes), timeout=180, interval=1)
    load.phase = f"FerretDB down {PROFILE['db_outage']}s"
    eventlet.sleep(settle)
    ferret.stop()
    eventlet.sleep(PROFILE["db_outage"])
    ferret.start()
    wait_until(lambda: all(services.healthy(n) for n in services.processes), timeout=180, interval=1)
    load.phase = "steady after faults"
    eventlet.sleep(settle * 2)


def test_nothing_accepted_is_lost_or_doubled_through_every_fault(platform, always_failing):
    services, rabbit, ferret, keys, mail_dir, config = platform
    load = Load(services.url("referrals"), keys["referrer"], PROFILE["interval"])
    loader = eventlet.spawn(load.run)
    _faults(services, rabbit, ferret, load)
    load.phase = "poison messages"
    expected_letters = _poison(rabbit.service_uris["referrals"])
    eventlet.sleep(PROFILE["settle"])
    load.stop()
    loader.wait()
    assert load.refused == []
    assert set(services.alive().values()) == {True}, f"a service died on its own: {services.alive()}"

    auditor = keys["auditor"]
    cases = {case_id: phase for phase, case_id in load.accepted.values()}
    published = []

    ledger = []

    def audit():
        # the ledger first, then the tap: every event the ledger holds has reached the tap by then
        ledger[:] = _ledger(services.url("records"), auditor)
        published.extend(_drain_tap(rabbit.uri))
        return audit_cases(cases, published, ledger, REQUIRED)

    audits, settle_time = _settle(audit, ledger)

    def all_letters():
        return {s: deadletters.list_letters(rabbit.uri, s) for s in topology.SERVICES + ("faulty",)}

    # The ledger can settle before the last poison message has used up its retries (the
    # always-failing handler's take 0.5 + 1 + 2 s): wait, a bounded time, for the letters expected.
    deadline = time.time() + 60
    letters = all_letters()
    while time.time() < deadline and any(len(letters[s]) < len(expected_letters.get(s, [])) for s in letters):
        time.sleep(1)
        letters = all_letters()
    duplicates_mailed = duplicate_mails(mails(mail_dir))
    report = _report(load, cases, audits, letters, duplicates_mailed)
    report += f"\nsettled in {settle_time:.0f} s after the load stopped" if settle_time is not None else (
        f"\nnot settled: the ledger stood still for {STALL_LIMIT} s, or {SETTLE_CAP} s passed")
    short = [a for a in audits if a.faults]
    if short:
        report += f"\n\n{len(short)} cases fall short:\n" + "\n".join(
            history.describe(a, cases[a.case_id], published, ledger, config, services.log_dir) for a in short[:10])
    print(report)

    # Every accepted referral: all its events recorded, exactly once, and nothing else recorded.
    assert len(load.accepted) == len({key for _, key in load.sent})
    assert [a for a in audits if a.missing or a.absent_types] == []
    assert [a for a in audits if a.duplicates] == []
    assert [a for a in audits if a.unexplained] == []
    assert duplicates_mailed == {}
    # Every poison message is dead-lettered with its reason, in every queue it reached, and nothing else is.
    for service in letters:
        found = sorted((letter["queue"], letter["error"]) for letter in letters[service])
        wanted = sorted(expected_letters.get(service, []))
        assert len(found) == len(wanted), f"{service}: dead letters {found}, expected {wanted}"
        assert [(queue, error[:len(reason)]) for (queue, error), (_, reason) in zip(found, wanted)] == wanted
    # And the platform still works.
    _a_new_referral_goes_all_the_way(services, keys)


def _settle(audit, ledger):
    """Audit every few seconds until nothing falls short (returns the audits and the
    seconds it took), or until the ledger stands still too long (returns the audits
    and None)."""
    started = last_growth = time.monotonic()
    size = -1
    while True:
        audits = audit()
        now = time.monotonic()
        if not any(a.faults for a in audits):
            return audits, now - started
        if len(ledger) > size:
            size, last_growth = len(ledger), now
        if now - last_growth > STALL_LIMIT or now - started > SETTLE_CAP:
            return audits, None
        time.sleep(3)


def _a_new_referral_goes_all_the_way(services, keys):
    answer = requests.post(f"{services.url('referrals')}/v1/referrals", json=referral_body(SUITABLE_SAMPLE),
                           headers={"Authorization": f"Bearer {keys['referrer']}",
                                    "Idempotency-Key": uuid.uuid4().hex}, timeout=15)
    assert answer.status_code == 201
    case_id = answer.json()["case_id"]

    def recorded():
        timeline = requests.get(f"{services.url('records')}/v1/cases/{case_id}/timeline",
                                headers={"Authorization": f"Bearer {keys['coordinator']}"}, timeout=10)
        types = {e["type"] for e in timeline.json().get("entries", [])} if timeline.status_code == 200 else set()
        return set(REQUIRED) <= types
    wait_until(recorded, timeout=60, interval=1)


def _report(load, cases, audits, letters, duplicates_mailed):
    by_case = {a.case_id: a for a in audits}
    phases = []
    for phase, _ in load.sent:
        if phase not in phases:
            phases.append(phase)
    rows = [("fault", "referrals sent", "accepted", "ledger entries expected", "found", "duplicates",
             "unexplained", "dead letters")]
    for phase in phases + ["poison messages"] * ("poison messages" not in phases):
        sent = sum(1 for p, _ in load.sent if p == phase)
        mine = [by_case[c] for c, p in cases.items() if p == phase and c in by_case]
        dead = sum(len(v) for v in letters.values()) if phase == "poison messages" else 0
        rows.append((phase, sent, len(mine), sum(a.expected for a in mine), sum(a.found for a in mine),
                     sum(len(a.duplicates) for a in mine), sum(len(a.unexplained) for a in mine), dead))
    rows.append(("duplicate emails", "", "", "", "", len(duplicates_mailed), "", ""))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [f"fault suite, {MODE} mode"] + [
        "| " + " | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(2, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text = "\n".join(lines)
    out = os.path.join(ROOT, "var", "reliability")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{MODE}.txt"), "w") as handle:
        handle.write(text + "\n")
    return text
