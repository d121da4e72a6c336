"""Print the national counts: per region, statistics by event type, from the national database.

    MONGO_URI=... AMENDS_DB_PREFIX=amends python -m services.national.counts [--json]
"""
import argparse
import json
import sys

from services.national.store import NationalStore
from shared.config import settings_for
from shared.statistics_profile import EXPORTED
from shared.storage import connect

SHOWN = ("referral.received", "case.assessed", "facilitator.assigned", "notification.sent", "case.closed")


def counts(settings=None):
    store = NationalStore(connect("national", settings or settings_for("national")))
    return store.counts(EXPORTED)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m services.national.counts", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="every event type, as JSON")
    args = parser.parse_args(argv)
    table = counts()
    if args.json:
        print(json.dumps(table, indent=2, sort_keys=True))
        return 0
    print(f"{'region':<16}{'all':>7}" + "".join(f"{kind:>22}" for kind in SHOWN))
    for region, row in table.items():
        print(f"{region:<16}{row['all']:>7}" + "".join(f"{row[kind]:>22}" for kind in SHOWN))
    return 0


if __name__ == "__main__":
    sys.exit(main())
