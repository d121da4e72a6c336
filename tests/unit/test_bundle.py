"""Case bundles verify offline, and any change to what they say makes them fail."""
import json

import pytest

from services.records import bundle, checkpoints, ledger, merkle
from services.records.checkpoints import Signer

SIGNER = Signer.generate("amends.test/ledger")


def event(i, case):
    return {"specversion": "1.0", "id": f"e-{i}", "source": "/amends/test/referrals", "type": "case.status_changed",
            "subject": case, "time": "2026-11-26T10:00:00Z", "datacontenttype": "application/json",
            "data": {"case_id": case, "status": f"s{i}", "note": "caf\u00e9"}, "correlationid": case,
            "causationid": None, "region": "test", "schemaversion": 1}


def make(size=11, case="case-x", members=(2, 7, 9)):
    events = [event(i, case if i in members else "other") for i in range(size)]
    leaves = [ledger.leaf_bytes(e).decode() for e in events]
    hashes = [merkle.leaf_hash(leaf.encode()) for leaf in leaves]
    node = merkle.memory_nodes(hashes)
    note = checkpoints.sign_checkpoint(SIGNER, size, merkle.root(hashes))
    return bundle.build(case, note, [(i, leaves[i], merkle.inclusion_proof(node, i, size)) for i in members])


def test_a_bundle_verifies_offline_with_the_public_key_alone():
    built = json.loads(json.dumps(make()))  # as it travels: JSON text
    summary = bundle.verify(built, checkpoints.Verifier.parse(str(SIGNER.verifier)))
    assert summary["entries"] == 3 and summary["tree_size"] == 11 and summary["case_id"] == "case-x"


def test_every_single_byte_change_that_changes_the_content_fails():
    text = json.dumps(make(size=5, members=(3,)), separators=(",", ":"))
    original = json.loads(text)
    checked = 0
    for i in range(len(text)):
        for replacement in {"0", "a", "Z", " "} - {text[i]}:
            mutated = text[:i] + replacement + text[i + 1:]
            try:
                document = json.loads(mutated)
            except ValueError:
                continue  # no longer JSON at all
            if document == original:
                continue  # the same content, spelt differently
            checked += 1
            with pytest.raises(bundle.BundleError):
                bundle.verify(document, SIGNER.verifier)
    assert checked > len(text)


def test_another_key_or_a_missing_entry_field_fails():
    built = make()
    with pytest.raises(bundle.BundleError):
        bundle.verify(built, Signer.generate("amends.test/ledger").verifier)
    del built["entries"][0]["inclusion_proof"]
    with pytest.raises(bundle.BundleError):
        bundle.verify(built, SIGNER.verifier)


def test_an_entry_of_another_case_cannot_be_slipped_in():
    built = make()
    built["case_id"] = "other"
    with pytest.raises(bundle.BundleError):
        bundle.verify(built, SIGNER.verifier)
