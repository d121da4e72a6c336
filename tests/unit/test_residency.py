"""Residency: the referral regions a deployment serves (AMENDS_REGIONS), the refusal of a
referral or a listing outside them (before anything is stored), and referrals refusing to
start without the setting."""

import pytest

from services.referrals import residency, workflow
from services.referrals.service import ServedRegions
from shared.config import StartRefused, regions_of, settings_for
from shared.web import BadRequest
from tests.factories import referral_body
from tests.support import provider_of
from tests.unit.test_referrals_workflow import (  # noqa: F401  (fixtures: store, outbox, vault)
    AUDITOR, REFERRER, SERVED, outbox, principal, store, vault)


def test_the_served_regions_are_the_settings_codes_each_once():
    assert residency.served_regions("south-wales,gwent") == frozenset({"south-wales", "gwent"})
    assert residency.served_regions(" gwent , gwent,, dyfed-powys ") == frozenset({"gwent", "dyfed-powys"})
    assert regions_of(" gwent , gwent,, dyfed-powys ") == ("gwent", "dyfed-powys")
    assert settings_for("referrals", {"AMENDS_REGIONS": "gwent,south-wales"}).regions == ("gwent", "south-wales")


@pytest.mark.parametrize("text", ["", " ", ",", None])
def test_no_served_regions_is_refused_naming_the_setting(text):
    with pytest.raises(residency.NotConfigured, match="AMENDS_REGIONS is not set"):
        residency.served_regions(text)


@pytest.mark.parametrize("text", ["South-Wales", "gwent,north wales", "-gwent", "x" * 51])
def test_a_served_region_must_be_a_region_code(text):
    with pytest.raises(residency.NotConfigured, match="AMENDS_REGIONS names something that is not a region code"):
        residency.served_regions(text)


def test_the_rule():
    served = residency.served_regions("south-wales,gwent")
    assert residency.refusal(served, "gwent") is None
    refused = residency.refusal(served, "north-wales")
    assert list(refused) == ["region"]
    assert "not served by this deployment" in refused["region"][0]
    assert "north-wales" not in refused["region"][0]   # nothing the request said is echoed


def test_a_referral_for_a_region_not_served_is_refused_and_nothing_is_stored(store, outbox, vault):
    everywhere = principal("referrer", regions=("south-wales", "gwent", "ceredigion"))
    for key in (None, "key-1"):
        with pytest.raises(BadRequest) as refused:
            workflow.submit_referral(store, referral_body(0, region="ceredigion"), everywhere, key, outbox, vault,
                                     served=SERVED)
        assert list(refused.value.details["fields"]) == ["region"]
        assert "not served by this deployment" in refused.value.details["fields"]["region"][0]
    # also among the faults of an otherwise invalid body
    with pytest.raises(BadRequest) as invalid:
        workflow.submit_referral(store, referral_body(0, region="ceredigion", cjs_stage=12), everywhere, None,
                                 outbox, vault, served=SERVED)
    assert set(invalid.value.details["fields"]) == {"cjs_stage", "region"}
    # refused before the key's own reach is asked: a 400 for the deployment, not a 403
    with pytest.raises(BadRequest):
        workflow.submit_referral(store, referral_body(0, region="ceredigion"), REFERRER, None, outbox, vault,
                                 served=SERVED)
    assert store.counts() == {"cases": 0, "case_changes": 0, "data_keys": 0, "contact_access_log": 0}
    assert outbox.flushed == []
    # a region served still works
    status, payload, _ = workflow.submit_referral(store, referral_body(2), everywhere, "key-1", outbox, vault,
                                                  served=SERVED)
    assert status == 201 and store.load_case(payload["case_id"]).region == "gwent"


def test_a_listing_for_a_region_not_served_is_refused(store, outbox, vault):
    with pytest.raises(BadRequest) as refused:
        workflow.list_cases(store, {"region": "ceredigion"}, AUDITOR, served=SERVED)
    assert list(refused.value.details["fields"]) == ["region"]
    assert workflow.list_cases(store, {"region": "gwent"}, AUDITOR, served=SERVED)["total"] == 0


def provider(config):
    return provider_of(ServedRegions(), "referrals", config)


def test_referrals_does_not_start_without_its_regions(monkeypatch):
    monkeypatch.delenv("AMENDS_REGIONS", raising=False)
    for config in ({}, {"AMENDS_REGIONS": ""}, {"AMENDS_REGIONS": None}):
        with pytest.raises(StartRefused) as refused:
            provider(config).setup()
        assert str(refused.value).startswith("referrals will not start: AMENDS_REGIONS is not set")
        assert isinstance(refused.value, SystemExit)   # nameko run: the message, exit status 1, no traceback
    monkeypatch.setenv("AMENDS_REGIONS", "gwent")
    from_environment = provider({})
    from_environment.setup()
    assert from_environment.get_dependency(None) == frozenset({"gwent"})
    configured = provider({"AMENDS_REGIONS": "south-wales,gwent"})
    configured.setup()
    assert configured.get_dependency(None) == frozenset({"south-wales", "gwent"})
