"""Load facilitators from a YAML file into the registry:

    python -m services.matching.seed deploy/local/facilitators.yaml
"""
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

import yaml  # noqa: E402

from services.matching import facilitators  # noqa: E402
from services.matching.store import MatchingStore  # noqa: E402


def main(argv=None):
    argv = argv if argv is not None else sys.argv[1:]
    with open(argv[0]) as handle:
        records = yaml.safe_load(handle)["facilitators"]
    store = MatchingStore.open()
    for record in records:
        facilitators.register(store, record)
    print(f"registered {len(records)} facilitators")
    return 0


if __name__ == "__main__":
    sys.exit(main())
