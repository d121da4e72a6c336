"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs. Pure functions, no storage.

Proof generation is written against a `node(level, index)` callable that returns the
hash of a complete subtree (the 2**level leaves from index * 2**level), so the same
code serves an in-memory list of leaf hashes (tests, bundles) and the stored tiles.
Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
"""
import hashlib

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not prove what it claims."""


def leaf_hash(leaf):
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n):
    """The largest power of two smaller than n (n > 1): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes):
    """MTH over a list of leaf hashes (in memory: for tests and small trees)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    frontier = CompactRange()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


class CompactRange:
    """The right frontier of a growing tree: the roots of its perfect subtrees, largest
    first. Appending is amortised O(1) hashes; the root is O(log n)."""

    def __init__(self, size=0, hashes=()):
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError("a compact range of size %d has %d hashes" % (size, bin(size).count("1")))

    def append(self, h):
        self.hashes.append(h)
        size = self.size
        # merge while the lowest bits of the old size are set: each is a finished pair
        while size & 1:
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)
            size >>= 1
        self.size += 1

    def root(self):
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            result = node_hash(h, result)
        return result


def memory_nodes(leaf_hashes):
    """A node(level, index) callable over an in-memory list of leaf hashes."""
    def node(level, index):
        return root(leaf_hashes[index << level:(index + 1) << level])
    return node


def subtree_hash(node, start, end):
    """MTH(D[start:end]) where start is aligned to a power of two at least as large as
    the range, as every range in RFC 6962's recursion is: O(log n) node look-ups."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return node(level, start >> level)
    k = split_point(n)
    return node_hash(subtree_hash(node, start, start + k), subtree_hash(node, start + k, end))


def inclusion_proof(node, index, size):
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1, nearest sibling first."""
    if not 0 <= index < size:
        raise ValueError("index %d is not in a tree of size %d" % (index, size))
    proof = []
    start, end = 0, size
    # walk down from the root, collecting the sibling of each side taken, then reverse
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            proof.append(subtree_hash(node, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(node, start, start + k))
            start = start + k
    proof.reverse()
    return proof


def consistency_proof(node, first, second):
    """PROOF(first, D[0:second]) of RFC 6962 §2.1.2."""
    if not 0 < first <= second:
        raise ValueError("need 0 < first <= second, got %d and %d" % (first, second))
    proof = []
    start, end, whole = 0, second, True
    m = first
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(subtree_hash(node, start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(subtree_hash(node, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(node, start, start + k))
            start, m, whole = start + k, m - k, False
    proof.reverse()
    return proof


def root_from_inclusion(leaf, index, size, proof):
    """RFC 9162 §2.1.3.2: the root that `proof` implies for `leaf` at `index`."""
    if not 0 <= index < size:
        raise ProofError("index %d is not in a tree of size %d" % (index, size))
    _check_hashes([leaf] + list(proof))
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is high")
    return r


def verify_inclusion(leaf, index, size, proof, expected_root):
    if root_from_inclusion(leaf, index, size, proof) != expected_root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 §2.1.4.2; raises ProofError unless the tree of size `second` with
    `second_root` extends the tree of size `first` with `first_root`."""
    _check_hashes(list(proof))
    if first > second:
        raise ProofError("the first tree is larger than the second")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("equal sizes with different roots")
        return
    if first == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is too short")
    if fr != first_root:
        raise ProofError("the proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the proof does not lead to the second root")


def _check_hashes(hashes):
    for h in hashes:
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise ProofError("every hash must be %d bytes" % HASH_SIZE)
