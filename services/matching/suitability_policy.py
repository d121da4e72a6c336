"""The declarative suitability policy: reading and checking the YAML file.

The file is walked node by node (PyYAML's composed tree keeps each node's line), so a
fault is reported as `<file>:<line>: <what is wrong>`, and the service refuses to start
on a policy it cannot trust. `parse` knows nothing of files; `load` reads one.
"""
import re
from dataclasses import dataclass, field

import yaml

from shared import yaml_tables
from shared.events.vocabulary import (CJS_STAGES, DECISIONS, FACILITATOR_LEVELS, FLAGS, OFFENCE_CATEGORIES,
                                      PROCESS_TYPES, RISK_LEVELS)

# The policy in force; older versions stay beside it, unchanged, as the record of the
# rules their decisions (which name their version) were made under.
DEFAULT_PATH = __file__.rsplit("/", 1)[0] + "/policy/suitability-v2.yaml"

ENDORSEMENTS = ("domestic_abuse", "sexual_violence", "youth", "hate_crime")
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

# The facts a rule may test, and the values each may take (None: any boolean).
FACTS = {
    "harmer_accepts_responsibility": None,
    "initiated_by": ("harmed", "harmer"),
    "cjs_stage": CJS_STAGES,
    "offence_category": OFFENCE_CATEGORIES,
    "flags": FLAGS,
    "youth": None,
    "harmer_under_18": None,
    "young_adult": None,
    "consent": ("none_refused", "withdrawn"),
    "specialist_available": None,
}
SET_FACTS = {"flags"}
OPERATORS = ("in", "not_in", "contains_any", "lacks")

EFFECTS = {
    "decision": DECISIONS,
    "risk_level": RISK_LEVELS,
    "required_level": FACILITATOR_LEVELS,
    "co_facilitation": None,
    "prison_vetting": None,
    "endorsements": ENDORSEMENTS,
    "prefer_endorsements": ENDORSEMENTS,
    "exclude_process_types": PROCESS_TYPES,
    "add_process_types": PROCESS_TYPES,
}
LIST_EFFECTS = {"endorsements", "prefer_endorsements", "exclude_process_types", "add_process_types"}
DEFAULT_FIELDS = ("decision", "risk_level", "required_level", "co_facilitation", "process_types")


class PolicyError(yaml_tables.TableError):
    """A policy file that cannot be used; the message names the file, line and fault."""


class SwitchError(ValueError):
    """Local switches a deployment set that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Condition:
    fact: str
    operator: str  # equals | in | not_in | contains_any | lacks
    value: object

    def holds(self, facts):
        actual = facts.get(self.fact)
        if self.operator == "equals":
            return self.value in actual if self.fact in SET_FACTS else actual == self.value
        if self.operator == "in":
            return bool(set(actual) & set(self.value)) if self.fact in SET_FACTS else actual in self.value
        if self.operator == "not_in":
            return not (set(actual) & set(self.value)) if self.fact in SET_FACTS else actual not in self.value
        if self.operator == "contains_any":
            return bool(set(actual or ()) & set(self.value))
        return self.value not in (actual or ())  # lacks


@dataclass(frozen=True)
class Rule:
    code: str
    text: str
    when: tuple
    then: dict
    line: int

    def applies(self, facts):
        return all(condition.holds(facts) for condition in self.when)


@dataclass(frozen=True)
class Policy:
    version: str
    local: dict
    defaults: dict
    rules: tuple = field(default_factory=tuple)

    def with_local(self, **switches):
        """The same policy with some local switches changed (for an area, or a test)."""
        unknown = set(switches) - set(self.local)
        if unknown:
            raise KeyError(f"unknown local switches: {sorted(unknown)}")
        # a rule tests `local.<switch>: true|false` by equality: anything else would hold neither way
        not_bool = sorted(name for name, value in switches.items() if not isinstance(value, bool))
        if not_bool:
            raise TypeError(f"local switches must be true or false: {not_bool}")
        return Policy(self.version, {**self.local, **switches}, self.defaults, self.rules)


def local_switches(text, policy, source="MATCHING_LOCAL_SWITCHES"):
    """The local switches a deployment sets, from `name=true,name=false` (empty or None:
    none), for `policy.with_local`. Strict, as the policy file is: each name must be one
    of the policy's `local` switches, given once, and each value exactly true or false,
    so a typo stops the service instead of leaving a safeguard in its shipped state."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if not isinstance(text, str):  # nameko reads the value as YAML: `a: true` arrives as a mapping
        raise SwitchError(f"{source} must be text like 'domestic_abuse_rj_allowed=true', not {text!r}")
    known = ", ".join(sorted(policy.local))
    switches = {}
    for item in text.split(","):
        name, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not name:
            raise SwitchError(f"{source}: '{item.strip()}' is not <switch>=true|false")
        if name not in policy.local:
            raise SwitchError(f"{source}: unknown switch '{name}' (policy {policy.version} has: {known})")
        if name in switches:
            raise SwitchError(f"{source}: '{name}' is given twice")
        if value not in ("true", "false"):
            raise SwitchError(f"{source}: {name} must be true or false, not '{value}'")
        switches[name] = value == "true"
    return switches


def load(path=DEFAULT_PATH):
    return yaml_tables.read(path, parse)


def parse(text, source="<policy>"):
    return _Reader(source).policy(yaml_tables.compose(text, source, PolicyError))


class _Reader:
    def __init__(self, source):
        self.source = source

    def fail(self, node, fault):
        raise PolicyError.at(self.source, node, fault)

    # --- node shapes ---
    def mapping(self, node, what, required=(), allowed=None):
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        items = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                self.fail(key_node, f"{what}: keys must be plain names")
            if key in items:
                self.fail(key_node, f"{what}: '{key}' is given twice")
            if allowed is not None and key not in allowed and not self._local_key(key, allowed):
                self.fail(key_node, f"{what}: unknown key '{key}' (expected one of: {', '.join(sorted(allowed))})")
            items[key] = (key_node, value_node)
        for key in required:
            if key not in items:
                self.fail(node, f"{what}: '{key}' is missing")
        return items

    @staticmethod
    def _local_key(key, allowed):
        return key.startswith("local.") and "local.*" in allowed

    def scalar(self, node, what):
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{what} must be a single value")
        return yaml.SafeLoader(  # resolve the scalar the way yaml.safe_load would
            "").construct_object(node, deep=True)

    def boolean(self, node, what):
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            self.fail(node, f"{what} must be true or false, not '{node.value}'")
        return value

    def text(self, node, what, pattern=None, max_length=500):
        value = self.scalar(node, what)
        if not isinstance(value, str) or not value.strip():
            self.fail(node, f"{what} must be non-empty text")
        if len(value) > max_length:
            self.fail(node, f"{what} is longer than {max_length} characters")
        if pattern is not None and not pattern.match(value):
            self.fail(node, f"{what} '{value}' must be lower-case letters, digits, '-', '_' or '.'")
        return value

    def choice(self, node, what, choices):
        value = self.scalar(node, what)
        if choices is None:
            if not isinstance(value, bool):
                self.fail(node, f"{what} must be true or false, not '{node.value}'")
            return value
        if value not in choices:
            self.fail(node, f"{what}: '{node.value}' is not one of: {', '.join(map(str, choices))}")
        return value

    def choices(self, node, what, choices):
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list")
        values = [self.choice(item, what, choices) for item in node.value]
        return tuple(dict.fromkeys(values))

    # --- the policy ---
    def policy(self, root):
        if root is None:
            raise PolicyError(self.source, 1, "the policy file is empty")
        top = self.mapping(root, "policy", required=("version", "local", "defaults", "rules"),
                           allowed={"version", "local", "defaults", "rules"})
        version = self.text(top["version"][1], "version", CODE_PATTERN, max_length=50)
        local = {key: self.boolean(value, f"local.{key}")
                 for key, (_, value) in self.mapping(top["local"][1], "local").items()}
        defaults = self.defaults(top["defaults"][1])
        rules_node = top["rules"][1]
        if not isinstance(rules_node, yaml.SequenceNode) or not rules_node.value:
            self.fail(rules_node, "rules must be a non-empty list")
        rules, seen = [], set()
        for node in rules_node.value:
            rule = self.rule(node, local)
            if rule.code in seen:
                self.fail(node, f"rule code '{rule.code}' is used twice")
            seen.add(rule.code)
            rules.append(rule)
        return Policy(version, local, defaults, tuple(rules))

    def defaults(self, node):
        items = self.mapping(node, "defaults", required=DEFAULT_FIELDS, allowed=set(DEFAULT_FIELDS))
        defaults = {}
        for key, (_, value) in items.items():
            if key == "process_types":
                defaults[key] = self.choices(value, "defaults.process_types", PROCESS_TYPES)
            else:
                defaults[key] = self.choice(value, f"defaults.{key}", EFFECTS[key])
        if defaults["decision"] != "suitable":
            self.fail(items["decision"][1], "defaults.decision must be 'suitable': rules make it more cautious")
        return defaults

    def rule(self, node, local):
        items = self.mapping(node, "rule", required=("code", "text", "when"), allowed={"code", "text", "when", "then"})
        code = self.text(items["code"][1], "rule code", CODE_PATTERN, max_length=100)
        what = f"rule '{code}'"
        text = self.text(items["text"][1], f"{what} text")
        when_items = self.mapping(items["when"][1], f"{what} when", allowed=set(FACTS) | {"local.*"})
        if not when_items:
            self.fail(items["when"][1], f"{what} when: give at least one condition")
        when = tuple(self.condition(key, key_node, value, what, local) for key, (key_node, value) in when_items.items())
        then = {}
        if "then" in items:
            for key, (_, value) in self.mapping(items["then"][1], f"{what} then", allowed=set(EFFECTS)).items():
                if key in LIST_EFFECTS:
                    then[key] = self.choices(value, f"{what} then.{key}", EFFECTS[key])
                else:
                    then[key] = self.choice(value, f"{what} then.{key}", EFFECTS[key])
        return Rule(code, text, when, then, node.start_mark.line + 1)

    def condition(self, fact, key_node, node, what, local):
        if fact.startswith("local."):
            if fact[len("local."):] not in local:
                self.fail(key_node, f"{what} when: '{fact}' is not a switch in 'local'")
            return Condition(fact, "equals", self.boolean(node, f"{what} when.{fact}"))
        choices = FACTS[fact]
        if isinstance(node, yaml.MappingNode):
            ops = self.mapping(node, f"{what} when.{fact}", allowed=set(OPERATORS))
            if len(ops) != 1:
                self.fail(node, f"{what} when.{fact}: give exactly one operator")
            (operator, (_, value)), = ops.items()
            if operator in ("in", "not_in", "contains_any"):
                if operator == "contains_any" and fact not in SET_FACTS:
                    self.fail(node, f"{what} when.{fact}: 'contains_any' applies only to flags")
                return Condition(fact, operator, frozenset(self.choices(value, f"{what} when.{fact}", choices)))
            if fact not in SET_FACTS:
                self.fail(node, f"{what} when.{fact}: 'lacks' applies only to flags")
            return Condition(fact, operator, self.choice(value, f"{what} when.{fact}", choices))
        return Condition(fact, "equals", self.choice(node, f"{what} when.{fact}", choices))
