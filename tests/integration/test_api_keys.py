"""API keys in the identity store (real FerretDB): a facilitator's key names its owner."""
import mongoengine
import pytest

from shared.config import settings_for
from shared.security import api_keys


@pytest.fixture
def identity(db_prefix):
    api_keys.connect_identity(settings_for("identity", {"MONGO_URI": "mongodb://127.0.0.1:27017/",
                                                       "AMENDS_DB_PREFIX": db_prefix}))
    yield api_keys.ApiKey._get_collection()
    mongoengine.disconnect(api_keys.IDENTITY_ALIAS)


def test_a_facilitator_key_names_its_facilitator_and_one_that_names_nobody_is_refused(identity):
    with pytest.raises(ValueError, match="subject"):
        api_keys.issue("facilitator", "test-police", "nobody's")
    key = api_keys.issue("facilitator", "test-police", "fac-a's", subject="fac-a")
    assert api_keys.lookup(key).subject == "fac-a"
    coordinator = api_keys.issue("coordinator", "test-police", "coordinator")
    assert api_keys.lookup(coordinator).role == "coordinator" and api_keys.lookup(coordinator).subject is None
    # a facilitator key stored before keys named their owner acts for nobody
    identity.update_one({"key_hash": api_keys.hash_key(key)}, {"$unset": {"subject": ""}})
    assert api_keys.lookup(key) is None
    assert api_keys.lookup(coordinator) is not None
