"""The records service: the append-only ledger of every event. Entrypoints only."""
from nameko.web.handlers import http

from services.records import entries, ledger
from shared.health import HealthEndpoint
from shared.jsonlog import LogContext
from shared.messaging.consumer import event_consumer
from shared.storage import Database
from shared.web import Authenticator, Forbidden, NotFound, api, json_response

STAFF = ("coordinator", "facilitator", "auditor")


class RecordsService(HealthEndpoint):
    name = "records"

    db = Database()
    auth = Authenticator()
    log_context = LogContext()

    @event_consumer("ledger")
    def on_any_event(self, event):
        entries.append(event)

    @http("GET", "/v1/cases/<string:case_id>/timeline")
    @api(roles=("referrer",) + STAFF)
    def case_timeline(self, request, case_id, principal):
        items = list(entries.timeline(case_id))
        if not items:
            raise NotFound("no recorded events for this case")
        if principal.role == "referrer" and not referred_by(items, principal.agency):
            raise Forbidden("this case belongs to another agency")
        return json_response({"case_id": case_id, "entries": [
            {
                "seq": e.seq,
                "type": e.event_type,
                "time": e.event["time"],
                "source": e.event["source"],
                "event_id": e.event_id,
                "leaf_hash": e.leaf_hash.hex(),
                "chain_hash": e.chain_hash.hex(),
                "data": e.event["data"],
            }
            for e in items
        ]})

    @http("GET", "/v1/ledger/verify")
    @api(roles=("auditor", "coordinator"))
    def verify(self, request, principal):
        try:
            count = ledger.verify(entries.stream())
        except ledger.ChainBroken as broken:
            return json_response({"valid": False, "first_bad_seq": broken.seq, "problem": str(broken)})
        return json_response({"valid": True, "entries": count})


def referred_by(items, agency):
    received = next((e for e in items if e.event_type == "referral.received"), None)
    return received is not None and received.event["data"]["agency"] == agency
