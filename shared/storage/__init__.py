"""MongoDB for a nameko service, through mongoengine.

Each service has its own database, `<AMENDS_DB_PREFIX>_<service>`, registered under
a mongoengine alias named after the service so several services can share a process
(as they do in integration tests) without sharing a database.
"""
import mongoengine
from nameko.extensions import DependencyProvider

from shared.config import settings_for


def connect(service, settings=None, alias=None):
    """Register the service's database with mongoengine and return the pymongo Database."""
    settings = settings or settings_for(service)
    alias = alias or service
    mongoengine.connect(
        db=settings.database,
        alias=alias,
        host=settings.mongo_uri,
        uuidRepresentation="standard",
        tz_aware=True,
        connect=False,
        # Bound every wait, so that a worker caught by a database outage fails (and its
        # message is held back) instead of hanging on a dead socket for ever.
        serverSelectionTimeoutMS=10000,
        connectTimeoutMS=5000,
        socketTimeoutMS=30000,
        waitQueueTimeoutMS=15000,
    )
    return mongoengine.get_db(alias)


def disconnect(alias):
    mongoengine.disconnect(alias)


class Database(DependencyProvider):
    """Injects the service's pymongo Database; mongoengine documents use the same connection."""

    def setup(self):
        service = self.container.service_name
        self.db = connect(service, settings_for(service, self.container.config))

    def stop(self):
        disconnect(self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self.db


class Store:
    """Base of a service's store: the one object that touches its database.

    A store owns its collections, declares their indexes once in `indexes`
    (`{collection name: [Index, ...]}`), and returns typed aggregates to the workflows,
    never driver documents or driver exceptions. Each has an in-memory fake with the same
    methods, for unit tests of the workflows.
    """

    indexes = {}

    def __init__(self, db):
        self.db = db

    def ensure_indexes(self, postgresql_url=""):
        from shared.storage.indexes import ensure_indexes
        ensure_indexes(self.db, self.indexes, postgresql_url)


class StoreProvider(DependencyProvider):
    """Injects one store per container, built by `factory(db)` on the service's database,
    with its indexes (and, on FerretDB on PostgreSQL, their GIN twins) ensured at start."""

    def __init__(self, factory, **kwargs):
        self.factory = factory
        super().__init__(**kwargs)

    def setup(self):
        service = self.container.service_name
        self.settings = settings_for(service, self.container.config)
        self.store = self.factory(connect(service, self.settings))

    def start(self):
        self.store.ensure_indexes(self.settings.ferretdb_postgresql_url)

    def stop(self):
        disconnect(self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self.store
