"""Indexes, declared once per store.

A store lists its indexes as `Index` values and calls `ensure_indexes` when it starts.
On MongoDB that creates ordinary indexes. On FerretDB on PostgreSQL it also creates the
GIN twin of every indexed field (see ferretdb_pg.py), without which FerretDB answers
even an indexed equality query by scanning the collection.

Query shapes that stay index-backed on both servers (docs/storage.md says why):
equality on a top-level field or a dotted path, `{"field": value}`, with a string,
number, boolean or date value; several of them ANDed. Not `$in`, ranges, `$exists`,
`$or` or sorts: FerretDB 1.24 does not push those down, so a store avoids them on any
collection that grows, or applies them in Python to a small indexed result.
"""
import logging
from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.errors import OperationFailure

from shared.storage import ferretdb_pg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Index:
    fields: tuple
    unique: bool = False
    sparse: bool = False
    name: str = ""

    def __init__(self, *fields, unique=False, sparse=False, name=""):
        object.__setattr__(self, "fields", tuple(fields))
        object.__setattr__(self, "unique", unique)
        object.__setattr__(self, "sparse", sparse)
        # by default, the name MongoDB itself would give it (so an index an earlier version made is the same one)
        object.__setattr__(self, "name", name or "_".join(f"{f}_1" for f in fields))


def ensure_indexes(db, declared, postgresql_url=""):
    """Create the declared indexes, `{collection name: [Index, ...]}`, on a pymongo Database.

    `postgresql_url`, when FerretDB runs on PostgreSQL, is where it keeps its data: each
    indexed field (and `_id`) then gets its GIN twin. Idempotent; safe for several
    processes to run at once (every statement is IF NOT EXISTS or its pymongo equivalent)."""
    ferretdb = ferretdb_pg.is_ferretdb(db)
    twins = bool(postgresql_url) and ferretdb
    for name, indexes in declared.items():
        collection = db[name]
        existing = collection.index_information() if ferretdb else {}
        for index in indexes:
            if ferretdb and not index.unique:
                # FerretDB answers no query from a plain index (it scans, or on PostgreSQL uses the
                # twin), and on PostgreSQL makes it a btree over the whole field: an array field's
                # value is then one key, refused once it passes a third of a page (a ledger group's
                # 1,000 case ids), failing the insert. Only a unique index does anything there: it
                # keeps values unique. One an earlier version made is dropped.
                if index.name in existing:
                    collection.drop_index(index.name)
                continue
            options = {"name": index.name}
            if index.unique:
                options["unique"] = True
            if index.sparse:
                options["sparse"] = True
            try:
                collection.create_index([(field, ASCENDING) for field in index.fields], **options)
            except OperationFailure as error:
                # the same keys and options under another name (made by an earlier version): it serves
                if error.code != 85 or "different name" not in str(error):
                    raise
                log.info("index on %s.%s exists under another name", name, ",".join(index.fields))
        if twins:
            # make sure the collection (and so its table) exists, whatever was created above
            _create_collection(db, name)
            fields = ["_id"] + [field for index in indexes for field in index.fields]
            ferretdb_pg.ensure_twins(postgresql_url, db.name, name, fields)


def _create_collection(db, name):
    try:
        db.create_collection(name)
    except Exception as exc:  # already there (CollectionInvalid, or the server's NamespaceExists)
        if "exist" not in str(exc).lower():
            raise
