"""The streaming audit over in-memory stand-ins for the stored log."""
import pytest

from services.records import audit, checkpoints, merkle, tiles
from services.records.checkpoints import Signer

SIGNER = Signer.generate("amends.test/ledger")


def stored(size=600, signed_at=(100, 600)):
    leaves = ['{"n":%d}' % i for i in range(size)]
    head, full = tiles.extend(tiles.TreeHead(), [merkle.leaf_hash(x.encode()) for x in leaves])
    store = dict(full)
    notes = [(s, checkpoints.sign_checkpoint(SIGNER, s, merkle.root([merkle.leaf_hash(x.encode())
                                                                    for x in leaves[:s]]))) for s in signed_at]
    return leaves, head, store, notes


def run(leaves, head, store, notes, verifier=SIGNER.verifier):
    entries = ((i, i, leaf) for i, leaf in enumerate(leaves))
    level0 = ((index, data) for (level, index), data in sorted(store.items()) if level == 0)
    return audit.audit(entries, head, lambda: head, level0, lambda level, index: store[(level, index)],
                       notes, verifier)


def test_an_intact_log_passes_with_every_signature_checked():
    summary = run(*stored())
    assert summary["entries"] == 600 and summary["checkpoints"] == 2 and summary["signatures_checked"]


def test_a_changed_leaf_is_named_by_its_tile():
    leaves, head, store, notes = stored()
    leaves[257] = '{"n":"forged"}'
    with pytest.raises(audit.LedgerBroken) as caught:
        run(leaves, head, store, notes)
    assert caught.value.seq == 257


def test_a_changed_leaf_in_the_unfinished_tile_is_named_by_the_head():
    leaves, head, store, notes = stored(signed_at=())
    leaves[599] = '{"n":"forged"}'
    with pytest.raises(audit.LedgerBroken) as caught:
        run(leaves, head, store, notes)
    assert caught.value.seq == 599


def test_a_forged_signature_or_a_root_that_does_not_match_is_found():
    leaves, head, store, notes = stored()
    size, note = notes[0]
    with pytest.raises(audit.LedgerBroken):
        run(leaves, head, store, [(size, note.replace("\n100\n", "\n101\n"))] + notes[1:])
    other = checkpoints.sign_checkpoint(SIGNER, 100, bytes(32))
    with pytest.raises(audit.LedgerBroken) as caught:
        run(leaves, head, store, [(100, other)])
    assert caught.value.seq == 0 and "signed at size 100" in str(caught.value)


def test_entries_beyond_the_head_and_a_short_log_are_named():
    leaves, head, store, notes = stored(signed_at=())
    with pytest.raises(audit.LedgerBroken) as caught:
        run(leaves + ['{"n":"extra"}'], head, store, notes)
    assert caught.value.seq == 600
    with pytest.raises(audit.LedgerBroken) as caught:
        run(leaves[:590], head, store, notes)
    assert caught.value.seq == 590
