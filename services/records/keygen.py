"""Make a new ledger signing key.

    python -m services.records.keygen [KEY_NAME] >> var/secrets.env

prints `AMENDS_LEDGER_SIGNING_KEY=PRIVATE+KEY+<name>+<id>+<base64>` on stdout (a C2SP
signed-note signer key, as golang.org/x/mod/sumdb/note writes them) and the matching
verifier key on stderr. The key name is also the checkpoints' origin line.
"""
import argparse
import sys

from services.records.checkpoints import Signer

DEFAULT_NAME = "amends.local/ledger"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", default=DEFAULT_NAME, help="key name and checkpoint origin")
    args = parser.parse_args(argv)
    signer = Signer.generate(args.name)
    print(f"AMENDS_LEDGER_SIGNING_KEY={signer}")
    print(f"# verifier key: {signer.verifier}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
