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


import rfc8785  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.text() | st.integers(-(2 ** 53) + 1, 2 ** 53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_the_fast_encoder_agrees_with_the_rfc8785_reference(value):
    try:
        expected = rfc8785.dumps(value)
    except Exception as error:
        try:
            ledger.leaf_bytes(value)
        except Exception as ours:
            assert type(ours) is type(error)
            return
        raise AssertionError("the reference refused this value and we did not")
    assert ledger.leaf_bytes(value) == expected


def test_keys_that_sort_differently_in_utf16_and_control_characters_agree():
    for value in ({"\U0001f600": 1, "\ufb01": 2, "a": 3}, {"k": "\x00\x1f\x7f\u2028\"\\/\n"}, {"big": 2 ** 60},
                  {"f": 1e21, "g": 0.1, "h": -0.0}):
        try:
            expected = rfc8785.dumps(value)
        except Exception:
            continue
        assert ledger.leaf_bytes(value) == expected
