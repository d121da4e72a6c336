"""The console's store on a real FerretDB (one of the test's own, on the bootstrap's PostgreSQL):
accounts, sessions found by the hash of their id, expiry and the sweep, disabling an account,
and the development accounts made twice."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.console import accounts, admin, passwords, sessions
from services.console.key_vault import KeyVault, new_key
from services.console.store import AccountExists, ConsoleStore
from shared.config import settings_for
from shared.storage import connect, disconnect
from tests.platform import FerretDB


@pytest.fixture
def store(tmp_path):
    ferret = FerretDB(str(tmp_path))
    ferret.start()
    config = {"MONGO_URI": ferret.uri, "AMENDS_DB_PREFIX": f"t{uuid.uuid4().hex[:10]}"}
    console_store = ConsoleStore(connect("console", settings_for("console", config)))
    console_store.ensure_indexes(ferret.postgresql_url)
    try:
        yield console_store
    finally:
        disconnect("console")
        ferret.remove()


def test_accounts_and_sessions_on_ferretdb(store):
    store.add_account(accounts.new_account("cora", "coordinator", passwords.hash_password("a long password 1"),
                                           sealed_key="sealed"))
    with pytest.raises(AccountExists):
        store.add_account(accounts.new_account("cora", "auditor", "x", sealed_key="sealed"))
    assert store.account("cora").role == "coordinator" and store.account("nobody") is None
    now = datetime.now(timezone.utc)
    live_id, live = sessions.start("cora", timedelta(hours=1), now=now)
    _, old = sessions.start("cora", timedelta(seconds=1), now=now - timedelta(hours=1))
    store.add_session(live)
    store.add_session(old)
    found = store.session(sessions.id_hash(live_id))
    assert found.username == "cora" and found.csrf_token == live.csrf_token
    assert abs(found.expires_at - live.expires_at) < timedelta(milliseconds=1)
    assert store.session(sessions.id_hash(live_id + "x")) is None
    assert store.sweep() == 1 and store.session(old.id_hash) is None
    store.set_active("cora", False)   # disabling ends every session of the account
    assert store.session(live.id_hash) is None and not store.account("cora").active


def test_development_accounts_made_twice_keep_their_passwords(store):
    vault = KeyVault(new_key())
    keys = {"coordinator": "amk_c", "facilitator": "amk_f", "auditor": "amk_a", "operator": "amk_o"}
    first = admin.provision_dev(store, vault, keys, {}, "fac-0001")
    again = admin.provision_dev(store, vault, keys, first, "fac-0001")
    assert again == first
    assert [a.username for a in store.accounts()] == ["dev-auditor", "dev-coordinator", "dev-facilitator",
                                                      "dev-operator"]
    assert passwords.verify(store.account("dev-operator").password_hash, first["operator"]["password"])
    assert vault.open(store.account("dev-facilitator").sealed_key) == "amk_f"
    assert vault.open(store.account("dev-operator").sealed_key) == "amk_o"
