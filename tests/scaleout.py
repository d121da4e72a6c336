"""Running several processes of one service against one backlog, for the scale-out test
(tests/e2e/test_scaleout.py) and benchmark (tests/bench/bench_scaleout.py).

A `Rig` is a RabbitMQ vhost and a database prefix of its own, with the whole topology
declared. With the service stopped, a backlog of events is put straight into the
service's queue; then `start` runs the service as `nameko run` processes (each with its
own HTTP port and log, as `SCALE=` does) and `stop` ends them. `CpuMeter` reads how much
CPU time processes used (/proc/<pid>/stat), to say where a drain's limit lies.
Everything listens on, and sends to, 127.0.0.1 only; everything started is stopped.
"""
import json
import os
import subprocess
import sys
import time
import uuid

import requests
from kombu import Connection, Exchange, Producer, Queue

from shared.events import new_event
from shared.messaging import topology
from tests.factories import ROOT, referral_received_data
from tests.platform import stop_all
from tests.support import (admin_amqp_uri, drop_databases, ferretdb_postgresql_url, free_port, rabbit_admin,
                           wait_until)

MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
AMQP_HOST = os.environ.get("AMENDS_TEST_AMQP_HOST", "127.0.0.1:5672")
MANAGEMENT = os.environ.get("AMENDS_TEST_RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
CLASSES = {"referrals": "ReferralsService", "matching": "MatchingService",
           "notifications": "NotificationsService", "records": "RecordsService"}
# the secrets a service process never gets from the environment the tests run in
SECRET_PREFIXES = ("AMENDS_MASTER_KEY", "AMENDS_LEDGER_SIGNING_KEY", "AMENDS_BUS_ADMIN_PASSWORD",
                   "AMENDS_PG_PASSWORD", "SMS_API_KEY")
SECRET_SUFFIXES = ("_BUS_PASSWORD", "_PG_PASSWORD", "_AMQP_URI")
RETRY_DELAYS = (0.5, 1.0, 2.0)


class Rig:
    def __init__(self, name, log_dir, region="scale", smtp_port=None, extra_env=None):
        self.name = name
        self.vhost = f"{name}-{uuid.uuid4().hex[:8]}"
        self.prefix = f"{name.replace('-', '')}{uuid.uuid4().hex[:8]}"
        self.auth = rabbit_admin()
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        requests.put(f"{MANAGEMENT}/api/vhosts/{self.vhost}", auth=self.auth, timeout=10).raise_for_status()
        requests.put(f"{MANAGEMENT}/api/permissions/{self.vhost}/{self.auth[0]}", auth=self.auth, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        self.amqp_uri = admin_amqp_uri(AMQP_HOST, self.vhost)
        topology.declare(self.amqp_uri, RETRY_DELAYS)
        self.config = {"AMQP_URI": self.amqp_uri, "MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": self.prefix,
                       "AMENDS_REGION": region, "AMENDS_FERRETDB_POSTGRESQL_URL": ferretdb_postgresql_url()}
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(SECRET_PREFIXES) and not k.endswith(SECRET_SUFFIXES)}
        self.env.update(self.config, PYTHONPATH=ROOT, PYTHONWARNINGS="ignore", AMENDS_RETRY_DELAYS=",".join(
            map(str, RETRY_DELAYS)), AMENDS_DEV_UNCHECKED_BUS="1", AMENDS_DEV_UNSIGNED_LEDGER="1",
            **({"SMTP_PORT": str(smtp_port)} if smtp_port else {}), **(extra_env or {}))
        self.processes = []

    # -- processes ---------------------------------------------------------------------

    def start(self, service, count, **env):
        """`count` processes of `service`, each healthy before this returns; their Popens."""
        nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
        started = []
        for index in range(1, count + 1):
            port = free_port()
            label = service if index == 1 else f"{service}.{index}"
            log = open(os.path.join(self.log_dir, f"{label}.log"), "ab")
            process = subprocess.Popen(
                [nameko, "run", "--config", f"services/{service}/config.yaml",
                 f"services.{service}.service:{CLASSES[service]}"],
                cwd=ROOT, env={**self.env, f"{service.upper()}_HTTP_ADDRESS": f"127.0.0.1:{port}", **env},
                stdout=log, stderr=subprocess.STDOUT)
            process.label, process.port = label, port
            started.append(process)
        self.processes += started
        for process in started:
            wait_until(lambda: _healthy(process), timeout=90, interval=0.3)
        return started

    def start_holders(self):
        """The stand-in contact holders (tests/scaleout_holders.py), one process."""
        nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
        log = open(os.path.join(self.log_dir, "holders.log"), "ab")
        process = subprocess.Popen(
            [nameko, "run", "tests.scaleout_holders:Referrals", "tests.scaleout_holders:Matching",
             "--broker", self.amqp_uri], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        process.label, process.port = "holders", None
        self.processes.append(process)
        wait_until(lambda: self.attached("rpc-referrals") > 0, timeout=60, interval=0.5)
        return process

    def stop(self, processes=None):
        chosen = list(self.processes if processes is None else processes)
        stop_all(chosen, timeout=30)
        for process in chosen:
            if process in self.processes:
                self.processes.remove(process)

    def close(self):
        self.stop()
        requests.delete(f"{MANAGEMENT}/api/vhosts/{self.vhost}", auth=self.auth, timeout=10)
        drop_databases(MONGO_URI, self.prefix)

    # -- the broker ------------------------------------------------------------------------

    def fill(self, queue, events):
        """Put events straight into a queue (as their producer's exchange would), confirmed."""
        with Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            producer = Producer(connection.channel(), exchange=Exchange(""))
            for event in events:
                producer.publish(json.dumps(event), routing_key=queue, content_type="application/json",
                                 content_encoding="utf-8", serializer=None, delivery_mode=2)

    def stage(self, queue, events, release_at):
        """Hold a backlog for `queue` beside it, in `<queue>.staged` (nothing consumes it),
        until the wall-clock moment `release_at`: then every message expires at once and the
        broker moves them all, in order, into `queue`. So a drain can be timed from
        processes already running, their start-up left out."""
        staged = Queue(f"{queue}.staged", durable=True, queue_arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue})
        with Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            staged.bind(connection.default_channel).declare()
            producer = Producer(connection.channel(), exchange=Exchange(""))
            for event in events:
                left = int((release_at - time.time()) * 1000)
                if left <= 0:
                    raise RuntimeError("the backlog took longer to stage than the time allowed for it")
                producer.publish(json.dumps(event), routing_key=staged.name, content_type="application/json",
                                 content_encoding="utf-8", serializer=None, delivery_mode=2,
                                 expiration=left / 1000)

    def depth(self, queue):
        """Messages ready in a queue (not those handed to a consumer and not yet acked)."""
        return self._passive(queue).message_count

    def consumers(self, queue):
        return self._passive(queue).consumer_count

    def attached(self, queue):
        """Consumers attached to a queue, as the management API lists them (standbys of a
        single-active-consumer queue too, which a passive declare does not count)."""
        answer = requests.get(f"{MANAGEMENT}/api/consumers/{self.vhost}", auth=self.auth, timeout=10)
        answer.raise_for_status()
        return sum(1 for c in answer.json() if c["queue"]["name"] == queue)

    def _passive(self, queue):
        with Connection(self.amqp_uri) as connection:
            return connection.default_channel.queue_declare(queue, passive=True)

    def purge(self, *queues):
        with Connection(self.amqp_uri) as connection:
            for queue in queues:
                connection.default_channel.queue_purge(queue)


def _healthy(process):
    if process.poll() is not None:
        raise RuntimeError(f"{process.label} exited with {process.returncode} at start")
    try:
        return requests.get(f"http://127.0.0.1:{process.port}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


# -- backlogs -------------------------------------------------------------------------------

def referral_events(count, tag, regions=("south-wales", "gwent", "north-wales", "dyfed-powys"), zone="scale"):
    """`count` referral.received events of distinct cases, their people named so the
    stand-in holders know their roles (`-ref`, `-h`, `-o`), sent in the deployment region
    `zone` (a ledger takes only its own region's events)."""
    events = []
    for index in range(count):
        case_id = f"{tag}-{index}"
        data = referral_received_data(case_id=case_id, referrer_id=f"{case_id}-ref", region=regions[index % len(regions)],
                                      participants=[
            {"participant_id": f"{case_id}-h", "role": "harmed", "age_band": "35_49", "language": "en",
             "access_needs": []},
            {"participant_id": f"{case_id}-o", "role": "harmer", "age_band": "25_34", "language": "en",
             "access_needs": []}])
        events.append(new_event("referral.received", case_id, data, source=f"/amends/{zone}/referrals",
                                region=zone, correlationid=case_id))
    return events


def assessed_events(referrals):
    """A suitable case.assessed for each referral.received, as matching would announce it."""
    events = []
    for referral in referrals:
        case_id = referral["data"]["case_id"]
        data = {"case_id": case_id, "assessment_id": str(uuid.uuid4()), "decision": "suitable", "reasons": [],
                "risk_level": "low", "process_types": ["direct_conference", "shuttle"], "co_facilitation": False,
                "required_level": "intermediate", "policy_version": "scale", "basis": "referral"}
        events.append(new_event("case.assessed", case_id, data, source="/amends/scale/matching", region="scale",
                                correlationid=case_id))
    return events


# -- CPU time ---------------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def _processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    head, tail = stat.read().rsplit(")", 1)
                yield int(entry), head.split("(", 1)[1], int(tail.split()[1])
            except OSError:
                continue


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return dict(item.split(b"=", 1) for item in environ.read().split(b"\0") if b"=" in item)
    except OSError:
        return {}


def infrastructure():
    """{label: function returning the pids now} for the shared servers on this machine:
    PostgreSQL (its postmaster on AMENDS_PG_PORT and every process it started, backends
    included), FerretDB (listening on MONGO_URI's 127.0.0.1:27017) and the RabbitMQ node
    amends@localhost (its beam.smp)."""
    pg_port = os.environ.get("AMENDS_PG_PORT", "5432")
    node = os.environ.get("AMENDS_RABBIT_NODE", "amends@localhost").encode()

    def postgres():
        found = list(_processes())
        names = {pid: comm for pid, comm, _ in found}
        masters = {pid for pid, comm, parent in found if comm == "postgres" and names.get(parent) != "postgres"
                   and f"port={pg_port}" in _cmdline(pid)}
        return sorted(masters | {pid for pid, _, parent in found if parent in masters})

    def ferretdb():
        return [pid for pid, comm, _ in _processes()
                if comm == "ferretdb" and "--listen-addr=127.0.0.1:27017" in _cmdline(pid)]

    def rabbitmq():
        return [pid for pid, comm, _ in _processes()
                if comm == "beam.smp" and _environ(pid).get(b"RABBITMQ_NODENAME") == node]

    return {"PostgreSQL": postgres, "FerretDB": ferretdb, "RabbitMQ": rabbitmq}


def processes_running(*parts):
    """A function giving the pids of the processes whose command line holds every one of `parts`."""
    return lambda: [pid for pid, _, _ in _processes() if all(part in _cmdline(pid) for part in parts)]


class CpuMeter:
    """CPU seconds used between `start()` and `stop()` by groups of processes, each a
    function returning its pids (looked at again at the end: a PostgreSQL backend started
    meanwhile counts whole, one that ended meanwhile is lost)."""

    def __init__(self, groups):
        self.groups = groups

    def start(self):
        self.began = time.monotonic()
        self.before = {label: {pid: cpu_seconds(pid) for pid in pids()} for label, pids in self.groups.items()}

    def stop(self):
        self.wall = time.monotonic() - self.began
        self.used = {}
        for label, pids in self.groups.items():
            total = 0.0
            for pid in pids():
                now = cpu_seconds(pid)
                if now is not None:
                    total += now - (self.before[label].get(pid) or 0.0)
            self.used[label] = total
        return self.used

    def share(self, label):
        """That group's CPU, as a share of one core over the wall time measured."""
        return self.used[label] / self.wall if self.wall else 0.0
