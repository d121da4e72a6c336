"""The ledger in MongoDB (or FerretDB): entries, tiles, the tree head, checkpoints.

Collections, in the records database:
- `ledger`      one document per entry, `_id` the zero-padded sequence number, with the
                entry's leaf (the event's JCS text). Insert and find only: no code here
                updates or deletes an entry.
- `tiles`       full tiles of 256 hashes (see tiles.py). Insert and find only.
- `checkpoints` signed tree heads, `_id` the zero-padded tree size. Insert and find only.
- `tree`        two small documents that move forward: the tree head (size and the
                unfinished tile rows) and a pointer to the latest checkpoint. The head
                only ever moves by a compare-and-set on its size.

Ids are strings because FerretDB on SQLite pushes down equality on a string `_id` and
little else; the hot paths (append, verify) issue no other kind of query.

One writer appends: entries first (one insert_many per batch), then the tiles the
batch filled, then the head. A crash between those steps leaves entries beyond the
head; the next append adopts them (`recover`) before writing anything.
"""
import collections
import itertools
import time
from datetime import datetime, timezone

from bson import Binary
from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.records import audit, checkpoints, ledger, merkle, tiles

SEQ_DIGITS = 12
INSERT_CHUNK = 100


def seq_id(seq):
    return "%0*d" % (SEQ_DIGITS, seq)


def tile_id(level, index):
    return "%d/%d" % (level, index)


class PositionTaken(Exception):
    """Another writer (or a crash's leftovers) holds the position we meant to write."""


class Ledger:
    def __init__(self, db, tile_cache=4096):
        self.db = db
        self.entries = db["ledger"]
        self.tiles = db["tiles"]
        self.tree = db["tree"]
        self.checkpoints = db["checkpoints"]
        self._head = None  # the writer's own view of the head
        self._ferretdb = None
        self._tile_cache = collections.OrderedDict()
        self._tile_cache_size = tile_cache

    def ensure_indexes(self):
        # the unique event id is what makes each append happen once
        self.entries.create_index([("event_id", ASCENDING)], unique=True, name="event_id_unique")
        if not self.is_ferretdb():
            # FerretDB 1.x on SQLite answers a query by scanning whatever the indexes, so
            # there this index would only slow every insert down
            self.entries.create_index([("case_id", ASCENDING), ("seq", ASCENDING)], name="case_seq")

    # -- the tree ---------------------------------------------------------------

    def head(self):
        doc = self.tree.find_one({"_id": "head"})
        if doc is None:
            return tiles.TreeHead()
        return tiles.TreeHead(doc["size"], [tiles.tile_hashes(bytes(row)) for row in doc["rows"]])

    def read_tile(self, level, index):
        key = (level, index)
        data = self._tile_cache.get(key)
        if data is None:
            doc = self.tiles.find_one({"_id": tile_id(level, index)})
            if doc is None:
                raise LookupError("tile %d/%d is missing" % key)
            data = bytes(doc["hashes"])
            self._tile_cache[key] = data  # full tiles never change, so caching is always safe
            if len(self._tile_cache) > self._tile_cache_size:
                self._tile_cache.popitem(last=False)
        return data

    def nodes(self, head):
        return tiles.nodes(head, self.read_tile)

    def root(self, head, size):
        """The root of the tree of `size` entries (size <= head.size)."""
        return merkle.subtree_hash(self.nodes(head), 0, size)

    # -- appending ----------------------------------------------------------------

    def append(self, events):
        """Append each event not yet in the ledger, in order, as one batch; return how
        many were new. A redelivered event (an event id already recorded) is skipped:
        the unique index on `event_id` refuses it.

        Entries go in ordered inserts of at most INSERT_CHUNK documents. FerretDB splits
        a larger insert into transactions of 100 and, when one fails, carries on with
        the next, which would leave holes; within one chunk it stops at the first
        refused document, as MongoDB does, and reports how many went in."""
        head = self._head if self._head is not None else self.recover()
        pending, seen = [], set()
        for event in events:
            if event["id"] not in seen:
                seen.add(event["id"])
                pending.append((event, ledger.leaf_bytes(event).decode("utf-8")))
        written = []
        size = INSERT_CHUNK if self.is_ferretdb() else len(pending)  # MongoDB stops at a refusal at any size
        while pending:
            chunk = pending[:size]
            docs = [entry_document(head.size + len(written) + i, event, leaf) for i, (event, leaf) in enumerate(chunk)]
            try:
                self.entries.insert_many(docs, ordered=True)
                written += chunk
                pending = pending[len(chunk):]
            except BulkWriteError as error:
                done = error.details["nInserted"]
                failure = error.details["writeErrors"][0]
                if failure["code"] != 11000 or failure["index"] != done:
                    raise
                written += chunk[:done]
                if self.entries.find_one({"_id": docs[done]["_id"]}, {"_id": 1}) is not None:
                    # the position is taken: another writer, or entries we have not adopted
                    self._grow(head, written)
                    self._head = None
                    raise PositionTaken("ledger position %d is taken" % (head.size + len(written)))
                pending = pending[done + 1:]  # that event id is recorded already
        self._grow(head, written)
        return len(written)

    def _grow(self, head, written):
        new_head, full = tiles.extend(head, [merkle.leaf_hash(leaf.encode("utf-8")) for _, leaf in written])
        self._store_tiles(full)
        self._move_head(head, new_head)
        self._head = new_head
        return new_head

    def _store_tiles(self, full):
        if not full:
            return
        docs = [{"_id": tile_id(level, index), "level": level, "index": index, "hashes": Binary(data)}
                for (level, index), data in full]
        try:
            self.tiles.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            # a tile already written (by a run that crashed before moving the head) is
            # the same tile: it is a function of the entries below it
            if any(e["code"] != 11000 for e in error.details["writeErrors"]):
                raise

    def _move_head(self, old, new):
        doc = {"size": new.size, "rows": [Binary(b"".join(row)) for row in new.rows],
               "root": Binary(new.root()), "moved_at": datetime.now(timezone.utc)}
        moved = self.tree.update_one({"_id": "head", "size": old.size}, {"$set": doc})
        if moved.matched_count != 1:
            self._head = None
            raise PositionTaken("the tree head moved under us from size %d" % old.size)

    def recover(self):
        """The stored head, extended by any entries written beyond it (a crash between
        writing a batch's entries and moving the head leaves some)."""
        self.ensure_indexes()
        try:
            self.tree.insert_one({"_id": "head", "size": 0, "rows": [], "root": Binary(merkle.EMPTY_ROOT)})
        except DuplicateKeyError:
            pass
        stored = head = self.head()
        while self.entries.find_one({"_id": seq_id(head.size)}, {"_id": 1}) is not None:
            wanted = [seq_id(head.size + i) for i in range(1000)]
            found = {d["_id"]: d["leaf"] for d in self.entries.find({"_id": {"$in": wanted}}, {"leaf": 1})}
            run = [found[key] for key in itertools.takewhile(lambda key: key in found, wanted)]
            head, full = tiles.extend(head, [merkle.leaf_hash(leaf.encode("utf-8")) for leaf in run])
            self._store_tiles(full)
        if head.size != stored.size:
            self._move_head(stored, head)
        self._head = head
        return head

    # -- reading entries -----------------------------------------------------------

    def entry_by_event(self, event_id):
        return self.entries.find_one({"event_id": event_id})

    def entries_after(self, after, limit, below):
        """Entries with after < seq < below, in order, at most `limit`."""
        top = min(after + 1 + limit, below)
        if top <= after + 1:
            return []
        return list(self.entries.find({"_id": {"$gte": seq_id(after + 1), "$lt": seq_id(top)}}).sort("_id", ASCENDING))

    def case_entries(self, case_id, below=None):
        query = {"case_id": case_id}
        if below is not None:
            query["seq"] = {"$lt": below}
        return list(self.entries.find(query).sort("seq", ASCENDING))

    def stream(self, batch_size=5000):
        """Every entry as (seq, stored seq field, leaf text), in storage order.

        Entries are only ever inserted, in sequence order, so storage order is sequence
        order; on FerretDB, which cannot sort by index, asking for a sort would make it
        sort the whole log in memory. An entry out of place is itself a finding."""
        order = None if self.is_ferretdb() else [("_id", ASCENDING)]
        cursor = self.entries.find({}, {"seq": 1, "leaf": 1}, sort=order, batch_size=batch_size)
        for doc in cursor:
            yield _seq_of(doc["_id"]), doc.get("seq"), doc.get("leaf")

    def stream_tiles(self, level):
        order = None if self.is_ferretdb() else [("_id", ASCENDING)]
        for doc in self.tiles.find({"level": level}, sort=order, batch_size=500):
            yield doc["index"], bytes(doc["hashes"])

    def is_ferretdb(self):
        if self._ferretdb is None:
            self._ferretdb = "ferretdbVersion" in self.db.client.admin.command("buildInfo")
        return self._ferretdb

    # -- checkpoints ---------------------------------------------------------------

    def latest_checkpoint(self):
        pointer = self.tree.find_one({"_id": "checkpoint"})
        if pointer is None:
            return None
        return self.checkpoints.find_one({"_id": seq_id(pointer["size"])})

    def checkpoint_at(self, size):
        return self.checkpoints.find_one({"_id": seq_id(size)})

    def make_checkpoint(self, signer):
        """Sign the current head, unless the latest checkpoint already covers it."""
        head = self.head()
        latest = self.latest_checkpoint()
        if latest is not None and latest["size"] >= head.size:
            return latest
        root = head.root()
        doc = {"_id": seq_id(head.size), "size": head.size, "root": Binary(root),
               "note": checkpoints.sign_checkpoint(signer, head.size, root),
               "made_at": datetime.now(timezone.utc)}
        try:
            self.checkpoints.insert_one(doc)
        except DuplicateKeyError:
            doc = self.checkpoint_at(head.size)
        # the pointer only moves forward
        self.tree.update_one({"_id": "checkpoint", "size": {"$lt": head.size}}, {"$set": {"size": head.size}})
        if self.tree.find_one({"_id": "checkpoint"}) is None:
            try:
                self.tree.insert_one({"_id": "checkpoint", "size": head.size})
            except DuplicateKeyError:
                pass
        return doc

    def audit(self, verifier=None):
        """Recompute the whole log from its entries and check it all (audit.py)."""
        head = self.head()
        signed = [(doc["size"], doc["note"]) for doc in self.all_checkpoints()]
        return audit.audit(self.stream(), head, self._head_covering, self.stream_tiles(0), self.read_tile,
                           signed, verifier)

    def _head_covering(self, pause=0.2, tries=10):
        """The stored head, waiting briefly for a batch in flight to move it."""
        head = self.head()
        for _ in range(tries):
            if self.entries.find_one({"_id": seq_id(head.size)}, {"_id": 1}) is None:
                break
            time.sleep(pause)
            head = self.head()
        return head

    def all_checkpoints(self):
        """Every stored checkpoint, smallest first (a few per hour: small)."""
        return sorted(self.checkpoints.find({}, {"size": 1, "note": 1}), key=lambda d: d["size"])


def entry_document(seq, event, leaf):
    return {
        "_id": seq_id(seq),
        "seq": seq,
        "event_id": event["id"],
        "case_id": event["subject"],
        "event_type": event["type"],
        "leaf": leaf,
        "recorded_at": datetime.now(timezone.utc),
    }


def _seq_of(key):
    try:
        return int(key)
    except (TypeError, ValueError):
        return -1


def entry_view(doc):
    """An entry as the APIs show it: the event as received, and its leaf hash."""
    leaf = doc["leaf"].encode("utf-8")
    return {"seq": doc["seq"], "leaf_hash": merkle.leaf_hash(leaf).hex(), "event": ledger.parse_leaf(leaf)}
