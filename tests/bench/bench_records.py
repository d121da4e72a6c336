"""Records ledger benchmarks, with baselines measured in the same run. Prints figures;
asserts nothing. Uses its own vhost and database prefix, removed afterwards.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_records.py [--backlog 50000] [--verify-size 200000]

BENCH_RECORDS_CONFIG='{"RECORDS_BATCH_SIZE": 2000, "RECORDS_PREFETCH": 5000}' runs the appends
with other service settings (JSON, merged into the service's config).

The default verification size keeps the run near three minutes on FerretDB; the target
is stated for 1,000,000 entries (--verify-size 1000000, several minutes there: building
the log is bound by FerretDB's insert rate, verifying it by its read rate, both printed
as baselines).

1. Baselines: raw insert_many of entry-sized documents into the database, raw reads of
   them, and raw SHA-256 of leaf-sized inputs.
2. Appends: a backlog of --backlog events waits in the ledger queue; the records service
   starts (in this process) and drains it: appends per second, from start to the last
   entry in the tree.
3. Verification: a log of --verify-size entries is written straight into the database
   (entries, tiles, head, one signed checkpoint), then fully verified (audit): seconds.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import pymongo  # noqa: E402
import rfc8785  # noqa: E402
import requests  # noqa: E402
from kombu import Connection  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402

from services.records import ledger as leaves, merkle, tiles  # noqa: E402
from services.records.checkpoints import Signer  # noqa: E402
from services.records.service import RecordsService  # noqa: E402
from services.records.store import Ledger, group_document  # noqa: E402
from shared.events import new_event  # noqa: E402
from shared.messaging import topology  # noqa: E402
from tests.factories import referral_received_data  # noqa: E402
from tests.support import admin_amqp_uri, rabbit_admin  # noqa: E402

AMQP_HOST = os.environ.get("AMENDS_TEST_AMQP_HOST", "127.0.0.1:5672")
MANAGEMENT = os.environ.get("AMENDS_TEST_RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
RABBIT = rabbit_admin()


def sample_event(i):
    case = f"case-{i // 4}"
    return new_event("referral.received", case, referral_received_data(case_id=case),
                     source="/amends/bench/referrals", region="bench", correlationid=case)


def baselines(db, count=20000):
    event = sample_event(0)
    leaf = leaves.leaf_bytes(event).decode()
    docs = [{"_id": "%012d" % i, "seq": i, "event_id": str(uuid.uuid4()), "case_id": event["subject"],
             "event_type": event["type"], "leaf": leaf} for i in range(count)]
    collection = db["baseline"]
    start = time.perf_counter()
    for i in range(0, count, 1000):
        collection.insert_many(docs[i:i + 1000], ordered=False)
    insert_rate = count / (time.perf_counter() - start)
    start = time.perf_counter()
    read = sum(1 for _ in collection.find({}, {"seq": 1, "leaf": 1}, batch_size=5000))
    read_rate = read / (time.perf_counter() - start)
    claims = db["claims"]
    start = time.perf_counter()
    for i in range(0, count, 1000):
        claims.insert_many([{"_id": d["event_id"], "group": 0} for d in docs[i:i + 1000]], ordered=False)
    claim_rate = count / (time.perf_counter() - start)
    data = b"\x00" + leaf.encode()
    start = time.perf_counter()
    for _ in range(200000):
        hashlib.sha256(data).digest()
    sha_rate = 200000 / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(2000):
        rfc8785.dumps(event)
    jcs_rate = 2000 / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(2000):
        leaves.leaf_bytes(event)
    leaf_rate = 2000 / (time.perf_counter() - start)
    collection.drop()
    claims.drop()
    print(f"baseline: raw insert_many, one {len(leaf)}-byte leaf a document   {insert_rate:>9.0f} docs/s")
    print(f"baseline: raw read of the same documents                  {read_rate:>9.0f} docs/s")
    print(f"baseline: raw insert_many of small claim documents        {claim_rate:>9.0f} docs/s")
    print(f"baseline: SHA-256 of a {len(data)}-byte leaf                       {sha_rate:>9.0f} /s")
    print(f"baseline: RFC 8785 canonical JSON of one event (rfc8785)   {jcs_rate:>9.0f} /s")
    print(f"          the same through ledger.leaf_bytes (fast path)  {leaf_rate:>9.0f} /s")


def bench_appends(backlog, prefix, signer):
    vhost = f"bench-records-{uuid.uuid4().hex[:8]}"
    requests.put(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=RABBIT, timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/api/permissions/{vhost}/{RABBIT[0]}", auth=RABBIT, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    amqp_uri = admin_amqp_uri(AMQP_HOST, vhost)
    try:
        topology.declare(amqp_uri, (1, 5))
        template = sample_event(0)
        start = time.perf_counter()
        with Connection(amqp_uri) as connection:
            producer = connection.Producer()
            exchange = topology.events_exchange("referrals")
            for i in range(backlog):
                event = copy.deepcopy(template)
                event["id"] = str(uuid.uuid4())
                event["subject"] = event["data"]["case_id"] = event["correlationid"] = f"case-{i // 4}"
                producer.publish(json.dumps(event), exchange=exchange, routing_key="referral.received",
                                 content_type="application/json", content_encoding="utf-8", serializer=None,
                                 delivery_mode=2)
        print(f"\nbacklog: {backlog} events queued in {time.perf_counter() - start:.1f} s")
        config = {"AMQP_URI": amqp_uri, "MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": prefix,
                  "AMENDS_REGION": "bench", "WEB_SERVER_ADDRESS": "127.0.0.1:0",
                  "AMENDS_LEDGER_SIGNING_KEY": str(signer), "RECORDS_CHECKPOINT_INTERVAL": 3600,
                  # the backlog is published as the admin, with no user_id: no sender to check
                  "AMENDS_DEV_UNCHECKED_BUS": "1",
                  "max_workers": 4, **json.loads(os.environ.get("BENCH_RECORDS_CONFIG", "{}"))}
        ledger = Ledger(pymongo.MongoClient(MONGO_URI)[f"{prefix}_records"])
        container = ServiceContainer(RecordsService, config)
        start = time.perf_counter()
        container.start()
        last, stalled = 0, time.perf_counter()
        while ledger.head().size < backlog:
            eventlet.sleep(0.1)
            size = ledger.head().size
            if size != last:
                last, stalled = size, time.perf_counter()
            elif time.perf_counter() - stalled > 60:
                raise SystemExit(f"appends stalled at {size} of {backlog}")
        elapsed = time.perf_counter() - start
        container.stop()
        print(f"appends: drained {backlog} events in {elapsed:.1f} s      {backlog / elapsed:>9.0f} appends/s "
              f"(target >= 5000)")
        start = time.perf_counter()
        summary = ledger.audit(signer.verifier)
        print(f"         and verified those {summary['entries']} entries in {time.perf_counter() - start:.1f} s")
    finally:
        requests.delete(f"{MANAGEMENT}/api/vhosts/{vhost}", auth=RABBIT, timeout=10)


def build_log(ledger, size, signer, batch=1000):
    """Write a log of `size` entries straight into the database, as the writer would
    (groups of `batch` entries, tiles, head), without the claims, which verification
    does not read."""
    template = sample_event(0)
    marker = "00000000-0000-4000-8000-000000000000"
    template["id"] = marker
    canonical = leaves.leaf_bytes(template).decode()  # ids below are the same length: still canonical
    ledger.recover()
    head = tiles.TreeHead()
    start = time.perf_counter()
    for first in range(0, size, batch):
        written, hashes = [], []
        for seq in range(first, min(first + batch, size)):
            event_id = "%08x-0000-4000-8000-000000000000" % seq
            leaf = canonical.replace(marker, event_id)
            written.append((dict(template, id=event_id), leaf))
            hashes.append(merkle.leaf_hash(leaf.encode()))
        ledger.entries.insert_one(group_document(first, written))
        old = head
        head, full = tiles.extend(head, hashes)
        ledger._store_tiles(full)
        ledger._move_head(old, head)
    ledger._head = head
    ledger.make_checkpoint(signer)
    print(f"\nverification: built a log of {size} entries in {time.perf_counter() - start:.1f} s")


def bench_verification(size, prefix, signer):
    ledger = Ledger(pymongo.MongoClient(MONGO_URI)[f"{prefix}_records"])
    build_log(ledger, size, signer)
    start = time.perf_counter()
    summary = ledger.audit(signer.verifier)
    elapsed = time.perf_counter() - start
    assert summary["entries"] == size
    print(f"verification: {size} entries fully verified in {elapsed:.1f} s "
          f"({size / elapsed:.0f} entries/s; {elapsed * 1e6 / size:.0f} s per million; target <= 30 s)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=50000)
    parser.add_argument("--verify-size", type=int, default=200000)
    parser.add_argument("--skip-appends", action="store_true")
    args = parser.parse_args()
    prefix = f"benchrec{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(MONGO_URI)
    signer = Signer.generate("amends.bench/ledger")
    try:
        baselines(client[f"{prefix}_baseline"])
        if not args.skip_appends:
            bench_appends(args.backlog, prefix + "a", signer)
        if args.verify_size:
            bench_verification(args.verify_size, prefix + "v", signer)
    finally:
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)


if __name__ == "__main__":
    main()
