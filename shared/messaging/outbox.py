"""The transactional outbox, for a database without multi-document transactions.

A state change and the events it causes are saved in one document: the events sit
in that document's `outbox` list, and the same write sets `outbox_pending: true`
(`pending_fields`, `pending_update`). The relay then publishes each one (confirmed,
mandatory) and pulls it from the list. If the process dies in between, the timer
relay finds the document later and publishes again; consumers are idempotent by
event id, so a second copy has no second effect.

Why the flag: the timer must find the few documents with unsent events among all of a
collection's documents, with an indexed equality (`{"outbox_pending": true}`); "the list
is not empty" is a query neither FerretDB nor an index can answer without a scan. The
flag is cleared only once the list is empty, by a second update conditional on exactly
that, so an event added meanwhile keeps its document flagged.

The timer notes what it finds waiting, and what it leaves, for the outbox backlog metrics
(shared.metrics.OUTBOX): the query it runs anyway, so a scrape never reads the database.
"""
import logging
import os
from datetime import datetime, timedelta, timezone

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from shared import metrics
from shared.config import DEFAULTS, settings_for
from shared.events import new_event
from shared.messaging.publisher import EventPublisher
from shared.storage import connect
from shared.storage.indexes import Index, ensure_indexes

log = logging.getLogger(__name__)

OUTBOX_FIELD = "outbox"
PENDING_FIELD = "outbox_pending"


def pending_fields(events):
    """The fields a document saved with new `events` in its outbox holds (a new document,
    or `$set` over a replaced outbox)."""
    return {OUTBOX_FIELD: list(events), PENDING_FIELD: True} if events else {OUTBOX_FIELD: []}


def pending_update(events):
    """The update operators that add `events` to an existing document's outbox."""
    return {"$push": {OUTBOX_FIELD: {"$each": list(events)}}, "$set": {PENDING_FIELD: True}}


class Relay:
    """Publishes the pending events held in documents of the given collections."""

    def __init__(self, publisher, collections, patient=True, service=None):
        """`service`: the service whose outboxes these are, for the backlog metrics (None:
        not noted)."""
        self.publisher = publisher
        self.collections = collections
        self.patient = patient
        self.service = service

    def flush(self, collection, doc_id, events=None):
        """Publish the pending events of one document; return how many were sent. A
        caller that has just saved the events passes them as `events`, sparing a read
        (on FerretDB every read scans its collection)."""
        if events is None:
            doc = collection.find_one({"_id": doc_id}, {OUTBOX_FIELD: 1})
            if not doc:
                return 0
            events = doc.get(OUTBOX_FIELD, [])
        return self._send(collection, doc_id, events)

    def relay_pending(self, older_than_seconds=0.0, limit=500):
        """Publish what an earlier flush left behind (after a crash or a broker outage)."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)
        sent = 0
        for collection in self.collections:
            pending = list(collection.find({PENDING_FIELD: True}, {OUTBOX_FIELD: 1}).limit(limit))
            self._note_backlog(collection, [event for doc in pending for event in doc.get(OUTBOX_FIELD) or []])
            left = []
            for doc in pending:
                events = doc.get(OUTBOX_FIELD) or []
                if not events:
                    self._settled(collection, doc["_id"])
                    continue
                if all(_event_time(e) > cutoff for e in events):
                    left.extend(events)
                    continue  # its own flush is probably still under way
                sent += self._send(collection, doc["_id"], events)
            self._note_backlog(collection, left)
        return sent

    def _note_backlog(self, collection, events):
        if self.service is not None:
            metrics.OUTBOX.note(self.service, collection.name, len(events),
                                min((_event_time(e) for e in events), default=None))

    def _send(self, collection, doc_id, events):
        sent = []
        try:
            for event in events:
                self.publisher.publish(event, patient=self.patient)
                sent.append(event)
        finally:
            if sent:
                # Mostly the outbox held just these: then one write empties it and clears the
                # flag. Otherwise $pullAll removes exactly the stored values sent (equality works
                # on FerretDB and MongoDB alike), leaving any added meanwhile, flag and all.
                emptied = collection.update_one({"_id": doc_id, OUTBOX_FIELD: sent},
                                                {"$set": {OUTBOX_FIELD: []}, "$unset": {PENDING_FIELD: ""}})
                if emptied.matched_count != 1:
                    collection.update_one({"_id": doc_id}, {"$pullAll": {OUTBOX_FIELD: sent}})
                    self._settled(collection, doc_id)
        return len(sent)

    @staticmethod
    def _settled(collection, doc_id):
        # only if nothing was added since: then the timer need not look at it again
        collection.update_one({"_id": doc_id, OUTBOX_FIELD: []}, {"$unset": {PENDING_FIELD: ""}})


def _event_time(event):
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00"))


class Outbox(DependencyProvider):
    """Gives a worker an `OutboxHandle` to create events and relay them.

    `collections` names the service's collections whose documents hold pending events in
    their `outbox` field; the relay timer looks through them.
    """

    def __init__(self, collections=(), **kwargs):
        self.collections = tuple(collections)
        super().__init__(**kwargs)

    def setup(self):
        service = self.container.service_name
        self.settings = settings_for(service, self.container.config)
        self.publisher = EventPublisher(self.settings.amqp_uri, service)
        self.db = connect(service, self.settings)

    def start(self):
        # the relay timer's one query, {PENDING_FIELD: true}, served by an index on every collection
        ensure_indexes(self.db, {name: [Index(PENDING_FIELD, sparse=True)] for name in self.collections},
                       self.settings.ferretdb_postgresql_url)

    def relay(self, patient=True):
        return Relay(self.publisher, [self.db[name] for name in self.collections], patient,
                     service=self.container.service_name)

    def get_dependency(self, worker_ctx):
        return OutboxHandle(self, worker_ctx)


class OutboxHandle:
    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._ctx = worker_ctx
        self.settings = provider.settings

    def event(self, event_type, subject, data, correlationid=None):
        """A new validated event, caused by the event this worker is handling (if any)."""
        settings = self._provider.settings
        return new_event(
            event_type, subject, data,
            source=settings.source,
            region=settings.region,
            correlationid=correlationid or self._ctx.data.get("correlationid") or subject,
            causationid=self._ctx.data.get("causationid"),
        )

    def flush(self, collection, doc_id, events=None):
        """Publish the pending events of a saved document, named by its collection and
        `_id` (`events`: those just saved, if the caller has them; others left by a crash
        are the relay timer's). A failure here loses nothing: the events stay in the
        document for the relay timer."""
        try:
            return self._provider.relay(patient=False).flush(self._provider.db[collection], doc_id, events)
        except Exception as exc:  # the broker may be down; the timer will retry
            log.warning("outbox flush deferred to the relay timer: %s", type(exc).__name__)
            return 0

    def relay_pending(self):
        return self._provider.relay().relay_pending(self._provider.settings.outbox_grace)


class OutboxRelayTimer:
    """Mixin for a service class with an `outbox`: republishes what a crash left unsent.

    The interval is read when the class is defined, as nameko's timer requires.
    """

    @timer(interval=float(os.environ.get("AMENDS_OUTBOX_INTERVAL", DEFAULTS["AMENDS_OUTBOX_INTERVAL"])))
    def relay_outbox(self):
        self.outbox.relay_pending()
