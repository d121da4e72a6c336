"""Rebuild the reports' read model from the ledger's beginning.

    MONGO_URI=... AMENDS_DB_PREFIX=amends python -m services.reports.rebuild

It saves an empty state at position -1 as a new generation (follower.py): every process of
the service loads it at its next round, and the one holding the lease folds the whole ledger
again, from records' feed. The reports answer from the empty state until it catches up.
Run it after a change to what the read model keeps; the figures of a complete ledger are
the same before and after.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402  (before pymongo is imported)

import argparse  # noqa: E402
import sys  # noqa: E402

from services.reports.follower import rebuild  # noqa: E402
from services.reports.store import ReportsStore  # noqa: E402
from shared.config import settings_for  # noqa: E402
from shared.storage import connect  # noqa: E402


def main(argv=None, settings=None):
    parser = argparse.ArgumentParser(prog="python -m services.reports.rebuild", description=__doc__.split("\n")[1])
    parser.parse_args(argv)
    head = rebuild(ReportsStore(connect("reports", settings or settings_for("reports"))))
    print(f"reports: rebuilding from the ledger's beginning (generation {head.generation}); "
          "the service folds it again at its next round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
