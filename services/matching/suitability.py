"""Whether restorative justice is suitable and safe for a case: pure rules, no I/O.

The rules are the declarative policy of `suitability_policy` (a versioned YAML file);
this module turns a referral into facts, applies every rule that holds, and combines
their effects into an Outcome that carries its reasons and the policy version.
"""
from dataclasses import dataclass, field

from shared.events.vocabulary import DECISIONS, FACILITATOR_LEVELS, PROCESS_TYPES, RISK_LEVELS

# Most cautious last: combining takes the maximum.
DECISION_ORDER = ("suitable", "needs_review", "unsuitable")
assert set(DECISION_ORDER) == set(DECISIONS)

# Offence categories that carry a concern by themselves, as if flagged.
CATEGORY_FLAGS = {"sexual_offence": "sexual_offence", "hate_crime": "hate_crime"}
PARTIES = ("harmed", "harmer")


@dataclass(frozen=True)
class Reason:
    code: str
    text: str


@dataclass
class Outcome:
    decision: str
    reasons: list
    risk_level: str
    required_level: str
    co_facilitation: bool
    process_types: list
    policy_version: str
    required_endorsements: list = field(default_factory=list)
    preferred_endorsements: list = field(default_factory=list)
    prison_vetting: bool = False

    @property
    def codes(self):
        return [reason.code for reason in self.reasons]

    def event_data(self):
        """The fields of case.assessed (and case.needs_review)."""
        return {
            "decision": self.decision,
            "reasons": [{"code": r.code, "text": r.text} for r in self.reasons],
            "risk_level": self.risk_level,
            "required_level": self.required_level,
            "co_facilitation": self.co_facilitation,
            "process_types": list(self.process_types),
            "policy_version": self.policy_version,
            "required_endorsements": list(self.required_endorsements),
            "prison_vetting": self.prison_vetting,
        }

    @classmethod
    def from_data(cls, data):
        return cls(
            decision=data["decision"],
            reasons=[Reason(r["code"], r["text"]) for r in data["reasons"]],
            risk_level=data["risk_level"],
            required_level=data["required_level"],
            co_facilitation=data["co_facilitation"],
            process_types=list(data["process_types"]),
            policy_version=data["policy_version"],
            required_endorsements=list(data.get("required_endorsements", [])),
            preferred_endorsements=list(data.get("preferred_endorsements", [])),
            prison_vetting=bool(data.get("prison_vetting", False)),
        )


def facts_of(referral, policy, consent_withdrawn=False, specialist_available=None):
    """The facts the policy's rules test, from the data of a referral.received event.

    `specialist_available` is None when unknown (the rule that needs it then holds
    neither way, and the case falls to a coordinator's review)."""
    ages = {p["age_band"] for p in referral["participants"] if p["role"] in PARTIES}
    flags = set(referral["flags"])
    if referral["offence_category"] in CATEGORY_FLAGS:
        flags.add(CATEGORY_FLAGS[referral["offence_category"]])
    youth = "youth" in flags or "under_18" in ages
    # Only the harmer's own age band makes a youth offender panel possible. The youth flag
    # does not say who is young: intake gives it no meaning, any referrer may set it, and it
    # is used for a child harmed by an adult as well as for a YOT's young offender. So it
    # counts towards the youth endorsement only: a flagged child harmer whose age band is
    # `unknown` loses just the panel option, not the endorsed facilitators.
    harmer_under_18 = any(p["role"] == "harmer" and p["age_band"] == "under_18" for p in referral["participants"])
    facts = {
        "harmer_accepts_responsibility": bool(referral["harmer_accepts_responsibility"]),
        "initiated_by": referral["initiated_by"],
        "cjs_stage": referral["cjs_stage"],
        "offence_category": referral["offence_category"],
        "flags": frozenset(flags),
        "youth": youth,
        "harmer_under_18": harmer_under_18,
        "young_adult": "18_24" in ages,
        "consent": "withdrawn" if consent_withdrawn else "none_refused",
        "specialist_available": specialist_available,
    }
    facts.update({f"local.{name}": value for name, value in policy.local.items()})
    return facts


def _highest(order, values):
    return max(values, key=order.index)


def evaluate(facts, policy):
    """Apply every rule of `policy` that holds for `facts`; combine their effects."""
    applied = [rule for rule in policy.rules if rule.applies(facts)]
    defaults = policy.defaults
    effects = [rule.then for rule in applied]

    def gathered(key):
        return [e[key] for e in effects if key in e]

    def union(key):
        return sorted({item for e in effects for item in e.get(key, ())})

    decision = _highest(DECISION_ORDER, [defaults["decision"]] + gathered("decision"))
    excluded = set(union("exclude_process_types"))
    allowed = set(defaults["process_types"]) | set(union("add_process_types"))
    processes = [] if decision == "unsuitable" else [p for p in PROCESS_TYPES if p in allowed - excluded]
    return Outcome(
        decision=decision,
        reasons=[Reason(rule.code, rule.text) for rule in applied],
        risk_level=_highest(RISK_LEVELS, [defaults["risk_level"]] + gathered("risk_level")),
        required_level=_highest(FACILITATOR_LEVELS, [defaults["required_level"]] + gathered("required_level")),
        co_facilitation=bool(defaults["co_facilitation"] or any(gathered("co_facilitation"))),
        process_types=processes,
        policy_version=policy.version,
        required_endorsements=union("endorsements"),
        preferred_endorsements=sorted(set(union("prefer_endorsements")) - set(union("endorsements"))),
        prison_vetting=any(gathered("prison_vetting")),
    )


def assess(referral, policy, consent_withdrawn=False, specialist_available=None):
    """Assess `referral`, the data of a referral.received event, under `policy`."""
    return evaluate(facts_of(referral, policy, consent_withdrawn, specialist_available), policy)


def coordinator_outcome(previous, decision, reason_code):
    """A coordinator's decision on a needs_review case: the reviewed outcome with the
    decision replaced and the coordinator's reason added; the rest (level, co-working,
    endorsements, processes) still binds the assignment. The coordinator's own words
    stay in matching's store (they may name people); the event carries their code."""
    code = "coordinator_approved" if decision == "suitable" else "coordinator_declined"
    verdict = "suitable" if decision == "suitable" else "not suitable"
    reasons = list(previous.reasons) + [
        Reason(code, f"A coordinator reviewed the case and judged it {verdict} (reason: {reason_code}).")]
    return Outcome(
        decision=decision,
        reasons=reasons,
        risk_level=previous.risk_level,
        required_level=previous.required_level,
        co_facilitation=previous.co_facilitation,
        process_types=list(previous.process_types) if decision == "suitable" else [],
        policy_version=previous.policy_version,
        required_endorsements=list(previous.required_endorsements),
        preferred_endorsements=list(previous.preferred_endorsements),
        prison_vetting=previous.prison_vetting,
    )
