"""Entitlements and redaction: which case events an agency's data-sharing agreement covers,
and what of each one it receives (docs/subscriptions.md). Pure: no I/O but reading
profiles.yaml, once, at import.

The table is data (profiles.yaml), read strictly: a fault stops the import with
`<file>:<line>: <what is wrong>`, so the service never starts on a table that leaves an
event type unclassified, names a field its schema lacks, or lets an id, free text or a
person's record through. The `statistics` profile is shared/statistics_profile.py's.
"""
import copy
import os
from dataclasses import dataclass

import yaml
from marshmallow import fields, validate

from shared import statistics_profile, yaml_tables
from shared.events import catalogue

PROFILE_NAMES = ("own_cases", "area_cases", "statistics")
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles.yaml")

WITHHELD, EXPORTED = "withheld", "exported"
# The only ids that pass: the case's, and the assignment's (it says a case was staffed,
# not by whom). Every other id names a person, or leads to one.
PASSING_IDS = ("case_id", "assignment_id")
# Text with neither a closed vocabulary nor a pattern that may pass all the same: the
# suitability policy's version name, which its own loader holds to a code.
NAMED_VERSIONS = ("policy_version",)
# Producers whose events are about people's access and agencies' sharing, never a case.
NEVER_SHARED = ("identity", "subscriptions")

# the event types that are about one case (their data has its case_id)
_CASE_TYPES = frozenset(t for t in catalogue.EVENT_TYPES if "case_id" in catalogue.spec(t).schema.fields)


class ProfilesError(yaml_tables.TableError):
    """A profiles table that cannot be used; the message names the file, line and fault."""


@dataclass(frozen=True)
class CaseFacts:
    """What entitlement needs to know of a case, learned from its referral.received."""
    agency: str | None
    region: str | None
    offence_category: str | None


@dataclass(frozen=True)
class Profiles:
    version: int
    # profile -> event type -> what of its data passes, or None (withheld). What passes is
    # a tuple of (field, None) for a value, or (field, <what passes of it>) for a structure.
    rows: dict

    def passing(self, profile, event_type):
        return self.rows[profile][event_type]


# --- reading the table ------------------------------------------------------------

def load(path=PATH):
    return yaml_tables.read(path, parse)


def parse(text, source="<profiles>"):
    return _Reader(source).profiles(yaml_tables.compose(text, source, ProfilesError))


def _is_id(name):
    return name.endswith("_id") or name.endswith("_ids")


def _nested_schema(field):
    """The schema of a structure (a nested object, or a list of them), or None."""
    if isinstance(field, fields.List):
        field = field.inner
    return field.schema if isinstance(field, fields.Nested) else None


def _is_free_text(name, field):
    """A text field no vocabulary or pattern holds (anything may be written in it)."""
    if isinstance(field, fields.List):
        field = field.inner
    if not isinstance(field, fields.String) or name in PASSING_IDS + NAMED_VERSIONS:
        return False
    return not any(isinstance(v, (validate.OneOf, validate.Equal, validate.Regexp)) for v in field.validators)


class _Reader:
    def __init__(self, source):
        self.source = source

    def fail(self, node, fault):
        raise ProfilesError.at(self.source, node, fault)

    def mapping(self, node, what):
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        items = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, f"{what}: keys must be plain names")
            if key_node.value in items:
                self.fail(key_node, f"{what}: '{key_node.value}' is given twice")
            items[key_node.value] = (key_node, value_node)
        return items

    def word(self, node, what):
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            self.fail(node, f"{what} must be a name")
        return node.value

    def profiles(self, root):
        if root is None:
            raise ProfilesError(self.source, 1, "the profiles file is empty")
        top = self.mapping(root, "the file")
        for key in set(top) - {"version", "profiles"}:
            self.fail(top[key][0], f"unknown key '{key}' (expected version and profiles)")
        for key in ("version", "profiles"):
            if key not in top:
                self.fail(root, f"'{key}' is missing")
        version_node = top["version"][1]
        if version_node.tag != "tag:yaml.org,2002:int" or int(version_node.value) < 1:
            self.fail(version_node, "version must be a whole number from 1")
        named = self.mapping(top["profiles"][1], "profiles")
        for name, (key_node, _) in named.items():
            if name not in PROFILE_NAMES:
                self.fail(key_node, f"unknown profile '{name}' (expected {', '.join(PROFILE_NAMES)})")
        for name in PROFILE_NAMES:
            if name not in named:
                self.fail(top["profiles"][1], f"profile '{name}' is missing")
        rows = {name: self.table(name, named[name][1]) for name in PROFILE_NAMES}
        return Profiles(int(version_node.value), rows)

    def table(self, profile, node):
        items = self.mapping(node, profile)
        for event_type, (key_node, _) in items.items():
            if event_type not in catalogue.EVENT_TYPES:
                self.fail(key_node, f"{profile}: '{event_type}' is not an event type of the catalogue")
        for event_type in catalogue.EVENT_TYPES:
            if event_type not in items:
                self.fail(node, f"{profile}: event type '{event_type}' is not classified (list its fields, "
                                f"or say withheld)")
        read = self.statistics_row if profile == "statistics" else self.case_row
        return {event_type: read(f"{profile}.{event_type}", event_type, items[event_type][1])
                for event_type in catalogue.EVENT_TYPES}

    def statistics_row(self, what, event_type, node):
        value = self.word(node, what)
        if value not in (EXPORTED, WITHHELD):
            self.fail(node, f"{what} must be exported or withheld")
        if (value == EXPORTED) != statistics_profile.exported(event_type):
            self.fail(node, f"{what} must be {EXPORTED if statistics_profile.exported(event_type) else WITHHELD}: "
                            "the statistics profile exports exactly what shared/statistics_profile.py does")
        return tuple((name, None) for name in statistics_profile.FIELDS) if value == EXPORTED else None

    def case_row(self, what, event_type, node):
        if isinstance(node, yaml.ScalarNode):
            if self.word(node, what) != WITHHELD:
                self.fail(node, f"{what} must be withheld or a list of the fields that pass")
            return None
        spec = catalogue.spec(event_type)
        if spec.producer in NEVER_SHARED:
            self.fail(node, f"{what}: {spec.producer} events are never shared: say withheld")
        shape = self.shape(node, spec.schema, what)
        if ("case_id", None) not in shape:
            self.fail(node, f"{what}: a case event passes with its case_id")
        return shape

    def shape(self, node, schema, what):
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.fail(node, f"{what} must be a non-empty list of fields")
        shape, seen = [], set()
        for item in node.value:
            name, passing = self.field(item, schema, what)
            if name in seen:
                self.fail(item, f"{what}: '{name}' is listed twice")
            seen.add(name)
            shape.append((name, passing))
        return tuple(shape)

    def field(self, node, schema, what):
        """One item of a list of fields: a name, or {name: [what of it passes]}."""
        if isinstance(node, yaml.MappingNode):
            items = self.mapping(node, what)
            if len(items) != 1:
                self.fail(node, f"{what}: a structure is given as {{field: [its fields that pass]}}")
            (name, (key_node, inner)), = items.items()
        else:
            name, key_node, inner = self.word(node, what), node, None
        field = schema.fields.get(name)
        if field is None:
            self.fail(key_node, f"{what}: '{name}' is not a field of its data")
        if _is_id(name) and name not in PASSING_IDS:
            self.fail(key_node, f"{what}: '{name}' may not pass (no id but {' and '.join(PASSING_IDS)} ever does)")
        nested = _nested_schema(field)
        if nested is None:
            if inner is not None:
                self.fail(key_node, f"{what}: '{name}' is a value, not a structure")
            if _is_free_text(name, field):
                self.fail(key_node, f"{what}: '{name}' is free text, which never passes")
            return name, None
        people = sorted(n for n in nested.fields if _is_id(n) and n not in PASSING_IDS)
        if people:
            self.fail(key_node, f"{what}: '{name}' holds records of their own ({', '.join(people)}): "
                                "none of it may pass")
        if inner is None:
            self.fail(key_node, f"{what}: '{name}' is a structure: give what of it passes, as {{{name}: [...]}}")
        return name, self.shape(inner, nested, f"{what}.{name}")


_PROFILES = load()
PROFILES_VERSION = _PROFILES.version


# --- entitlement and redaction ----------------------------------------------------

def case_of(event):
    """The case id an event is about; None for events about no case (keys, subscriptions)."""
    if event.get("type") not in _CASE_TYPES:
        return None
    return (event.get("data") or {}).get("case_id")


def follow_case(facts, event):
    """A case's facts after `event`: its referral.received tells them; nothing else changes them."""
    if event.get("type") != "referral.received":
        return facts
    data = event["data"]
    return CaseFacts(agency=data["agency"], region=data["region"], offence_category=data["offence_category"])


def entitled(agreement, event, facts):
    """Whether `agreement` (a sharing.SharingAgreement, or None) covers this case event.
    `facts` are the case's (None: a case not seen, which nobody is entitled to); a
    referral.received brings its own."""
    if agreement is None or agreement.profile not in PROFILE_NAMES or case_of(event) is None:
        return False
    facts = follow_case(facts, event)
    if facts is None:
        return False
    regions = tuple(agreement.regions or ())
    if agreement.profile == "own_cases":
        return facts.agency == agreement.agency and (not regions or facts.region in regions)
    if facts.region is None or facts.region not in regions:
        return False
    return agreement.profile == "area_cases" or statistics_profile.exported(event["type"])


def fields_passed(profile, event_type, profiles=_PROFILES):
    """What `profile` gives of `event_type`, as field paths ("reasons.code"), or None
    when it is withheld. For statistics, the statistic's fields."""
    def paths(shape, prefix=""):
        for name, inner in shape:
            yield from paths(inner, f"{prefix}{name}.") if inner else (prefix + name,)
    row = profiles.passing(profile, event_type)
    return None if row is None else tuple(paths(row))


def redact(profile, event, facts, statistic_key):
    """The `data` a subscriber receives for `event` under `profile`, or None when the
    profile withholds it. For statistics, the statistic (its id made under
    `statistic_key`) of the case's region and offence category: `facts` must be known."""
    if profile == "none":
        return None
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile '{profile}'")
    row = _PROFILES.passing(profile, event["type"])
    if row is None:
        return None
    if profile == "statistics":
        facts = follow_case(facts, event)
        if facts is None:
            raise ValueError("a statistic needs the case's facts (its region and offence category)")
        return statistics_profile.statistic(event, region=facts.region, offence_category=facts.offence_category,
                                            key=statistic_key)
    return _project(event.get("data") or {}, row)


def _project(value, shape):
    """What of `value` passes: the fields `shape` names, in a structure or in each of a list's."""
    if value is None:
        return None
    if isinstance(value, list):
        return [_project(item, shape) for item in value]
    return {name: copy.deepcopy(value[name]) if inner is None else _project(value[name], inner)
            for name, inner in shape if name in value}
