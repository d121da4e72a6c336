import eventlet

eventlet.monkey_patch()  # before anything else imports socket or threading

import os  # noqa: E402
from urllib.parse import quote  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

AMQP_HOST = os.environ.get("AMENDS_TEST_AMQP_HOST", "127.0.0.1:5672")
MANAGEMENT = os.environ.get("AMENDS_TEST_RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")


from tests.support import SERVED_REGIONS, rabbit_admin  # noqa: E402

# the broker admin (amends-admin, from the environment or var/secrets.env; else guest)
RABBIT_AUTH = rabbit_admin()



def management_admin_url():
    """The shared broker's management API as its admin, credentials in the URL (as
    SUBSCRIPTIONS_BROKER_ADMIN_URL takes it)."""
    user, password = RABBIT_AUTH
    scheme, rest = MANAGEMENT.split("://", 1)
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


@pytest.fixture
def vhost():
    """A RabbitMQ vhost of the test's own, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    requests.put(f"{MANAGEMENT}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
    requests.put(
        f"{MANAGEMENT}/api/permissions/{name}/{RABBIT_AUTH[0]}", auth=RABBIT_AUTH, timeout=10,
        json={"configure": ".*", "write": ".*", "read": ".*"},
    ).raise_for_status()
    yield name
    requests.delete(f"{MANAGEMENT}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=10)


@pytest.fixture
def amqp_uri(vhost):
    user, password = RABBIT_AUTH
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{AMQP_HOST}/{vhost}"


@pytest.fixture
def db_prefix():
    """A database-name prefix of the test's own; its databases are dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    from tests.support import drop_databases
    drop_databases(MONGO_URI, prefix)


@pytest.fixture
def service_config(amqp_uri, db_prefix):
    def make(**extra):
        config = {
            "AMQP_URI": amqp_uri,
            "MONGO_URI": MONGO_URI,
            "AMENDS_DB_PREFIX": db_prefix,
            "AMENDS_REGION": "test",
            "AMENDS_REGIONS": SERVED_REGIONS,   # the referral regions referrals serves
            "AMENDS_RETRY_DELAYS": "0.2,0.4",
            "AMENDS_OUTBOX_GRACE": "0",
            "WEB_SERVER_ADDRESS": "127.0.0.1:0",
            # every service of an in-process test connects as the one admin user, so who
            # sent what cannot be told here; tests/integration/test_bus_identity.py checks
            # it on a broker with a user per service
            "AMENDS_DEV_UNCHECKED_BUS": "1",
            # a test that signs gives AMENDS_LEDGER_SIGNING_KEY, which wins
            "AMENDS_DEV_UNSIGNED_LEDGER": "1",
        }
        config.update(extra)
        return config
    return make
