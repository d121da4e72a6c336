"""Helpers for tests that use the real broker, database and SMTP server."""
import json
import mailbox
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from urllib.parse import quote

import mongoengine
import pymongo
from kombu import Connection, Queue

from deploy.validate import all_strings
from shared.messaging import topology
from shared.security import api_keys
from shared.config import settings_for


def local_secret(name):
    """A development secret: from the environment, else the bootstrap's var/secrets.env."""
    value = os.environ.get(name)
    secrets = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var", "secrets.env")
    if not value and os.path.exists(secrets):
        with open(secrets) as lines:
            for line in lines:
                if line.startswith(name + "="):
                    value = line.strip().split("=", 1)[1]
    return value


def ferretdb_postgresql_url():
    """Where the bootstrap's FerretDB keeps its data (AMENDS_FERRETDB_POSTGRESQL_URL wins),
    or "" when there is no such PostgreSQL (MONGO_URI names another server)."""
    if os.environ.get("AMENDS_FERRETDB_POSTGRESQL_URL"):
        return os.environ["AMENDS_FERRETDB_POSTGRESQL_URL"]
    password = local_secret("AMENDS_PG_PASSWORD")
    if not password or os.environ.get("MONGO_URI"):
        return ""
    return f"postgres://amends:{password}@127.0.0.1:{os.environ.get('AMENDS_PG_PORT', '5432')}/ferretdb"


def rabbit_admin():
    """The broker's admin user and password: amends-admin with AMENDS_BUS_ADMIN_PASSWORD from
    the environment or var/secrets.env (the bootstrap deletes guest); guest on a broker whose
    users the bootstrap does not manage."""
    password = local_secret("AMENDS_BUS_ADMIN_PASSWORD")
    user = os.environ.get("AMENDS_TEST_RABBIT_USER", "amends-admin" if password else "guest")
    return user, password or "guest"


def rabbit_operator():
    """The operators' narrower broker user (amends-operator) and its password, from the
    environment or var/secrets.env, as the bootstrap made it; None without one."""
    password = local_secret("AMENDS_BUS_OPERATOR_PASSWORD")
    return ("amends-operator", password) if password else None


def admin_amqp_uri(host, vhost=""):
    user, password = rabbit_admin()
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}/{vhost}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=20.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class Tap:
    """A queue of the test's own, bound to some of the events exchanges, to see what is published."""

    def __init__(self, amqp_uri, bindings, name="test-tap"):
        self.connection = Connection(amqp_uri)
        self.queue = Queue(name, bindings=[
            __import__("kombu").binding(topology.events_exchange(s), routing_key=k) for s, k in bindings
        ], durable=False, auto_delete=False)
        self.queue.bind(self.connection.channel()).declare()
        self.seen = []

    def drain(self):
        simple = self.connection.SimpleQueue(self.queue)
        while True:
            try:
                message = simple.get(block=False)
            except simple.Empty:
                break
            self.seen.append(json.loads(message.body))
            message.ack()
        simple.close()
        return self.seen

    def types(self):
        return [e["type"] for e in self.drain()]

    def close(self):
        self.connection.release()


def read_dead_letters(amqp_uri, service):
    """Every message in a service's dead-letter queue, with its headers, acked away."""
    found = []
    with Connection(amqp_uri) as connection:
        queue = topology.dead_letter_queue(service).bind(connection.channel())
        queue.declare()
        while True:
            message = queue.get(no_ack=False)
            if message is None:
                break
            found.append((message.body, dict(message.headers or {})))
            message.ack()
    return found


def publish_event(amqp_uri, event, body=None):
    """Publish as a producing service would (or raw bytes, for poison messages)."""
    producer_service = event["source"].rsplit("/", 1)[-1] if event else "referrals"
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        producer.publish(
            body if body is not None else json.dumps(event),
            exchange=topology.events_exchange(producer_service),
            routing_key=event["type"] if event else "referral.received",
            content_type="application/json", content_encoding="utf-8", serializer=None,
            declare=[topology.events_exchange(producer_service)],
        )


# the regions test keys cover: every region the test referrals and facilitators use
TEST_REGIONS = ("south-wales", "gwent", "north-wales", "dyfed-powys")
# the referral regions the tests' referrals serves (AMENDS_REGIONS): the same, as the local
# bootstrap sets them for the demo
SERVED_REGIONS = ",".join(TEST_REGIONS)


def provision_keys(config, agency="test-police", facilitator="fac-test", regions=TEST_REGIONS):
    """One key per role over `regions` (the facilitator key is `facilitator`'s, the
    auditor's national), and a referrer key of another agency."""
    api_keys.connect_identity(settings_for("identity", config))
    keys = api_keys.issue_all(agency, "test", facilitator, regions)
    keys["other_agency_referrer"] = issue_key(config, "referrer", "other-agency", "other-referrer", regions)
    return keys


def issue_key(config, role, agency, subject, regions=TEST_REGIONS, national=False, **options):
    """One person's key (no ledger event: tests of the key events use shared.security.keys)."""
    api_keys.connect_identity(settings_for("identity", config))
    return api_keys.issue(role, agency, f"test {role} {subject}", subject=subject, regions=regions,
                          national=national, **options)[0]


def facilitator_key(config, facilitator_id, agency="test-police"):
    return issue_key(config, "facilitator", agency, facilitator_id)


def disconnect_all():
    for alias in list(mongoengine.connection._connection_settings):
        mongoengine.disconnect(alias)


@contextmanager
def smtp_server(mail_dir, handler="aiosmtpd.handlers.Mailbox", *handler_args):
    """A real SMTP server (aiosmtpd) in its own process, storing mail in a Maildir; another
    `handler` class (importable from the project) may take extra arguments."""
    port = free_port()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", handler, mail_dir,
         *map(str, handler_args)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=root), cwd=root,
    )
    try:
        wait_until(lambda: _listening(port), timeout=20)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def drop_databases(mongo_uri, prefix):
    """Drop every database named `<prefix>_...`: a test's or a benchmark's own, and no other."""
    client = pymongo.MongoClient(mongo_uri)
    for name in client.list_database_names():
        if name.startswith(prefix + "_"):
            client.drop_database(name)
    client.close()


def mails(mail_dir):
    if not os.path.isdir(os.path.join(mail_dir, "new")):
        return []
    return list(mailbox.Maildir(mail_dir, create=False))


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def missing_indexes(db, declared):
    """Declared indexes ({collection: [Index]}) the server should hold and does not: every
    one on MongoDB; on FerretDB the unique ones only (shared/storage/indexes.py says why)."""
    ferretdb = "ferretdbVersion" in db.command("buildInfo")
    missing = []
    for name, indexes in declared.items():
        present = set(db[name].index_information())
        for index in indexes:
            if (index.unique or not ferretdb) and index.name not in present:
                missing.append(f"{name}.{index.name}")
            if ferretdb and not index.unique and index.name in present:
                missing.append(f"{name}.{index.name} (should not be on FerretDB)")
    return missing


# every string anywhere inside a JSON-like value
strings_in = all_strings


def ids_in(data):
    """Every id an event's data carries: its *_id and *_ids fields, and its participants' ids."""
    found = set()
    for name, value in data.items():
        if name.endswith("_id") and isinstance(value, str):
            found.add(value)
        elif name.endswith("_ids"):
            found.update(value)
        elif name == "participants":
            found.update(p["participant_id"] for p in value)
    return found


def provider_of(provider, service, config):
    """A nameko DependencyProvider as its container would hold it, for a test of its setup alone."""
    from types import SimpleNamespace
    provider.container = SimpleNamespace(config=config, service_name=service)
    return provider
