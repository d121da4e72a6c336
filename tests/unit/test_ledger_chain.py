import hashlib

import pytest

from services.records import ledger


def chain(events):
    previous, rows = ledger.GENESIS, []
    for seq, event in enumerate(events):
        leaf = ledger.leaf_hash(event)
        previous = ledger.chain_hash(previous, leaf)
        rows.append((seq, event, leaf, previous))
    return rows


EVENTS = [{"id": f"e{i}", "type": "referral.received", "data": {"n": i, "é": "ü"}} for i in range(5)]


def test_leaf_hash_is_sha256_of_0x00_and_canonical_json():
    event = {"b": 1, "a": [1, "x"]}
    assert ledger.leaf_bytes(event) == b'{"a":[1,"x"],"b":1}'
    assert ledger.leaf_hash(event) == hashlib.sha256(b'\x00{"a":[1,"x"],"b":1}').digest()


def test_key_order_does_not_change_the_leaf():
    assert ledger.leaf_hash({"a": 1, "b": 2}) == ledger.leaf_hash({"b": 2, "a": 1})


def test_an_intact_chain_verifies():
    assert ledger.verify(chain(EVENTS)) == 5


def test_a_changed_event_is_named():
    rows = chain(EVENTS)
    seq, event, leaf, chained = rows[2]
    rows[2] = (seq, dict(event, data={"n": 99}), leaf, chained)
    with pytest.raises(ledger.ChainBroken) as caught:
        ledger.verify(rows)
    assert caught.value.seq == 2


def test_a_deleted_entry_is_named():
    rows = chain(EVENTS)
    del rows[3]
    with pytest.raises(ledger.ChainBroken) as caught:
        ledger.verify(rows)
    assert caught.value.seq == 3


def test_swapped_entries_are_named():
    rows = chain(EVENTS)
    a, b = rows[1], rows[2]
    rows[1], rows[2] = (1,) + b[1:], (2,) + a[1:]
    with pytest.raises(ledger.ChainBroken) as caught:
        ledger.verify(rows)
    assert caught.value.seq == 1
