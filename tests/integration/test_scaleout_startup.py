"""Several processes of a service starting at once on a database nobody has used yet
(`SCALE=matching=2,...`, docs/scaling.md): each prepares the same collections, indexes,
GIN twins and store state at the same moment, and none may fail for it.

Each round starts PROCESSES Python processes that wait for the same instant, then do
what a service's providers do at start: ensure every store's indexes (the referrals
store's migration with them) and the inbox's. Before the fixes this found two races,
each of which stopped a process at start: PostgreSQL's `CREATE INDEX IF NOT EXISTS` run
twice at once (a unique violation in pg_class; about one start in six here), and two
upserts of the same new `store_state` document (a duplicate key; about one in twelve).
"""
import json
import os
import subprocess
import sys
import time
import uuid

from tests.factories import ROOT
from tests.support import drop_databases

MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
PROCESSES = 4
ROUNDS = 3

STARTER = r"""
import json, sys, time
from shared.config import settings_for
from shared.messaging.inbox import Inbox
from shared.storage import connect
from shared.storage.indexes import ensure_indexes
from services.matching.store import MatchingStore
from services.notifications.store import NotificationsStore
from services.records.store import Ledger
from services.referrals.store import ReferralsStore

prefix, at = sys.argv[1], float(sys.argv[2])
config = {"MONGO_URI": sys.argv[3], "AMENDS_DB_PREFIX": prefix}
done = {}
for service, factory in (("referrals", ReferralsStore), ("matching", MatchingStore),
                         ("notifications", NotificationsStore), ("records", Ledger)):
    settings = settings_for(service, config)
    db = connect(service, settings)
    time.sleep(max(0.0, at - time.time()))   # all together, service by service
    at += 2.0
    try:
        factory(db).ensure_indexes(settings.ferretdb_postgresql_url)
        ensure_indexes(db, Inbox.indexes, settings.ferretdb_postgresql_url)
        done[service] = "ok"
    except Exception as exc:
        done[service] = f"{type(exc).__name__}: {str(exc)[:200]}"
print(json.dumps(done))
"""


def test_processes_starting_together_on_a_new_database_all_start():
    failures = []
    for _ in range(ROUNDS):
        prefix = f"tscale{uuid.uuid4().hex[:8]}"
        at = time.time() + 6   # time for every interpreter to import and connect first
        env = dict(os.environ, PYTHONPATH=ROOT, PYTHONWARNINGS="ignore")
        try:
            children = [subprocess.Popen([sys.executable, "-c", STARTER, prefix, str(at), MONGO_URI], cwd=ROOT,
                                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                        for _ in range(PROCESSES)]
            for child in children:
                out, _ = child.communicate(timeout=120)
                lines = out.strip().splitlines()
                results = json.loads(lines[-1]) if lines else {"process": f"exited {child.returncode}"}
                failures += [f"{service}: {result}" for service, result in results.items() if result != "ok"]
        finally:
            drop_databases(MONGO_URI, prefix)
    assert failures == []
