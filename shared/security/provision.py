"""Provision one development API key per role and write them to a JSON file.

    python -m shared.security.provision --out var/dev-keys.json [--agency dev-police] [--facilitator fac-0001]
        [--region south-wales --region gwent ...]

Each key belongs to a development person (the facilitator key to facilitator
`--facilitator`, which acts on their own offers only) and covers the demo's regions.
Keys are issued through `shared.security.keys`, so their issue is in the ledger.

Run again, it leaves a key file alone while all its keys still work, so the keys stay
stable across restarts of the demo; a role with no working key in the file (a key that
expired, or a role added since, such as `operator`) gets a new key, and the others keep theirs.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from shared.config import settings_for  # noqa: E402
from shared.security import api_keys  # noqa: E402
from shared.security.keys import PRODUCER, Keys, _relay  # noqa: E402

DEMO_REGIONS = ("south-wales", "gwent", "north-wales", "dyfed-powys")


def working_keys(path, facilitator):
    """The keys of the file at `path` that still work, role -> key: each a usable key of its
    role (the facilitator's `facilitator`'s). Nothing, if there is no readable file."""
    try:
        with open(path) as handle:
            keys = json.load(handle)
    except (OSError, ValueError):
        return {}
    if not isinstance(keys, dict):
        return {}
    working = {}
    for role, key in keys.items():
        found = api_keys.lookup(key) if role in api_keys.ROLES and isinstance(key, str) else None
        if found is not None and found.role == role and (role != "facilitator" or found.subject == facilitator):
            working[role] = key
    return working


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--agency", default="dev-police")
    parser.add_argument("--facilitator", default="fac-0001", help="whose the facilitator key is")
    parser.add_argument("--region", action="append", default=None, help="a region the keys cover (repeatable)")
    args = parser.parse_args(argv)
    admin = Keys(settings_for(PRODUCER))
    kept = working_keys(args.out, args.facilitator)
    missing = [role for role in api_keys.ROLES if role not in kept]
    if not missing:
        print(f"development keys already in {args.out}")
        _relay(admin)
        return 0
    regions = args.region or list(DEMO_REGIONS)
    # only the roles without a working key get one (a role added since, say the operator's):
    # the others keep theirs, so what was given out with them goes on working
    keys = {**kept, **api_keys.issue_all(
        args.agency, "development", args.facilitator, regions, roles=missing, issue_one=lambda role, subject, national:
        admin.issue(role, args.agency, subject, regions, national, by="operator:bootstrap",
                    label=f"development {role}")[0])}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle, indent=2)
    print(f"wrote development keys for {', '.join(missing)} to {args.out}"
          + (f" (kept those for {', '.join(kept)})" if kept else ""))
    _relay(admin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
