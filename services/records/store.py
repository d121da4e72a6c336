"""The ledger in MongoDB (or FerretDB): entries, tiles, the tree head, checkpoints.

Collections, in the records database:
- `ledger`      the entries, packed: one document per appended batch ("group"), `_id`
                the zero-padded seq of its first entry, with the batch's event ids, case
                ids and types as arrays and its leaves (each event's JCS text) packed in
                one zlib-compressed JSON array (`pack_leaves`).
                Insert and find only: no code here updates or deletes an entry.
- `event_ids`   one claim per event id (`_id`), naming the group its entry is in: the
                unique `_id` is what makes each append happen once.
- `tiles`       full tiles of 256 hashes (see tiles.py). Insert and find only.
- `checkpoints` signed tree heads, `_id` the zero-padded tree size. Insert and find only.
- `tree`        two small documents that move forward: the tree head (size, the
                unfinished tile rows, and the batch in progress) and a pointer to the
                latest checkpoint. The head only ever moves by a compare-and-set on its size.

Why packed, and why string ids: FerretDB reads and writes about as many documents a
second whatever their size, and pushes down equality and nothing else (no ranges, no
sorts). One document per batch makes appends and full verification read and write a
thousand times fewer documents, and every read is an indexed equality:
- a group by its `_id` (the seq of its first entry): verification and the feed walk the
  log group by group, each group naming where the next one starts (`end`), so neither
  depends on the order the server happens to store documents in (PostgreSQL reuses free
  space, so its storage order is not insertion order);
- the group holding a given seq by `covers` (the seqs of its entries): where the feed starts;
- a case's groups by `case_ids`; an event's claim by `_id`; the claims of an unfinished
  batch by `group`; a tile, a checkpoint or the head by `_id`.

One writer appends, a batch at a time (`append`); a crash at any step is finished or
undone by `recover` before the next append. The writer notes the tree's size as it moves
and times each append, for the metrics (shared.metrics).
"""
import collections
import json
import time
import zlib
from datetime import datetime, timezone

from bson import Binary
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.records import audit, checkpoints, ledger, merkle, tiles
from shared import metrics
from shared.storage import Store
from shared.storage.indexes import Index

SEQ_DIGITS = 12
# the most entries one page of the feed holds (`Ledger.feed`)
FEED_LIMIT = 1000


def seq_id(seq):
    return "%0*d" % (SEQ_DIGITS, seq)


def tile_id(level, index):
    return "%d/%d" % (level, index)


class PositionTaken(Exception):
    """Another writer (or a crash's leftovers) holds the position we meant to write."""


class Ledger(Store):
    indexes = {
        "ledger": [Index("covers"), Index("case_ids")],
        "event_ids": [Index("group")],
        "tiles": [],
        "checkpoints": [],
        "tree": [],
    }

    def __init__(self, db, tile_cache=4096, postgresql_url=""):
        super().__init__(db)
        self.postgresql_url = postgresql_url
        self._indexed = False
        self.entries = db["ledger"]
        self.tiles = db["tiles"]
        self.tree = db["tree"]
        self.checkpoints = db["checkpoints"]
        self.event_ids = db["event_ids"]
        self._head = None  # the writer's own view of the head
        self._tile_cache = collections.OrderedDict()
        self._tile_cache_size = tile_cache

    def ensure_indexes(self, postgresql_url=None):
        if postgresql_url is not None:
            self.postgresql_url = postgresql_url
        super().ensure_indexes(self.postgresql_url)
        self._indexed = True

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

    def append(self, events, leaves=None):
        """Append each event not yet in the ledger, in order, as one batch; return how
        many were new. A redelivered event (an event id already claimed) is skipped.
        `leaves`, if given, are the events' leaf bytes, already computed.

        Steps, each one database write: note in the head that a batch starts at its
        size (the intent); claim the ids with an unordered insert into `event_ids`, which reports
        exactly which ids were claimed before; insert the group of new entries; insert
        the tiles they filled; move the head and clear the intent (compare-and-set)."""
        head = self._head if self._head is not None else self.recover()
        if leaves is None:
            leaves = [ledger.leaf_bytes(event) for event in events]
        batch, batch_leaves, seen = [], [], set()
        for event, leaf in zip(events, leaves):
            if event["id"] not in seen:
                seen.add(event["id"])
                batch.append(event)
                batch_leaves.append(leaf)
        if not batch:
            return 0
        started = time.perf_counter()
        self._note_intent(head)
        try:
            taken = _duplicates(self.event_ids, [{"_id": event["id"], "group": head.size} for event in batch])
            written = [(event, leaf.decode("utf-8"))
                       for i, (event, leaf) in enumerate(zip(batch, batch_leaves)) if i not in taken]
            if written:
                try:
                    self.entries.insert_one(group_document(head.size, written))
                except DuplicateKeyError:
                    # another writer, or tampering: start again from the stored state
                    raise PositionTaken("ledger position %d is taken" % head.size)
            self._grow(head, [leaf for _, leaf in written])
        except BaseException:
            # A step failed, perhaps after the database applied it (a lost reply): the
            # stored state is known only to `recover`, which the next append runs first.
            self._head = None
            raise
        metrics.LEDGER_APPEND_SECONDS.observe(time.perf_counter() - started)
        return len(written)

    def _note_intent(self, head):
        noted = self.tree.update_one({"_id": "head", "size": head.size}, {"$set": {"intent": {"start": head.size}}})
        if noted.matched_count != 1:
            self._head = None
            raise PositionTaken("the tree head moved under us from size %d" % head.size)

    def _grow(self, head, leaves):
        new_head, full = tiles.extend(head, [merkle.leaf_hash(leaf.encode("utf-8")) for leaf in leaves])
        self._store_tiles(full)
        self._move_head(head, new_head)
        self._head = new_head
        metrics.LEDGER_ENTRIES.note(new_head.size)
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
               "root": Binary(new.root()), "intent": None, "moved_at": datetime.now(timezone.utc)}
        moved = self.tree.update_one({"_id": "head", "size": old.size}, {"$set": doc})
        if moved.matched_count != 1:
            self._head = None
            raise PositionTaken("the tree head moved under us from size %d" % old.size)

    def recover(self):
        """The stored head, after finishing or undoing the batch a crash interrupted:
        a group written beyond the head is adopted into the tree, and claims whose
        entries were never written are withdrawn, so that their redelivery appends them."""
        if not self._indexed:
            self.ensure_indexes()
        try:
            self.tree.insert_one({"_id": "head", "size": 0, "rows": [], "root": Binary(merkle.EMPTY_ROOT),
                                  "intent": None})
        except DuplicateKeyError:
            pass
        doc = self.tree.find_one({"_id": "head"})
        stored = head = tiles.TreeHead(doc["size"], [tiles.tile_hashes(bytes(row)) for row in doc["rows"]])
        while True:
            group = self.entries.find_one({"_id": seq_id(head.size)})
            if group is None:
                break
            head, full = tiles.extend(head, [merkle.leaf_hash(leaf.encode("utf-8")) for leaf in group_leaves(group)])
            self._store_tiles(full)
        intent = doc.get("intent")
        if intent and intent["start"] == head.size:
            # the batch's group was never written: its claims point at nothing
            self.event_ids.delete_many({"group": intent["start"]})
        elif intent:
            # the group was written (and is adopted above), but a later attempt at the same
            # position may have claimed events it never wrote: those claims point at nothing
            group = self.entries.find_one({"_id": seq_id(intent["start"])}, {"event_ids": 1})
            written = set(group["event_ids"]) if group else set()
            orphans = [c["_id"] for c in self.event_ids.find({"group": intent["start"]}, {"_id": 1})
                       if c["_id"] not in written]
            for orphan in orphans:  # one by _id each: `$in` would scan every claim
                self.event_ids.delete_one({"_id": orphan})
        if intent or head.size != stored.size:
            self._move_head(stored, head)
        self._head = head
        metrics.LEDGER_ENTRIES.note(head.size)
        return head

    # -- reading entries -----------------------------------------------------------

    def entry_by_event(self, event_id):
        claim = self.event_ids.find_one({"_id": event_id})
        group = claim and self.entries.find_one({"_id": seq_id(claim["group"])})
        if not group or event_id not in group["event_ids"]:
            return None
        return _entries(group)[group["event_ids"].index(event_id)]

    def entries_after(self, after, limit, below):
        """Entries with after < seq < below, in order, at most `limit`: from the group
        that covers after + 1, group by group."""
        top = min(after + 1 + limit, below)
        if top <= after + 1:
            return []
        found = []
        group = self.entries.find_one({"covers": after + 1})
        while group is not None and group["start"] < top:
            found.extend(e for e in _entries(group) if after < e["seq"] < top)
            group = self.entries.find_one({"_id": seq_id(group["end"])}) if group["end"] < top else None
        return found

    def feed(self, after, limit):
        """A page of the replay feed, as `GET /v1/ledger/entries` and the `entries_after` RPC
        serve it: the entries with after < seq, in the tree, in order, at most `limit`, each as
        `entry_view` shows it, and the tree's size."""
        head = self.head()
        return {"items": [entry_view(doc) for doc in self.entries_after(after, limit, below=head.size)],
                "tree_size": head.size}

    def case_entries(self, case_id, below=None):
        found = [e for g in self.entries.find({"case_ids": case_id}) for e in _entries(g) if e["case_id"] == case_id]
        return sorted((e for e in found if below is None or e["seq"] < below), key=lambda e: e["seq"])

    def stream(self, size):
        """The first `size` entries as (seq, seq field, leaf text), in sequence order: the
        group at 0, then the group where each one says the next begins. A group that is
        not where it should be ends the stream there, and verification names the entry."""
        position = 0
        while position < size:
            group = self.entries.find_one({"_id": seq_id(position)}, {"start": 1, "end": 1, "leaves": 1})
            if group is None:
                return
            if group.get("start") != position:
                yield position, group.get("start"), None
                return
            try:
                leaves = group_leaves(group)
            except (KeyError, TypeError, ValueError, zlib.error):
                leaves = []
            for offset, leaf in enumerate(leaves or [None]):
                yield position + offset, position + offset, leaf
            if group.get("end") != position + len(leaves) or not leaves:
                return
            position += len(leaves)

    def stream_tiles(self, level, count):
        """The first `count` full tiles of a level, in order, each by its id."""
        for index in range(count):
            doc = self.tiles.find_one({"_id": tile_id(level, index)})
            if doc is None:
                return
            yield index, bytes(doc["hashes"])

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
        """Recompute the log from its entries and check it all (audit.py), up to the tree
        head as it stood when the audit began: entries appended meanwhile are the next
        audit's, never "missing" from this one. Every signed checkpoint up to that head is
        checked against the entries under it."""
        head = self.head()
        signed = [(doc["size"], doc["note"]) for doc in self.all_checkpoints() if doc["size"] <= head.size]
        summary = audit.audit(self.stream(head.size), head, lambda: head,
                              self.stream_tiles(0, head.size // tiles.WIDTH), self.read_tile, signed, verifier)
        self._check_beyond(head)
        return summary

    def _check_beyond(self, head, pause=0.2, tries=15):
        """An entry stored just past the head is a batch in flight (the head moves in a
        moment, or its intent is noted for `recover`), or one nobody appended."""
        size = head.size
        for _ in range(tries):
            if self.entries.find_one({"_id": seq_id(size)}, {"start": 1}) is None:
                return
            doc = self.tree.find_one({"_id": "head"}) or {}
            if doc.get("size", 0) > size or (doc.get("intent") or {}).get("start") == size:
                return
            time.sleep(pause)
        raise audit.LedgerBroken(size, f"it is not in the tree (the tree head records {size} entries)")

    def all_checkpoints(self):
        """Every stored checkpoint, smallest first (a few per hour: small)."""
        return sorted(self.checkpoints.find({}, {"size": 1, "note": 1}), key=lambda d: d["size"])


def _duplicates(collection, docs):
    """Insert `docs` unordered; return the indexes of those whose _id was taken.
    (FerretDB reports these exactly for an unordered insert.)"""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as error:
        if any(e["code"] != 11000 for e in error.details["writeErrors"]):
            raise
        return {e["index"] for e in error.details["writeErrors"]}
    return set()


def group_document(start, written):
    """The document holding a batch of new entries: (event, leaf text) pairs, in order."""
    return {
        "_id": seq_id(start),
        "start": start,
        "end": start + len(written),
        "covers": list(range(start, start + len(written))),
        "event_ids": [event["id"] for event, _ in written],
        "case_ids": [event["subject"] for event, _ in written],
        "types": [event["type"] for event, _ in written],
        "leaves": pack_leaves([leaf for _, leaf in written]),
        "recorded_at": datetime.now(timezone.utc),
    }


def pack_leaves(leaves):
    """A group's leaves as stored: zlib (RFC 1950) of the UTF-8 JSON array of the leaf
    texts. Events are alike, so this is several times smaller, and FerretDB's reads cost
    about as much per byte as per document."""
    return Binary(zlib.compress(json.dumps(leaves, ensure_ascii=False).encode("utf-8"), 1))


def group_leaves(group):
    leaves = json.loads(zlib.decompress(bytes(group["leaves"])).decode("utf-8"))
    if not isinstance(leaves, list) or not all(isinstance(leaf, str) for leaf in leaves):
        raise ValueError("a group's leaves are a list of strings")
    return leaves


def _entries(group):
    return [{"seq": group["start"] + i, "event_id": event_id, "case_id": case_id, "event_type": kind, "leaf": leaf}
            for i, (event_id, case_id, kind, leaf)
            in enumerate(zip(group["event_ids"], group["case_ids"], group["types"], group_leaves(group)))]


def _seq_of(key):
    try:
        return int(key)
    except (TypeError, ValueError):
        return -1


def entry_view(doc):
    """An entry as the APIs show it: the event as received, and its leaf hash."""
    leaf = doc["leaf"].encode("utf-8")
    return {"seq": doc["seq"], "leaf_hash": merkle.leaf_hash(leaf).hex(), "event": ledger.parse_leaf(leaf)}
