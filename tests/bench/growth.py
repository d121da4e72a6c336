"""Grow a running platform's stored data, for the benchmarks' growth runs.

Copies the cases the platform already holds (made through its API by an earlier load, so
every document has the shape, size and indexes of the real thing) until it holds
`target` cases: every id in a copy (case, participants, referrer, assessment, assignment,
event, delivery) is replaced by a fresh one, the same way in every service's documents,
so the copies are as many distinct cases, not duplicates of the same ids. The ledger grows
through records' own consumer queue (its batch appends, tiles and head), with the copied
events; the other services' documents are inserted in batches.

Not copied: what does not grow with cases (the facilitator registry and its seats, API
keys, the ledger's tiles and head, which records writes itself).
"""
import json
import random
import re
import time
import uuid
from datetime import date, timedelta

import pymongo
from bson import json_util
from kombu import Connection, Producer

from services.records.store import group_leaves
from services.referrals.cases import CLOCKS
from services.referrals.store import DAY_FIELDS
from shared.messaging.topology import consumer_queue_name

# collections whose documents are per case (or per event of a case), per service
PER_CASE = {
    "referrals": ["cases", "case_changes", "data_keys", "contact_access_log", "inbox"],
    "matching": ["assessments", "assignments", "continuity", "inbox"],
    "notifications": ["deliveries", "case_directory", "event_runs", "delivery_claims", "inbox"],
}
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
BATCH = 1000
# How far back the copies reach: each case copied is dated a day of its own within this many days,
# as years of cases would be (a whole copy on one day would put thousands of cases on each day).
SPREAD_DAYS = 3 * 365


def age(service, name, doc, days_ago):
    """Make a copied document look like an old case's: its clocks behind the timers, nothing
    left to send or sweep. (Copies of cases in flight would otherwise all be due today.)"""
    doc.pop("outbox_pending", None)
    if "outbox" in doc:
        doc["outbox"] = []
    if (service, name) == ("referrals", "cases"):
        for field in DAY_FIELDS.values():
            if field in doc:
                doc[field] = (date.today() - timedelta(days=days_ago)).isoformat()
        for clock in CLOCKS.values():
            if clock.flag in doc:
                doc[clock.flag] = True
        # nothing left due either (a listing by due date would otherwise find every copy this week)
        doc.update(next_due_at=None, next_due_kind=None, due_bucket=None)
    elif (service, name) == ("notifications", "deliveries") and doc.get("status") in ("deferred", "sending",
                                                                                       "retrying"):
        doc["status"] = "sent"
    elif (service, name) == ("matching", "assignments"):
        doc["offers_open"] = False
    return doc


class Template:
    """The stored cases to copy, read once."""

    def __init__(self, client, prefix):
        self.client, self.prefix = client, prefix
        self.docs = {}
        for service, names in PER_CASE.items():
            db = client[f"{prefix}_{service}"]
            for name in names:
                self.docs[(service, name)] = json_util.dumps(list(db[name].find({})))
        records = client[f"{prefix}_records"]
        self.events = [leaf for group in records["ledger"].find({}) for leaf in group_leaves(group)]
        self.cases = client[f"{prefix}_referrals"]["cases"].count_documents({})

    def copy(self, text, mapping):
        def fresh(match):
            found = match.group(0)
            if found not in mapping:
                mapping[found] = str(uuid.uuid4()) if "-" in found else uuid.uuid4().hex
            return mapping[found]
        return ID.sub(fresh, text)


def stored_cases(client, prefix):
    return client[f"{prefix}_referrals"]["cases"].count_documents({})


def ledger_size(client, prefix):
    head = client[f"{prefix}_records"]["tree"].find_one({"_id": "head"})
    return head["size"] if head else 0


def grow(mongo_uri, amqp_uri, prefix, target, log=print):
    """Copy the stored cases until there are `target`; returns (cases, ledger entries, seconds)."""
    client = pymongo.MongoClient(mongo_uri)
    started = time.time()
    try:
        template = Template(client, prefix)
        if template.cases == 0:
            raise RuntimeError("nothing stored to copy: run some load first")
        have = stored_cases(client, prefix)
        copies = max(0, (target - have + template.cases - 1) // template.cases)
        expected_ledger = ledger_size(client, prefix) + copies * len(template.events)
        log(f"growing from {have} to about {have + copies * template.cases} cases: {copies} copies of "
            f"{template.cases} cases, {len(template.events)} ledger entries each")
        pending = {key: [] for key in template.docs}
        spread = random.Random(target)
        queue = consumer_queue_name("records", "ledger")
        with Connection(amqp_uri) as connection:
            producer = Producer(connection.channel())
            for n in range(copies):
                mapping = {}
                for key, text in template.docs.items():
                    pending[key].extend(age(*key, doc, spread.randint(1, SPREAD_DAYS))
                                        for doc in json_util.loads(template.copy(text, mapping)))
                    if len(pending[key]) >= BATCH:
                        _insert(client, prefix, key, pending[key])
                for leaf in template.events:
                    producer.publish(template.copy(leaf, mapping).encode("utf-8"), routing_key=queue,
                                     exchange="", content_type="application/json", delivery_mode=2)
                if n % 100 == 99:
                    log(f"  {n + 1} copies written ({time.time() - started:.0f} s)")
            for key, docs in pending.items():
                if docs:
                    _insert(client, prefix, key, docs)
        # until records has taken them all: a few copied events (those whose ids are not
        # uuids, such as a fixed key's) are the same event again, which it rightly skips, so
        # wait for the expected size or for the ledger to stand still for 15 s
        deadline, size, still_since = time.time() + 3600, -1, time.time()
        while time.time() < deadline:
            now = ledger_size(client, prefix)
            if now >= expected_ledger or (now == size and time.time() - still_since > 15):
                break
            if now != size:
                size, still_since = now, time.time()
            time.sleep(1)
        return stored_cases(client, prefix), ledger_size(client, prefix), time.time() - started
    finally:
        client.close()


def _insert(client, prefix, key, docs):
    service, name = key
    try:
        client[f"{prefix}_{service}"][name].insert_many(docs, ordered=False)
    except pymongo.errors.BulkWriteError as error:
        # a copy whose id the template did not contain as a uuid (a fixed key) is a duplicate: skip it
        if any(e["code"] != 11000 for e in error.details["writeErrors"]):
            raise
    docs.clear()


if __name__ == "__main__":  # a quick look at what a template holds
    import sys
    t = Template(pymongo.MongoClient(sys.argv[1]), sys.argv[2])
    print(json.dumps({f"{s}.{n}": len(json_util.loads(v)) for (s, n), v in t.docs.items()}, indent=1),
          t.cases, len(t.events))
