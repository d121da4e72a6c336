"""The tiled tree agrees with the plain Merkle tree at every size, batch shape and node."""
import random

import pytest

from services.records import merkle, tiles

HASHES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(70000)]


def grow(batches):
    head, stored = tiles.TreeHead(), {}
    for batch in batches:
        head, full = tiles.extend(head, batch)
        for key, data in full:
            assert key not in stored
            stored[key] = data
    return head, stored


@pytest.mark.parametrize("size", [0, 1, 2, 255, 256, 257, 511, 65535, 65536, 65537, 69999])
def test_the_head_alone_gives_the_root(size):
    head, _ = grow([HASHES[:size]])
    assert head.size == size
    assert head.root() == merkle.root(HASHES[:size])


def test_batches_of_any_shape_give_the_same_tiles_and_head():
    rng = random.Random(1)
    cuts = sorted(rng.sample(range(1, 66000), 300))
    batches = [HASHES[a:b] for a, b in zip([0] + cuts, cuts + [66000])]
    assert grow(batches) == grow([HASHES[:66000]])
    one_by_one = grow([[h] for h in HASHES[:700]])
    assert one_by_one == grow([HASHES[:700]])


def test_proofs_from_tiles_equal_proofs_from_memory():
    size = 66000
    head, stored = grow([HASHES[:size]])
    reads = []

    def read_tile(level, index):
        reads.append((level, index))
        return stored[(level, index)]

    node = tiles.nodes(head, read_tile)
    memory = merkle.memory_nodes(HASHES[:size])
    rng = random.Random(2)
    for index in rng.sample(range(size), 20) + [0, size - 1, 65535, 65536]:
        reads.clear()
        proof = merkle.inclusion_proof(node, index, size)
        assert proof == merkle.inclusion_proof(memory, index, size)
        assert len(set(reads)) <= 2 * (size.bit_length() // tiles.HEIGHT + 1)  # O(log n) documents
    for first in [1, 255, 256, 4097, 65536, 65999]:
        assert merkle.consistency_proof(node, first, size) == merkle.consistency_proof(memory, first, size)
        # and for an older tree size, from the newer head
        assert merkle.subtree_hash(node, 0, first) == merkle.root(HASHES[:first])


def test_a_head_with_rows_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError):
        tiles.TreeHead(3, [[HASHES[0]]])
