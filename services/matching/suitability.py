"""Whether restorative justice is suitable and safe for a case: pure rules.

This is the minimal policy of the platform backbone, written as plain rules so that
every outcome carries its reasons and the policy version. The declarative, versioned
policy file replaces it in the matching-service work.
"""
from dataclasses import dataclass, field

POLICY_VERSION = "backbone-1"

SPECIALIST_FLAGS = {
    "domestic_abuse": "Domestic abuse: RJ goes ahead only when the harmed person asks and a specialist leads.",
    "gender_based_violence": "Gender-based violence: only the harmed person may initiate, and no direct meeting where abuse is a risk.",
    "sexual_offence": "Sexual offence: specialist facilitators, co-worked, under supervision.",
    "hate_crime": "Hate crime: specialist guidance applies.",
}


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
    process_types: list = field(default_factory=list)
    policy_version: str = POLICY_VERSION


def assess(referral):
    """Assess `referral`, the data of a referral.received event."""
    flags = set(referral["flags"])
    sensitive = sorted(flags & set(SPECIALIST_FLAGS))
    reasons = []
    if not referral["harmer_accepts_responsibility"]:
        reasons.append(Reason("harmer_denies_responsibility",
                              "The harmer does not accept responsibility, which RJ requires."))
        return Outcome("unsuitable", reasons, "high", "intermediate", False, [])
    if "domestic_abuse" in flags and referral["initiated_by"] != "harmed":
        reasons.append(Reason("domestic_abuse_not_harmed_initiated",
                              "Domestic abuse: RJ is not offered unless the harmed person asks for it."))
        return Outcome("unsuitable", reasons, "high", "advanced", True, [])
    if sensitive:
        reasons += [Reason(f"specialist_review_{flag}", SPECIALIST_FLAGS[flag]) for flag in sensitive]
        return Outcome("needs_review", reasons, "high", "advanced", True, ["shuttle", "letter_exchange"])
    youth = "youth" in flags
    reasons.append(Reason("responsibility_accepted", "The harmer accepts responsibility."))
    if youth:
        reasons.append(Reason("youth_case", "Youth case: the facilitator must be endorsed for work with young people."))
    processes = ["direct_conference", "shuttle", "letter_exchange"] + (["youth_panel"] if youth else [])
    return Outcome("suitable", reasons, "low", "intermediate", False, processes)


def required_endorsements(referral):
    return {"youth"} if "youth" in referral["flags"] else set()
