"""Who is told what, for each event: pure rules over the event and the case directory.

| event                 | recipient            | purpose of the contact lookup |
|-----------------------|----------------------|-------------------------------|
| referral.received     | referrer             | referrer_update               |
|                       | harmed               | participant_information (what RJ is; Victims' Code) |
| case.assessed         | referrer             | referrer_update (reasons when unsuitable) |
|                       | harmer, if suitable  | participant_information (never before a suitability decision, so a harmer does not learn of a victim's referral that may not go ahead) |
| facilitator.assigned  | referrer, lead only  | referrer_update               |
|                       | the facilitator      | assignment_offer (case summary, no participant details) |
| assignment.accepted   | harmed and harmer, lead only | participant_information (a facilitator will be in touch) |
| case.outcome_recorded | harmed               | outcome_update                |
| case.deadline_due     | coordinator (the team of the case's region) | deadline_alert (notifications' own coordinating teams) |
| case.deadline_missed  | coordinator (the team of the case's region) | deadline_alert |
"""
from dataclasses import dataclass

from services.notifications.coordinators import team_id

REFERRALS, MATCHING = "referrals", "matching"  # who holds the contact details
COORDINATORS = "coordinators"  # notifications' own directory of coordinating teams (coordinators.py)


@dataclass(frozen=True)
class Notice:
    event_type: str
    recipient_role: str
    recipient_id: str
    purpose: str
    holder: str = REFERRALS

    @property
    def template(self):
        """The template's code: `<role>.<event type>` (e.g. `harmed.referral_received`)."""
        return f"{self.recipient_role}.{self.event_type.replace('.', '_')}"


# (event type, recipient role) pairs that have a message; the templates directory holds
# one file per pair and language.
MESSAGES = (
    ("referral.received", "referrer"),
    ("referral.received", "harmed"),
    ("case.assessed", "referrer"),
    ("case.assessed", "harmer"),
    ("facilitator.assigned", "referrer"),
    ("facilitator.assigned", "facilitator"),
    ("assignment.accepted", "harmed"),
    ("assignment.accepted", "harmer"),
    ("case.outcome_recorded", "harmed"),
    ("case.deadline_due", "coordinator"),
    ("case.deadline_missed", "coordinator"),
)


def _participants(case, role):
    return [p["participant_id"] for p in case.participants if p["role"] == role]


def notices(event, case):
    """The notices an event gives rise to; `case` is its CaseDirectoryEntry."""
    kind, data = event["type"], event["data"]
    found = []

    def tell(role, recipient_id, purpose, holder=REFERRALS):
        found.append(Notice(kind, role, recipient_id, purpose, holder))

    if kind == "referral.received":
        tell("referrer", case.referrer_id, "referrer_update")
        for pid in _participants(case, "harmed"):
            tell("harmed", pid, "participant_information")
    elif kind == "case.assessed":
        tell("referrer", case.referrer_id, "referrer_update")
        if data["decision"] == "suitable":
            for pid in _participants(case, "harmer"):
                tell("harmer", pid, "participant_information")
    elif kind == "facilitator.assigned":
        if data["role"] == "lead":
            tell("referrer", case.referrer_id, "referrer_update")
        tell("facilitator", data["facilitator_id"], "assignment_offer", MATCHING)
    elif kind == "assignment.accepted":
        assignment = case.assignments.get(data["assignment_id"]) or {}
        if assignment.get("role") == "lead":
            for role in ("harmed", "harmer"):
                for pid in _participants(case, role):
                    tell(role, pid, "participant_information")
    elif kind == "case.outcome_recorded":
        for pid in _participants(case, "harmed"):
            tell("harmed", pid, "outcome_update")
    elif kind in ("case.deadline_due", "case.deadline_missed"):
        # a Victims' Code clock: the coordinating team of the case's region, never a participant
        tell("coordinator", team_id(case.summary.get("region")), "deadline_alert", COORDINATORS)
    return found
