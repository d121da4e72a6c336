"""Scaling out by processes: the same backlog drained by one process of a service, then by
two (competing consumers on its queue, as `SCALE=` runs them; docs/scaling.md), and where
the limit lies. Prints figures; asserts nothing.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_scaleout.py [--matching 600] [--notifications 400] [--records 12000]

1. matching: --matching referral.received events wait in `matching.assess` (the registry:
   300 facilitators); 1, then 2, matching processes assess and staff them.
2. notifications: --notifications referral.received events wait in `notifications.notify`;
   1, then 2, notifications processes tell each referrer (a contact lookup over RPC to a
   stand-in holder process, tests/scaleout_holders.py, and a mail to a local SMTP server).
3. records: one writer drains --records events into one ledger; then two records processes
   of two regions (each its own vhost, database prefix and AMENDS_REGION: two independent
   ledgers) drain --records events each, side by side.

Each run starts on a fresh vhost and database prefix. The backlog is staged beside the
service's queue (`<queue>.staged`, nothing consumes it) with a TTL that ends a few seconds
after the processes have had time to start; then the broker moves it into the queue at once
and the clock starts, so start-up is left out of the figures. The clock stops when the
handled count (from the store, or the mail delivered) reaches the backlog and the queue is
empty. During each drain the CPU time (utime + stime, /proc/<pid>/stat) of the service
processes, of PostgreSQL (its postmaster and every process under it: the backends), FerretDB
and the RabbitMQ node is read, and shown as a share of one core and of the machine. The 1-process
run is the baseline, measured in the same run.
"""
import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date

from services.matching import facilitators
from services.matching.facilitator_records import parse
from services.matching.store import MatchingStore
from services.records.store import Ledger
from shared.config import settings_for
from shared.storage import connect, disconnect
from tests.factories import days_ago
from tests.scaleout import CpuMeter, Rig, infrastructure, processes_running, referral_events
from tests.support import smtp_server

CORES = os.cpu_count() or 1
# seconds allowed for staging a backlog and starting the processes, before it is released
STAGING = 12
SERVERS = ("PostgreSQL", "FerretDB", "RabbitMQ")


def machine_busy():
    """Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def wait_drained(handled, target, depth, budget):
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        done = handled()
        if done >= target and depth() == 0:
            return done
        time.sleep(0.25)
    return handled()


def drain(rig, service, count, handled, target, queue, budget, backlog, smtp_port=None, **env):
    """Stage `backlog` for `queue`, start `count` processes of `service`, release the backlog
    into the queue once they are all running, and time its drain, metering CPU."""
    release_at = time.time() + STAGING + len(backlog) / 400
    rig.stage(queue, backlog, release_at)
    processes = rig.start(service, count, **env)
    groups = {p.label: (lambda p=p: [p.pid]) for p in processes}
    extra = [p for p in rig.processes if p.label == "holders"]
    if extra:
        groups["contact holder (stand-in)"] = lambda: [extra[0].pid]
    if smtp_port:
        groups["SMTP server (local)"] = processes_running("aiosmtpd", f"127.0.0.1:{smtp_port}")
    groups.update(infrastructure())
    groups["this benchmark (polling)"] = lambda: [os.getpid()]
    run = timed(groups, release_at, handled, target, lambda: rig.depth(queue), budget)
    rig.stop(processes)
    return run


def timed(groups, release_at, handled, target, depth, budget):
    """Wait for the release, then meter CPU until the backlog is handled and its queue empty."""
    if time.time() > release_at:
        print(f"  (the processes were not all running by the backlog's release: "
              f"{time.time() - release_at:.1f} s late; start-up is in the figures)")
    time.sleep(max(0.0, release_at - time.time()))
    meter = CpuMeter(groups)
    before, busy = handled(), machine_busy()
    meter.start()
    done = wait_drained(handled, target, depth, budget)
    meter.stop()
    busy = machine_busy() - busy
    return {"events": done - before, "seconds": meter.wall, "meter": meter, "machine": busy / meter.wall,
            "complete": done >= target}


def report(title, runs):
    print(f"\n{title}")
    print(f"  {'processes':>9} {'events':>7} {'seconds':>8} {'events/s':>9}")
    for count, run in runs.items():
        rate = run["events"] / run["seconds"] if run["seconds"] else 0.0
        run["rate"] = rate
        note = "" if run["complete"] else "  (budget ran out before the backlog was drained)"
        print(f"  {count:>9} {run['events']:>7} {run['seconds']:>8.1f} {rate:>9.1f}{note}")
    if 1 in runs and 2 in runs and runs[1]["rate"]:
        print(f"  ratio, 2 processes to 1: {runs[2]['rate'] / runs[1]['rate']:.2f}x")
    for count, run in runs.items():
        print(f"  CPU during the {count}-process drain (share of one core / of the machine's {CORES} cores):")
        meter = run["meter"]
        for label in meter.used:
            share = meter.share(label)
            print(f"    {label:<28} {share * 100:6.1f}% of a core  {share / CORES * 100:5.1f}% of the machine")
        print(f"    {'whole machine (everything)':<28} {run['machine'] * 100:6.1f}% of a core  "
              f"{run['machine'] / CORES * 100:5.1f}% of the machine")
        print(f"  -> {verdict(run)}")


def verdict(run):
    meter = run["meter"]
    services = {label: meter.share(label) for label in meter.used if label not in SERVERS}
    own = {label: share for label, share in services.items()
           if not any(word in label for word in ("stand-in", "polling", "SMTP"))}
    servers = {label: meter.share(label) for label in SERVERS}
    busiest = max({**own, **servers}.items(), key=lambda item: item[1])
    ours = sum(services.values()) + sum(servers.values())
    if run["machine"] >= 0.85 * CORES:
        others = run["machine"] - ours
        if others > ours:
            return (f"the machine is saturated ({run['machine'] / CORES * 100:.0f}% of {CORES} cores busy), and mostly "
                    f"by other work on it ({others / CORES * 100:.0f}% of the machine outside the processes above): "
                    f"a second process has no spare core to run on, so this ratio says little; of ours, "
                    f"{busiest[0]} takes most ({busiest[1] * 100:.0f}% of a core)")
        return (f"the machine is saturated ({run['machine'] / CORES * 100:.0f}% of {CORES} cores busy, "
                f"{ours / CORES * 100:.0f}% by the processes above); the largest share is {busiest[0]} "
                f"({busiest[1] * 100:.0f}% of a core): on this machine more processes cannot go faster")
    hot = [label for label, share in own.items() if share >= 0.85]
    if hot:
        return (f"the service is CPU-bound: {', '.join(hot)} at ~a full core each (one core per process); "
                f"{busiest[0]} has the largest share")
    if busiest[0] in SERVERS and busiest[1] >= 0.85:
        return f"{busiest[0]} is the limit, at {busiest[1] * 100:.0f}% of a core"
    return (f"nothing is CPU-saturated (largest: {busiest[0]}, {busiest[1] * 100:.0f}% of a core): the limit is "
            f"waiting, on round trips to the database and the broker")


def facilitator(index, rng):
    """A facilitator of the four regions the backlog's referrals come from."""
    return {"facilitator_id": f"fac-{index:04d}", "name": f"Facilitator {index}", "email": f"fac{index}@rj.example",
            "level": rng.choice(["intermediate", "advanced"]), "complex_case_trained": rng.random() < 0.5,
            "trained_on": days_ago(rng.randint(60, 1500)), "last_process_on": days_ago(rng.randint(1, 300)),
            "endorsements": [], "prison_vetted_until": None, "languages": ["en"],
            "regions": rng.sample(["south-wales", "gwent", "north-wales", "dyfed-powys"], rng.randint(1, 2)),
            "capacity": rng.randint(2, 8), "conflicts": []}


def bench_matching(backlog, log_dir, budget):
    runs = {}
    rng = random.Random(20261202)
    registry = [facilitators.from_record(parse(facilitator(i, rng))) for i in range(300)]
    for count in (1, 2):
        rig = Rig("bench-scale-m", os.path.join(log_dir, f"matching-{count}"))
        try:
            store = MatchingStore.open(rig.config)
            store.insert_facilitators(registry)
            runs[count] = drain(rig, "matching", count, store.count_assessments, backlog, "matching.assess", budget,
                                referral_events(backlog, f"bm{count}"))
            disconnect("matching")
        finally:
            rig.close()
    report(f"1. matching: {backlog} referral.received drained (assess, store, announce, staff)", runs)
    return runs


def bench_notifications(backlog, log_dir, budget):
    runs = {}
    for count in (1, 2):
        mail_dir = os.path.join(tempfile.mkdtemp(prefix="bench-scale-mail-"), "Maildir")  # made by the server
        with smtp_server(mail_dir) as smtp_port:
            rig = Rig("bench-scale-n", os.path.join(log_dir, f"notifications-{count}"), smtp_port=smtp_port)
            try:
                rig.start_holders()

                def delivered():
                    new = os.path.join(mail_dir, "new")
                    return len(os.listdir(new)) if os.path.isdir(new) else 0

                runs[count] = drain(rig, "notifications", count, delivered, backlog, "notifications.notify", budget,
                                    referral_events(backlog, f"bn{count}"), smtp_port=smtp_port)
            finally:
                rig.close()
    report(f"2. notifications: {backlog} referral.received drained (a contact lookup and a mail each)", runs)
    return runs


def bench_records(backlog, log_dir, budget):
    """One ledger, one writer; then two regions' ledgers, a writer each, side by side."""
    runs = {}
    for count in (1, 2):
        rigs = [Rig(f"bench-scale-r{index}", os.path.join(log_dir, f"records-{count}-{index}"),
                    region=f"region-{index}") for index in range(count)]
        try:
            release_at = time.time() + STAGING + count * backlog / 400
            ledgers = []
            for index, rig in enumerate(rigs):
                rig.stage("records.ledger", referral_events(backlog, f"br{count}{index}",
                                                            zone=rig.config["AMENDS_REGION"]), release_at)
                ledgers.append(Ledger(connect(f"records{index}", settings_for("records", rig.config),
                                              alias=f"bench-records-{count}-{index}")))
            processes = []
            for rig in rigs:
                processes += rig.start("records", 1)
            # two ledgers, so the service CPU is each region's writer
            groups = {f"records ({rig.config['AMENDS_REGION']})": (lambda p=p: [p.pid])
                      for rig, p in zip(rigs, processes)}
            groups.update(infrastructure())
            groups["this benchmark (polling)"] = lambda: [os.getpid()]
            runs[count] = timed(groups, release_at, lambda: sum(ledger.head().size for ledger in ledgers),
                                backlog * count, lambda: sum(rig.depth("records.ledger") for rig in rigs), budget)
        finally:
            for index, rig in enumerate(rigs):
                rig.close()
                disconnect(f"bench-records-{count}-{index}")
    report(f"3. records: {backlog} events into one ledger by its one writer (1), then {backlog} each into "
           f"two regions' ledgers by a writer each, side by side (2); events/s is the aggregate", runs)
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--matching", type=int, default=600)
    parser.add_argument("--notifications", type=int, default=400)
    parser.add_argument("--records", type=int, default=12000)
    parser.add_argument("--budget", type=float, default=90, help="seconds a drain may take at most")
    parser.add_argument("--only", choices=("matching", "notifications", "records"))
    args = parser.parse_args(argv)
    log_dir = tempfile.mkdtemp(prefix="bench-scaleout-")
    print(f"bench_scaleout, {date.today().isoformat()}, {CORES} cores; service logs in {log_dir}")
    started = time.monotonic()
    results = []
    if args.only in (None, "matching"):
        results.append(bench_matching(args.matching, log_dir, args.budget))
    if args.only in (None, "notifications"):
        results.append(bench_notifications(args.notifications, log_dir, args.budget))
    if args.only in (None, "records"):
        results.append(bench_records(args.records, log_dir, args.budget))
    print(f"\n(whole run {time.monotonic() - started:.0f} s)")
    # a backlog left undrained is no figure: say so by the exit status, not only in the table
    unfinished = [run for runs in results for run in runs.values() if not run["complete"]]
    return 1 if unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
