"""What an entry's leaf is: the RFC 8785 (JCS) canonical JSON of the CloudEvent exactly
as it was received, as UTF-8 bytes. Anyone holding a copy of an event computes the
same bytes, and so the same leaf hash (merkle.leaf_hash)."""
import json

import rfc8785

from services.records import merkle


def leaf_bytes(event):
    return rfc8785.dumps(event)


def leaf_hash(event):
    return merkle.leaf_hash(leaf_bytes(event))


def parse_leaf(leaf):
    return json.loads(leaf)
