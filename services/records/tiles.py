"""How the tree is kept: tiles of 256 hashes and a tree head. Pure: no storage.

As in Go's sumdb/tlog, the tree's hashes are grouped into tiles of height 8: tile
(L, N) is the row of tree level 8*L from node 256*N to 256*N+255. A tile is stored
only once it is full, and never changes after that. The rightmost, unfinished part of
each of those rows lives in the tree head, with the tree size. From the head alone
one gets the root; any complete subtree's hash needs at most one tile and at most 127
hashes, so a proof reads O(log n) small documents.
"""
from services.records import merkle

HEIGHT = 8
WIDTH = 1 << HEIGHT


class TreeHead:
    """The tree size and the unfinished row of each tile level (lists of hashes)."""

    def __init__(self, size=0, rows=()):
        self.size = size
        self.rows = [list(row) for row in rows]
        for level, row in enumerate(self.rows):
            if len(row) != (size >> (HEIGHT * level)) % WIDTH:
                raise ValueError("row %d of a tree of size %d has %d hashes" % (level, size, len(row)))

    def root(self):
        return merkle.subtree_hash(nodes(self, _no_tiles), 0, self.size)

    def __eq__(self, other):
        return isinstance(other, TreeHead) and (self.size, self.rows) == (other.size, other.rows)


def extend(head, leaf_hashes):
    """The head after appending `leaf_hashes`, and the tiles this filled, as a list of
    ((level, index), 8192 bytes)."""
    rows = [list(row) for row in head.rows]
    counts = []  # nodes in each tile level's row, so far
    full = []

    def push(level, h):
        while len(rows) <= level:
            rows.append([])
        while len(counts) <= level:
            counts.append(head.size >> (HEIGHT * len(counts)))
        rows[level].append(h)
        counts[level] += 1
        if len(rows[level]) == WIDTH:
            full.append(((level, counts[level] // WIDTH - 1), b"".join(rows[level])))
            subtree = merkle.root(rows[level])
            rows[level] = []
            push(level + 1, subtree)

    for h in leaf_hashes:
        push(0, h)
    size = head.size + len(leaf_hashes)
    while rows and not rows[-1] and (size >> (HEIGHT * (len(rows) - 1))) == 0:
        rows.pop()
    return TreeHead(size, rows), full


def nodes(head, read_tile):
    """A node(level, index) callable for merkle's proofs over a tree with this head;
    `read_tile(level, index)` returns a full tile's bytes."""

    def node(level, index):
        tile_level, rise = divmod(level, HEIGHT)
        first = index << rise
        count = 1 << rise
        tile, offset = divmod(first, WIDTH)
        full_tiles = (head.size >> (HEIGHT * tile_level)) // WIDTH
        if tile < full_tiles:
            data = read_tile(tile_level, tile)
            hashes = [data[i * 32:(i + 1) * 32] for i in range(offset, offset + count)]
        else:
            hashes = head.rows[tile_level][offset:offset + count]
        if len(hashes) != count:
            raise ValueError("node (%d, %d) is not complete in a tree of size %d" % (level, index, head.size))
        return merkle.root(hashes)

    return node


def _no_tiles(level, index):
    raise AssertionError("the root needs only the head")


def tile_hashes(data):
    return [data[i:i + 32] for i in range(0, len(data), 32)]
