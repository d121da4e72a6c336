import hashlib

from services.records import ledger


def test_the_leaf_is_the_jcs_canonical_json_and_its_hash_is_rfc6962():
    event = {"b": 1, "a": [1, "x"], "é": "ü", "n": 1.0}
    assert ledger.leaf_bytes(event) == '{"a":[1,"x"],"b":1,"n":1,"é":"ü"}'.encode()
    assert ledger.leaf_hash(event) == hashlib.sha256(b"\x00" + ledger.leaf_bytes(event)).digest()


def test_key_order_does_not_change_the_leaf_and_parsing_it_gives_the_event_back():
    assert ledger.leaf_hash({"a": 1, "b": 2}) == ledger.leaf_hash({"b": 2, "a": 1})
    event = {"id": "e1", "data": {"list": [True, None, "\u2028"]}}
    assert ledger.parse_leaf(ledger.leaf_bytes(event)) == event
