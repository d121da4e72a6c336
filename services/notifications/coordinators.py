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

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.events.vocabulary import CODE_PATTERN, LANGUAGES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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


class TeamSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.Str(required=True, validate=[validate.Length(min=1, max=200),
                                               validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="No control characters.")])
    email = fields.Email(required=True, validate=validate.Length(max=254))
    language = fields.Str(required=True, validate=validate.OneOf(LANGUAGES))


class TeamsFileSchema(Schema):
    class Meta:
        unknown = RAISE

    teams = fields.Dict(required=True, validate=validate.Length(min=1),
                        keys=fields.Str(validate=[validate.Regexp(CODE_PATTERN, error="Not a region code."),
                                                  validate.Length(max=50)]),
                        values=fields.Nested(TeamSchema))


@dataclass(frozen=True)
class Team:
    region: str
    name: str
    email: str
    language: str


def team_id(region):
    return f"{PREFIX}{region}"


def region_of(recipient_id):
    return recipient_id[len(PREFIX):] if recipient_id.startswith(PREFIX) else recipient_id


class CoordinatorTeams:
    """Region -> Team, answering lookups in the contact holders' shape (CONTRACTS.md)."""

    def __init__(self, teams, source="(given)"):
        self.teams = dict(teams)
        self.source = source

    def __len__(self):
        return len(self.teams)

    def lookup(self, recipient_id):
        team = self.teams.get(region_of(recipient_id))
        if team is None:
            raise NoCoordinatingTeam(region_of(recipient_id))
        return {"granted": True, "reason": "granted", "details": {
            "name": team.name, "email": team.email, "language": team.language, "preferred_channels": ["email"]}}


def parse(document, source="(given)"):
    """CoordinatorTeams from the file's parsed YAML; CoordinatorTeamsError naming each fault."""
    if not isinstance(document, dict):
        raise CoordinatorTeamsError(f"{source}: the file must be a mapping with `teams`")
    try:
        data = TeamsFileSchema().load(document)
    except ValidationError as error:
        raise CoordinatorTeamsError(f"{source}: {faults(error.messages)}") from None
    return CoordinatorTeams({region: Team(region=region, **team) for region, team in data["teams"].items()}, source)


def load(path=None):
    """The teams in the file at `path` (None: the default; relative: to the project root)."""
    path, document = read_document(path or DEFAULT_PATH, CoordinatorTeamsError)
    return parse(document, path)


def read_document(path, error):
    """(the absolute path, its parsed YAML) of a directory file; `error` naming the file if it
    cannot be read or is no YAML. Relative paths are to the project root."""
    if not os.path.isabs(path):
        path = os.path.join(ROOT, path)
    try:
        with open(path) as handle:
            return path, yaml.safe_load(handle)
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML") from None


def faults(messages, prefix=""):
    """marshmallow's nested messages as `teams.gwent.email: Not a valid email address.; ...`."""
    found = []
    for key, value in messages.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            # a Dict field reports {"key": [...], "value": {...}} for each entry at fault
            if set(value) <= {"key", "value"} and value:
                if "key" in value:
                    found.append(f"{where}: {' '.join(value['key'])}")
                if "value" in value:
                    found.append(faults(value["value"], where))
            else:
                found.append(faults(value, where))
        else:
            found.append(f"{where or 'the file'}: {' '.join(map(str, value))}")
    return "; ".join(found)
