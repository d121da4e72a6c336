"""Provision one development API key per role and write them to a JSON file.

    python -m shared.security.provision --out var/dev-keys.json [--agency dev-police] [--facilitator fac-0001]

The facilitator key belongs to one facilitator (--facilitator), and acts on their offers only.

Run again, it leaves an existing key file alone, so the keys stay stable across
restarts of the demo.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from shared.config import settings_for  # noqa: E402
from shared.security import api_keys  # noqa: E402


def keys_valid(path, facilitator):
    try:
        with open(path) as handle:
            keys = json.load(handle)
    except (OSError, ValueError):
        return False
    if set(keys) != set(api_keys.ROLES):
        return False
    found = {role: api_keys.lookup(key) for role, key in keys.items()}
    return all(found.values()) and found["facilitator"].subject == facilitator


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--agency", default="dev-police")
    parser.add_argument("--facilitator", default="fac-0001", help="whose the facilitator key is")
    args = parser.parse_args(argv)
    api_keys.connect_identity(settings_for("identity"))
    if keys_valid(args.out, args.facilitator):
        print(f"development keys already in {args.out}")
        return 0
    keys = api_keys.issue_all(args.agency, "development", args.facilitator)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle, indent=2)
    print(f"wrote development keys for {', '.join(keys)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
