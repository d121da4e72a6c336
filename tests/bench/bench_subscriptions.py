"""Webhook delivery under load: 100 subscribers on local receivers, events at 20 a second,
with every subscriber healthy (the baseline) and with 10 of them hanging, in the same run.
Prints figures and whether the targets are met; asserts nothing about speed.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_subscriptions.py                   # about 3 minutes
    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_subscriptions.py --rounds 1 --seconds 5   # a short run

Options (each also from the environment, BENCH_SUBSCRIPTIONS_<OPTION>): --subscribers
(100), --hanging (10), --rate (events a second, 20), --rounds (3), --seconds (of load in
each segment, 20), --warmup (seconds of load before the first round, not counted, 5),
--drain (at most this many seconds after a segment's last event for the healthy receivers
to get everything, 30), --own-ferretdb (a FerretDB of the bench's own, on the shared
PostgreSQL, instead of the shared one). BENCH_SUBSCRIPTIONS_CONFIG='{"SUBSCRIPTIONS_FLUSH":
"1"}' runs the subscriptions service with other settings (JSON, added to its environment).

How: the records and subscriptions services run as `nameko run` processes (tests/platform.py)
on a vhost and database prefix of the bench's own, on the shared RabbitMQ and FerretDB. The
bench publishes `referral.received` events (one new case each, region south-wales) to
referrals' exchange, open loop: event i at start + i / rate, whatever became of the others.
Records appends them to its ledger; subscriptions follows the ledger through records'
`entries_after` RPC and delivers. Ten agencies hold an `area_cases` agreement for
south-wales, set through the API by a coordinator, and the webhook subscriptions are made
through the API by the agencies in turn (`event_types` ["referral.received"], max_batch 1,
the default). Every subscriber is a real HTTP server on 127.0.0.1 in this process
(tests/webhook_receiver.py) that verifies each request's signature with `standardwebhooks`
and notes when it arrived. A hanging subscriber accepts the connection and reads the
request, and never answers.

Each round: 10 new subscriptions join the 90 steady ones; --seconds of load with all 100
healthy; then --seconds with the 10 new ones hanging; then those 10 are unsubscribed. The
rounds alternate the two conditions, so that whatever else the machine does at the time
falls on both alike. Latency is from an entry's ledger append (its group's `recorded_at` in
records' database) to its first arrival at a receiver. The baseline is the p99 of the 90
steady subscribers in the healthy segments, compared with their p99 in the hanging
segments; delivery p99 is over every healthy subscriber. CPU is read from /proc for the two
services, this process (the receivers and the feeder) and the shared servers.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import timezone  # noqa: E402
from urllib.parse import quote  # noqa: E402

import pymongo  # noqa: E402
import requests  # noqa: E402
from kombu import Connection  # noqa: E402
from standardwebhooks import Webhook  # noqa: E402
from standardwebhooks.webhooks import WebhookVerificationError  # noqa: E402

from shared.events import new_event  # noqa: E402
from shared.messaging import topology  # noqa: E402
from tests.factories import referral_received_data  # noqa: E402
from tests.bench.bench_scaleout import CORES, machine_busy  # noqa: E402
from tests.platform import FerretDB, Platform  # noqa: E402
from tests.scaleout import CpuMeter, infrastructure  # noqa: E402
from tests.support import (SERVED_REGIONS, disconnect_all, drop_databases, free_port, issue_key,  # noqa: E402
                           rabbit_admin)
from tests.webhook_receiver import Receiver  # noqa: E402

AMQP_HOST = os.environ.get("AMENDS_TEST_AMQP_HOST", "127.0.0.1:5672")
MANAGEMENT = os.environ.get("AMENDS_TEST_RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
REGION = "south-wales"
AGENCIES = 10
ZONE = "test"   # the residency zone tests/platform.py gives its ledger
TARGET_P99 = 1.0
TARGET_RATIO = 1.10


class TimedReceiver(Receiver):
    """A webhook receiver that keeps, for each event it is sent, only (position, id, arrival
    time), so a long run stays small; it verifies each request's signature as it arrives.
    Set `hanging` and it reads each request and never answers."""

    def __init__(self):
        super().__init__()
        self.webhook = None
        self.arrivals = []     # (ledger position, event id, arrival time), in arrival order
        self.unverified = 0
        self.hanging = False
        self.hung = 0          # requests it has held without answering

    def _app(self, environ, start_response):
        at = time.time()
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode("utf-8")
        if self.hanging:
            self.hung += 1
            self._held.wait()    # no answer: the bench ends first
            start_response("503 Gone Away", [("Content-Length", "0")])
            return [b""]
        headers = {name: environ.get(f"HTTP_{name.upper().replace('-', '_')}", "")
                   for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        try:
            sent = self.webhook.verify(body, headers)
        except (WebhookVerificationError, AttributeError):
            self.unverified += 1
            sent = json.loads(body)
        for event in sent if isinstance(sent, list) else [sent]:
            self.arrivals.append((event["ledgerposition"], event["id"], at))
        start_response("204 No Content", [])
        return []


@dataclass
class Phase:
    name: str
    cases: list = field(default_factory=list)     # case ids fed, in order
    sent_at: dict = field(default_factory=dict)   # case id -> when it was published
    send_lag: list = field(default_factory=list)  # seconds each publish was late


class Bench:
    def __init__(self, subscribers, hanging, rate, log_dir, extra_env=None, own_ferretdb=False):
        self.count, self.hanging_count, self.rate = subscribers, hanging, rate
        self.log_dir = log_dir
        # a FerretDB of the bench's own (on the shared PostgreSQL), or the shared one
        self.ferretdb = FerretDB(log_dir) if own_ferretdb else None
        self.mongo_uri = self.ferretdb.uri if own_ferretdb else MONGO_URI
        self.extra_env = extra_env or {}
        self.vhost, self.prefix = f"bench-subs-{uuid.uuid4().hex[:8]}", f"benchsub{uuid.uuid4().hex[:8]}"
        user, password = rabbit_admin()
        self.auth = (user, password)
        self.amqp_uri = f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{AMQP_HOST}/{self.vhost}"
        self.config = {"AMQP_URI": self.amqp_uri, "MONGO_URI": self.mongo_uri, "AMENDS_DB_PREFIX": self.prefix,
                       "AMENDS_REGION": ZONE, "AMENDS_REGIONS": SERVED_REGIONS}
        self.steady = [TimedReceiver() for _ in range(subscribers - hanging)]   # healthy throughout
        self.receivers = list(self.steady)    # every receiver made, for closing
        self.keys = {}
        self.platform = None
        self.tag = uuid.uuid4().hex[:6]
        self.fed = 0

    # --- setting up and tearing down -----------------------------------------------------

    def __enter__(self):
        requests.put(f"{MANAGEMENT}/api/vhosts/{self.vhost}", auth=self.auth, timeout=10).raise_for_status()
        requests.put(f"{MANAGEMENT}/api/permissions/{self.vhost}/{self.auth[0]}", auth=self.auth, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        try:
            if self.ferretdb is not None:
                self.ferretdb.start()
            topology.declare(self.amqp_uri, (1, 5))
            env = {"AMENDS_RATE_LIMIT": "100000", "AMENDS_RATE_BURST": "10000", **self.extra_env}
            self.platform = Platform(self.amqp_uri, self.mongo_uri, self.prefix, free_port(), self.log_dir,
                                     extra_env=env)
            self.platform.start("records", "subscriptions")
            self._agree()
            self.subscribe(self.steady)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.platform is not None:
                self.platform.stop()
            for receiver in self.receivers:
                if receiver._socket is not None:
                    receiver.__exit__()
            disconnect_all()
        finally:
            requests.delete(f"{MANAGEMENT}/api/vhosts/{self.vhost}", auth=self.auth, timeout=10)
            if self.ferretdb is not None:
                self.ferretdb.remove()
            else:
                drop_databases(MONGO_URI, self.prefix)

    def _agree(self):
        """An area_cases agreement for each agency, set through the API by a coordinator, and
        a key of each agency's for its subscriptions."""
        base = self.platform.url("subscriptions")
        coordinator = issue_key(self.config, "coordinator", "bench-coordination", "bench-coordinator",
                                regions=(REGION,))
        for index in range(AGENCIES):
            agency = f"bench-agency-{index}"
            self.keys[agency] = issue_key(self.config, "referrer", agency, f"{agency}-referrer", regions=(REGION,))
            requests.put(f"{base}/v1/agencies/{agency}/sharing", timeout=30,
                         headers={"Authorization": f"Bearer {coordinator}"},
                         json={"profile": "area_cases", "regions": [REGION],
                               "agreement_reference": f"DSA/{agency}"}).raise_for_status()

    def subscribe(self, receivers):
        """A webhook subscription for each receiver, made through the API as its agency would
        (the agencies in turn), from now on."""
        base = self.platform.url("subscriptions")
        for receiver in receivers:
            if receiver._socket is None:
                receiver.__enter__()
            if receiver not in self.receivers:
                self.receivers.append(receiver)
            receiver.agency = f"bench-agency-{self.receivers.index(receiver) % AGENCIES}"
            answer = requests.post(f"{base}/v1/subscriptions", timeout=30,
                                   headers={"Authorization": f"Bearer {self.keys[receiver.agency]}"},
                                   json={"kind": "webhook", "url": receiver.url, "event_types": ["referral.received"]})
            if answer.status_code != 201:
                raise SystemExit(f"a subscription was refused: {answer.status_code} {answer.text}")
            receiver.subscription_id = answer.json()["subscription_id"]
            receiver.webhook = Webhook(answer.json()["secret"])

    def unsubscribe(self, receivers):
        base = self.platform.url("subscriptions")
        for receiver in receivers:
            requests.delete(f"{base}/v1/subscriptions/{receiver.subscription_id}", timeout=30,
                            headers={"Authorization": f"Bearer {self.keys[receiver.agency]}"}).raise_for_status()

    # --- the load --------------------------------------------------------------------------

    def feed(self, phase, seconds):
        """Publish `rate` × `seconds` events, open loop, each a new case."""
        total = int(round(self.rate * seconds))
        with Connection(self.amqp_uri) as connection:
            producer = connection.Producer()
            exchange = topology.events_exchange("referrals")
            start = time.time()
            for i in range(total):
                due = start + i / self.rate
                eventlet.sleep(max(0.0, due - time.time()))
                case_id = f"bench-{self.tag}-{self.fed}"
                self.fed += 1
                event = new_event("referral.received", case_id,
                                  referral_received_data(case_id=case_id, referrer_id=f"{case_id}-ref", region=REGION),
                                  source=f"/amends/{ZONE}/referrals", region=ZONE, correlationid=case_id)
                now = time.time()
                producer.publish(json.dumps(event), exchange=exchange, routing_key=event["type"],
                                 content_type="application/json", content_encoding="utf-8", serializer=None,
                                 delivery_mode=2)
                phase.cases.append(case_id)
                phase.sent_at[case_id] = now
                phase.send_lag.append(now - due)

    def ledger(self):
        """{case id: (position, appended at)} of every entry in records' ledger."""
        found = {}
        client = pymongo.MongoClient(self.mongo_uri, socketTimeoutMS=30000, serverSelectionTimeoutMS=30000)
        db = client[f"{self.prefix}_records"]
        for group in db["ledger"].find({}, {"start": 1, "case_ids": 1, "recorded_at": 1}):
            appended = group["recorded_at"].replace(tzinfo=timezone.utc).timestamp()   # stored in UTC
            for offset, case_id in enumerate(group["case_ids"]):
                found[case_id] = (group["start"] + offset, appended)
        client.close()
        return found

    def wait_delivered(self, phase, healthy, drain):
        """Until every healthy receiver has every event of `phase` (or `drain` seconds)."""
        deadline = time.time() + drain
        while time.time() < deadline:
            ledger = self.ledger()
            positions = {ledger[c][0] for c in phase.cases if c in ledger}
            if len(positions) == len(phase.cases) and all(
                    positions <= {p for p, _, _ in r.arrivals} for r in healthy):
                return True
            eventlet.sleep(0.5)
        return False

    def meter(self):
        groups = {"subscriptions": lambda: [self.platform.processes["subscriptions"].pid],
                  "records": lambda: [self.platform.processes["records"].pid],
                  "bench (receivers, feeder)": lambda: [os.getpid()]}
        groups.update(infrastructure())
        if self.ferretdb is not None:
            groups["FerretDB"] = lambda: [self.ferretdb.process.pid]
        return CpuMeter(groups)


@dataclass
class Figures:
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    latencies: list = field(default_factory=list)

    def quantile(self, q):
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(phase, receivers, ledger):
    """Delivery of `phase`'s events to `receivers`: latencies from ledger append to first
    arrival, and what did not arrive, arrived twice or out of ledger order."""
    wanted = {ledger[c][0]: ledger[c][1] for c in phase.cases if c in ledger}
    result = Figures(missing=(len(phase.cases) - len(wanted)) * len(receivers))
    for receiver in receivers:
        first, order = {}, []
        for position, _, at in receiver.arrivals:
            if position not in wanted:
                continue
            if position in first:
                result.duplicates += 1
                continue
            first[position] = at
            order.append(position)
        result.out_of_order += sum(1 for a, b in zip(order, order[1:]) if b < a)
        result.missing += len(wanted) - len(first)
        result.delivered += len(first)
        result.latencies += [at - wanted[p] for p, at in first.items()]
    return result


def run(subscribers=100, hanging=10, rate=20.0, seconds=20.0, rounds=3, warmup=5.0, drain=30.0, log_dir=None,
        extra_env=None, own_ferretdb=False, report=print):
    """`rounds` rounds, each of `seconds` of load with every subscriber healthy, then
    `seconds` with `hanging` of them hanging (new ones each round: the last round's are
    unsubscribed), so that whatever else the machine does falls on both alike. Returns the
    figures pooled over the rounds: "all" (every subscriber, healthy segments), "baseline"
    and "hanging" (the subscribers that never hang, in each kind of segment), and each
    segment with the receivers that were healthy in it (`segments`)."""
    log_dir = log_dir or tempfile.mkdtemp(prefix="bench-subscriptions-")
    with Bench(subscribers, hanging, rate, log_dir, extra_env, own_ferretdb) as bench:
        report(f"{subscribers} webhook subscribers ({AGENCIES} agencies, area_cases), {rate:g} events/s; "
               f"{rounds} rounds of {seconds:g} s all healthy then {seconds:g} s with {hanging} hanging; "
               f"logs in {log_dir}")
        segments, complete, cpu = [], True, {"baseline": [], "hanging": []}
        for number in range(rounds):
            doomed = [TimedReceiver() for _ in range(hanging)]
            bench.subscribe(doomed)
            everyone = bench.steady + doomed
            eventlet.sleep(2.5)   # the dispatcher takes new subscriptions in within a second
            if number == 0 and warmup:
                warm = Phase("warm-up")
                bench.feed(warm, warmup)
                bench.wait_delivered(warm, everyone, drain)
            for kind, healthy in (("baseline", everyone), ("hanging", bench.steady)):
                for receiver in doomed:
                    receiver.hanging = kind == "hanging"
                phase = Phase(kind)
                meter = bench.meter()
                meter.start()
                busy = machine_busy()
                bench.feed(phase, seconds)
                complete = bench.wait_delivered(phase, healthy, drain) and complete
                meter.stop()
                meter.used["whole machine"] = machine_busy() - busy
                cpu[kind].append(meter)
                segments.append((phase, healthy))
            bench.unsubscribe(doomed)
        ledger = bench.ledger()
        steady = bench.steady
        results = {
            "all": pooled(figures(p, healthy, ledger) for p, healthy in segments if p.name == "baseline"),
            "baseline": pooled(figures(p, steady, ledger) for p, _ in segments if p.name == "baseline"),
            "hanging": pooled(figures(p, steady, ledger) for p, _ in segments if p.name == "hanging"),
            "complete": complete, "cpu": cpu, "segments": segments, "ledger": ledger,
            "unverified": sum(r.unverified for r in bench.receivers),
            "hung": sum(r.hung for r in bench.receivers),
            "send_lag": max((lag for p, _ in segments for lag in p.send_lag), default=0.0),
            "feed": figures_of_feed([p for p, _ in segments], ledger)}
    return results


def pooled(parts):
    whole = Figures()
    for part in parts:
        whole.delivered += part.delivered
        whole.missing += part.missing
        whole.duplicates += part.duplicates
        whole.out_of_order += part.out_of_order
        whole.latencies += part.latencies
    return whole


def figures_of_feed(phases, ledger):
    """Seconds from publishing each event to its ledger append (the part before delivery)."""
    return sorted(ledger[c][1] - phase.sent_at[c] for phase in phases for c in phase.cases if c in ledger)


def ms(seconds):
    return f"{seconds * 1000:7.0f}"


def print_report(results, subscribers, hanging):
    base, stuck, every = results["baseline"], results["hanging"], results["all"]
    print(f"\n{'phase':<34} {'deliveries':>10} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'missing':>8} "
          f"{'dupl.':>6} {'order':>6}")
    rows = [(f"all {subscribers} healthy (all {subscribers})", every),
            (f"all {subscribers} healthy (the {subscribers - hanging})", base),
            (f"{hanging} hanging (the other {subscribers - hanging})", stuck)]
    steady = results["segments"][0][1][:subscribers - hanging]
    for label, row in rows:
        print(f"{label:<34} {row.delivered:>10} {ms(row.quantile(0.5))} {ms(row.quantile(0.99))} "
              f"{ms(max(row.latencies, default=float('nan')))} {row.missing:>8} {row.duplicates:>6} "
              f"{row.out_of_order:>6}")
    for kind, label in (("baseline", rows[1][0]), ("hanging", rows[2][0])):
        parts = [figures(p, steady, results["ledger"]) for p, _ in results["segments"] if p.name == kind]
        steps = "  ".join(f"{part.quantile(0.5) * 1000:.0f}/{part.quantile(0.99) * 1000:.0f}" for part in parts)
        print(f"  p50/p99 ms round by round, {label}: {steps}")
    feed = results["feed"]
    if feed:
        print(f"(publish -> ledger append, before that: p50 {feed[len(feed) // 2] * 1000:.0f} ms, "
              f"p99 {feed[min(len(feed) - 1, int(0.99 * len(feed)))] * 1000:.0f} ms; "
              f"the bench's own send lag, max: {results['send_lag'] * 1000:.0f} ms)")
    print(f"requests held by the hanging receivers: {results['hung']}; unverified requests: "
          f"{results['unverified']}; every healthy delivery in within the drain: {results['complete']}")
    for name, meters in results["cpu"].items():
        wall = sum(m.wall for m in meters)
        shares = ", ".join(f"{label} {sum(m.used[label] for m in meters) / wall * 100:.0f}%"
                           for label in meters[0].used)
        print(f"CPU during the {name} segments (% of one core; the machine has {CORES}): {shares}")
    ratio = stuck.quantile(0.99) / base.quantile(0.99)
    p99 = max(every.quantile(0.99), stuck.quantile(0.99))
    print(f"\ntarget: delivery p99 <= {TARGET_P99 * 1000:.0f} ms: {p99 * 1000:.0f} ms "
          f"({'met' if p99 <= TARGET_P99 else 'NOT met'})")
    print(f"target: {hanging} hanging add <= {(TARGET_RATIO - 1) * 100:.0f}% to the others' p99: "
          f"{ratio:.2f}x the baseline ({'met' if ratio <= TARGET_RATIO else 'NOT met'})")


def main():
    env = lambda name, default: os.environ.get(f"BENCH_SUBSCRIPTIONS_{name.upper()}", default)  # noqa: E731
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=int(env("subscribers", 100)))
    parser.add_argument("--hanging", type=int, default=int(env("hanging", 10)))
    parser.add_argument("--rate", type=float, default=float(env("rate", 20)))
    parser.add_argument("--seconds", type=float, default=float(env("seconds", 20)))
    parser.add_argument("--rounds", type=int, default=int(env("rounds", 3)))
    parser.add_argument("--warmup", type=float, default=float(env("warmup", 5)))
    parser.add_argument("--drain", type=float, default=float(env("drain", 30)))
    parser.add_argument("--own-ferretdb", action="store_true", default=bool(env("own_ferretdb", "")),
                        help="run on a FerretDB of the bench's own (on the shared PostgreSQL), away from "
                             "whatever else uses the shared one")
    args = parser.parse_args()
    if not 0 <= args.hanging < args.subscribers:
        raise SystemExit("--hanging must be at least 0 and fewer than --subscribers")
    results = run(args.subscribers, args.hanging, args.rate, args.seconds, args.rounds, args.warmup, args.drain,
                  extra_env=json.loads(os.environ.get("BENCH_SUBSCRIPTIONS_CONFIG", "{}")),
                  own_ferretdb=args.own_ferretdb)
    print_report(results, args.subscribers, args.hanging)


if __name__ == "__main__":
    main()
