"""Accepted referrals per second over HTTP with 20 concurrent clients, against a
trivial nameko `@http` endpoint measured in the same run as the baseline.

Both run as `nameko run` processes with the same settings (max_workers 10), on a
RabbitMQ vhost and database prefix of the bench's own, removed afterwards. Each
referral is a full intake: validation, a data key per person wrapped by the master
key, AES-GCM sealing, the case insert with its outbox, a confirmed publish of
referral.received and the outbox pull. Prints figures; asserts nothing.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_referrals.py [seconds per run] [clients]
"""
import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import requests  # noqa: E402
from nameko.web.handlers import http  # noqa: E402

from services.referrals.protection import new_master_key  # noqa: E402
from shared.messaging import topology  # noqa: E402
from shared.security import api_keys  # noqa: E402
from shared.config import settings_for  # noqa: E402
from tests.factories import ROOT, referral_body  # noqa: E402
from tests.platform import stop_all  # noqa: E402
from tests.support import admin_amqp_uri, drop_databases, free_port, rabbit_admin, wait_until  # noqa: E402

RABBIT = os.environ.get("AMENDS_BENCH_AMQP_HOST", "127.0.0.1:5672")
MANAGEMENT = os.environ.get("AMENDS_TEST_RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
AUTH = rabbit_admin()


class Baseline:
    """The trivial nameko endpoint: parse the JSON body, answer 201 with a small JSON."""
    name = "bench_baseline"

    @http("POST", "/v1/referrals")
    def accept(self, request):
        body = json.loads(request.get_data())
        return 201, {"Content-Type": "application/json"}, json.dumps({"case_id": str(uuid.uuid4()),
                                                                       "fields": len(body)})


def load(url, headers_for, seconds, clients):
    """Requests answered 201 per second, and latency percentiles, over `seconds`."""
    bodies = [referral_body(i) for i in range(5)]
    stop = time.monotonic() + seconds
    latencies, failures = [], []

    def client(index):
        session = requests.Session()
        n = 0
        while time.monotonic() < stop:
            started = time.monotonic()
            answer = session.post(url, json=bodies[(index + n) % 5], headers=headers_for(), timeout=60)
            n += 1
            if answer.status_code == 201:
                latencies.append(time.monotonic() - started)
            else:
                failures.append(answer.status_code)

    began = time.monotonic()
    pool = eventlet.GreenPool(clients)
    for i in range(clients):
        pool.spawn(client, i)
    pool.waitall()
    elapsed = time.monotonic() - began
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")
    return len(latencies) / elapsed, pct(0.5), pct(0.95), len(latencies), failures


def start(target, config_path, env, port):
    nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
    process = subprocess.Popen([nameko, "run", "--config", config_path, target], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return True
        except requests.RequestException:
            return False
    wait_until(up, timeout=60)
    return process


def main(seconds, clients):
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"bench-{run}", f"bench{run}"
    requests.put(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=AUTH, timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/api/permissions/{vhost}/{AUTH[0]}", auth=AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    amqp_uri = admin_amqp_uri(RABBIT, vhost)
    processes = []
    try:
        topology.declare(amqp_uri, (1, 5, 30))
        env = dict(os.environ, AMQP_URI=amqp_uri, MONGO_URI=MONGO_URI, AMENDS_DB_PREFIX=prefix,
                   AMENDS_MASTER_KEY=new_master_key(), PYTHONPATH=ROOT, LOG_LEVEL="WARNING",
                   AMENDS_DEV_UNCHECKED_BUS="1",   # one broker user for everything here
                   AMENDS_REGIONS="south-wales,gwent,north-wales,dyfed-powys")
        api_keys.connect_identity(settings_for("identity", {"MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": prefix}))
        key, _ = api_keys.issue("referrer", "bench-police", "bench referrer", subject="bench-referrer",
                                regions=["south-wales", "gwent", "north-wales", "dyfed-powys"])
        referrals_port, baseline_port = free_port(), free_port()
        env["REFERRALS_HTTP_ADDRESS"] = f"127.0.0.1:{referrals_port}"
        processes.append(start("services.referrals.service:ReferralsService", "services/referrals/config.yaml",
                               env, referrals_port))
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write(f"AMQP_URI: {amqp_uri}\nWEB_SERVER_ADDRESS: 127.0.0.1:{baseline_port}\nmax_workers: 10\n")
            baseline_config = handle.name
        processes.append(subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "nameko"), "run", "--config", baseline_config,
             "tests.bench.bench_referrals:Baseline"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: _answers(f"http://127.0.0.1:{baseline_port}/v1/referrals"), timeout=60)

        auth = {"Authorization": f"Bearer {key}"}
        with_key = lambda: {**auth, "Idempotency-Key": uuid.uuid4().hex}  # noqa: E731
        referrals_url = f"http://127.0.0.1:{referrals_port}/v1/referrals"
        baseline_url = f"http://127.0.0.1:{baseline_port}/v1/referrals"
        load(referrals_url, with_key, 2, clients)   # warm up both
        load(baseline_url, lambda: auth, 2, clients)
        print(f"{clients} concurrent clients, {seconds:.0f} s per run, servers with max_workers 10\n")
        rows = [
            ("trivial nameko @http endpoint (baseline)", load(baseline_url, lambda: auth, seconds, clients)),
            ("referrals: POST /v1/referrals (accepted)", load(referrals_url, with_key, seconds, clients)),
        ]
        for label, (rate, p50, p95, count, failures) in rows:
            print(f"{label:<44} {rate:>8.1f} req/s   p50 {p50:>7.1f} ms   p95 {p95:>7.1f} ms   "
                  f"({count} answered 201, {len(failures)} not)")
        print(f"\nratio referrals / baseline: {rows[1][1][0] / rows[0][1][0]:.3f}")
    finally:
        stop_all(processes)
        drop_databases(MONGO_URI, prefix)
        requests.delete(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=AUTH, timeout=10)


def _answers(url):
    try:
        return requests.post(url, json={}, timeout=1).status_code == 201
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0, int(sys.argv[2]) if len(sys.argv) > 2 else 20)
