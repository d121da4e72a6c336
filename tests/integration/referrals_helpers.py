"""The referrals store, for tests that look at what the service has stored."""
from contextlib import contextmanager

import pymongo

from services.referrals.store import ReferralsStore
from shared.config import settings_for


@contextmanager
def referrals_store(config):
    """A ReferralsStore on the referrals database of a test's service config (its own
    client, as the service reads: timezone-aware)."""
    settings = settings_for("referrals", config)
    client = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, uuidRepresentation="standard")
    try:
        yield ReferralsStore(client[settings.database])
    finally:
        client.close()
