"""The console's accounts, from the command line.

    python -m services.console.admin add --username alice --role coordinator --subject coord-0042
        (the person's API key, of the same role, on stdin; the password is generated and printed once)
    python -m services.console.admin disable --username alice
    python -m services.console.admin list
    python -m services.console.admin dev --keys var/dev-keys.json --out var/console-accounts.json

A person's API key is issued as any other (`python -m shared.security.keys issue`), then
given to `add` on stdin; the console keeps it sealed with AMENDS_CONSOLE_KEY. `dev` makes
(or brings up to date) one development account per role from the development keys, with
passwords generated into `--out` (mode 600); run again, it keeps the passwords and takes
any key that has changed (an operator account made before operators had keys gets one).
Settings from the environment: MONGO_URI (the console's own database role),
AMENDS_DB_PREFIX, AMENDS_CONSOLE_KEY.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from services.console import accounts, passwords  # noqa: E402
from services.console.key_vault import KEY_SETTING, KeyVault, VaultError  # noqa: E402
from services.console.store import AccountExists, ConsoleStore  # noqa: E402
from shared.config import settings_for  # noqa: E402
from shared.storage import connect  # noqa: E402

SERVICE = "console"
# the development account of each role, acting with the dev-keys.json entry of its role
DEV_ACCOUNTS = {"coordinator": "dev-coordinator", "facilitator": "dev-facilitator", "auditor": "dev-auditor",
                "operator": "dev-operator"}


def open_store():
    settings = settings_for(SERVICE)
    store = ConsoleStore(connect(SERVICE, settings))
    store.ensure_indexes(settings.ferretdb_postgresql_url)
    return store


def add(store, vault, username, role, subject=None, api_key=None, password=None):
    """Make an account; returns its password (generated unless given)."""
    password = password or passwords.generate()
    sealed = vault.seal(api_key) if api_key else None
    store.add_account(accounts.new_account(username, role, passwords.hash_password(password), subject, sealed))
    return password


def provision_dev(store, vault, keys, known, facilitator):
    """One development account per role; `keys` role -> API key (dev-keys.json), `known`
    role -> {"username", "password"} from an earlier run. Returns the new `known`."""
    result = {}
    for role, username in DEV_ACCOUNTS.items():
        api_key = keys.get(role)
        if not api_key:
            raise SystemExit(f"no {role} key in the development keys")
        account = store.account(username)
        password = (known.get(role) or {}).get("password")
        if account is None:
            password = add(store, vault, username, role, facilitator if role == "facilitator" else None, api_key)
        else:
            if not password or not passwords.verify(account.password_hash, password):
                password = passwords.generate()
                store.set_password_hash(username, passwords.hash_password(password))
            if _opened(vault, account.sealed_key) != api_key:   # a changed key, or none yet
                store.set_sealed_key(username, vault.seal(api_key))
            if not account.active:
                store.set_active(username, True)
        result[role] = {"username": username, "password": password}
    return result


def _opened(vault, sealed):
    try:
        return vault.open(sealed) if sealed else None
    except VaultError:
        return None


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m services.console.admin", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    adding = commands.add_parser("add", help="make an account (the person's API key on stdin)")
    adding.add_argument("--username", required=True)
    adding.add_argument("--role", required=True, choices=accounts.ROLES)
    adding.add_argument("--subject", help="the person's pseudonymous id, as on their key (a facilitator's id)")
    disabling = commands.add_parser("disable", help="stop an account signing in, and end its sessions")
    disabling.add_argument("--username", required=True)
    commands.add_parser("list", help="list the accounts (never a password or key)")
    dev = commands.add_parser("dev", help="the development accounts, one per role")
    dev.add_argument("--keys", required=True, help="the development API keys (shared.security.provision's file)")
    dev.add_argument("--out", required=True, help="where to write the development sign-ins")
    dev.add_argument("--facilitator", default="fac-0001", help="whose the facilitator key is")
    args = parser.parse_args(argv)
    try:
        vault = KeyVault(os.environ.get(KEY_SETTING, ""))
    except VaultError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    store = open_store()
    if args.command == "add":
        api_key = sys.stdin.readline().strip() or None
        try:
            password = add(store, vault, args.username, args.role, args.subject, api_key)
        except (accounts.AccountRefused, AccountExists) as refused:
            print(f"error: {refused if isinstance(refused, accounts.AccountRefused) else 'the account exists'}",
                  file=sys.stderr)
            return 2
        print(f"account {args.username} ({args.role}); its password (shown once):\n{password}")
    elif args.command == "disable":
        if store.account(args.username) is None:
            print(f"error: no account {args.username}", file=sys.stderr)
            return 2
        store.set_active(args.username, False)
        print(f"disabled {args.username}")
    elif args.command == "list":
        for account in store.accounts():
            print(f"{account.username:<24} {account.role:<12} {account.subject or '-':<16} "
                  f"{'active' if account.active else 'disabled'}")
    else:
        sign_ins = provision_dev(store, vault, _read_json(args.keys), _read_json(args.out), args.facilitator)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(sign_ins, handle, indent=2)
        print(f"console development accounts ({', '.join(sign_ins)}) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
