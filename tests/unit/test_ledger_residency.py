"""A region's ledger: it signs under its own origin, amends.<AMENDS_REGION>/ledger, and
admits its own region's events only (services/records/residency.py)."""

from types import SimpleNamespace

import pytest

from services.records import keygen, residency
from services.records.checkpoints import Signer
from services.records.dependencies import LedgerKey
from services.records.ledger import leaf_bytes
from shared.config import StartRefused
from shared.events import new_event
from tests.factories import referral_received_data
from tests.support import provider_of


def test_a_regions_origin():
    assert residency.origin("gwent") == "amends.gwent/ledger"
    residency.check_origin("amends.gwent/ledger", "gwent")
    for name in ("amends.south-wales/ledger", "amends.gwent/ledger2", "gwent", "amends.local/ledger"):
        with pytest.raises(residency.WrongOrigin, match="AMENDS_REGION"):
            residency.check_origin(name, "gwent")


def ledger_key(config):
    return provider_of(LedgerKey(), "records", config)


def test_records_does_not_start_with_another_regions_key(monkeypatch):
    monkeypatch.delenv("AMENDS_LEDGER_SIGNING_KEY", raising=False)
    monkeypatch.delenv("AMENDS_REGION", raising=False)
    own = Signer.generate("amends.gwent/ledger")
    key = ledger_key({"AMENDS_REGION": "gwent", "AMENDS_LEDGER_SIGNING_KEY": str(own)})
    key.setup()
    assert key.get_dependency(None).name == "amends.gwent/ledger"

    theirs = str(Signer.generate("amends.south-wales/ledger"))
    with pytest.raises(StartRefused) as refused:
        ledger_key({"AMENDS_REGION": "gwent", "AMENDS_LEDGER_SIGNING_KEY": theirs}).setup()
    assert str(refused.value).startswith("records will not start: the ledger signing key")
    assert "'amends.south-wales/ledger'" in str(refused.value) and "'amends.gwent/ledger'" in str(refused.value)
    assert isinstance(refused.value, SystemExit)   # nameko run: the message, exit status 1, no traceback
    # the region's default, `local`, signs as amends.local/ledger (the bootstrap's key)
    ledger_key({"AMENDS_LEDGER_SIGNING_KEY": str(Signer.generate("amends.local/ledger"))}).setup()
    with pytest.raises(StartRefused):
        ledger_key({"AMENDS_LEDGER_SIGNING_KEY": str(own)}).setup()
    # unsigned development runs are unaffected
    ledger_key({"AMENDS_REGION": "gwent", "AMENDS_DEV_UNSIGNED_LEDGER": "1"}).setup()


def test_keygen_names_the_key_after_the_region(monkeypatch, capsys):
    monkeypatch.setenv("AMENDS_REGION", "gwent")
    keygen.main([])
    assert Signer.parse(capsys.readouterr().out.strip().partition("=")[2]).name == "amends.gwent/ledger"
    monkeypatch.delenv("AMENDS_REGION")
    keygen.main([])
    assert Signer.parse(capsys.readouterr().out.strip().partition("=")[2]).name == "amends.local/ledger"
    keygen.main(["amends.example/ledger"])   # a name given wins
    assert Signer.parse(capsys.readouterr().out.strip().partition("=")[2]).name == "amends.example/ledger"


def event_of(region):
    return new_event("referral.received", "case-1", referral_received_data(), source=f"/amends/{region}/referrals",
                     region=region, correlationid="case-1")


def test_a_ledger_admits_its_own_regions_events_only():
    admit = residency.admission("gwent")
    own = event_of("gwent")
    assert admit(own) == leaf_bytes(own)
    with pytest.raises(residency.ForeignRegion) as foreign:
        admit(event_of("south-wales"))
    assert isinstance(foreign.value, ValueError)   # dead-lettered at once, as any event not admitted
    assert foreign.value.reason.startswith("not admitted: region 'south-wales' is not this ledger's ('gwent')")
    assert "case-1" not in foreign.value.reason
    assert residency.ledger_admission(SimpleNamespace(region="gwent"))(own) == leaf_bytes(own)
    # an event with no canonical form is still refused (the reason names no region)
    poison = event_of("gwent")
    poison["data"]["big"] = 2 ** 60
    with pytest.raises(ValueError) as no_form:
        admit(poison)
    assert getattr(no_form.value, "reason", None) is None
