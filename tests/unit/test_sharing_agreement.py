"""An agency's data-sharing agreement: the request, who may set it, and its versions."""
from datetime import datetime, timedelta, timezone

import pytest

from services.subscriptions import sharing
from shared.events import catalogue, new_event
from shared.security.api_keys import Principal

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
COORDINATOR = Principal(role="coordinator", agency="rj-wales", key_id="k-1", subject="c-1",
                        regions=frozenset({"gwent", "south-wales"}))


def _body(**changes):
    body = {"profile": "area_cases", "regions": ["gwent"], "agreement_reference": "DSA/2026/007"}
    body.update(changes)
    return {name: value for name, value in body.items() if value is not None}


def test_a_request_loads_as_the_change_it_asks_for():
    change = sharing.read_request(_body(regions=["south-wales", "gwent", "gwent"]))
    assert change == sharing.SharingChange("area_cases", ("gwent", "south-wales"), "DSA/2026/007")
    assert sharing.SharingRequest().load(_body()) == sharing.SharingChange("area_cases", ("gwent",), "DSA/2026/007")


@pytest.mark.parametrize("body, field", [
    (_body(profile="everything"), "profile"),
    (_body(profile=None), "profile"),
    (_body(regions=[]), "regions"),                        # area_cases names its regions
    (_body(profile="statistics", regions=None), "regions"),
    (_body(profile="none", regions=["gwent"]), "regions"),  # sharing nothing covers nowhere
    (_body(regions=["Gwent"]), "regions"),
    (_body(regions="gwent"), "regions"),
    (_body(regions=["gwent\n"]), "regions"),
    (_body(agreement_reference=None), "agreement_reference"),
    (_body(agreement_reference=""), "agreement_reference"),
    (_body(agreement_reference="A" * 65), "agreement_reference"),
    (_body(agreement_reference="DSA 2026"), "agreement_reference"),
    (_body(agreement_reference="DSA\n1"), "agreement_reference"),
    (_body(agreement_reference="DSA1\n"), "agreement_reference"),
    (_body(extra="x"), "extra"),                           # unknown fields are refused
])
def test_a_bad_request_is_refused_naming_the_field(body, field):
    with pytest.raises(sharing.InvalidSharing) as refused:
        sharing.read_request(body)
    assert field in refused.value.errors and field in str(refused.value)


@pytest.mark.parametrize("body", [
    _body(profile="own_cases", regions=None),   # own cases, wherever they are
    _body(profile="own_cases", regions=["gwent"]),
    _body(profile="none", regions=None),
    _body(profile="statistics", agreement_reference="a" * 64),
])
def test_good_requests_load(body):
    assert sharing.read_request(body).profile == body["profile"]


def test_a_body_that_is_no_object_is_refused():
    with pytest.raises(sharing.InvalidSharing):
        sharing.read_request(["area_cases"])


@pytest.mark.parametrize("role", ["referrer", "facilitator", "auditor"])
def test_only_a_coordinator_may_set_an_agreement(role):
    principal = Principal(role=role, agency="rj-wales", key_id="k-2", subject="s-2", regions=frozenset({"gwent"}),
                          national=role == "auditor")
    with pytest.raises(sharing.SharingRefused) as refused:
        sharing.check_may_set(principal, "gwent-police", sharing.read_request(_body()))
    assert "coordinator" in str(refused.value)


def test_a_coordinator_must_cover_every_region_named():
    change = sharing.read_request(_body(regions=["gwent", "north-wales"]))
    with pytest.raises(sharing.SharingRefused) as refused:
        sharing.check_may_set(COORDINATOR, "gwent-police", change)
    assert refused.value.fields == {"regions": ["Not covered by your key: north-wales."]}
    sharing.check_may_set(COORDINATOR, "gwent-police", sharing.read_request(_body(regions=["gwent", "south-wales"])))


@pytest.mark.parametrize("agency", ["Gwent Police", "gwent-police\n", ""])
def test_the_agency_must_be_a_code(agency):
    with pytest.raises(sharing.InvalidSharing) as refused:
        sharing.check_may_set(COORDINATOR, agency, sharing.read_request(_body()))
    assert "agency" in refused.value.errors


def test_each_change_is_a_new_version_by_whoever_set_it():
    first = sharing.next_version(None, sharing.read_request(_body()), COORDINATOR, NOW, agency="gwent-police")
    assert (first.agency, first.version, first.set_by, first.set_at) == ("gwent-police", 1, "coordinator:c-1", NOW)
    other = Principal(role="coordinator", agency="rj-wales", key_id="k-3", subject="c-2", regions=frozenset({"gwent"}))
    later = NOW + timedelta(days=30)
    second = sharing.next_version(first, sharing.read_request(_body(profile="statistics")), other, later)
    assert (second.agency, second.version, second.profile, second.set_by, second.set_at) == (
        "gwent-police", 2, "statistics", "coordinator:c-2", later)
    assert sharing.next_version(second, sharing.read_request(_body()), COORDINATOR, later).version == 3
    assert first.version == 1 and first.profile == "area_cases"  # versions are kept as they were


def test_a_first_version_needs_its_agency_and_a_later_one_the_same_agency():
    change = sharing.read_request(_body())
    with pytest.raises(ValueError):
        sharing.next_version(None, change, COORDINATOR, NOW)
    first = sharing.next_version(None, change, COORDINATOR, NOW, agency="gwent-police")
    with pytest.raises(ValueError):
        sharing.next_version(first, change, COORDINATOR, NOW, agency="dyfed-police")


def test_an_agreement_is_announced_as_a_valid_sharing_agreement_set_event():
    agreement = sharing.next_version(None, sharing.read_request(_body(regions=["south-wales", "gwent"])), COORDINATOR,
                                     NOW, agency="gwent-police")
    data = agreement.event_data()
    assert data == {"agency": "gwent-police", "profile": "area_cases", "regions": ["gwent", "south-wales"],
                    "agreement_reference": "DSA/2026/007", "version": 1, "set_by": "coordinator:c-1"}
    assert catalogue.spec("sharing.agreement_set").schema.validate(data) == {}
    new_event("sharing.agreement_set", "gwent-police", data, source="/amends/test/subscriptions", region="test",
              correlationid="gwent-police")
