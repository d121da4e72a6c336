"""Ledger entries (mongoengine) and the append path. There is no update or delete path.

The entry's sequence number is its primary key and its event id is unique: two
appenders racing for the same position cannot both win, and a redelivered event
cannot be appended twice.
"""
from datetime import datetime, timezone

from mongoengine import BinaryField, DateTimeField, DictField, Document, IntField, StringField
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from services.records import ledger

ALIAS = "records"


class LedgerEntry(Document):
    meta = {
        "db_alias": ALIAS,
        "collection": "ledger",
        "indexes": [{"fields": ["event_id"], "unique": True}, ("case_id", "seq")],
    }
    seq = IntField(primary_key=True, min_value=0)
    event_id = StringField(required=True)
    case_id = StringField(required=True)
    event_type = StringField(required=True)
    event = DictField(required=True)
    leaf_hash = BinaryField(required=True)
    chain_hash = BinaryField(required=True)
    recorded_at = DateTimeField(default=lambda: datetime.now(timezone.utc))


def append(event, max_races=100):
    """Append `event` once; return its entry (the existing one on a redelivery)."""
    existing = LedgerEntry.objects(event_id=event["id"]).first()
    if existing is not None:
        return existing
    leaf = ledger.leaf_hash(event)
    collection = LedgerEntry._get_collection()
    for _ in range(max_races):
        head = collection.find_one({}, {"chain_hash": 1}, sort=[("_id", DESCENDING)])
        seq = head["_id"] + 1 if head else 0
        previous = head["chain_hash"] if head else ledger.GENESIS
        entry = LedgerEntry(
            seq=seq, event_id=event["id"], case_id=event["subject"], event_type=event["type"],
            event=event, leaf_hash=leaf, chain_hash=ledger.chain_hash(bytes(previous), leaf),
        )
        try:
            entry.save(force_insert=True)
            return entry
        except DuplicateKeyError:
            already = LedgerEntry.objects(event_id=event["id"]).first()
            if already is not None:
                return already
            # another appender took this position; go again at the new head
    raise RuntimeError("could not claim a ledger position")


def timeline(case_id):
    return LedgerEntry.objects(case_id=case_id).order_by("seq")


def stream():
    """Every entry in order, as a cursor, for verification without loading the log."""
    cursor = LedgerEntry._get_collection().find({}, sort=[("_id", 1)], batch_size=1000)
    for doc in cursor:
        yield doc["_id"], doc["event"], bytes(doc["leaf_hash"]), bytes(doc["chain_hash"])
