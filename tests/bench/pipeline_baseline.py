"""The stock nameko pattern over the pipeline's hops, the baseline of bench_pipeline.py.

An `@http` intake writes one document and dispatches referral.received with nameko's
EventDispatcher; plain `@event_handler`s each write one document and dispatch the next
event (received -> assessed -> assigned); a recorder writes one document per event it
sees and serves them in arrival order, shaped like the ledger feed, so that the bench
tails both the same way. No outbox, no inbox, no validation, no retries: what the
platform's guarantees are measured against. Each class runs as its own `nameko run`.
"""
import json
import time
import uuid

import pymongo
from nameko.events import EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http


class Database(DependencyProvider):
    """One pymongo database per process, named by the config's BENCH_DB."""

    def setup(self):
        self.client = pymongo.MongoClient(self.container.config["MONGO_URI"])
        self.db = self.client[self.container.config["BENCH_DB"]]

    def stop(self):
        self.client.close()

    def get_dependency(self, worker_ctx):
        return self.db


class Intake:
    name = "bench_intake"
    db = Database()
    dispatch = EventDispatcher()

    @http("POST", "/v1/referrals")
    def accept(self, request):
        body = json.loads(request.get_data())
        case_id = str(uuid.uuid4())
        self.db.cases.insert_one({"_id": case_id, "referral": body, "at": time.time()})
        self.dispatch("referral.received", {"case_id": case_id, "region": body.get("region"),
                                            "flags": body.get("flags", [])})
        return 201, {"Content-Type": "application/json"}, json.dumps({"case_id": case_id})

    @http("GET", "/health")
    def health(self, request):
        return 200, "ok"


class Assessor:
    name = "bench_assessor"
    db = Database()
    dispatch = EventDispatcher()

    @event_handler("bench_intake", "referral.received")
    def assess(self, payload):
        assessment_id = str(uuid.uuid4())
        self.db.assessments.insert_one({"_id": assessment_id, "case_id": payload["case_id"], "decision": "suitable"})
        self.dispatch("case.assessed", {"case_id": payload["case_id"], "assessment_id": assessment_id,
                                        "decision": "suitable"})


class Staffer:
    name = "bench_staffer"
    db = Database()
    dispatch = EventDispatcher()

    @event_handler("bench_assessor", "case.assessed")
    def staff(self, payload):
        assignment_id = str(uuid.uuid4())
        self.db.assignments.insert_one({"_id": assignment_id, "case_id": payload["case_id"]})
        self.dispatch("facilitator.assigned", {"case_id": payload["case_id"], "assignment_id": assignment_id})


class Recorder:
    name = "bench_recorder"
    db = Database()
    # arrival order, kept in memory for the feed (one process, one recorder)
    entries = []

    def _record(self, event_type, payload):
        self.db.arrivals.insert_one({"_id": str(uuid.uuid4()), "type": event_type, "case_id": payload["case_id"],
                                     "at": time.time()})
        self.entries.append({"seq": len(self.entries), "event": {
            "type": event_type, "subject": payload["case_id"], "data": payload}})

    @event_handler("bench_intake", "referral.received")
    def received(self, payload):
        self._record("referral.received", payload)

    @event_handler("bench_assessor", "case.assessed")
    def assessed(self, payload):
        self._record("case.assessed", payload)

    @event_handler("bench_staffer", "facilitator.assigned")
    def assigned(self, payload):
        self._record("facilitator.assigned", payload)

    @http("GET", "/v1/ledger/entries")
    def feed(self, request):
        after = int(request.args.get("after", -1))
        limit = int(request.args.get("limit", 100))
        items = self.entries[after + 1:after + 1 + limit]
        return 200, {"Content-Type": "application/json"}, json.dumps({
            "items": items, "next_after": items[-1]["seq"] if items else after})

    @http("GET", "/health")
    def health(self, request):
        return 200, "ok"
