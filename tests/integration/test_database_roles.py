"""Each service reaches FerretDB as its own PostgreSQL role, and PostgreSQL's privileges
decide what it may touch (shared/storage/roles.py, docs/storage.md).

On a FerretDB of the test's own, on the bootstrap's PostgreSQL in a database of its own,
with roles made by the same code the bootstrap runs (under a prefix of the test's own:
roles are cluster-wide, so they are dropped afterwards). Clients authenticate with PLAIN,
which FerretDB 1.24 passes through to PostgreSQL.
"""
import secrets
import uuid

import pymongo
import pytest
import requests
from pymongo.errors import OperationFailure

from shared.config import settings_for
from shared.security import api_keys
from shared.storage import ferretdb_pg, roles
from shared.storage.indexes import Index, ensure_indexes
from tests.platform import TEST_MASTER_KEY, FerretDB
from tests.support import disconnect_all, ferretdb_postgresql_url

DB_PREFIX = "amends"  # the bootstrap's own names: the schemas live in the test's own PostgreSQL database


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not ferretdb_postgresql_url():
        pytest.skip("needs the bootstrap's PostgreSQL (MONGO_URI names another server)")
    import psycopg
    ferret = FerretDB(str(tmp_path_factory.mktemp("roles")))
    role_prefix = f"t{uuid.uuid4().hex[:10]}"
    passwords = {account: secrets.token_urlsafe(24) for account in roles.ACCOUNTS}
    try:
        with psycopg.connect(ferret.postgresql_url) as conn:
            roles.setup(conn, passwords, DB_PREFIX, role_prefix)
            roles.setup(conn, passwords, DB_PREFIX, role_prefix)  # as a second bootstrap does: nothing breaks
        ferret.start()
        yield Server(ferret, role_prefix, passwords)
    finally:
        disconnect_all()
        ferret.stop()  # FerretDB holds sessions as the roles
        with psycopg.connect(ferret.postgresql_url) as conn:
            roles.drop(conn, role_prefix)
        ferret.remove()
        with psycopg.connect(ferretdb_postgresql_url()) as conn:
            left = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (role_prefix + "%",)).fetchall()
        assert left == []


class Server:
    def __init__(self, ferret, role_prefix, passwords):
        self.ferret, self.role_prefix, self.passwords = ferret, role_prefix, passwords
        self.clients = []

    def role(self, account):
        return roles.role_for(account, self.role_prefix)

    def client(self, account, password=None):
        """A client authenticated (PLAIN) as the account's role."""
        client = pymongo.MongoClient(
            "127.0.0.1", self.ferret.port, username=self.role(account),
            password=password or self.passwords[account], authMechanism="PLAIN", authSource="$external",
            serverSelectionTimeoutMS=5000, uuidRepresentation="standard")
        self.clients.append(client)
        return client

    def uri(self, account):
        return (f"mongodb://{self.role(account)}:{self.passwords[account]}@127.0.0.1:{self.ferret.port}/"
                "?authMechanism=PLAIN&authSource=$external")

    def postgresql_url(self, account):
        """The GIN-twin URL of the account: its own role, on FerretDB's PostgreSQL database."""
        base = self.ferret.postgresql_url
        host = base.split("@", 1)[1]
        return f"postgres://{self.role(account)}:{self.passwords[account]}@{host}"


def database(account):
    return roles.schema_for(account, DB_PREFIX)


def test_a_service_role_writes_reads_and_indexes_its_own_database(server):
    referrals = server.client("referrals")[database("referrals")]
    # its indexes, and their GIN twins through its own PostgreSQL role: it owns the tables
    ensure_indexes(referrals, {"cases": [Index("state"), Index("case_id", unique=True)]},
                   server.postgresql_url("referrals"))
    referrals.cases.insert_one({"_id": "c-1", "case_id": "c-1", "state": "received"})
    assert referrals.cases.find_one({"state": "received"})["_id"] == "c-1"
    referrals.cases.update_one({"_id": "c-1"}, {"$set": {"state": "assessed"}})
    assert referrals.cases.count_documents({"state": "assessed"}) == 1
    import psycopg
    with psycopg.connect(server.ferret.postgresql_url) as conn:
        owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = %s",
                              (database("referrals"),)).fetchall()
        table = ferretdb_pg.backing_table(conn.cursor(), database("referrals"), "cases")
        twins = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
                             "AND indexname LIKE '%%_amends'", (database("referrals"), table)).fetchone()[0]
    assert owners == [(server.role("referrals"),)]  # FerretDB made its metadata and tables as the role
    assert twins == 3  # _id, state, case_id


def test_a_service_role_is_refused_another_services_database(server):
    records = server.client("records")[database("records")]
    records.ledger.insert_one({"_id": "e-1", "seq": 1})
    matching = server.client("matching")
    other = matching[database("records")]
    for attempt in (lambda: other.ledger.find_one({"_id": "e-1"}),
                    lambda: other.ledger.count_documents({}),
                    lambda: other.ledger.insert_one({"_id": "e-2"}),
                    lambda: other.ledger.update_one({"_id": "e-1"}, {"$set": {"seq": 9}}),
                    lambda: other.ledger.delete_many({}),
                    lambda: other.forged.insert_one({"_id": "x"}),  # a new collection there
                    lambda: other.ledger.create_index("seq"),
                    lambda: other.ledger.drop(),
                    lambda: matching.drop_database(database("records"))):
        with pytest.raises(OperationFailure, match="permission denied|must be owner"):
            attempt()
    assert records.ledger.find_one({"_id": "e-1"}) == {"_id": "e-1", "seq": 1}
    # and its own database is still its own to use
    matching[database("matching")].facilitators.insert_one({"_id": "fac-1"})
    assert matching[database("matching")].facilitators.count_documents({}) == 1


def test_every_service_reads_the_identity_store_and_only_the_operators_write_it(server):
    # the operators' tools, as the identity role: the keys, their indexes and GIN twins
    operator = settings_for("identity", {"MONGO_URI": server.uri("identity"), "AMENDS_DB_PREFIX": DB_PREFIX,
                                         "AMENDS_FERRETDB_POSTGRESQL_URL": server.postgresql_url("identity")})
    api_keys.connect_identity(operator)
    key, record = api_keys.issue("coordinator", "gwent-rj", "test", subject="coord-1", regions=["gwent"])
    disconnect_all()
    for service in ("referrals", "matching", "notifications", "records"):
        # as a service's Authenticator connects: no indexes made
        api_keys.connect_identity(settings_for(service, {"MONGO_URI": server.uri(service),
                                                         "AMENDS_DB_PREFIX": DB_PREFIX}), indexed=False)
        assert api_keys.lookup(key).subject == "coord-1"
        disconnect_all()
    identity = server.client("notifications")[database("identity")]
    assert identity.api_keys.find_one({"_id": record.pk})["role"] == "coordinator"
    for attempt in (lambda: identity.api_keys.insert_one({"_id": "forged", "key_hash": "x", "role": "auditor"}),
                    lambda: identity.api_keys.update_one({"_id": record.pk}, {"$set": {"role": "auditor"}}),
                    lambda: identity.api_keys.delete_one({"_id": record.pk}),
                    lambda: identity.forged.insert_one({"_id": "x"}),
                    lambda: identity.api_keys.create_index("label"),
                    lambda: identity.api_keys.drop(),
                    lambda: identity.client.drop_database(database("identity")),
                    lambda: ensure_indexes(identity, api_keys.INDEXES, server.postgresql_url("notifications"))):
        with pytest.raises(Exception, match="permission denied|must be owner"):
            attempt()
    assert identity.api_keys.find_one({"_id": record.pk})["role"] == "coordinator"


def test_a_wrong_password_or_an_unknown_role_is_refused(server):
    server.client("referrals")[database("referrals")].probe.insert_one({"_id": 1})
    for password in ("not-" + server.passwords["referrals"], server.passwords["matching"]):
        with pytest.raises(OperationFailure, match="password authentication failed") as refused:
            server.client("referrals", password=password)[database("referrals")].probe.find_one()
        assert password not in str(refused.value.details)  # the refusal does not repeat it
    stranger = pymongo.MongoClient("127.0.0.1", server.ferret.port, username=server.role_prefix + "_nobody",
                                   password="x", authMechanism="PLAIN", authSource="$external",
                                   serverSelectionTimeoutMS=5000)
    server.clients.append(stranger)
    with pytest.raises(OperationFailure, match="password authentication failed"):
        stranger[database("referrals")].probe.find_one()


def test_databases_made_before_the_roles_are_handed_to_them(server):
    """A cluster bootstrapped before the roles: FerretDB made the databases as the admin
    role. Running the roles' setup again hands each schema, and every table in it, over."""
    import psycopg
    before = pymongo.MongoClient(server.ferret.uri, serverSelectionTimeoutMS=5000)  # no credentials: the admin role
    server.clients.append(before)
    before["legacy_referrals"].cases.insert_one({"_id": "old"})
    before["legacy_identity"].api_keys.insert_one({"_id": "k-old", "key_hash": "h"})
    with psycopg.connect(server.ferret.postgresql_url) as conn:
        roles.setup(conn, server.passwords, "legacy", server.role_prefix)
    referrals = server.client("referrals")["legacy_referrals"]
    assert referrals.cases.find_one({"_id": "old"}) == {"_id": "old"}
    referrals.cases.insert_one({"_id": "new"})
    ensure_indexes(referrals, {"cases": [Index("state")]}, server.postgresql_url("referrals"))
    matching = server.client("matching")
    assert matching["legacy_identity"].api_keys.find_one({"_id": "k-old"})["key_hash"] == "h"
    with pytest.raises(OperationFailure, match="permission denied"):
        matching["legacy_referrals"].cases.find_one({"_id": "old"})
    with pytest.raises(OperationFailure, match="permission denied"):
        matching["legacy_identity"].api_keys.insert_one({"_id": "k-forged"})


def test_every_service_starts_and_authenticates_as_its_own_role(server, run_services, monkeypatch):
    """Each service's start (its stores', inbox's and outbox's indexes and GIN twins) and its
    Authenticator's reads of the identity store need nothing beyond its own role."""
    from services.matching.service import MatchingService
    from services.notifications.service import NotificationsService
    from services.records.service import RecordsService
    from services.referrals.service import ReferralsService
    monkeypatch.setenv("AMENDS_MASTER_KEY", TEST_MASTER_KEY)
    api_keys.connect_identity(settings_for("identity", {
        "MONGO_URI": server.uri("identity"), "AMENDS_DB_PREFIX": DB_PREFIX,
        "AMENDS_FERRETDB_POSTGRESQL_URL": server.postgresql_url("identity")}))
    key, _ = api_keys.issue("coordinator", "gwent-rj", "test", subject="coord-2", regions=["gwent"])
    disconnect_all()
    coordinator = {"Authorization": f"Bearer {key}"}
    for service, cls, path in (("referrals", ReferralsService, "/v1/cases?status=ASSESSMENT"),
                               ("matching", MatchingService, "/v1/facilitators"),
                               ("notifications", NotificationsService, "/v1/notifications?case=c-none"),
                               ("records", RecordsService, "/v1/ledger/head")):
        with run_services(cls, MONGO_URI=server.uri(service), AMENDS_DB_PREFIX=DB_PREFIX,
                          AMENDS_FERRETDB_POSTGRESQL_URL=server.postgresql_url(service)) as (url, _):
            answer = requests.get(url + path, headers=coordinator, timeout=10)
            assert answer.status_code in (200, 404), (service, answer.status_code, answer.text)
            refused = requests.get(url + path, headers={"Authorization": "Bearer amk_unknown"}, timeout=10)
            assert refused.status_code == 401
