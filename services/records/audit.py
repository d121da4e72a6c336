"""Full verification of the stored log, streaming. Pure: the caller hands in iterators.

From the entries alone (their leaves, in sequence order) it recomputes every leaf
hash, every tile and the tree head, and compares each with what is stored; then it
checks every signed checkpoint's signature and that its root is the recomputed root
at its size. Memory is O(log n) plus one tile. It stops at the first problem and names
the entry (sequence number) where it lies.
"""
from services.records import checkpoints, merkle, tiles


class LedgerBroken(Exception):
    def __init__(self, seq, problem):
        self.seq = seq
        self.problem = problem
        where = f"entry {seq}" if seq is not None else "ledger"
        super().__init__(f"{where}: {problem}")


def audit(entries, head, refresh_head, level0_tiles, read_tile, signed, verifier=None):
    """Verify the log; return a summary dict, or raise LedgerBroken.

    entries       iterable of (seq, seq field, leaf text) in storage order
    head          the stored TreeHead, read before the entries
    refresh_head  callable giving the stored head again (entries written while we read
                  are ahead of the head we started with)
    level0_tiles  iterable of (index, 8192 bytes) for the stored leaf-level tiles, in order
    read_tile     read_tile(level, index) for any stored full tile
    signed        list of (size, signed note text), smallest size first
    verifier      checkpoints.Verifier; None skips signature checks (reported)
    """
    heads = {}
    for size, note in signed:
        try:
            checkpoint = (checkpoints.open_checkpoint(note, verifier) if verifier is not None
                          else checkpoints.Checkpoint.parse(note[:note.rfind("\n\n") + 1]))
        except checkpoints.NoteError as error:
            raise LedgerBroken(None, f"the checkpoint stored for size {size} does not verify: {error}")
        if checkpoint.size != size:
            raise LedgerBroken(None, f"the checkpoint stored for size {size} is signed for size {checkpoint.size}")
        heads[size] = checkpoint.root
    stops = sorted(heads)
    last_good = 0

    tree = tiles.TreeHead()
    pending = []
    stored_level0 = iter(level0_tiles)

    current = {"index": None, "data": b""}  # the level-0 tile in hand

    def stored_tile(level, index):
        if level == 0:
            if current["index"] == index:
                return current["data"]
            for stored_index, data in stored_level0:
                if stored_index == index:
                    return data
                if stored_index > index:
                    break
        try:
            return read_tile(level, index)
        except LookupError:
            raise LedgerBroken(index << (tiles.HEIGHT * level), f"tile {level}/{index} is missing")

    def fold():
        nonlocal tree
        new, full = tiles.extend(tree, pending)
        for (level, index), data in full:
            compare_row(level, index * tiles.WIDTH, data, stored_tile(level, index), f"tile {level}/{index}")
        tree = new
        pending.clear()

    def recorded_leaf_hash(seq):
        """The leaf hash the stored tree has for `seq` (a level-0 tile, or the head)."""
        index, offset = divmod(seq, tiles.WIDTH)
        if index < head.size // tiles.WIDTH:
            if current["index"] != index:
                current["index"], current["data"] = index, stored_tile(0, index)
            return current["data"][offset * 32:(offset + 1) * 32]
        row = head.rows[0] if head.rows else []
        return row[offset] if offset < len(row) else None

    count = 0
    for seq, seq_field, leaf in entries:
        if seq != count:
            if seq > count:
                raise LedgerBroken(count, "missing (the next entry stored is %d)" % seq)
            raise LedgerBroken(seq, "stored out of place or twice (found after entry %d)" % (count - 1))
        if seq_field != seq:
            raise LedgerBroken(seq, f"its seq field says {seq_field}")
        if not isinstance(leaf, str):
            raise LedgerBroken(seq, "it has no leaf")
        if seq >= head.size:
            head = refresh_head()
            if seq >= head.size:
                raise LedgerBroken(seq, f"it is not in the tree (the tree head records {head.size} entries)")
        leaf_hash = merkle.leaf_hash(leaf.encode("utf-8"))
        if leaf_hash != recorded_leaf_hash(seq):
            raise LedgerBroken(seq, "it does not match the leaf hash the tree recorded for it")
        pending.append(leaf_hash)
        count += 1
        if count % tiles.WIDTH == 0:
            fold()
        while stops and stops[0] == count:
            fold()
            if tree.root() != heads[stops[0]]:
                raise LedgerBroken(last_good, f"the first {count} entries no longer match the head signed at "
                                              f"size {count}; the change lies in entries {last_good} to {count - 1}")
            last_good = stops.pop(0)
    fold()
    if count < head.size:
        raise LedgerBroken(count, f"missing (the tree head records {head.size} entries)")
    if stops:
        raise LedgerBroken(count, f"missing (a head was signed at size {stops[0]})")
    for level, (ours, stored) in enumerate(zip(tree.rows, head.rows + [[]] * len(tree.rows))):
        start = (count >> (tiles.HEIGHT * level)) // tiles.WIDTH * tiles.WIDTH
        compare_row(level, start, b"".join(ours), b"".join(stored), f"the tree head's row {level}")
    return {"entries": count, "tree_size": head.size, "root": tree.root().hex(),
            "checkpoints": len(heads), "signatures_checked": verifier is not None}


def compare_row(level, first, ours, stored, what):
    """Name the first leaf under the first hash where a recomputed row and its stored
    copy differ."""
    if ours == stored:
        return
    for i in range(0, max(len(ours), len(stored)), 32):
        if ours[i:i + 32] != stored[i:i + 32]:
            seq = (first + i // 32) << (tiles.HEIGHT * level)
            if level == 0:
                raise LedgerBroken(seq, "it does not match the leaf hash the tree recorded for it")
            raise LedgerBroken(seq, f"{what} does not match the entries under it")
