"""The operators' ledger page's reading of records' answers: a signed head checked against
records' public key, a verification timed, a case reference checked before any call."""
import hashlib
import json
from datetime import datetime, timezone

import pytest

from services.console import forms, ledger
from services.console.apis import Refused
from services.records.checkpoints import Signer, sign_checkpoint

SIGNER = Signer.generate("amends.test/ledger")
ROOT = hashlib.sha256(b"a root").digest()
NOW = datetime(2026, 12, 3, 7, 0, tzinfo=timezone.utc)


class Records:
    """Records' answers, as the console's Apis gives them."""

    def __init__(self, head=None, key=None, verification=None):
        self.answers = {"/v1/ledger/head": head, "/v1/ledger/public-key": key}
        self.verification = verification

    def text(self, service, path):
        assert service == "records"
        answer = self.answers[path]
        if isinstance(answer, Refused):
            raise answer
        return answer

    def get_slowly(self, service, path, timeout):
        assert (service, path) == ("records", "/v1/ledger/verify") and timeout >= 60
        return self.verification


def test_a_head_signed_by_records_key_is_valid():
    head = ledger.signed_head(Records(sign_checkpoint(SIGNER, 42, ROOT), str(SIGNER.verifier) + "\n"), NOW)
    assert (head.size, head.root_hash, head.origin, head.signature_valid, head.read_at) == (
        42, ROOT.hex(), "amends.test/ledger", True, NOW)


def test_a_head_signed_by_another_key_or_altered_is_shown_as_not_valid():
    other = Signer.generate("amends.test/ledger")
    head = ledger.signed_head(Records(sign_checkpoint(other, 42, ROOT), str(SIGNER.verifier)), NOW)
    assert (head.size, head.root_hash, head.signature_valid) == (42, ROOT.hex(), False)
    altered = sign_checkpoint(SIGNER, 42, ROOT).replace("\n42\n", "\n43\n")
    head = ledger.signed_head(Records(altered, str(SIGNER.verifier)), NOW)
    assert (head.size, head.signature_valid) == (43, False)   # what it claims, marked not valid


def test_no_head_yet_and_no_key_to_check_with():
    assert ledger.signed_head(Records(Refused(404)), NOW) is None
    head = ledger.signed_head(Records(sign_checkpoint(SIGNER, 7, ROOT), Refused(503)), NOW)
    assert (head.size, head.signature_valid) == (7, False)
    assert not ledger.signed_head(Records("not a note", str(SIGNER.verifier)), NOW).readable
    with pytest.raises(Refused):   # records down: the page says so
        ledger.signed_head(Records(Refused(503)), NOW)


def test_a_verification_is_timed_and_a_fault_named_by_position():
    ticks = iter([10.0, 12.5])
    ok = ledger.verify(Records(verification={"valid": True, "entries": 9}), clock=lambda: next(ticks))
    assert (ok.valid, ok.entries, ok.seconds) == (True, 9, 2.5)
    bad = ledger.verify(Records(verification={"valid": False, "first_bad_seq": 4, "problem": "leaf 4 differs"}))
    assert (bad.valid, bad.first_bad_seq) == (False, 4)


@pytest.mark.parametrize("typed,error", [
    ("", "error.case_reference_required"), ("   ", "error.case_reference_required"),
    ("case-1", "error.case_reference_format"), ("../../v1/ledger/entries", "error.case_reference_format"),
    ("3f2b6c1e-8d4a-4f5e-9b7c-2a1d0e9f8c7", "error.case_reference_format"),
])
def test_a_malformed_case_reference_is_named_and_kept(typed, error):
    values, errors = forms.case_reference({"case_id": typed})
    assert errors == {"case_id": error} and values["case_id"] == typed.strip() and "case" not in values


def test_a_case_reference_is_taken_in_its_canonical_spelling():
    values, errors = forms.case_reference({"case_id": " 3F2B6C1E-8D4A-4F5E-9B7C-2A1D0E9F8C7B "})
    assert errors == {} and values == {"case_id": "3F2B6C1E-8D4A-4F5E-9B7C-2A1D0E9F8C7B",
                                       "case": "3f2b6c1e-8d4a-4f5e-9b7c-2a1d0e9f8c7b"}


def test_a_bundle_file_is_records_bundle_named_by_its_case():
    bundle = {"format": "amends-ledger-bundle/1", "case_id": "c", "checkpoint": "n", "entries": []}
    name, body = ledger.bundle_file(bundle, "3f2b6c1e-8d4a-4f5e-9b7c-2a1d0e9f8c7b")
    assert name == "amends-case-3f2b6c1e-8d4a-4f5e-9b7c-2a1d0e9f8c7b-bundle.json" and json.loads(body) == bundle
