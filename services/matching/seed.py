"""Load facilitators from a YAML file into the registry:

    python -m services.matching.seed deploy/local/facilitators.yaml

Days in the file may be ISO or relative to the day it is loaded (see seed_file).
"""
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from services.matching import facilitators, seed_file  # noqa: E402
from services.matching.store import MatchingStore  # noqa: E402
from shared.relative_days import BadDay  # noqa: E402


def main(argv=None):
    argv = argv if argv is not None else sys.argv[1:]
    try:
        records = seed_file.read(argv[0])  # every day resolved before anything is stored
    except BadDay as error:
        print(f"not loaded: {error}", file=sys.stderr)
        return 2
    store = MatchingStore.open()
    for record in records:
        facilitators.register(store, record)
    print(f"registered {len(records)} facilitators")
    return 0


if __name__ == "__main__":
    sys.exit(main())
