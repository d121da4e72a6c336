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
