"""The records service: the append-only Merkle ledger of every event. Entrypoints only."""
from werkzeug.wrappers import Response

from services.records import bundle, merkle, openapi, residency, store
from services.records.audit import LedgerBroken
from services.records.batching import batch_consumer
from services.records.dependencies import LedgerKey, LedgerStore
from shared.health import HealthEndpoint
from shared.http_server import http
from shared.jsonlog import LogContext
from shared.messaging.rpc import rpc
from shared.timers import configured_timer
from shared.security import access
from shared.openapi import OpenApiEndpoint
from shared.web import Authenticator, BadRequest, HttpError, NotFound, api, json_response, read_query

STAFF = ("coordinator", "facilitator", "auditor")
EVERYONE = ("referrer",) + STAFF
OVERSIGHT = ("auditor", "coordinator")
# an operator's key reaches the ledger's deployment-wide routes and a case bundle (its regions'), nothing else
LEDGER_READERS = EVERYONE + ("operator",)
LEDGER_CHECKERS = OVERSIGHT + ("operator",)


class Unavailable(HttpError):
    status, code = 503, "unavailable"


def _within(name, value, lowest, highest):
    """A query parameter's bound that depends on the ledger (its size): a 400 naming it."""
    if not lowest <= value <= highest:
        raise BadRequest(f"the query parameter '{name}' must be between {lowest} and {highest}", param=name)
    return value


class RecordsService(HealthEndpoint, OpenApiEndpoint):
    name = "records"
    api_document = staticmethod(openapi.document)

    ledger = LedgerStore()
    signer = LedgerKey()
    auth = Authenticator()
    log_context = LogContext()

    # only this region's events (residency.py), and an event with no JCS form can have no leaf
    @batch_consumer("ledger", admission=residency.ledger_admission)
    def on_events(self, events, leaves):
        self.ledger.append(events, leaves)

    @configured_timer("RECORDS_CHECKPOINT_INTERVAL", 60)
    def sign_head(self):
        if self.signer is not None:
            self.ledger.make_checkpoint(self.signer)

    @http("GET", "/v1/cases/<string:case_id>/timeline")
    @api(roles=EVERYONE, scope="case")
    def case_timeline(self, request, case_id, principal):
        docs = self.ledger.case_entries(case_id)
        items = []
        for doc in docs:
            view = store.entry_view(doc)
            event = view["event"]
            items.append({"seq": view["seq"], "type": event["type"], "time": event["time"],
                          "source": event["source"], "event_id": event["id"],
                          "leaf_hash": view["leaf_hash"], "data": event["data"]})
        return json_response({"case_id": case_id, "entries": items})

    @http("GET", "/v1/cases/<string:case_id>/bundle")
    @api(roles=LEDGER_READERS, scope="case")
    def case_bundle(self, request, case_id, principal):
        signed = self._checkpoint()
        docs = self.ledger.case_entries(case_id, below=signed["size"])
        if not docs:
            raise NotFound("no signed entries for this case yet")
        head = self.ledger.head()
        nodes = self.ledger.nodes(head)
        entries = [(d["seq"], d["leaf"], merkle.inclusion_proof(nodes, d["seq"], signed["size"])) for d in docs]
        return json_response(bundle.build(case_id, signed["note"], entries))

    @http("GET", "/v1/ledger/head")
    @api(roles=LEDGER_READERS, scope="deployment")
    def signed_head(self, request, principal):
        latest = self.ledger.latest_checkpoint()
        if latest is None:
            raise NotFound("no checkpoint has been signed yet")
        return Response(latest["note"], mimetype="text/plain", content_type="text/plain; charset=utf-8")

    @http("POST", "/v1/ledger/checkpoints")
    @api(roles=OVERSIGHT, scope="deployment")
    def new_checkpoint(self, request, principal):
        signed = self._checkpoint()
        return Response(signed["note"], status=201, content_type="text/plain; charset=utf-8")

    @http("GET", "/v1/ledger/public-key")
    @api(roles=LEDGER_READERS, scope="deployment")
    def public_key(self, request, principal):
        if self.signer is None:
            raise Unavailable("no ledger signing key is configured")
        return Response(str(self.signer.verifier) + "\n", content_type="text/plain; charset=utf-8")

    @http("GET", "/v1/ledger/proof/inclusion")
    @api(roles=LEDGER_READERS, scope="deployment")
    def inclusion_proof(self, request, principal):
        # by event id, or by position (a subscriber knows an entry's ledger position)
        asked = read_query(request, openapi.INCLUSION_QUERY)
        head = self.ledger.head()
        if "seq" in asked and "event_id" not in asked:
            docs = self.ledger.entries_after(asked["seq"] - 1, 1, below=head.size)
            doc = docs[0] if docs else None
            if doc is None:
                raise NotFound("no entry in the tree has this seq", param="seq")
        else:
            if "event_id" not in asked:
                raise BadRequest("the query parameter 'event_id' is required", param="event_id")
            doc = self.ledger.entry_by_event(asked["event_id"])
            if doc is None or doc["seq"] >= head.size:
                raise NotFound("no entry in the tree has this event id", param="event_id")
        size = _within("tree_size", asked.get("tree_size", head.size), 1, head.size)
        if doc["seq"] >= size:
            raise BadRequest(f"tree_size must be above the entry's seq ({doc['seq']})", param="tree_size")
        nodes = self.ledger.nodes(head)
        return json_response({
            "event_id": doc["event_id"], "seq": doc["seq"], "tree_size": size,
            "leaf_hash": store.entry_view(doc)["leaf_hash"],
            "root_hash": merkle.subtree_hash(nodes, 0, size).hex(),
            "proof": [h.hex() for h in merkle.inclusion_proof(nodes, doc["seq"], size)],
        })

    @http("GET", "/v1/ledger/proof/consistency")
    @api(roles=LEDGER_READERS, scope="deployment")
    def consistency_proof(self, request, principal):
        asked = read_query(request, openapi.CONSISTENCY_QUERY)
        head = self.ledger.head()
        first = _within("first", asked["first"], 1, head.size)
        second = _within("second", asked["second"], first, head.size)
        nodes = self.ledger.nodes(head)
        return json_response({
            "first": first, "second": second,
            "first_root": merkle.subtree_hash(nodes, 0, first).hex(),
            "second_root": merkle.subtree_hash(nodes, 0, second).hex(),
            "proof": [h.hex() for h in merkle.consistency_proof(nodes, first, second)],
        })

    @http("GET", "/v1/ledger/entries")
    @api(roles=("auditor",), scope="national")
    def entries(self, request, principal):
        asked = read_query(request, openapi.FEED_QUERY)
        after, limit = asked["after"], asked["limit"]
        page = self.ledger.feed(after, limit)
        return json_response(dict(page, next_after=page["items"][-1]["seq"] if page["items"] else after))

    @rpc
    def entries_after(self, after, limit):
        """The feed for the subscriptions and reports services (shared.messaging.permissions: its
        only callers): the entries after `after` in the tree, at most `limit`, and the tree size."""
        if not isinstance(after, int) or not isinstance(limit, int) or after < -1 or not 1 <= limit <= store.FEED_LIMIT:
            raise ValueError(f"after must be an integer >= -1 and limit one of 1..{store.FEED_LIMIT}")
        return self.ledger.feed(after, limit)

    @http("GET", "/v1/ledger/verify")
    @api(roles=LEDGER_CHECKERS, scope="deployment")
    def verify(self, request, principal):
        verifier = self.signer.verifier if self.signer is not None else None
        try:
            summary = self.ledger.audit(verifier)
        except LedgerBroken as broken:
            return json_response({"valid": False, "first_bad_seq": broken.seq, "problem": str(broken)})
        return json_response({"valid": True, "entries": summary["entries"]})

    def case_relation(self, case_id):
        """The case's relation as its recorded events tell it (None: nothing recorded)."""
        docs = self.ledger.case_entries(case_id)
        return access.relation_from_events(store.entry_view(d)["event"] for d in docs) if docs else None

    def _checkpoint(self):
        if self.signer is None:
            raise Unavailable("no ledger signing key is configured")
        return self.ledger.make_checkpoint(self.signer)

