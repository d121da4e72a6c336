"""What the stores ask the database, and whether PostgreSQL can answer it from an index.

`CommandLog` is a pymongo command listener that keeps every command a client sends.
`QueryLog` keeps every read, update, delete and count a whole process sends, with its filter. `shape` reduces a filter to its form (fields and
operators, not values), so the same query with other values is one shape.

`plan_of` judges one query on FerretDB on PostgreSQL. FerretDB's `explain` says whether
it pushed the filter down to SQL, and gives PostgreSQL's plan; on a small test table
PostgreSQL rightly prefers a sequential scan, so the condition FerretDB sent is planned
again straight on PostgreSQL with sequential scans disabled: if even then it is a scan,
no index can serve it.
"""
import json
import threading

from pymongo import monitoring

FILTERS = {
    "find": lambda c: [c.get("filter", {})],
    "count": lambda c: [c.get("query", {})],
    "findAndModify": lambda c: [c.get("query", {})],
    "update": lambda c: [u.get("q", {}) for u in c.get("updates", [])],
    "delete": lambda c: [d.get("q", {}) for d in c.get("deletes", [])],
}


class CommandLog(monitoring.CommandListener):
    """Every command a client sends, as (command name, command)."""

    def __init__(self):
        self.seen = []

    def started(self, event):
        self.seen.append((event.command_name, event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


class QueryLog(CommandLog):
    """Registered once per process (pymongo has no unregister); records only while on,
    one example filter per (database, collection, shape)."""

    def __init__(self):
        super().__init__()
        self.on = False
        self.seen = {}  # (database, collection, shape) -> an example filter
        self._lock = threading.Lock()

    def started(self, event):
        if not self.on or event.command_name not in FILTERS:
            return
        collection = event.command[event.command_name]
        for query in FILTERS[event.command_name](event.command):
            key = (event.database_name, collection, shape(query))
            with self._lock:
                self.seen.setdefault(key, query)


def shape(query):
    """The form of a filter: {"a": 1, "b": {"$in": [..]}} -> "a=, b.$in"."""
    parts = []
    for key in sorted(query):
        value = query[key]
        if isinstance(value, dict) and value and all(k.startswith("$") for k in value):
            parts.append(f"{key}:{'+'.join(sorted(value))}")
        else:
            parts.append(f"{key}=")
    return ", ".join(parts) or "(all)"


def plan_of(client, database, collection, query, cursor):
    """(pushed down, served by an index, a line of explanation) for one query."""
    explained = client[database].command("explain", {"find": collection, "filter": query})
    pushed = bool(explained.get("filterPushdown"))
    node = _conditions(explained.get("queryPlanner", {}).get("Plan", {}))
    if not pushed or node is None:
        return pushed, False, "FerretDB did not push the filter down to SQL"
    relation, condition = node
    cursor.execute("SET enable_seqscan = off")
    cursor.execute('EXPLAIN (FORMAT JSON) SELECT _jsonb FROM "%s"."%s" WHERE %s' % (
        database.replace('"', '""'), relation.replace('"', '""'), condition))
    plan = cursor.fetchone()[0]
    cursor.execute("RESET enable_seqscan")
    text = json.dumps(plan)
    indexed = '"Node Type": "Seq Scan"' not in text and "Index" in text
    return pushed, indexed, condition


def _conditions(plan, relation=None):
    """The relation and the whole SQL condition FerretDB sent, from its plan (a bitmap
    scan splits it between the index's condition and a filter applied after)."""
    relation = plan.get("Relation Name", relation)
    parts = [plan[key] for key in ("Index Cond", "Recheck Cond", "Filter") if key in plan]
    for child in plan.get("Plans", []):
        found = _conditions(child, relation)
        if found is not None:
            relation = relation or found[0]
            parts.append(found[1])
    parts = list(dict.fromkeys(parts))  # a bitmap's index and recheck conditions are the same
    if not parts or relation is None:
        return None
    return relation, " AND ".join(f"({part})" for part in parts)
