"""A case bundle: a case's entries with their inclusion proofs and a signed checkpoint,
self-contained so that a third party can verify it offline with the ledger's public
key alone. Pure: building and verifying.

    {"format": "amends-ledger-bundle/1",
     "case_id": "<the events' subject>",
     "checkpoint": "<signed note: origin, tree size, base64 root; signature line>",
     "entries": [{"seq": <int>, "leaf_hash": "<hex>", "event": {<CloudEvent as received>},
                  "inclusion_proof": ["<hex>", ...]}, ...]}
"""
import re

from services.records import checkpoints, ledger, merkle

FORMAT = "amends-ledger-bundle/1"
_HEX = re.compile(r"^[0-9a-f]{64}$")


class BundleError(ValueError):
    pass


def build(case_id, checkpoint_note, entries):
    """`entries`: (seq, leaf text, inclusion proof as a list of hashes), in order."""
    return {
        "format": FORMAT,
        "case_id": case_id,
        "checkpoint": checkpoint_note,
        "entries": [
            {"seq": seq, "leaf_hash": merkle.leaf_hash(leaf.encode("utf-8")).hex(),
             "event": ledger.parse_leaf(leaf), "inclusion_proof": [h.hex() for h in proof]}
            for seq, leaf, proof in entries
        ],
    }


def verify(bundle, verifier):
    """Check the signature, then every entry's leaf and proof against the signed root.
    Return a summary; raise BundleError naming the first problem."""
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise BundleError(f"not a {FORMAT} bundle")
    if set(bundle) != {"format", "case_id", "checkpoint", "entries"}:
        raise BundleError("the bundle has missing or unexpected fields")
    try:
        head = checkpoints.open_checkpoint(bundle["checkpoint"], verifier)
    except (checkpoints.NoteError, TypeError) as error:
        raise BundleError(f"the checkpoint does not verify: {error}")
    entries = bundle["entries"]
    if not isinstance(entries, list) or not entries:
        raise BundleError("the bundle has no entries")
    previous = -1
    for position, entry in enumerate(entries):
        try:
            seq, stated, event, proof = entry["seq"], entry["leaf_hash"], entry["event"], entry["inclusion_proof"]
        except (KeyError, TypeError):
            raise BundleError(f"entry {position} lacks seq, leaf_hash, event or inclusion_proof")
        if set(entry) != {"seq", "leaf_hash", "event", "inclusion_proof"}:
            raise BundleError(f"entry {position} has unexpected fields")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= previous:
            raise BundleError(f"entry {position}: seq must be an integer above the one before")
        if not isinstance(event, dict) or event.get("subject") != bundle["case_id"]:
            raise BundleError(f"entry {seq}: the event is not about case {bundle['case_id']}")
        try:
            leaf = merkle.leaf_hash(ledger.leaf_bytes(event))
        except Exception:
            raise BundleError(f"entry {seq}: the event cannot be canonicalised (RFC 8785)")
        if not isinstance(stated, str) or leaf.hex() != stated:
            raise BundleError(f"entry {seq}: the event does not hash to its leaf_hash")
        if not isinstance(proof, list) or not all(isinstance(h, str) and _HEX.match(h) for h in proof):
            raise BundleError(f"entry {seq}: the inclusion proof must be a list of lowercase hex hashes")
        try:
            merkle.verify_inclusion(leaf, seq, head.size, [bytes.fromhex(h) for h in proof], head.root)
        except merkle.ProofError as error:
            raise BundleError(f"entry {seq}: {error} (signed tree size {head.size})")
        previous = seq
    return {"case_id": bundle["case_id"], "entries": len(entries), "tree_size": head.size,
            "root": head.root.hex(), "origin": head.origin}
