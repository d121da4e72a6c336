"""What an entry's leaf is: the RFC 8785 (JCS) canonical JSON of the CloudEvent exactly
as it was received, as UTF-8 bytes. Anyone holding a copy of an event computes the
same bytes, and so the same leaf hash (merkle.leaf_hash).

The `rfc8785` package is the reference. For JSON without floats, whose integers are
in the I-JSON range and whose keys sort the same by code point as by UTF-16 unit (no
key has a character beyond U+FFFF), JCS is exactly what the standard library's C
encoder writes with sorted keys, no spaces and no ASCII escaping: same string escapes
(the short forms, \\u00xx in lower case for other control characters, nothing else),
same integers. Events are that kind of JSON, and the C encoder is several times
faster; anything else goes to `rfc8785`. tests/unit/test_ledger_leaf.py checks the two
agree on generated JSON.
"""
import json

import rfc8785

from services.records import merkle

_MAX_INT = 2 ** 53 - 1


def leaf_bytes(event):
    if _plain(event):
        try:
            return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the reference decide
            pass
    return rfc8785.dumps(event)


def _plain(value):
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_MAX_INT <= value <= _MAX_INT
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) > "\uffff") or not _plain(item):
                return False
        return True
    if kind is list:
        return all(_plain(item) for item in value)
    return False


def leaf_hash(event):
    return merkle.leaf_hash(leaf_bytes(event))


def parse_leaf(leaf):
    return json.loads(leaf)
