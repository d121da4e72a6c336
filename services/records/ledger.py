"""The ledger's hashing: pure functions over events as received.

An entry's leaf is the RFC 8785 (JCS) canonical JSON of the CloudEvent, so anyone
holding a copy of an event computes the same leaf hash. Leaf hashes use RFC 6962's
domain separation; each entry's chain hash commits to every entry before it.
"""
import hashlib

import rfc8785

GENESIS = bytes(32)


def leaf_bytes(event):
    return rfc8785.dumps(event)


def leaf_hash(event):
    return hashlib.sha256(b"\x00" + leaf_bytes(event)).digest()


def chain_hash(previous, leaf):
    return hashlib.sha256(b"\x01" + previous + leaf).digest()


class ChainBroken(Exception):
    def __init__(self, seq, problem):
        self.seq = seq
        super().__init__(f"entry {seq}: {problem}")


def verify(entries):
    """Check a run of (seq, event, leaf_hash, chain_hash) entries from seq 0; raise
    ChainBroken naming the first bad one. Streams: entries may be any iterable."""
    previous = GENESIS
    expected_seq = 0
    for seq, event, stored_leaf, stored_chain in entries:
        if seq != expected_seq:
            raise ChainBroken(expected_seq, f"missing; found {seq} in its place")
        if leaf_hash(event) != stored_leaf:
            raise ChainBroken(seq, "the event does not match its leaf hash")
        if chain_hash(previous, stored_leaf) != stored_chain:
            raise ChainBroken(seq, "the chain hash does not follow from the entry before it")
        previous = stored_chain
        expected_seq += 1
    return expected_seq
