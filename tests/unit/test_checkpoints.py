import base64
import hashlib

import pytest

from services.records import checkpoints
from services.records.checkpoints import Checkpoint, NoteError, Signer, Verifier

# A fixed seed so the expected bytes are stable; the key is for this test only.
SEED = bytes(range(32))


def signer(name="amends.test/ledger"):
    return Signer(name, checkpoints.key_id(name, Signer(name, 0, SEED).public_key), SEED)


def test_key_strings_round_trip_and_the_id_is_the_c2sp_key_hash():
    s = signer()
    text = str(s)
    assert text.startswith("PRIVATE+KEY+amends.test/ledger+")
    assert Signer.parse(text) == s
    v = Verifier.parse(str(s.verifier))
    assert v == s.verifier
    expected = hashlib.sha256(b"amends.test/ledger\n\x01" + s.public_key).digest()[:4]
    assert str(v).split("+")[1] == expected.hex()
    assert str(v).split("+", 2)[2] == base64.b64encode(b"\x01" + s.public_key).decode()


def test_a_signed_checkpoint_has_the_exact_format_and_opens():
    s = signer()
    root = hashlib.sha256(b"root").digest()
    note = checkpoints.sign_checkpoint(s, 42, root)
    body, sig = note.split("\n\n")
    assert body == "amends.test/ledger\n42\n" + base64.b64encode(root).decode()
    assert sig.startswith("\u2014 amends.test/ledger ") and sig.endswith("\n")
    raw = base64.b64decode(sig.split(" ")[-1])
    assert len(raw) == 68 and raw[:4] == s.id.to_bytes(4, "big")
    assert checkpoints.open_checkpoint(note, s.verifier) == Checkpoint("amends.test/ledger", 42, root)


def test_a_changed_byte_or_another_key_is_refused():
    s = signer()
    note = checkpoints.sign_checkpoint(s, 42, bytes(32))
    with pytest.raises(NoteError):
        checkpoints.open_checkpoint(note.replace("\n42\n", "\n43\n"), s.verifier)
    other = Signer.generate("amends.test/ledger")
    with pytest.raises(NoteError):
        checkpoints.open_checkpoint(note, other.verifier)
    with pytest.raises(NoteError):
        checkpoints.open_checkpoint(note, Signer.generate("elsewhere/ledger").verifier)


def test_unknown_signatures_are_ignored_but_ours_must_be_there():
    s, other = signer(), Signer.generate("witness.example/w1")
    note = checkpoints.sign_checkpoint(s, 1, bytes(32))
    cosigned = note + other.sign(note.split("\n\n")[0] + "\n").split("\n\n")[1]
    assert checkpoints.open_checkpoint(cosigned, s.verifier).size == 1


@pytest.mark.parametrize("text", ["amends\n01\n" + base64.b64encode(bytes(32)).decode() + "\n",
                                  "amends\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
                                  "\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",
                                  "amends\n1\n"])
def test_malformed_checkpoints_are_refused(text):
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_malformed_keys_are_refused():
    for bad in ("a+b", "name+00000000+AAAA", "PRIVATE+KEY+x", str(signer().verifier).replace("+", "+0", 1)):
        with pytest.raises(NoteError):
            Verifier.parse(bad) if not bad.startswith("PRIVATE") else Signer.parse(bad)


def test_the_key_generator_prints_an_environment_line(capsys):
    from services.records import keygen
    keygen.main(["amends.example/ledger"])
    out = capsys.readouterr()
    name, _, value = out.out.strip().partition("=")
    assert name == "AMENDS_LEDGER_SIGNING_KEY"
    assert str(Signer.parse(value).verifier) in out.err
