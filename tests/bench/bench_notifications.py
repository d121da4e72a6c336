"""Notifications, in one run: how fast a message is rendered (each of the 18 templates, text, HTML
and SMS) against a plain `str.format` of the same English text as the baseline; and how fast a
delivery key is claimed through the store (insert under the delivery key and the unique
(event, recipient) index) against a plain insert into an unindexed collection, plus how fast the
store refuses a duplicate claim.
Prints figures; asserts nothing.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_notifications.py [N]
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import pymongo  # noqa: E402

from services.notifications import audience, messages  # noqa: E402
from services.notifications.deliveries import Delivery, DeliveryExists, delivery_key, notification_id  # noqa: E402
from services.notifications.store import NotificationsStore  # noqa: E402
from shared.config import settings_for  # noqa: E402

MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
FACTS = {
    "case_ref": "case-bench", "decision": "unsuitable", "outcome": "agreement_completed", "assignment_role": "lead",
    "reasons": [{"code": "harmer_denies", "text": "The harmer does not accept responsibility."}],
    "summary": {"offence_category": "burglary", "cjs_stage": "pre_sentence", "flags": ["youth"], "region": "gwent",
                "initiated_by": "harmed", "risk_level": "low", "process_types": ["shuttle"], "co_facilitation": False,
                "participants": [{"role": "harmed", "age_band": "50_64", "language": "cy", "access_needs": []}]},
}


def rate(label, count, work, unit):
    start = time.perf_counter()
    for i in range(count):
        work(i)
    per_second = count / (time.perf_counter() - start)
    print(f"{label:<58} {per_second:>10.0f} {unit}/s")
    return per_second


def delivery(i, channel="email"):
    now = datetime.now(timezone.utc)
    return Delivery(key=delivery_key(f"e{i}", "r", channel), event_id=f"e{i}", event_type="referral.received",
                    notification_id=notification_id(f"e{i}", "r"), case_id=f"case-{i}", recipient_role="harmed",
                    recipient_id="r", purpose="participant_information", holder="referrals", channel=channel,
                    template="harmed.referral_received", status="sending", claimed_at=now, at=now)


def main(count):
    pairs = [(e, r, lang) for e, r in audience.MESSAGES for lang in messages.LANGUAGES]
    english = {(e, r): messages.render(e, r, "en", FACTS, name="{name}").text for e, r in audience.MESSAGES}
    formats = list(english.values())
    print(f"rendering ({len(pairs)} templates in turn)")
    baseline = rate("  baseline: str.format of the rendered English text", count,
                    lambda i: formats[i % len(formats)].format(name="Alex"), "messages")
    ours = rate("  Jinja2: subject + text + HTML (+ SMS), autoescaped HTML", count,
                lambda i: messages.render(*pairs[i % len(pairs)], FACTS, name="Alex"), "messages")
    print(f"  ratio {baseline / ours:.1f}x slower than the baseline")

    client = pymongo.MongoClient(MONGO_URI, tz_aware=True)
    db = client[f"bench{uuid.uuid4().hex[:8]}_notifications"]
    try:
        plain = db.plain
        store = NotificationsStore(db)
        store.ensure_indexes(settings_for("notifications").ferretdb_postgresql_url)
        db_count = max(count // 10, 50)
        print(f"claiming delivery keys in FerretDB/MongoDB ({db_count} each)")
        rate("  baseline: insert into an unindexed collection", db_count,
             lambda i: plain.insert_one({"_id": f"e{i}:r:email", "status": "sending"}), "inserts")
        rate("  claim: the store's insert (delivery key, unique index)", db_count,
             lambda i: store.insert_delivery(delivery(i)), "claims")

        def duplicate(i):
            try:
                store.insert_delivery(delivery(i, "sms"))
            except DeliveryExists:
                return
            raise AssertionError("a duplicate claim was accepted")

        rate("  a redelivered event's claim refused", db_count, duplicate, "refusals")
    finally:
        client.drop_database(db.name)
        client.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
