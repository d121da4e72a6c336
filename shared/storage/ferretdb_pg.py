"""GIN twins for FerretDB 1.24 on PostgreSQL: the one place Amends reaches under FerretDB.

Why this exists. FerretDB 1.24 stores each collection as a PostgreSQL table with one
`jsonb` column, `_jsonb`, and pushes an equality filter `{field: value}` down to SQL as

    _jsonb -> 'field' @> '"value"'          (a dotted path uses `#>` and '{a,b}')

The btree indexes it makes for `create_index` cannot serve the `@>` operator, so every
such query is a sequential scan of the table (FerretDB issue #4646; FerretDB 2 fixes it
but needs the DocumentDB extension). A GIN index on the same expression does serve it.
For every field a store indexes, `ensure_twins` creates that GIN index, its "twin",
beside FerretDB's own.

How the table is found. FerretDB keeps one PostgreSQL schema per database, named as the
database, and in it a table `_ferretdb_database_metadata` whose rows are
`{"_id": <collection>, "table": <table name>, "indexes": [...]}`. The twin goes on that
table. FerretDB does not know about the twin, and need not: it is not in its metadata,
`listIndexes` does not show it, and dropping the collection drops the table and the twin.

What this never does: run against MongoDB (there the ordinary index serves the query,
and nothing here is called), or write to any table FerretDB reads.
"""
import hashlib
import logging
import re
import time

log = logging.getLogger(__name__)

METADATA_TABLE = "_ferretdb_database_metadata"
# PostgreSQL truncates identifiers beyond 63 bytes; names are made to fit
MAX_IDENTIFIER = 63


def is_ferretdb(db):
    """True when the server behind a pymongo Database is FerretDB (its buildInfo says so)."""
    try:
        return "ferretdbVersion" in db.command("buildInfo")
    except Exception:  # an old or odd server: treat as MongoDB, where twins are never needed
        return False


def backing_table(cursor, database, collection):
    """FerretDB's table for `collection` of `database`, or None if it has none yet."""
    cursor.execute(
        'SELECT _jsonb->>\'table\' FROM %s WHERE _jsonb->>\'_id\' = %%s' % _qualified(database, METADATA_TABLE),
        (collection,),
    )
    row = cursor.fetchone()
    return row[0] if row else None


def twin_expression(field):
    """The SQL expression FerretDB's equality pushdown uses for `field`."""
    parts = field.split(".")
    if len(parts) == 1:
        return "(_jsonb -> %s)" % _literal(field)
    return "(_jsonb #> %s)" % _literal("{" + ",".join(parts) + "}")


def twin_name(table, field):
    digest = hashlib.sha1(f"{table}\0{field}".encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9_]", "_", f"{table}_{field}".lower())
    return f"{stem[:MAX_IDENTIFIER - len(digest) - 9]}_{digest}_amends"


def ensure_twins(postgresql_url, database, collection, fields):
    """Create the GIN twin of each field's index on FerretDB's table for the collection.
    Idempotent. Returns the names of the twins in place. The collection must exist
    (creating its indexes through FerretDB first makes it)."""
    import psycopg  # only needed where FerretDB runs on PostgreSQL

    names = []
    with psycopg.connect(postgresql_url, autocommit=True, connect_timeout=10) as conn:
        with conn.cursor() as cursor:
            table = backing_table(cursor, database, collection)
            if table is None:
                raise LookupError(f"FerretDB has no table for {database}.{collection}")
            for field in dict.fromkeys(fields):
                name = twin_name(table, field)
                # fastupdate off: a GIN index's pending list (new entries not yet merged) is read
                # by every lookup and priced into its plan; after a burst of inserts it made the
                # planner prefer scanning the table, whose documents it wrongly thinks cheap to
                # read (they are stored out of line, compressed; 526 ms against 1.8 ms measured)
                _create_index(cursor, "CREATE INDEX IF NOT EXISTS %s ON %s USING gin (%s) WITH (fastupdate = off)" % (
                    _identifier(name), _qualified(database, table), twin_expression(field)))
                cursor.execute("ALTER INDEX %s.%s SET (fastupdate = off)" % (_identifier(database), _identifier(name)))
                cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", (f"{_identifier(database)}.{_identifier(name)}",))
                names.append(name)
    return names


def _create_index(cursor, statement, tries=5):
    """Run a CREATE INDEX IF NOT EXISTS that another process may be running at the same
    moment (several processes of a service start together, docs/scaling.md). IF NOT EXISTS
    does not cover that: both look, neither finds the index, and the second to write the
    catalogue fails with a unique violation once the first commits. Then it exists, and
    running the statement again is the no-op it should have been."""
    import psycopg

    for attempt in range(tries):
        try:
            cursor.execute(statement)
            return
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            if attempt == tries - 1:
                raise
            log.info("an index was being created by another process at the same time; looking again")
            time.sleep(0.05 * (attempt + 1))


def _identifier(name):
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema, table):
    return f"{_identifier(schema)}.{_identifier(table)}"


def _literal(text):
    return "'" + text.replace("'", "''") + "'"
