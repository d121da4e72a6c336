"""The coordinating teams: who is told when a case's Victims' Code clock falls due or is
missed. notifications' own configuration, not a contact holder's: a YAML file named by
NOTIFICATIONS_COORDINATOR_TEAMS (default deploy/local/coordinators.yaml) maps each region
to its team's shared mailbox and language. These are the work addresses of teams, not
personal data of anyone on a case.

    teams:
      south-wales:
        name: South Wales restorative justice coordinators
        email: rj-coordinators.south-wales@example.org
        language: en

The file is checked strictly when the service starts (`load`): a fault names the file and
the field, and the service does not start. A case whose region has no team is not
silently passed over: `lookup` raises NoCoordinatingTeam, naming the region, and the
event is retried and then dead-lettered with that reason (docs/notifications.md), to be
replayed once the team is configured.
"""
import os
from dataclasses import dataclass

from services.notifications import directory

DEFAULT_PATH = os.path.join("deploy", "local", "coordinators.yaml")
SETTING = "NOTIFICATIONS_COORDINATOR_TEAMS"
# a team's recipient id on a notice and a delivery: `coordinators.<region>`
PREFIX = "coordinators."


class CoordinatorTeamsError(ValueError):
    """The coordinating teams file cannot be used; the message names the file and the fault."""


class NoCoordinatingTeam(RuntimeError):
    """A case's region has no coordinating team configured: nobody can be told."""

    def __init__(self, region):
        self.region = region
        super().__init__(f"no coordinating team is configured for region {region!r} ({SETTING})")


@dataclass(frozen=True)
class Team:
    region: str
    name: str
    email: str
    language: str


def team_id(region):
    return f"{PREFIX}{region}"


class CoordinatorTeams(directory.Directory):
    """Region -> Team, answering lookups in the contact holders' shape (CONTRACTS.md)."""
    prefix = PREFIX
    missing = NoCoordinatingTeam

    @property
    def teams(self):
        return self.entries


def parse(document, source="(given)"):
    """CoordinatorTeams from the file's parsed YAML; CoordinatorTeamsError naming each fault."""
    teams = directory.entries(document, source, "teams", "Not a region code.", CoordinatorTeamsError, at_least=1)
    return CoordinatorTeams({region: Team(region=region, **team) for region, team in teams.items()}, source)


def load(path=None):
    """The teams in the file at `path` (None: the default; relative: to the project root)."""
    path, document = directory.read_document(path or DEFAULT_PATH, CoordinatorTeamsError)
    return parse(document, path)
