"""What the operators' ledger page shows, read from records' API with the operator's key:
the latest signed tree head, checked here against records' public key; records' full
verification of the ledger, timed; a case's bundle, as a file to download.

The console keeps none of it: each is asked of records when the page is shown.
"""
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from services.console.apis import Refused
from services.records.checkpoints import Checkpoint, NoteError, Verifier, open_checkpoint

# records reads every entry and signed head to verify the ledger: give it longer than a page
VERIFY_TIMEOUT = 300


@dataclass(frozen=True)
class SignedHead:
    size: int
    root_hash: str          # hex, as records' proofs give it
    origin: str
    read_at: datetime       # when the console read it (a signed head carries no time of its own)
    signature_valid: bool   # signed by records' public key, for the key's own origin
    readable: bool = True   # False: the note is not a checkpoint at all (size and root unknown)


def signed_head(apis, now=None):
    """The latest signed head, or None while records has signed none."""
    try:
        note = apis.text("records", "/v1/ledger/head")
    except Refused as refused:
        if refused.status == 404:
            return None
        raise
    read_at = now or datetime.now(timezone.utc)
    try:
        verifier = Verifier.parse(apis.text("records", "/v1/ledger/public-key"))
        checkpoint, valid = open_checkpoint(note, verifier), True
    except (NoteError, Refused):   # a signature that does not verify, or no key to check it with
        checkpoint, valid = _unchecked(note), False
    if checkpoint is None:
        return SignedHead(0, "", "", read_at, False, readable=False)
    return SignedHead(checkpoint.size, checkpoint.root.hex(), checkpoint.origin, read_at, valid)


def _unchecked(note):
    """The checkpoint a note says it holds, without its signature: to show what an invalid
    head claims. None if it is not one."""
    try:
        return Checkpoint.parse(note[:note.rfind("\n\n") + 1])
    except (NoteError, TypeError):
        return None


@dataclass(frozen=True)
class Verification:
    valid: bool
    entries: int = None          # how many entries were checked (when valid)
    first_bad_seq: int = None    # the first position at fault (when not)
    seconds: float = 0.0


def verify(apis, clock=time.monotonic):
    """Records' verification of the whole ledger, and how long it took to answer."""
    started = clock()
    answer = apis.get_slowly("records", "/v1/ledger/verify", VERIFY_TIMEOUT)
    seconds = clock() - started
    if answer.get("valid"):
        return Verification(True, entries=answer.get("entries"), seconds=seconds)
    # records' own description of the fault is not shown: it is in English only, and the
    # position is what an operator needs to take it further
    return Verification(False, first_bad_seq=answer.get("first_bad_seq"), seconds=seconds)


def bundle_file(bundle, case_id):
    """(the file's name, its bytes) for a case's bundle, as records gave it."""
    return f"amends-case-{case_id}-bundle.json", json.dumps(bundle, indent=2).encode("utf-8")
