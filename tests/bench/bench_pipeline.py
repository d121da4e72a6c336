"""End to end: referrals sent open-loop at fixed rates through the HTTP API, each case
timed until the ledger shows it received, assessed and staffed; beside it, the stock
nameko pattern over the same hops (tests/bench/pipeline_baseline.py) at the same rates.

The four services and the baseline's four run as `nameko run` processes on a RabbitMQ
vhost and database prefix of the bench's own (removed afterwards), with an SMTP server
of its own and a registry of facilitators seeded so that suitable cases get staffed.
Open-loop: each request is sent on its schedule whether or not earlier ones have been
answered, and every latency counts from that scheduled time. A tail polls the ledger
feed (and the baseline's recorder) every --poll seconds, so each event time may be late
by up to that period. CPU and RSS of each process are sampled from /proc during each
rate. Prints figures; asserts nothing (see docs/performance.md).

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_pipeline.py [--rates 5,20,50,100] [--seconds 20]
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import copy  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import requests  # noqa: E402

from shared.messaging import topology  # noqa: E402
from tests.bench.growth import grow  # noqa: E402
from tests.bench.profiles import Profiles  # noqa: E402
from tests.factories import ROOT, SAMPLES  # noqa: E402
from tests.platform import Platform, _stop  # noqa: E402
from tests.support import (admin_amqp_uri, drop_databases, ferretdb_postgresql_url, free_port, issue_key, provision_keys,  # noqa: E402
                           rabbit_admin, smtp_server, wait_until)

RABBIT = os.environ.get("AMENDS_BENCH_AMQP_HOST", "127.0.0.1:5672")
MANAGEMENT = os.environ.get("AMENDS_TEST_RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
AUTH = rabbit_admin()  # the bootstrap deletes guest
REGIONS = ["south-wales", "gwent", "north-wales", "dyfed-powys"]
# Referrers share the load: one key each keeps every key under its request budget.
REFERRERS = 40
BASELINE = ("Intake", "Assessor", "Staffer", "Recorder")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the referrals -------------------------------------------------------------------

def referral(rng):
    """A referral built from one of the samples, varied within what the intake accepts
    and what the demo registry can staff: mostly suitable cases (some youth, some Welsh
    speaking), a share of domestic-abuse cases that go to review, and a few where the
    harmer denies responsibility (sample 3 as it is: unsuitable)."""
    pick = rng.random()
    if pick < 0.10:  # domestic abuse, asked for by the harmed person: needs_review (switch on, below)
        body = copy.deepcopy(SAMPLES[2])
        body["region"] = rng.choice(["south-wales", "gwent"])
    elif pick < 0.15:
        body = copy.deepcopy(SAMPLES[3])
    elif pick < 0.30:  # youth, out of court: needs a youth-endorsed lead
        body = copy.deepcopy(SAMPLES[1])
        body["region"] = rng.choice(["south-wales", "gwent"])
        body["offence"]["category"] = rng.choice(["criminal_damage", "theft", "public_order"])
    else:
        body = copy.deepcopy(SAMPLES[rng.choice([0, 0, 3, 4])])
        body["harmer_accepts_responsibility"] = True
        body["region"] = rng.choice(REGIONS)
        body["offence"]["category"] = rng.choice(["burglary", "theft", "criminal_damage", "robbery"])
        body["participants"][0]["language"] = "cy" if rng.random() < 0.2 else "en"
    body["crime_reference"] = f"BEN/26/{rng.randint(100000, 999999)}"
    return body


# --- open-loop load and the tail ------------------------------------------------------

class Tail:
    """Polls a ledger-shaped feed; remembers, per case, when each event type was first seen."""

    def __init__(self, url, headers, poll):
        self.url, self.headers, self.poll = url, headers, poll
        self.seen = {}       # case id -> {event type: wall time first seen}
        self.decision = {}   # case id -> the assessment's decision
        self.after = -1
        self.running = True
        self.errors = 0

    def run(self):
        session = requests.Session()
        while self.running:
            try:
                answer = session.get(self.url, params={"after": self.after, "limit": 1000}, headers=self.headers,
                                     timeout=10)
                answer.raise_for_status()
                page = answer.json()
            except (requests.RequestException, ValueError):
                self.errors += 1
                eventlet.sleep(self.poll)
                continue
            now = time.time()
            for item in page["items"]:
                event = item["event"]
                case = self.seen.setdefault(event.get("subject"), {})
                case.setdefault(event["type"], now)
                if event["type"] == "case.assessed":
                    self.decision.setdefault(event["subject"], event["data"].get("decision"))
            self.after = page["next_after"]
            if len(page["items"]) < 1000:  # a full page: more is waiting, fetch it at once
                eventlet.sleep(self.poll)


def send_open_loop(url, bodies, keys, rate, seconds, timeout):
    """Send len(bodies) referrals at `rate` per second, each on its schedule; returns the
    start, one record per request (scheduled send time, answer time, status, case id),
    and the pool of requests still under way."""
    sent = []
    pool = eventlet.GreenPool(10000)

    def send(record, body, key):
        record["sent"] = time.time()
        try:
            answer = requests.post(url, json=body, timeout=(10, timeout), headers={
                "Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex})
            record["status"] = answer.status_code
            if answer.status_code == 201:
                record["case_id"] = answer.json()["case_id"]
        except requests.RequestException as error:
            record["status"] = type(error).__name__
        record["answered"] = time.time()

    start = time.time() + 0.2
    for index in range(int(rate * seconds)):
        at = start + index / rate
        delay = at - time.time()
        if delay > 0:
            eventlet.sleep(delay)
        record = {"scheduled": at, "sent": None, "status": None, "case_id": None, "answered": None}
        sent.append(record)
        pool.spawn(send, record, bodies[index], keys[index % len(keys)])
    return start, sent, pool


# --- CPU and RSS from /proc -----------------------------------------------------------

def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def tree_ticks(pid):
    """CPU ticks of a process and all its children, living and ended (PostgreSQL's backends
    come and go under the postmaster; an ended child's time is in its parent's cutime)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    except (OSError, IndexError, ValueError):
        return None
    for child in _children(pid):
        total += cpu_ticks(child) or 0
    return total


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Sampler:
    """CPU% (of one core) over a phase, and the largest RSS sampled every second in it.
    `postgres` counts the postmaster with every backend under it (RSS: the postmaster's)."""

    def __init__(self, pids):
        self.pids = {label: pid for label, pid in pids.items() if pid and cpu_ticks(pid) is not None}

    @staticmethod
    def _ticks(label, pid):
        return tree_ticks(pid) if label == "postgres" else cpu_ticks(pid)

    def start(self):
        self.began, self.running = time.time(), True
        self.ticks = {label: self._ticks(label, pid) for label, pid in self.pids.items()}
        self.rss = {label: 0 for label in self.pids}
        self.thread = eventlet.spawn(self._watch)

    def _watch(self):
        while self.running:
            for label, pid in self.pids.items():
                self.rss[label] = max(self.rss[label], rss_kib(pid) or 0)
            eventlet.sleep(1)

    def stop(self):
        self.running = False
        self.thread.wait()
        elapsed = time.time() - self.began
        result = {}
        for label, pid in self.pids.items():
            now = self._ticks(label, pid)
            cpu = (now - self.ticks[label]) / CLOCK_TICKS / elapsed * 100 if now is not None else float("nan")
            result[label] = (cpu, self.rss[label] / 1024)
        return result


def rabbit_beam_pid(pid_dir):
    """The beam.smp under the bootstrap's rabbitmq-server (its pid file names the wrapper)."""
    root = _read_pid(os.path.join(pid_dir, "rabbitmq.pid"))
    if root is None:
        return None
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    text = handle.read()
                comm, rest = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()
                parents[int(entry)] = (int(rest[1]), comm)
            except (OSError, ValueError, IndexError):
                continue
    for pid, (_, comm) in parents.items():
        if not comm.startswith("beam"):
            continue
        ancestor = pid
        while ancestor in parents and ancestor > 1:
            if ancestor == root:
                return pid
            ancestor = parents[ancestor][0]
    return root if parents.get(root, (0, ""))[1].startswith("beam") else None


def _read_pid(path):
    try:
        with open(path) as handle:
            pid = int(handle.read().strip())
        return pid if os.path.exists(f"/proc/{pid}") else None
    except (OSError, ValueError):
        return None


# --- figures ---------------------------------------------------------------------------

def pct(values, share):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def figures(start, sent, tail, seconds, staffing_states):
    """Latencies (ms) from each request's scheduled time, and what became of the cases."""
    accepted = [r for r in sent if r["status"] == 201]
    answered_by = max([r["answered"] for r in accepted] or [start + seconds])
    hops = {}
    for hop in ("referral.received", "case.assessed", "facilitator.assigned"):
        hops[hop] = [(tail.seen[r["case_id"]][hop] - r["scheduled"]) * 1000
                     for r in accepted if hop in tail.seen.get(r["case_id"], {})]
    staffed_at = [tail.seen[r["case_id"]]["facilitator.assigned"] for r in accepted
                  if "facilitator.assigned" in tail.seen.get(r["case_id"], {})]
    outcome = {"staffed": 0, "waitlisted": 0, "not for staffing": 0, "not done": 0}
    for r in accepted:
        seen = tail.seen.get(r["case_id"], {})
        decision = tail.decision.get(r["case_id"])
        if "facilitator.assigned" in seen:
            outcome["staffed"] += 1
        elif "assignment.waitlisted" in seen:
            outcome["waitlisted"] += 1
        elif decision is not None and decision != "suitable" and staffing_states:
            outcome["not for staffing"] += 1
        else:
            outcome["not done"] += 1
    refused = {}
    for r in sent:
        if r["status"] != 201:
            status = "no answer" if r["status"] is None else str(r["status"])
            refused[status] = refused.get(status, 0) + 1
    return {
        "sent": len(sent), "accepted": len(accepted),
        "accepted_rate": len(accepted) / max(seconds, answered_by - start),
        "intake": [(r["answered"] - r["scheduled"]) * 1000 for r in accepted],
        "hops": hops,
        "staffed_rate": len(staffed_at) / (max(staffed_at) - start) if staffed_at else 0.0,
        "outcome": outcome, "refused": refused,
        # how late the bench itself was in sending (a busy client would understate the load)
        "lag": pct([(r["sent"] - r["scheduled"]) * 1000 for r in sent if r["sent"]], 0.99),
    }


def done(case_id, tail, staffing_states):
    seen = tail.seen.get(case_id, {})
    if "facilitator.assigned" in seen or "assignment.waitlisted" in seen:
        return True
    decision = tail.decision.get(case_id)
    return staffing_states and decision is not None and decision != "suitable"


def print_table(results, rates):
    def both(values):
        return f"{pct(values, 0.5):7.0f} {pct(values, 0.99):7.0f}" if values else f"{'-':>7} {'-':>7}"
    print("\nLatencies in ms from each request's scheduled send time (p50 p99); the event times include up to one "
          "tail poll period.")
    print(f"{'rate/s':>6} {'system':<9} {'sent':>5} {'acc/s':>6} {'intake p50 p99':>15} {'->received':>15} "
          f"{'->assessed':>15} {'->assigned':>15} {'staffed/s':>9} {'done':>5} {'not':>5}")
    for rate in rates:
        for system in ("amends", "baseline"):
            f = results[rate][system]
            o = f["outcome"]
            finished = f["accepted"] - o["not done"]
            print(f"{rate:>6g} {system:<9} {f['sent']:>5} {f['accepted_rate']:>6.1f} {both(f['intake'])} "
                  f"{both(f['hops']['referral.received'])} {both(f['hops']['case.assessed'])} "
                  f"{both(f['hops']['facilitator.assigned'])} {f['staffed_rate']:>9.1f} {finished:>5} "
                  f"{o['not done']:>5}")
    print("\nWhat became of the accepted cases (amends): staffed / waitlisted / not for staffing (needs_review or "
          "unsuitable) / not done within the drain timeout; and answers other than 201")
    for rate in rates:
        for system in ("amends", "baseline"):
            f = results[rate][system]
            o = f["outcome"]
            refused = ", ".join(f"{code} x{n}" for code, n in sorted(f["refused"].items())) or "none"
            backlog = ", ".join(f"{name} {n}" for name, n in sorted(f["backlog"].items(), key=lambda q: -q[1])[:3])
            backlog = f"   still queued after settling: {backlog}" if backlog else ""
            print(f"{rate:>6g} {system:<9} {o['staffed']} / {o['waitlisted']} / {o['not for staffing']} / "
                  f"{o['not done']}   other answers: {refused}   send lag p99 {f['lag']:.0f} ms{backlog}")
    print("\nCPU (% of one core) and largest RSS (MiB) per process, over each rate's load and drain")
    for rate in rates:
        for system in ("amends", "baseline"):
            usage = results[rate][system]["usage"]
            cells = "  ".join(f"{label} {cpu:5.1f}% {rss:6.1f}M" for label, (cpu, rss) in usage.items())
            print(f"{rate:>6g} {system:<9} {cells}")


def print_growth(growth, rate):
    """Latency against stored cases, and its ratio to the smallest store's."""
    sizes = sorted(growth)
    first = growth[sizes[0]]

    def ratio(f, hop):
        base, now = first["hops"][hop], f["hops"][hop]
        return pct(now, 0.5) / pct(base, 0.5) if base and now else float("nan")
    print(f"\nGrowth: amends at {rate:g}/s with the store grown (latencies in ms, p50 p99; ratio of p50 to the "
          f"smallest store's)")
    print(f"{'stored':>8} {'acc/s':>6} {'intake p50 p99':>15} {'->received':>15} {'->assessed':>15} "
          f"{'->assigned':>15} {'staffed/s':>9}  ratio received/assessed/assigned")
    for size in sizes:
        f = growth[size]
        cells = " ".join(f"{pct(v, 0.5):7.0f} {pct(v, 0.99):7.0f}" if v else f"{'-':>7} {'-':>7}"
                         for v in (f["intake"], f["hops"]["referral.received"], f["hops"]["case.assessed"],
                                   f["hops"]["facilitator.assigned"]))
        ratios = "/".join(f"{ratio(f, hop):.2f}" for hop in ("referral.received", "case.assessed",
                                                              "facilitator.assigned"))
        print(f"{size:>8} {f['accepted_rate']:>6.1f} {cells} {f['staffed_rate']:>9.1f}  {ratios}")


# --- the run -----------------------------------------------------------------------------

def seed_facilitators(config, copies):
    """The demo registry, `copies` of each at full capacity (ids suffixed)."""
    from services.matching import facilitator_records, facilitators, seed_file
    from services.matching.store import MatchingStore
    store = MatchingStore.open(config)
    records = seed_file.read(os.path.join(ROOT, "deploy", "local", "facilitators.yaml"))
    for index in range(copies):
        for record in records:
            facilitators.register(store, {**record, "facilitator_id": f"{record['facilitator_id']}-{index}",
                                   "capacity": facilitator_records.MAX_CAPACITY})
    return copies * len(records)


def start_baseline(amqp_uri, db_name, work_dir, vhost):
    nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
    ports, processes = {}, {}
    env = dict(os.environ, PYTHONPATH=ROOT)
    for name in BASELINE:
        ports[name] = free_port()
        config = os.path.join(work_dir, f"baseline-{name}.yaml")
        with open(config, "w") as handle:
            handle.write(f"AMQP_URI: {amqp_uri}\nWEB_SERVER_ADDRESS: 127.0.0.1:{ports[name]}\n"
                         f"MONGO_URI: {MONGO_URI}\nBENCH_DB: {db_name}\nmax_workers: 10\n")
        log = open(os.path.join(work_dir, "logs", f"baseline-{name}.log"), "ab")
        processes[name] = subprocess.Popen([nameko, "run", "--config", config, f"tests.bench.pipeline_baseline:{name}"],
                                           cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return ports, processes


def baseline_ready(vhost, ports):
    """The intake and recorder answer, and the five handlers' queues exist."""
    for name in ("Intake", "Recorder"):
        try:
            requests.get(f"http://127.0.0.1:{ports[name]}/health", timeout=1).raise_for_status()
        except requests.RequestException:
            return False
    queues = requests.get(f"{MANAGEMENT}/api/queues/{vhost}", auth=AUTH, timeout=5).json()
    return sum(1 for q in queues if q["name"].startswith("evt-bench_")) >= 5


def run_rate(vhost, rate, args, rng, url, keys, tail, pids, staffing_states, profile=None):
    bodies = [referral(rng) for _ in range(int(rate * args.seconds))]
    sampler = Sampler(pids)
    sampler.start()
    profiles = Profiles(profile, args.seconds) if profile else None
    if profiles:
        profiles.start()
    start, sent, pool = send_open_loop(url, bodies, keys, rate, args.seconds, args.drain)
    # answers and cases alike get --drain seconds after the last scheduled send
    deadline = time.time() + args.drain
    while time.time() < deadline:
        if all(r["answered"] for r in sent) and all(
                done(r["case_id"], tail, staffing_states) for r in sent if r["status"] == 201):
            break
        eventlet.sleep(0.5)
    for request in list(pool.coroutines_running):
        request.kill()  # unanswered by now: counted as such, and no longer waited for
    result = figures(start, sent, tail, args.seconds, staffing_states)
    result["usage"] = sampler.stop()
    result["backlog"] = settle(vhost, args.settle)
    if profiles:
        print(f"profile of amends at {rate:g}/s, over the {args.seconds:g} s of load:" + profiles.report(), flush=True)
    return result


def settle(vhost, limit):
    """Wait (up to `limit` s) for the vhost's queues to empty, so that one run's backlog
    weighs less on the next; returns the queues still holding messages (the broker's
    figures lag by a few seconds)."""
    deadline = time.time() + limit
    while True:
        try:
            queued = {q["name"]: q.get("messages", 0) for q in requests.get(
                f"{MANAGEMENT}/api/queues/{vhost}", auth=AUTH, timeout=5).json() if q.get("messages")}
        except (requests.RequestException, ValueError, KeyError):
            queued = {"(management API unanswered)": 0}
        if not queued or time.time() > deadline:
            return queued
        eventlet.sleep(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="5,20,50,100", help="referrals per second, comma separated")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load at each rate")
    parser.add_argument("--drain", type=float, default=30,
                        help="seconds after the last scheduled request for answers and cases; what is still "
                             "outstanding then counts as not answered / not done")
    parser.add_argument("--settle", type=float, default=15,
                        help="at most this many seconds after each run for the queues to empty")
    parser.add_argument("--poll", type=float, default=0.15, help="seconds between polls of the ledger feed")
    parser.add_argument("--stored", default="",
                        help="growth runs: after the rates above, grow the stored cases to each of these counts "
                             "(comma separated, e.g. 10000,100000) and run Amends at --growth-rate at each")
    parser.add_argument("--growth-rate", type=float, default=20, help="referrals per second of each growth run")
    parser.add_argument("--profile", action="store_true",
                        help="profile each service process (py-spy) and PostgreSQL's statements during Amends' runs")
    parser.add_argument("--pid-dir", default=os.path.join(ROOT, "var", "run"),
                        help="where the bootstrap's rabbitmq.pid and ferretdb.pid are (for their CPU and RSS)")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    stored = [int(n) for n in args.stored.split(",") if n.strip()]
    rng = random.Random(20261202)

    # a SIGTERM (as from `make` being stopped) unwinds like Ctrl-C, so the cleanup runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"bench-pipeline-{run}", f"benchpipe{run}"
    work_dir = tempfile.mkdtemp(prefix="amends-bench-pipeline-")
    os.makedirs(os.path.join(work_dir, "logs"))
    requests.put(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=AUTH, timeout=10).raise_for_status()
    platform, baseline, tails = None, {}, []
    try:
        requests.put(f"{MANAGEMENT}/api/permissions/{vhost}/{AUTH[0]}", auth=AUTH, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        amqp_uri = admin_amqp_uri(RABBIT, vhost)  # one user for all: Platform turns the sender checks off
        config = {"AMQP_URI": amqp_uri, "MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": prefix}
        topology.declare(amqp_uri, (0.5, 1, 2))
        keys = provision_keys(config, agency="bench-police", regions=REGIONS)
        referrers = [issue_key(config, "referrer", f"bench-agency-{i % 4}", f"bench-referrer-{i}", regions=REGIONS)
                     for i in range(REFERRERS)]
        # seats for every suitable case: the north of Wales has one facilitator per copy
        growth_loads = len(stored) + (1 if stored and not rates else 0)  # and the first load, to copy
        total = sum(rates) * args.seconds + growth_loads * args.growth_rate * args.seconds
        copies = max(5, math.ceil(total * 0.4 / 50) + 2)
        print(f"seeded {seed_facilitators(config, copies)} facilitators; starting the platform and the baseline")
        with smtp_server(os.path.join(work_dir, "mail")) as smtp_port:
            platform = Platform(amqp_uri, MONGO_URI, prefix, smtp_port, os.path.join(work_dir, "logs"),
                                extra_env={"LOG_LEVEL": "WARNING",
                                           # on FerretDB on PostgreSQL, the stores' GIN twins (docs/storage.md)
                                           "AMENDS_FERRETDB_POSTGRESQL_URL": ferretdb_postgresql_url(),
                                           # an area that has agreed a local policy: its domestic abuse
                                           # cases go to review, as in the workload measured before v2
                                           "MATCHING_LOCAL_SWITCHES": "domestic_abuse_rj_allowed=true"})
            ports, baseline = start_baseline(amqp_uri, f"{prefix}_baseline", work_dir, vhost)
            platform.start()
            wait_until(lambda: baseline_ready(vhost, ports), timeout=90, interval=0.5)

            tail = Tail(f"{platform.url('records')}/v1/ledger/entries", {"Authorization": f"Bearer {keys['auditor']}"},
                        args.poll)
            base_tail = Tail(f"http://127.0.0.1:{ports['Recorder']}/v1/ledger/entries", {}, args.poll)
            tails = [tail, base_tail]
            threads = [eventlet.spawn(t.run) for t in tails]
            shared_pids = {"rabbitmq": rabbit_beam_pid(args.pid_dir),
                           "ferretdb": _read_pid(os.path.join(args.pid_dir, "ferretdb.pid")),
                           "postgres": _read_pid(os.path.join(args.pid_dir, "postgres.pid"))}
            amends_pids = {**{n: p.pid for n, p in platform.processes.items()}, **shared_pids}
            service_pids = {n: p.pid for n, p in platform.processes.items()} if args.profile else None
            baseline_pids = {**{n.lower(): p.pid for n, p in baseline.items()}, **shared_pids}
            missing = [n for n, p in shared_pids.items() if p is None]
            if missing:
                print(f"(no pid found in {args.pid_dir} for {', '.join(missing)}: not sampled)")

            amends_url = f"{platform.url('referrals')}/v1/referrals"
            baseline_url = f"http://127.0.0.1:{ports['Intake']}/v1/referrals"
            warm = argparse.Namespace(seconds=2, drain=30, settle=15)  # caches, connections, the roster
            run_rate(vhost, 2, warm, rng, amends_url, referrers, tail, amends_pids, True)
            run_rate(vhost, 2, warm, rng, baseline_url, referrers, base_tail, baseline_pids, False)

            # the baseline's rates first: Amends' notifications and case-status updates go on
            # after its cases are staffed, and would weigh on the baseline's turns
            results = {rate: {} for rate in rates}
            runs = [("baseline", baseline_url, base_tail, baseline_pids, False),
                    ("amends", amends_url, tail, amends_pids, True)]
            for system, url, system_tail, pids, staffing_states in runs:
                for rate in rates:
                    print(f"{system}: {rate:g}/s for {args.seconds:g} s (drain up to {args.drain:g} s) ...",
                          flush=True)
                    results[rate][system] = run_rate(vhost, rate, args, rng, url, referrers, system_tail, pids,
                                                     staffing_states, profile=service_pids if staffing_states else None)
            growth = {}
            if stored and not rates:  # something to copy: a first load of its own
                run_rate(vhost, args.growth_rate, args, rng, amends_url, referrers, tail, amends_pids, True)
            for target in stored:
                cases, entries, took = grow(MONGO_URI, amqp_uri, prefix, target)
                print(f"stored: {cases} cases, {entries} ledger entries (grown in {took:.0f} s); "
                      f"amends: {args.growth_rate:g}/s for {args.seconds:g} s ...", flush=True)
                tail.after = entries - 1  # the copies are not this run's cases
                growth[cases] = run_rate(vhost, args.growth_rate, args, rng, amends_url, referrers, tail, amends_pids,
                                         True, profile=service_pids)
            for t in tails:
                t.running = False
            for thread in threads:
                thread.wait()
            if growth:
                print_growth(growth, args.growth_rate)
            print(f"\n{args.seconds:g} s per rate, open loop; tail polls every {args.poll:g} s; "
                  f"{copies * 6} facilitators; services with their default max_workers; 2 s warm-up each")
            if rates:
                print_table(results, rates)
            if tail.errors or base_tail.errors:
                print(f"(polls of the feed that failed: ledger {tail.errors}, baseline {base_tail.errors})")
            if any(shared_pids.values()):
                print("(rabbitmq, ferretdb and postgres are the shared servers: their figures include anything else "
                      "using them; postgres is the postmaster and every backend under it)")
    finally:
        for t in tails:
            t.running = False
        if platform is not None:
            platform.stop()
        for process in baseline.values():
            process.send_signal(signal.SIGTERM)
        for process in baseline.values():
            _stop(process, signalled=True)
        drop_databases(MONGO_URI, prefix)
        requests.delete(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=AUTH, timeout=10)
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
