"""Every query the services of a region issue, in a realistic run, is served by an index on
FerretDB on PostgreSQL (with the stores' GIN twins in place).

The services run in this process, so a pymongo command listener sees every query they
send: intake, assessment, staffing, notifications, the ledger and its feed, listings,
timelines, verification, and one run of every timer. Each distinct query shape is then
planned (tests/plans.py). A shape that must read a whole collection is allowed only where
that collection stays small whatever the number of cases, and says why below.
"""
import os

import pymongo
import pytest
import requests
from nameko.testing.services import entrypoint_hook
from nameko.timer import Timer

from services.matching import seed_file
from services.matching.service import MatchingService
from services.notifications.service import NotificationsService
from services.records.service import RecordsService
from services.referrals.service import ReferralsService
from services.statistics.service import StatisticsService
from services.subscriptions.service import SubscriptionsService
from tests.conftest import MONGO_URI
from tests.factories import ROOT, SAMPLES, referral_body
from tests.platform import TEST_MASTER_KEY, TEST_STATISTICS_KEY, TEST_SUBSCRIPTIONS_KEY
from tests.plans import QueryLog, plan_of
from tests.support import ferretdb_postgresql_url, provision_keys, wait_until
from tests.webhook_receiver import Receiver

# Whole-collection reads allowed, (collection, shape) -> why.
WHOLE = {
    ("facilitators", "(all)"): "the registry of facilitators: hundreds, not one per case; matching loads it "
                               "into its roster",
    ("seats", "(all)"): "one document per facilitator's seat: grows with the registry, not with cases",
    ("tree", "(all)"): "two documents: the ledger's head and its checkpoint pointer",
    ("checkpoints", "(all)"): "a few signed heads an hour; read whole only by full verification",
    ("cases", "(all)"): "referrals' one-off migration at its first start (a marker stops it after), and a "
                        "national listing with no filter at all, whose answer is every case (docs/storage.md: "
                        "listings read every case that matches their filter)",
    ("agreements", "(all)"): "the agencies' data-sharing agreements: a few versions per agency, not one per case; "
                             "the subscriptions dispatcher reloads those in force",
}

LOG = QueryLog()
pymongo.monitoring.register(LOG)


@pytest.fixture
def pg():
    url = ferretdb_postgresql_url()
    client = pymongo.MongoClient(MONGO_URI)
    if not url or "ferretdbVersion" not in client.admin.command("buildInfo"):
        client.close()
        pytest.skip("this checks FerretDB's PostgreSQL plans; MONGO_URI names another server (MongoDB plans "
                    "its own indexes)")
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        yield url, client, conn.cursor()
    client.close()


def timers(container):
    return [e.method_name for e in container.entrypoints if isinstance(e, Timer)]


def test_every_query_shape_is_served_by_an_index(pg, run_services, monkeypatch):
    url, client, cursor = pg
    monkeypatch.setenv("AMENDS_MASTER_KEY", TEST_MASTER_KEY)
    twins = {"AMENDS_FERRETDB_POSTGRESQL_URL": url}
    LOG.on = True
    try:
        with run_services(ReferralsService, **twins) as (referrals, config), \
                run_services(MatchingService, **twins) as (matching, _), run_services(NotificationsService, **twins), \
                run_services(RecordsService, **twins) as (records, _), \
                run_services(StatisticsService, AMENDS_STATISTICS_KEY=TEST_STATISTICS_KEY, **twins), \
                run_services(SubscriptionsService, AMENDS_SUBSCRIPTIONS_KEY=TEST_SUBSCRIPTIONS_KEY,
                             SUBSCRIPTIONS_ALLOW_LOCAL_HTTP="1", **twins) as (subscriptions, _), \
                Receiver() as receiver:
            keys = provision_keys(config)
            coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
            referrer = {"Authorization": f"Bearer {keys['referrer']}"}
            assert requests.put(f"{subscriptions}/v1/agencies/test-police/sharing", headers=coordinator, timeout=10,
                                json={"profile": "own_cases", "agreement_reference": "DSA/1"}).ok
            subscription = requests.post(f"{subscriptions}/v1/subscriptions", headers=referrer, timeout=10, json={
                "kind": "webhook", "url": receiver.url, "event_types": ["case.*", "referral.received"],
                "start": {"position": 0}, "max_batch": 5}).json()["subscription_id"]
            for record in seed_file.read(os.path.join(ROOT, "deploy", "local", "facilitators.yaml")):
                created = requests.post(f"{matching}/v1/facilitators", json=record, headers=coordinator, timeout=10)
                assert created.status_code == 201, created.text
            cases = []
            for index in range(len(SAMPLES)):
                answer = requests.post(f"{referrals}/v1/referrals", json=referral_body(index),
                                       headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=10)
                assert answer.status_code == 201, answer.text
                cases.append(answer.json()["case_id"])
            auditor = {"Authorization": f"Bearer {keys['auditor']}"}

            def assessed():
                feed = requests.get(f"{records}/v1/ledger/entries?after=-1&limit=500", headers=auditor,
                                    timeout=10).json()
                seen = {e["event"]["subject"] for e in feed["items"] if e["event"]["type"] == "case.assessed"}
                return seen >= set(cases)
            wait_until(assessed, timeout=60)
            for case_id in cases:
                assert requests.get(f"{referrals}/v1/cases/{case_id}", headers=coordinator, timeout=10).ok
                assert requests.get(f"{records}/v1/cases/{case_id}/timeline", headers=coordinator, timeout=10).ok
            assert requests.get(f"{referrals}/v1/cases?status=ASSESSMENT", headers=coordinator, timeout=10).ok
            assert requests.get(f"{referrals}/v1/cases?measured_from=referral_received", headers=coordinator,
                                timeout=10).ok
            assert requests.get(f"{referrals}/v1/cases?due_before=2027-01-01&overdue=false", headers=coordinator,
                                timeout=10).ok
            assert requests.get(f"{records}/v1/ledger/verify", headers=auditor, timeout=30).json()["valid"]
            requests.get(f"{matching}/v1/facilitators", headers=coordinator, timeout=10).raise_for_status()
            # a subscriber's deliveries, its log, and the API's reads and writes
            receiver.wait_for(lambda r: len(r.unique_events()) >= len(cases), timeout=60)
            one = f"{subscriptions}/v1/subscriptions/{subscription}"
            for method, path, body in [("GET", "", None), ("GET", "/deliveries?limit=5", None),
                                       ("POST", "/replay", {"from_position": 0}), ("POST", "/rotate-secret", None),
                                       ("PATCH", "", {"max_batch": 2})]:
                assert requests.request(method, one + path, json=body, headers=referrer, timeout=10).ok
            assert requests.get(f"{subscriptions}/v1/subscriptions", headers=referrer, timeout=10).ok
            assert requests.get(f"{subscriptions}/v1/agencies/test-police/sharing", headers=referrer, timeout=10).ok
            # after the intervention: a survey looked up by its token (this one names none)
            assert requests.get(f"{referrals}/v1/surveys/{'t' * 43}", timeout=10).status_code == 404
            for container in run_services.containers:
                for name in timers(container):
                    with entrypoint_hook(container, name) as tick:
                        tick()
    finally:
        LOG.on = False

    prefix = config["AMENDS_DB_PREFIX"]
    judged = []
    for (database, collection, form), query in sorted(LOG.seen.items(), key=lambda kv: kv[0]):
        if not database.startswith(prefix + "_"):
            continue
        pushed, indexed, why = plan_of(client, database, collection, query, cursor)
        judged.append((database, collection, form, indexed, why))
    assert len(judged) > 10, judged  # the run did reach the stores
    scans = [(d, c, f, w) for d, c, f, indexed, w in judged if not indexed and (c, f) not in WHOLE]
    assert not scans, "\n".join(f"{d}.{c} [{f}]: {w}" for d, c, f, w in scans)
