"""Make a new ledger signing key.

    python -m services.records.keygen [KEY_NAME] >> var/secrets.env

prints `AMENDS_LEDGER_SIGNING_KEY=PRIVATE+KEY+<name>+<id>+<base64>` on stdout (a C2SP
signed-note signer key, as golang.org/x/mod/sumdb/note writes them) and the matching
verifier key on stderr. The key name is also the checkpoints' origin line, and records
signs only as its own region's, `amends.<AMENDS_REGION>/ledger` (residency.py): that is
the default name, for the AMENDS_REGION in the environment (`local` without one).
"""
import argparse
import sys

from services.records.checkpoints import Signer
from services.records.residency import origin
from shared.config import setting


def default_name():
    return origin(setting(None, "AMENDS_REGION"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", default=default_name(),
                        help="key name and checkpoint origin (default: amends.<AMENDS_REGION>/ledger)")
    args = parser.parse_args(argv)
    signer = Signer.generate(args.name)
    print(f"AMENDS_LEDGER_SIGNING_KEY={signer}")
    print(f"# verifier key: {signer.verifier}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
