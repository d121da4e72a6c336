"""The subscriptions service's store (MongoDB, or FerretDB): subscriptions, sharing
agreements, the copy of the ledger it delivers from, cursors and the delivery log.

Collections, in the subscriptions database:
- `subscriptions`  one document per subscription, `_id` its id; written by the API only
                   (a replay is a request here, which the dispatcher applies).
- `agreements`     every version of every agency's sharing agreement, `_id` `<agency>:<version>`:
                   insert only, so two coordinators setting one at once cannot both make
                   version n (the second is refused and asked to try again).
- `entries`        the ledger's entries, `_id` the position (unique: a second follower, or a
                   retry, stores nothing twice), in blocks of BLOCK positions so that the
                   entries after a position are one equality query per block.
- `case_facts`     per case (`_id` its id), the facts entitlement needs.
- `state`          how far the feed has stored (`_id` "feed"), and the dispatch lease
                   (`_id` "dispatcher": which process delivers, until when).
- `cursors`        per subscription (`_id` its id), where its delivery stands; written by the
                   dispatcher only. A disable is written here with its event (the outbox).
- `deliveries`     the delivery log: per subscription, the attempts one flush wrote within one
                   page of PAGE numbers in one document (`attempts`, `_id`
                   `<subscription>.<first number>-<last number>`), read newest first a page at a
                   time. (One document per attempt made FerretDB and PostgreSQL the largest cost
                   of delivering to many subscribers; documents of one attempt, written so
                   before, are still read.)

Every query is an equality on `_id` or on indexed fields (docs/storage.md), but the reload of
the agreements in force, which reads them whole: a few versions per agency, however many
cases there are.
"""
from datetime import datetime, timezone

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.subscriptions.dispatcher import Attempt, Cursor
from services.subscriptions.feed import Entry
from services.subscriptions.subscription import Replay, Secret, Subscription
from shared.messaging.outbox import pending_fields, pending_update
from shared.storage import Store, leases
from shared.storage.indexes import Index

BLOCK = 64
PAGE = 50
# The most cursor updates sent in one command. FerretDB 1.24 keeps each update's read of its
# document open, holding one of its PostgreSQL connections, until the whole command ends; its
# pool has 50 connections, so a command of about 50 updates waits for ever for a connection it
# holds itself, and every other client of that FerretDB waits behind it. Small commands leave
# room for everyone else's.
CURSOR_WRITES = 10


class AgreementTaken(Exception):
    """Another coordinator set this version of the agency's agreement first."""


def agreement_id(agency, version):
    return f"{agency}:{version:06d}"


def _agreement_type():
    from services.subscriptions.sharing import SharingAgreement
    return SharingAgreement


def _utc(moment):
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _epoch(moment):
    return None if moment is None else _utc(moment).timestamp()


def _moment(seconds):
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


class SubscriptionsStore(Store):
    SUBSCRIPTIONS = "subscriptions"
    AGREEMENTS = "agreements"
    ENTRIES = "entries"
    CASE_FACTS = "case_facts"
    STATE = "state"
    CURSORS = "cursors"
    DELIVERIES = "deliveries"
    OUTBOX_COLLECTIONS = (SUBSCRIPTIONS, AGREEMENTS, CURSORS)

    indexes = {
        SUBSCRIPTIONS: [Index("agency"), Index("status")],
        AGREEMENTS: [Index("agency")],
        ENTRIES: [Index("block")],
        CASE_FACTS: [],
        STATE: [],
        CURSORS: [],
        DELIVERIES: [Index("subscription_id", "page")],
    }

    def __init__(self, db, seal, agreement_type=None):
        super().__init__(db)
        self._seal = seal   # webhook secrets are sealed at rest (sealing.py)
        self._agreement_type = agreement_type

    # --- subscriptions -----------------------------------------------------------------

    def add_subscription(self, subscription, events=()):
        self.db[self.SUBSCRIPTIONS].insert_one({**_subscription_fields(subscription, self._seal),
                                                "_id": subscription.subscription_id,
                                                **pending_fields(events)})

    def save_subscription(self, subscription, events=()):
        update = {"$set": _subscription_fields(subscription, self._seal)}
        if events:
            added = pending_update(events)
            update["$set"].update(added["$set"])
            update["$push"] = added["$push"]
        self.db[self.SUBSCRIPTIONS].update_one({"_id": subscription.subscription_id}, update)

    def subscription(self, subscription_id):
        doc = self.db[self.SUBSCRIPTIONS].find_one({"_id": subscription_id})
        return _subscription(doc, self._seal) if doc else None

    def subscriptions_of(self, agency):
        """The agency's subscriptions (not deleted), oldest first."""
        docs = self.db[self.SUBSCRIPTIONS].find({"agency": agency})
        found = [_subscription(d, self._seal) for d in docs if d.get("status") != "deleted"]
        return sorted(found, key=lambda s: (s.created_at, s.subscription_id))

    def active_subscriptions(self):
        return [_subscription(d, self._seal) for d in self.db[self.SUBSCRIPTIONS].find({"status": "active"})]

    # --- sharing agreements ------------------------------------------------------------

    def add_agreement(self, agreement, events=()):
        doc = {"_id": agreement_id(agreement.agency, agreement.version), **_agreement_fields(agreement),
               **pending_fields(events)}
        try:
            self.db[self.AGREEMENTS].insert_one(doc)
        except DuplicateKeyError:
            raise AgreementTaken(f"version {agreement.version} of {agreement.agency}'s agreement is set already")

    def agreements_of(self, agency):
        """Every version of the agency's agreement, oldest first."""
        return sorted((self._agreement(d) for d in self.db[self.AGREEMENTS].find({"agency": agency})),
                      key=lambda a: a.version)

    def current_agreements(self):
        """agency -> its agreement in force (the latest version)."""
        current = {}
        for doc in self.db[self.AGREEMENTS].find({}):
            if doc["agency"] not in current or doc["version"] > current[doc["agency"]]["version"]:
                current[doc["agency"]] = doc
        return {agency: self._agreement(doc) for agency, doc in current.items()}

    def _agreement(self, doc):
        kind = self._agreement_type or _agreement_type()
        return kind(agency=doc["agency"], profile=doc["profile"], regions=tuple(doc["regions"]),
                    agreement_reference=doc["agreement_reference"], version=doc["version"], set_by=doc["set_by"],
                    set_at=_utc(doc["set_at"]))

    # --- the ledger's entries, and the facts of their cases ------------------------------

    def add_entries(self, entries):
        """Store entries; one already stored (by another follower, or before a retry) is left."""
        if not entries:
            return
        docs = [{"_id": e.position, "block": e.position // BLOCK, "event": e.event, "leaf_hash": e.leaf_hash,
                 "facts": e.facts} for e in entries]
        try:
            self.db[self.ENTRIES].insert_many(docs, ordered=False)
        except BulkWriteError as error:
            if any(e["code"] != 11000 for e in error.details["writeErrors"]):
                raise

    def entries_after(self, after, limit):
        """The stored entries after `after`, in order, at most `limit`, up to the first gap."""
        found, position = [], after + 1
        while len(found) < limit:
            block = {d["_id"]: d for d in self.db[self.ENTRIES].find({"block": position // BLOCK})}
            while position in block and len(found) < limit:
                found.append(_entry(block[position]))
                position += 1
            if position % BLOCK != 0:
                break  # a gap, or the end: not the end of the block
        return found

    def highest_position(self):
        """The highest position stored contiguously from 0, as far as the feed noted it
        (and any stored after the note)."""
        noted = self.db[self.STATE].find_one({"_id": "feed"})
        position = noted["position"] if noted else -1
        while self.db[self.ENTRIES].find_one({"_id": position + 1}, {"_id": 1}) is not None:
            position += 1
        return position

    def note_position(self, position):
        self.db[self.STATE].update_one({"_id": "feed"}, {"$set": {"position": position}}, upsert=True)

    def hold_lease(self, holder, now, seconds):
        """Take or renew the dispatch lease for `holder` (epoch seconds); whether it holds it
        (shared/storage/leases.py: taken by an insert under the unique `_id`)."""
        return leases.hold(self.db[self.STATE], "dispatcher", holder, now, seconds)

    def release_lease(self, holder):
        leases.release(self.db[self.STATE], "dispatcher", holder)

    def case_facts(self, case_id):
        doc = self.db[self.CASE_FACTS].find_one({"_id": case_id})
        return {k: v for k, v in doc.items() if k != "_id"} if doc else None

    def save_case_facts(self, case_id, facts):
        self.db[self.CASE_FACTS].update_one({"_id": case_id}, {"$set": dict(facts)}, upsert=True)

    # --- cursors and the delivery log ------------------------------------------------------

    def cursor(self, subscription_id):
        doc = self.db[self.CURSORS].find_one({"_id": subscription_id})
        return _cursor(doc) if doc else None

    def save_cursors(self, cursors):
        writes = [UpdateOne({"_id": c.subscription_id}, {"$set": _cursor_fields(c)}, upsert=True) for c in cursors]
        for start in range(0, len(writes), CURSOR_WRITES):
            self.db[self.CURSORS].bulk_write(writes[start:start + CURSOR_WRITES], ordered=False)

    def disable(self, cursor, events):
        """Write a disabled cursor and the events telling of it, in one write."""
        added = pending_update(events)
        self.db[self.CURSORS].update_one({"_id": cursor.subscription_id},
                                         {"$set": {**_cursor_fields(cursor), **added["$set"]}, "$push": added["$push"]},
                                         upsert=True)

    def add_attempts(self, attempts):
        """Log attempts: one document per subscription and page. A document written before
        (a flush tried again after a partial write) is left as it is."""
        groups = {}
        for attempt in attempts:
            groups.setdefault((attempt.subscription_id, attempt.number // PAGE), []).append(attempt)
        docs = [_attempts_document(subscription_id, page, group) for (subscription_id, page), group in groups.items()]
        try:
            self.db[self.DELIVERIES].insert_many(docs, ordered=False)
        except BulkWriteError as error:
            if any(e["code"] != 11000 for e in error.details["writeErrors"]):
                raise

    def attempts(self, subscription_id, before, limit):
        """The subscription's attempts numbered below `before`, newest first, at most `limit`."""
        found, page = [], (before - 1) // PAGE
        while page >= 0 and len(found) < limit:
            docs = self.db[self.DELIVERIES].find({"subscription_id": subscription_id, "page": page})
            # by number: a flush tried again may have logged an attempt in two documents
            logged = {a.number: a for d in docs for a in _attempts(d) if a.number < before}
            found += sorted(logged.values(), key=lambda a: -a.number)
            page -= 1
        return found[:limit]


# --- documents <-> aggregates ----------------------------------------------------------------

def _subscription_fields(s, seal):
    return {"agency": s.agency, "kind": s.kind, "url": s.url, "event_types": list(s.event_types),
            "regions": list(s.regions), "own_referrals_only": s.own_referrals_only, "max_batch": s.max_batch,
            "secrets": [{"value": seal.seal(x.value), "expires_at": x.expires_at} for x in s.secrets],
            "start_after": s.start_after, "created_at": s.created_at, "created_by": s.created_by, "status": s.status,
            "replay": None if s.replay is None else {
                "replay_id": s.replay.replay_id, "from_position": s.replay.from_position,
                "requested_at": s.replay.requested_at, "requested_by": s.replay.requested_by}}


def _subscription(doc, seal):
    replay = doc.get("replay")
    return Subscription(
        subscription_id=doc["_id"], agency=doc["agency"], kind=doc["kind"], url=doc.get("url"),
        event_types=tuple(doc["event_types"]), regions=tuple(doc.get("regions") or ()),
        own_referrals_only=bool(doc.get("own_referrals_only")), max_batch=doc.get("max_batch", 1),
        secrets=tuple(Secret(seal.open(x["value"]), _utc(x.get("expires_at"))) for x in doc.get("secrets") or ()),
        start_after=doc.get("start_after", -1), created_at=_utc(doc.get("created_at")),
        created_by=doc.get("created_by"), status=doc.get("status", "active"),
        replay=None if not replay else Replay(replay["replay_id"], replay["from_position"],
                                              _utc(replay["requested_at"]), replay["requested_by"]))


def _agreement_fields(a):
    return {"agency": a.agency, "profile": a.profile, "regions": list(a.regions),
            "agreement_reference": a.agreement_reference, "version": a.version, "set_by": a.set_by,
            "set_at": a.set_at}


def _entry(doc):
    return Entry(position=doc["_id"], event=doc["event"], leaf_hash=doc["leaf_hash"], facts=doc.get("facts"))


def _cursor_fields(c):
    return {"position": c.position, "in_flight": list(c.in_flight), "scanned_to": c.scanned_to,
            "failures": c.failures, "first_failure_at": _moment(c.first_failure_at),
            "next_attempt_at": _moment(c.next_attempt_at), "attempts": c.attempts,
            "replay_applied": c.replay_applied, "disabled": c.disabled, "disabled_at": _moment(c.disabled_at)}


def _cursor(doc):
    return Cursor(subscription_id=doc["_id"], position=doc["position"], in_flight=tuple(doc.get("in_flight") or ()),
                  scanned_to=doc.get("scanned_to"), failures=doc.get("failures", 0),
                  first_failure_at=_epoch(doc.get("first_failure_at")),
                  next_attempt_at=_epoch(doc.get("next_attempt_at")) or 0.0, attempts=doc.get("attempts", 0),
                  replay_applied=doc.get("replay_applied"), disabled=doc.get("disabled"),
                  disabled_at=_epoch(doc.get("disabled_at")))


def _attempts_document(subscription_id, page, attempts):
    numbers = [a.number for a in attempts]
    return {"_id": f"{subscription_id}.{min(numbers):012d}-{max(numbers):012d}", "subscription_id": subscription_id,
            "page": page, "attempts": [_attempt_fields(a) for a in attempts]}


def _attempt_fields(a):
    return {"number": a.number, "positions": list(a.positions), "retry": a.retry, "at": _moment(a.at),
            "result": a.result, "status": a.status, "error": a.error, "seconds": a.seconds,
            "next_retry_at": _moment(a.next_retry_at)}


def _attempts(doc):
    """The attempts a delivery-log document holds (several, or, as written before, one)."""
    return [_attempt(doc["subscription_id"], item) for item in doc.get("attempts", [doc])]


def _attempt(subscription_id, doc):
    return Attempt(subscription_id=subscription_id, number=doc["number"], positions=tuple(doc["positions"]),
                   retry=doc["retry"], at=_epoch(doc["at"]), result=doc["result"], status=doc.get("status"),
                   error=doc.get("error"), seconds=doc.get("seconds", 0.0), next_retry_at=_epoch(doc.get("next_retry_at")))
