"""Verify the ledger, or a case bundle, from the command line.

    python -m services.records.verify --all [--public-key KEY]
        Recompute the whole log from the database (MONGO_URI, AMENDS_DB_PREFIX), streaming,
        and check every tile, the tree head and every signed checkpoint. The public key
        defaults to the one derived from AMENDS_LEDGER_SIGNING_KEY.
    python -m services.records.verify --bundle FILE --public-key KEY
        Verify a bundle from GET /v1/cases/{id}/bundle offline.

Prints a JSON summary and exits 0 if all is well; otherwise prints the first problem,
naming the entry (sequence number), and exits 1.
"""
import argparse
import json
import os
import sys

from services.records import bundle as bundles
from services.records.audit import LedgerBroken
from services.records.checkpoints import NoteError, Signer, Verifier
from services.records.dependencies import SIGNING_KEY


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--all", action="store_true", help="verify the whole log in the database")
    what.add_argument("--bundle", metavar="FILE", help="verify a case bundle offline")
    parser.add_argument("--public-key", metavar="KEY", help="the ledger's verifier key (name+id+base64)")
    args = parser.parse_args(argv)
    try:
        verifier = _verifier(args.public_key)
    except NoteError as error:
        print(f"FAILED: the public key is not usable: {error}", file=sys.stderr)
        return 2
    if args.bundle:
        if verifier is None:
            print("FAILED: --bundle needs --public-key", file=sys.stderr)
            return 2
        try:
            with open(args.bundle, encoding="utf-8") as handle:
                document = json.load(handle)
            summary = bundles.verify(document, verifier)
        except (OSError, ValueError) as error:
            print(f"FAILED: {error}", file=sys.stderr)
            return 1
        print(json.dumps(dict(summary, valid=True)))
        return 0
    return _verify_database(verifier)


def _verifier(text):
    if text:
        return Verifier.parse(text)
    if os.environ.get(SIGNING_KEY, "").strip():
        return Signer.parse(os.environ[SIGNING_KEY]).verifier
    return None


def _verify_database(verifier):
    from shared.config import settings_for
    from shared.storage import connect
    from services.records.store import Ledger
    settings = settings_for("records")
    ledger = Ledger(connect("records", settings), postgresql_url=settings.ferretdb_postgresql_url)
    try:
        summary = ledger.audit(verifier)
    except LedgerBroken as broken:
        print(f"FAILED: {broken}", file=sys.stderr)
        print(json.dumps({"valid": False, "first_bad_seq": broken.seq, "problem": str(broken)}))
        return 1
    if verifier is None:
        print("warning: no public key given; checkpoint signatures were not checked", file=sys.stderr)
    print(json.dumps(dict(summary, valid=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
