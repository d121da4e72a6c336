"""Which of a person's details may be released, to whom, and for what: pure rules.

Each purpose names the smallest set of fields it needs. A request for any other
purpose, or for a person the purpose does not cover, is refused with a reason.
"""
from dataclasses import dataclass

# purpose -> (roles it may reach, fields it releases)
PURPOSES = {
    "referrer_update": ({"referrer"}, ("name", "email")),
}


@dataclass(frozen=True)
class Decision:
    granted: bool
    reason: str
    details: dict

    @property
    def fields(self):
        return sorted(self.details)


def decide(role, personal, purpose):
    if purpose not in PURPOSES:
        return Decision(False, "unknown_purpose", {})
    roles, wanted = PURPOSES[purpose]
    if role not in roles:
        return Decision(False, "purpose_does_not_cover_role", {})
    if personal is None:
        return Decision(False, "personal_data_erased", {})
    flat = {"name": personal.get("name"), **personal.get("contact", {})}
    details = {name: flat[name] for name in wanted if flat.get(name)}
    if not details:
        return Decision(False, "no_contact_details", {})
    return Decision(True, "granted", details)
