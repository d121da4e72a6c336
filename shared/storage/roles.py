"""One PostgreSQL role per service, and one for the identity store, under FerretDB.

    AMENDS_PG_ADMIN_URL=postgres://amends:...@127.0.0.1:5432/ferretdb \\
        python -m shared.storage.roles setup [--db-prefix amends] [--accounts national]

FerretDB 1.24 on PostgreSQL passes a client's credentials through to PostgreSQL when the
client authenticates with PLAIN (`mongodb://USER:PASS@host/?authMechanism=PLAIN&
authSource=$external`): every statement it runs for that client runs as that role, so
PostgreSQL's own privileges decide what the client may reach. FerretDB keeps a Mongo
database as a schema of the same name; whoever creates a schema or table owns it.

What `setup` makes, in the database FerretDB runs on (the admin URL's):

- a LOGIN role `amends_<account>` for each service and for `identity`, with the password
  in `<ACCOUNT>_PG_PASSWORD` (sent as a SCRAM-SHA-256 verifier made here, so the server,
  and any log of it, never sees the password itself);
- the schema `<db prefix>_<account>` of each, made here and owned by that role, so no
  other role can take its name first; a schema made earlier by the admin role (a cluster
  from before the roles) is handed to its role with every table in it;
- CREATE on the database for each role: FerretDB runs `CREATE SCHEMA IF NOT EXISTS` the
  first time a client writes to a database it has no metadata for, and PostgreSQL checks
  that privilege even when the schema exists;
- on the identity schema: USAGE and SELECT on its tables, present and future (those the
  identity role makes), for every service role: the services' Authenticators read the
  keys, and only the operators' tools (as the identity role) write them.

A service role owns its own tables, so it can give them their GIN twins (ferretdb_pg.py);
it cannot read or write another service's, nor write the identity store's. Passwords come
from the environment only, never the command line. `--accounts` names the accounts to make
instead of all of them: the national stack (docs/regions.md) makes only `national`, with
no identity store. Safe to run again: it adds what is
missing, resets the passwords and hands back what was taken.
"""
import argparse
import base64
import hashlib
import hmac
import os
import sys

from shared.messaging.topology import SERVICES

IDENTITY = "identity"
# the web console keeps its sign-in accounts and sessions in a database of its own
CONSOLE = "console"
ACCOUNTS = (*SERVICES, CONSOLE, IDENTITY)
# the national stack's database holds the national counts only
NATIONAL_ACCOUNTS = ("national",)
ROLE_PREFIX = "amends"
ADMIN_URL_VARIABLE = "AMENDS_PG_ADMIN_URL"
SCRAM_ITERATIONS = 4096


def role_for(account, role_prefix=ROLE_PREFIX):
    return f"{role_prefix}_{account}"


def schema_for(account, db_prefix="amends"):
    """The schema FerretDB keeps the account's Mongo database in (the database's name)."""
    return f"{db_prefix}_{account}"


def password_variable(account):
    return f"{account.upper()}_PG_PASSWORD"


def passwords_from(environ, accounts=ACCOUNTS):
    """account -> password from `<ACCOUNT>_PG_PASSWORD`; a missing one is an error."""
    missing = [password_variable(a) for a in accounts if not environ.get(password_variable(a))]
    if missing:
        raise SystemExit(f"no password in the environment for: {', '.join(missing)}")
    return {account: environ[password_variable(account)] for account in accounts}


def scram_verifier(password, salt=None, iterations=SCRAM_ITERATIONS):
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (as psql's \\password
    computes it), so that the password itself never reaches the server."""
    if not password.isascii():  # PostgreSQL would SASLprep it first; ours are URL-safe tokens
        raise ValueError("a role's password must be ASCII")
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data):
        return base64.b64encode(data).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def setup(conn, passwords, db_prefix="amends", role_prefix=ROLE_PREFIX):
    """Make (or bring up to date) the roles and schemas above, in one transaction, on a
    psycopg connection to FerretDB's database as a superuser (the bootstrap's `amends`).
    `passwords` maps each account to make (a region's ACCOUNTS, or NATIONAL_ACCOUNTS) to its password."""
    from psycopg import sql

    roles = {account: role_for(account, role_prefix) for account in passwords}
    services = [sql.Identifier(roles[s]) for s in SERVICES if s in roles]
    database = conn.execute("SELECT current_database()").fetchone()[0]
    with conn.transaction():
        for account, role in roles.items():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role),
                sql.Literal(scram_verifier(passwords[account]))))
            conn.execute(sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(role)))
            schema = schema_for(account, db_prefix)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(role)))
            conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)))
            # tables FerretDB made before the roles existed (as the admin role) go to the schema's role
            taken = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tableowner <> %s",
                                 (schema, role)).fetchall()
            for (table,) in taken:
                conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                    sql.Identifier(schema, table), sql.Identifier(role)))
        if IDENTITY not in roles or not services:
            return roles
        identity = sql.Identifier(schema_for(IDENTITY, db_prefix))
        grantees = sql.SQL(", ").join(services)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(identity, grantees))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(identity, grantees))
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
            sql.Identifier(roles[IDENTITY]), identity, grantees))
    return roles


def drop(conn, role_prefix):
    """Drop every role of `role_prefix` and all it owns, in this database (for the tests,
    whose roles have prefixes of their own: roles are cluster-wide). Its schemas go too."""
    from psycopg import sql

    with conn.transaction():
        for account in ACCOUNTS:
            role = role_for(account, role_prefix)
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shared.storage.roles", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("setup",))
    parser.add_argument("--db-prefix", default=os.environ.get("AMENDS_DB_PREFIX") or "amends")
    parser.add_argument("--role-prefix", default=ROLE_PREFIX, help="roles are <prefix>_<account> (tests use their own)")
    # the national stack has one account, its national service's (NATIONAL_ACCOUNTS)
    parser.add_argument("--accounts", default=",".join(ACCOUNTS), help="comma-separated accounts (default: a region's)")
    args = parser.parse_args(argv)
    accounts = tuple(a.strip() for a in args.accounts.split(",") if a.strip())
    url = os.environ.get(ADMIN_URL_VARIABLE)
    if not url:
        raise SystemExit(f"set {ADMIN_URL_VARIABLE} to FerretDB's PostgreSQL database, as its admin role")
    import psycopg
    with psycopg.connect(url, connect_timeout=10) as conn:
        roles = setup(conn, passwords_from(os.environ, accounts), args.db_prefix, args.role_prefix)
    print("PostgreSQL roles ready, each owning its schema: " + ", ".join(
        f"{role} ({schema_for(account, args.db_prefix)})" for account, role in roles.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
