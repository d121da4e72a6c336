"""The whole platform as real processes, for the end-to-end and fault tests.

`Platform` runs the services (the pipeline's four, the region's statistics, subscriptions and reports) as
`nameko run` processes, each with its own log file, against either the shared broker
and database (a vhost and database prefix of the test's own) or, for the fault suite, a RabbitMQ node and a FerretDB of the test's
own, which it can stop, kill and restart without disturbing any other test.
Everything listens on 127.0.0.1, on free ports, and everything started is stopped.
"""
import os
import secrets
import signal
import subprocess
import sys
import uuid

import requests

from shared.messaging import accounts, topology
from shared.messaging.permissions import ADMIN_USER, OPERATOR_USER, user_for
from shared.storage import roles
from tests.factories import ROOT
from tests.support import SERVED_REGIONS, ferretdb_postgresql_url, free_port, wait_until

SERVICES = {"referrals": "ReferralsService", "matching": "MatchingService",
            "notifications": "NotificationsService", "records": "RecordsService",
            "statistics": "StatisticsService", "subscriptions": "SubscriptionsService",
            "reports": "ReportsService"}
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
FERRETDB = os.path.join(ROOT, "var", "bin", "ferretdb")
# A development master key for test platforms only; real ones come from the environment.
TEST_MASTER_KEY = "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk="
# The region's key for statistic ids, for test platforms only.
TEST_STATISTICS_KEY = "wqeVt0wUNzMpXh1dK4cGzRt7Q0v9pXW0n1rCeQ2mN1k="
# The subscriptions service's key for the statistics profile's ids, for test platforms only.
TEST_SUBSCRIPTIONS_KEY = "b3VyLXRlc3Qtc3Vic2NyaXB0aW9ucy1rZXktMzJieXQ="
# Each service process gets its own secrets and none of the others' (as the bootstrap does):
# the rest are taken out of the environment the tests run in.
SECRETS = ("AMENDS_MASTER_KEY", "AMENDS_LEDGER_SIGNING_KEY", "AMENDS_STATISTICS_KEY", "AMENDS_SUBSCRIPTIONS_KEY",
           "SUBSCRIPTIONS_BROKER_ADMIN_URL",
           accounts.ADMIN_PASSWORD_VARIABLE,
           *(accounts.password_variable(s) for s in topology.SERVICES),
           "AMENDS_PG_PASSWORD", *(roles.password_variable(a) for a in roles.ACCOUNTS),
           *(f"{s.upper()}_AMQP_URI" for s in topology.SERVICES))


def _stop(process, timeout=20, signalled=False):
    if process is None or process.poll() is not None:
        return
    if not signalled:  # a second SIGTERM makes nameko stop twice, and its timers object
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_all(processes, timeout=20):
    """SIGTERM every process at once (they stop side by side), then wait for each, killing
    one that outlasts `timeout`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        _stop(process, timeout=timeout, signalled=True)


class RabbitNode:
    """A RabbitMQ node of the test's own: its own name, ports and data directory."""

    def __init__(self, base_dir, plugins=(), name="rabbitmq"):
        """`plugins`: RabbitMQ plugins to enable; with rabbitmq_management, its API listens
        on `management_url`."""
        self.name = f"amends-t{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = os.path.join(base_dir, name)
        os.makedirs(os.path.join(self.dir, "mnesia"), exist_ok=True)
        self.management_url = None
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as conf:
            conf.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
            if "rabbitmq_management" in plugins:
                management_port = free_port()
                conf.write(f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {management_port}\n")
                self.management_url = f"http://127.0.0.1:{management_port}"
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as enabled:
            enabled.write("[" + ",".join(plugins) + "].\n")
        self.process = None
        self.uri = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.service_uris = None

    def create_accounts(self):
        """The bootstrap's broker users (shared.messaging.accounts) on this node, guest
        deleted: `uri` becomes the admin's, and `service_uris` each service's own."""
        passwords = {user: secrets.token_urlsafe(18)
                     for user in (ADMIN_USER, OPERATOR_USER, *map(user_for, topology.SERVICES))}
        accounts.setup(self.name, passwords, env=self._env())
        at = f"127.0.0.1:{self.port}/"
        self.uri = f"amqp://{ADMIN_USER}:{passwords[ADMIN_USER]}@{at}"
        self.service_uris = {s: f"amqp://{user_for(s)}:{passwords[user_for(s)]}@{at}" for s in topology.SERVICES}
        self.operator_uri = f"amqp://{OPERATOR_USER}:{passwords[OPERATOR_USER]}@{at}"

    def _env(self):
        return dict(
            os.environ, RABBITMQ_NODENAME=self.name, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"), RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
            RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
            RABBITMQ_PID_FILE=os.path.join(self.dir, "beam.pid"), ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )

    def _ctl(self, *args, timeout=120):
        return subprocess.run([RABBITMQCTL, "-n", self.name, *args], env=self._env(), timeout=timeout,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    def start(self):
        self.process = subprocess.Popen([RABBITMQ_SERVER], env=self._env(), start_new_session=True,
                                        stdout=open(os.path.join(self.dir, "server.out"), "ab"),
                                        stderr=subprocess.STDOUT)
        wait_until(lambda: self.process.poll() is None and self._ctl("status", timeout=30) == 0,
                   timeout=90, interval=1)
        if self._ctl("await_startup", "--timeout", "120", timeout=150) != 0:
            raise RuntimeError(f"RabbitMQ node {self.name} did not start")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self._ctl("stop", timeout=60)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self):
        self.stop()
        self.start()


class FerretDB:
    """A FerretDB of the test's own: on the bootstrap's PostgreSQL, in a PostgreSQL database
    of its own (made here, dropped by `remove`); on SQLite in its own directory only where
    there is no such PostgreSQL (MONGO_URI names another server)."""

    def __init__(self, base_dir):
        self.port = free_port()
        self.dir = os.path.join(base_dir, "ferretdb")
        os.makedirs(self.dir, exist_ok=True)
        self.process = None
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        server = ferretdb_postgresql_url()
        self.database = f"ferretdb_test_{uuid.uuid4().hex[:10]}" if server else None
        self.postgresql_url = server.rsplit("/", 1)[0] + "/" + self.database if server else ""
        if server:
            self._admin(f'CREATE DATABASE "{self.database}"')

    def _admin(self, statement):
        import psycopg
        with psycopg.connect(ferretdb_postgresql_url(), autocommit=True) as conn:
            conn.execute(statement)

    def start(self):
        common = [f"--listen-addr=127.0.0.1:{self.port}", "--telemetry=disable", "--debug-addr=-", "--log-level=warn",
                  f"--state-dir={self.dir}"]
        if self.postgresql_url:
            # its password through the environment, not the command line
            command, env = [FERRETDB, "--handler=postgresql"] + common, dict(os.environ,
                                                                             FERRETDB_POSTGRESQL_URL=self.postgresql_url)
        else:
            command, env = [FERRETDB, "--handler=sqlite", f"--sqlite-url=file:{self.dir}/"] + common, None
        self.process = subprocess.Popen(command, env=env, stdout=open(os.path.join(self.dir, "server.out"), "ab"),
                                        stderr=subprocess.STDOUT)
        import pymongo
        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=500)
        wait_until(lambda: _pings(client), timeout=60, interval=0.5)
        client.close()

    def stop(self):
        _stop(self.process)

    def remove(self):
        """Stop, and drop its PostgreSQL database."""
        self.stop()
        if self.database:
            self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _pings(client):
    try:
        return client.admin.command("ping")["ok"] == 1
    except Exception:
        return False


class Platform:
    """The services as processes, on the given broker and database.

    With `service_uris` (RabbitNode.create_accounts) each service connects as its own
    broker user, and who sent what is checked; without, all share `amqp_uri` (a vhost of
    the shared broker, where the tests may not make users) and nothing is. Each process
    gets only its own secrets: the master key referrals, the signing key records."""

    def __init__(self, amqp_uri, mongo_uri, db_prefix, smtp_port, log_dir, extra_env=None, service_uris=None):
        self.ports = {name: free_port() for name in SERVICES}
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        from services.records.checkpoints import Signer
        self.env = dict(
            {k: v for k, v in os.environ.items() if k not in SECRETS},
            AMQP_URI=amqp_uri, MONGO_URI=mongo_uri, AMENDS_DB_PREFIX=db_prefix,
            AMENDS_RETRY_DELAYS="0.5,1,2", SMTP_PORT=str(smtp_port),
            # one residency zone, `test`, whose ledger signs as amends.test/ledger; the referral
            # regions its referrals serves
            AMENDS_REGION="test", AMENDS_REGIONS=SERVED_REGIONS,
            PYTHONPATH=ROOT, **{f"{n.upper()}_HTTP_ADDRESS": f"127.0.0.1:{p}" for n, p in self.ports.items()},
            **({} if service_uris else {"AMENDS_DEV_UNCHECKED_BUS": "1"}),
            **(extra_env or {}))
        self.own = {name: {"AMQP_URI": (service_uris or {}).get(name, amqp_uri)} for name in SERVICES}
        # a test's own key, given in extra_env, wins; it still reaches only its service
        extra = extra_env or {}
        self.own["referrals"]["AMENDS_MASTER_KEY"] = extra.get("AMENDS_MASTER_KEY", TEST_MASTER_KEY)
        self.own["statistics"]["AMENDS_STATISTICS_KEY"] = extra.get("AMENDS_STATISTICS_KEY", TEST_STATISTICS_KEY)
        self.own["subscriptions"]["AMENDS_SUBSCRIPTIONS_KEY"] = extra.get("AMENDS_SUBSCRIPTIONS_KEY",
                                                                          TEST_SUBSCRIPTIONS_KEY)
        # agencies' AMQP feeds: the broker's management API as an admin, when the test gives it
        if extra.get("SUBSCRIPTIONS_BROKER_ADMIN_URL"):
            self.own["subscriptions"]["SUBSCRIPTIONS_BROKER_ADMIN_URL"] = extra["SUBSCRIPTIONS_BROKER_ADMIN_URL"]
        # the tests' webhook receivers listen on 127.0.0.1, over plain http (development's setting)
        self.own["subscriptions"]["SUBSCRIPTIONS_ALLOW_LOCAL_HTTP"] = extra.get("SUBSCRIPTIONS_ALLOW_LOCAL_HTTP", "1")
        self.own["records"]["AMENDS_LEDGER_SIGNING_KEY"] = (
            extra.get("AMENDS_LEDGER_SIGNING_KEY") or str(Signer.generate(f"amends.{self.env['AMENDS_REGION']}/ledger")))
        for secret in SECRETS:
            self.env.pop(secret, None)
        self.processes = {}

    def url(self, service):
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, *names):
        nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
        for name in names or SERVICES:
            log = open(os.path.join(self.log_dir, f"{name}.log"), "ab")
            self.processes[name] = subprocess.Popen(
                [nameko, "run", "--config", f"services/{name}/config.yaml", f"services.{name}.service:{SERVICES[name]}"],
                cwd=ROOT, env={**self.env, **self.own[name]}, stdout=log, stderr=subprocess.STDOUT)
        for name in names or SERVICES:
            wait_until(lambda: self.healthy(name), timeout=90, interval=0.5)

    def healthy(self, name):
        try:
            return requests.get(f"{self.url(name)}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def kill9(self, name):
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def alive(self):
        return {name: process.poll() is None for name, process in self.processes.items()}

    def stop(self):
        stop_all(list(self.processes.values()))
        self.processes.clear()

    def logs(self):
        """Every line every service wrote, for the tests that read the logs."""
        lines = []
        for name in os.listdir(self.log_dir):
            with open(os.path.join(self.log_dir, name), errors="replace") as log:
                lines += log.readlines()
        return lines
