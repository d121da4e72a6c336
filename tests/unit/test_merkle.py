"""The Merkle code against published test vectors.

Vector data (not code) copied from transparency-dev/merkle (Apache-2.0):
testonly/constants.go (leaf inputs, node hashes, roots for sizes 0..8) and
proof/verify_test.go (inclusion and consistency proofs), which are the RFC 6962
reference vectors also used by certificate-transparency-go.
https://github.com/transparency-dev/merkle
"""
import hashlib
import random

import pytest

from services.records import merkle

H = bytes.fromhex

LEAVES = [H(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                         "606162636465666768696a6b6c6d6e6f")]

NODES = [
    [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
     H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
     H("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
     H("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
     H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
     H("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
     H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
     H("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")],
    [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
     H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
     H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
     H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0")],
    [H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
     H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")],
    [H("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

ROOTS = [  # by tree size, 0..8
    H("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    H("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    H("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    H("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    H("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    H("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

INCLUSION = [  # (leaf index, tree size, proof)
    (0, 1, []),
    (0, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
]

CONSISTENCY = [  # (first size, second size, proof)
    (1, 1, []),
    (1, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]

LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]
NODE = merkle.memory_nodes(LEAF_HASHES)


def test_leaf_and_node_hashes_match_the_vectors():
    for level, row in enumerate(NODES):
        for index, expected in enumerate(row):
            assert NODE(level, index) == expected, (level, index)
    assert LEAF_HASHES == NODES[0]


@pytest.mark.parametrize("size", range(0, 9))
def test_roots_for_every_size(size):
    assert merkle.root(LEAF_HASHES[:size]) == ROOTS[size]
    assert merkle.subtree_hash(NODE, 0, size) == ROOTS[size]


@pytest.mark.parametrize("index,size,proof", INCLUSION)
def test_inclusion_proofs_match_and_verify(index, size, proof):
    assert merkle.inclusion_proof(NODE, index, size) == proof
    merkle.verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize("first,second,proof", CONSISTENCY)
def test_consistency_proofs_match_and_verify(first, second, proof):
    assert merkle.consistency_proof(NODE, first, second) == proof
    merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


def corruptions(proof):
    """Each proof with one thing wrong, after the probes of transparency-dev's tests."""
    some = H("abacaba000000000000000000000000000000000000000000060061e00123456")
    yield proof + [some]
    yield [some] + proof
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        yield flipped
    if proof:
        yield proof[:-1]


@pytest.mark.parametrize("index,size,proof", [v for v in INCLUSION if v[2]])
def test_corrupted_inclusion_proofs_fail(index, size, proof):
    leaf = LEAF_HASHES[index]
    for bad in corruptions(proof):
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(leaf, index, size, bad, ROOTS[size])
    for bad_index, bad_size in ((index - 1, size), (index + 1, size), (index ^ 2, size), (index, size * 2), (index, size // 2)):
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(leaf, bad_index, bad_size, proof, ROOTS[size])
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(b"WrongLeaf"), index, size, proof, ROOTS[size])


@pytest.mark.parametrize("first,second,proof", [v for v in CONSISTENCY if v[2]])
def test_corrupted_consistency_proofs_fail(first, second, proof):
    for bad in list(corruptions(proof)) + [[]]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], bad)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, second, ROOTS[second], ROOTS[first], proof)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first + 1, second, ROOTS[first], ROOTS[second], proof)


def test_every_proof_of_a_larger_random_tree_verifies():
    rng = random.Random(6962)
    hashes = [merkle.leaf_hash(rng.randbytes(rng.randrange(0, 40))) for _ in range(70)]
    node = merkle.memory_nodes(hashes)
    roots = [merkle.root(hashes[:n]) for n in range(71)]
    for size in range(1, 71):
        assert merkle.subtree_hash(node, 0, size) == roots[size]
        for index in range(size):
            merkle.verify_inclusion(hashes[index], index, size, merkle.inclusion_proof(node, index, size), roots[size])
        for first in range(1, size + 1):
            merkle.verify_consistency(first, size, roots[first], roots[size],
                                      merkle.consistency_proof(node, first, size))


def test_compact_range_matches_the_reference_roots():
    frontier = merkle.CompactRange()
    for size, h in enumerate(LEAF_HASHES, start=1):
        frontier.append(h)
        assert frontier.root() == ROOTS[size]
    assert frontier.hashes == [NODES[3][0]]
    assert merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
