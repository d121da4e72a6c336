"""The national link under faults: a region's broker restarted mid-stream, then the link
down for a minute (the national broker stopped). Every statistic the region accepted
reaches the national view, and each is counted once.

Runs on two RabbitMQ nodes of its own, a region's (with the shovel plugin) and the national
one, as the local `make regions` does, with the national service as a process."""
import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import eventlet
import pymongo
import pytest

from services.national.store import NationalStore
from shared import statistics_profile as profile
from shared.messaging import national
from shared.messaging.permissions import user_for
from tests.conftest import MONGO_URI
from tests.factories import ROOT
from tests.platform import RabbitNode, _stop
from tests.support import free_port, wait_until

pytestmark = pytest.mark.reliability
LINK_DOWN = 60     # seconds the national broker is away (the figure)
RATE = 20          # statistics a second from the region
REGION = "south"


def _password(uri):
    return urlsplit(uri).password


@pytest.fixture
def link(tmp_path, db_prefix):
    region = RabbitNode(str(tmp_path), name="region",
                        plugins=("rabbitmq_management", "rabbitmq_shovel", "rabbitmq_shovel_management"))
    center = RabbitNode(str(tmp_path), name="national")
    service = None
    try:
        region.start()
        center.start()
        region.create_accounts()
        passwords = {"AMENDS_BUS_ADMIN_PASSWORD": uuid.uuid4().hex, "NATIONAL_BUS_PASSWORD": uuid.uuid4().hex,
                     national.link_password_variable(REGION): uuid.uuid4().hex}
        national.setup_national_accounts(center.name, [REGION], passwords, env=center._env())
        at = f"127.0.0.1:{center.port}/"
        national.declare(f"amqp://amends-admin:{passwords['AMENDS_BUS_ADMIN_PASSWORD']}@{at}",
                         national.national_entities())
        national.declare(region.uri, national.region_entities())
        link_uri = f"amqp://{national.link_user(REGION)}:{passwords[national.link_password_variable(REGION)]}@{at}"
        national.link(region.management_url, _password(region.uri), link_uri)
        log = open(tmp_path / "national.log", "ab")
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_PASSWORD", "_KEY"))}
        env.update(AMQP_URI=f"amqp://{national.NATIONAL_USER}:{passwords['NATIONAL_BUS_PASSWORD']}@{at}",
                   MONGO_URI=MONGO_URI, AMENDS_DB_PREFIX=db_prefix, AMENDS_REGION="national",
                   AMENDS_RETRY_DELAYS="0.5,1,2", NATIONAL_HTTP_ADDRESS=f"127.0.0.1:{free_port()}", PYTHONPATH=ROOT)
        nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
        service = subprocess.Popen([nameko, "run", "--config", "services/national/config.yaml",
                                    "services.national.service:NationalService"],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        store = NationalStore(pymongo.MongoClient(MONGO_URI)[f"{db_prefix}_national"])
        yield region, center, store, service, str(tmp_path / "national.log")
    finally:
        _stop(service)
        region.stop()
        center.stop()


class Region:
    """Publishes statistics as a region's statistics service does (confirmed, persistent),
    and keeps at it through a broker outage: what it counts as sent, the broker confirmed."""

    def __init__(self, uri):
        self.uri = uri
        self.sent = []
        self.attempts = 0

    def send(self, count):
        for _ in range(count):
            statistic = {"statistic_id": uuid.uuid4().hex, "profile_version": profile.PROFILE_VERSION,
                         "event_type": "referral.received", "region": REGION, "offence_category": "theft",
                         "week": "2026-W49", "outcome_class": None}
            while True:
                self.attempts += 1
                try:
                    national.StatisticSender(self.uri).send(statistic, patient=False)
                    break
                except Exception:  # noqa: BLE001  the region's broker is away: try again
                    eventlet.sleep(0.5)
            self.sent.append(statistic["statistic_id"])
            eventlet.sleep(1 / RATE)


def _settled(store, region, region_node, log_path, timeout):
    """Wait until the national count equals what the region sent; on failure, say where it stuck."""
    try:
        wait_until(lambda: store.count(REGION) == len(region.sent), timeout=timeout, interval=1)
    except AssertionError:
        import requests
        auth = ("amends-admin", _password(region_node.uri))
        shovels = requests.get(f"{region_node.management_url}/api/shovels", auth=auth, timeout=10).json()
        queues = requests.get(f"{region_node.management_url}/api/queues", auth=auth, timeout=10).json()
        with open(log_path, errors="replace") as log:
            tail = log.readlines()[-15:]
        raise AssertionError(
            f"national count {store.count(REGION)} of {len(region.sent)} sent; shovels "
            f"{[(s.get('name'), s.get('state'), s.get('reason')) for s in shovels]}; region queues "
            f"{[(q['name'], q.get('messages')) for q in queues if q['name'].startswith('national')]}; "
            f"national log: {''.join(tail)}") from None


def _stored_ids(store):
    return {doc["_id"] for doc in store.db[store.STATISTICS].find({"region": REGION}, {"_id": 1})}


def test_a_region_restarted_mid_stream_and_a_minute_without_the_link_lose_and_double_nothing(link):
    region_node, center, store, service, log_path = link
    region = Region(region_node.service_uris["statistics"])

    # a region's broker stopped and started again while its statistics flow
    stream = eventlet.spawn(region.send, 200)
    wait_until(lambda: len(region.sent) >= 60, timeout=60)
    region_node.stop()
    eventlet.sleep(3)
    region_node.start()
    stream.wait()
    _settled(store, region, region_node, log_path, timeout=120)
    assert _stored_ids(store) == set(region.sent)

    # the link down for a minute: the national broker is away, the region goes on
    center.stop()
    down_at = time.monotonic()
    region.send(400)
    eventlet.sleep(max(0.0, LINK_DOWN - (time.monotonic() - down_at)))
    assert store.count(REGION) == 200, "statistics arrived with the national broker down"
    center.start()
    _settled(store, region, region_node, log_path, timeout=180)
    assert _stored_ids(store) == set(region.sent)
    assert len(set(region.sent)) == len(region.sent) == 600
    assert service.poll() is None, "the national service died"
    print(f"\nnational link: {len(region.sent)} statistics sent ({region.attempts} publish attempts), "
          f"{store.count(REGION)} counted nationally; 400 of them sent while the link was down for {LINK_DOWN} s")
