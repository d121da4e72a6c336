"""The coordinating teams file (services/notifications/coordinators.py): strictly checked."""
import pytest

from services.notifications import coordinators
from shared.security.provision import DEMO_REGIONS

GOOD = {"teams": {"gwent": {"name": "Gwent RJ coordinators", "email": "rj.gwent@example.org", "language": "en"}}}


def test_the_demo_file_has_a_team_for_every_demo_region():
    teams = coordinators.load()
    assert sorted(teams.teams) == sorted(DEMO_REGIONS)
    assert all(team.email.endswith("@example.org") for team in teams.teams.values())
    assert teams.teams["north-wales"].language == "cy"


@pytest.mark.parametrize("change, fault", [
    (lambda d: d["teams"]["gwent"].update(email="not an address"), "teams.gwent.email: Not a valid email address."),
    (lambda d: d["teams"]["gwent"].update(language="fr"), "teams.gwent.language: Must be one of: en, cy."),
    (lambda d: d["teams"]["gwent"].pop("name"), "teams.gwent.name: Missing data for required field."),
    (lambda d: d["teams"]["gwent"].update(phone="01632 960000"), "teams.gwent.phone: Unknown field."),
    (lambda d: d["teams"].update({"South Wales": d["teams"]["gwent"]}), "teams.South Wales: Not a region code."),
    (lambda d: d.update(teams={}), "teams: Shorter than minimum length 1."),
    (lambda d: d.update(regions=[]), "regions: Unknown field."),
])
def test_every_fault_is_named_with_the_file(change, fault):
    document = {"teams": {"gwent": dict(GOOD["teams"]["gwent"])}}
    change(document)
    with pytest.raises(coordinators.CoordinatorTeamsError) as refused:
        coordinators.parse(document, "teams.yaml")
    assert str(refused.value).startswith("teams.yaml: ") and fault in str(refused.value)


def test_a_file_that_cannot_be_read_or_parsed_is_refused(tmp_path):
    with pytest.raises(coordinators.CoordinatorTeamsError, match="cannot be read"):
        coordinators.load(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("teams:\n  gwent: [\n")
    with pytest.raises(coordinators.CoordinatorTeamsError, match=r"broken.yaml:\d+: not valid YAML"):
        coordinators.load(str(broken))
    listed = tmp_path / "listed.yaml"
    listed.write_text("- gwent\n")
    with pytest.raises(coordinators.CoordinatorTeamsError, match="must be a mapping"):
        coordinators.load(str(listed))


def test_a_team_is_found_by_region_and_a_missing_one_is_named():
    teams = coordinators.parse(GOOD)
    assert teams.lookup(coordinators.team_id("gwent"))["details"]["email"] == "rj.gwent@example.org"
    with pytest.raises(coordinators.NoCoordinatingTeam, match="'dyfed-powys'"):
        teams.lookup(coordinators.team_id("dyfed-powys"))
