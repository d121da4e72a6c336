"""Listing cases by due date against the size of the collection, with a baseline measured in
the same run. Prints figures; asserts nothing. Uses a database of its own, dropped afterwards.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_due_listing.py [--sizes 5000,25000] [--due 500]

For each size, `cases` holds that many documents in four regions, of which `--due` have an
open deadline (half overdue, half due within 20 weeks) and the rest nothing due, so the answer
stays the same size while the collection grows. Timed (median of 5): GET /v1/cases's store
query with `due_before` two weeks ahead, with `overdue=true`, and, as the baseline, a plain
listing by status returning those same cases; and how many queries each sends.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

import pymongo  # noqa: E402

from services.referrals import due_dates  # noqa: E402
from services.referrals.store import ReferralsStore  # noqa: E402
from tests.conftest import MONGO_URI  # noqa: E402
from tests.plans import CommandLog  # noqa: E402
from tests.support import ferretdb_postgresql_url  # noqa: E402

REGIONS = ("south-wales", "gwent", "north-wales", "dyfed-powys")


def fill(db, size, due, now):
    docs = []
    for index in range(size):
        at = bucket = None
        if index < due:
            if (index // len(REGIONS)) % 2:   # half of each region's
                at, bucket = now - timedelta(days=random.randint(1, 60)), due_dates.OVERDUE
            else:
                at = now + timedelta(hours=random.randint(1, 24 * 140))
                bucket = due_dates.week_of(at)
        docs.append({"_id": str(uuid.uuid4()), "status": "PREPARATION" if at else "CLOSED", "agency": "bench",
                     "region": REGIONS[index % len(REGIONS)], "attributes": {},
                     "created_at": now - timedelta(days=random.randint(0, 1000)), "next_due_at": at,
                     "next_due_kind": "support_referral" if at else None, "due_bucket": bucket})
    for start in range(0, size, 1000):
        db.cases.insert_many(docs[start:start + 1000])


def timed(call, log):
    call()
    log.seen.clear()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        page = call()
        times.append(time.perf_counter() - started)
    return page.total, statistics.median(times) * 1000, len(log.seen) // 5


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="5000,25000")
    parser.add_argument("--due", type=int, default=500)
    args = parser.parse_args()
    log = CommandLog()
    client = pymongo.MongoClient(MONGO_URI, tz_aware=True, event_listeners=[log])
    now = datetime.now(timezone.utc)
    mine = {"region": ["south-wales"]}
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            db = client[f"bench_due_{uuid.uuid4().hex[:8]}"]
            try:
                store = ReferralsStore(db)
                store.ensure_indexes(ferretdb_postgresql_url())
                fill(db, size, min(args.due, size), now)
                for label, call in (
                        ("due_before=+14 days", lambda: store.list_cases(
                            {}, mine, due=due_dates.DueWindow(now=now, before=now + timedelta(days=14)))),
                        ("overdue=true", lambda: store.list_cases({}, mine, due=due_dates.DueWindow(now=now,
                                                                                                     overdue=True))),
                        ("baseline: status=PREPARATION", lambda: store.list_cases({"status": "PREPARATION"}, mine))):
                    total, ms, queries = timed(call, log)
                    print(f"{size:>7} cases  {label:<30} {total:>4} found  {queries:>2} queries  {ms:7.1f} ms")
            finally:
                client.drop_database(db.name)
    finally:
        client.close()


if __name__ == "__main__":
    main()
