"""Who is told what, for each event: pure rules over the event and the case directory.

| event                 | recipient            | purpose of the contact lookup |
|-----------------------|----------------------|-------------------------------|
| referral.received     | referrer             | referrer_update               |
| case.assessed         | referrer             | referrer_update (reasons when unsuitable) |
|                       | harmed, if suitable  | participant_information (what RJ is; Victims' Code) |
|                       | harmer, if suitable on the referral itself | participant_information |
| facilitator.assigned  | referrer, lead only  | referrer_update               |
|                       | the facilitator      | assignment_offer (case summary, no participant details) |
| assignment.accepted   | harmed, lead only    | participant_information (a facilitator will be in touch) |
|                       | harmer, lead only, unless the case went through review | participant_information |
| case.outcome_recorded | harmed               | outcome_update                |
|                       | referrer             | referrer_update (the outcome code only) |
| case.closed           | referrer             | referrer_update (the closure reason) |
|                       | harmed, if the case reached INTERVENTION | outcome_update (the intervention has ended) |
| agreement.item_due    | the item's owner (harmed or harmer) | agreement_reminder |
| agreement.item_missed | the lead facilitator | case_update (matching)        |
| survey.requested      | the party asked      | survey_invitation (the link comes with the details) |
| case.deadline_due     | coordinator (the team of the case's region) | deadline_alert (notifications' own coordinating teams) |
| case.deadline_missed  | coordinator (the team of the case's region) | deadline_alert |
| session.scheduled, .changed, .cancelled | each attendee (and who was taken off) | session_invitation (sessions.py) |
|                       | or, facilitator-led, the lead facilitator | assignment_offer (matching)   |

In facilitator-led cases, where a party would be written to above (the outcome, the end
of the intervention, a reminder, a survey) the lead facilitator is told instead
(`case_update`, through matching): the case's accepted lead assignment in the directory.

Safeguarding, in order of precedence:
- A case the policy refuses (unsuitable) contacts no party at all: the harmed person
  hears nothing until the case has been assessed, so a referral that may put them at
  risk (say, one a domestic abuser started) never reaches them. The Victims' Code clock
  still runs, and falls to a coordinator if no one tells them.
- In domestic-abuse, gender-based-violence and sexual-offence cases every contact is led
  by the facilitator (`shared.safeguarding.facilitator_led`): no party is written to.
- A case that needed a coordinator's review does not write to the harmer: the harmer
  hears from the facilitator, after the facilitator's own risk assessment.
- An assessment made when consent was given again tells the referrer only: the parties
  already know of the case.
"""
from dataclasses import dataclass
from typing import Optional

from services.notifications import sessions
from services.notifications.coordinators import team_id
from shared import safeguarding

REFERRALS, MATCHING = "referrals", "matching"  # who holds the contact details
COORDINATORS = "coordinators"  # notifications' own directory of coordinating teams (coordinators.py)
AGENCIES = "agencies"  # notifications' own directory of agencies' contacts (agencies.py; owners.py tells them)


@dataclass(frozen=True)
class Notice:
    event_type: str
    recipient_role: str
    recipient_id: str
    purpose: str
    holder: str = REFERRALS
    # the session a session notice is about (the holder is asked about it, with the person)
    session_id: Optional[str] = None

    @property
    def template(self):
        """The template's code: `<role>.<event type>` (e.g. `harmed.referral_received`); the
        people attending a session share one (`attendee.session_scheduled`)."""
        return f"{template_role(self.event_type, self.recipient_role)}.{self.event_type.replace('.', '_')}"


def template_role(event_type, role):
    """The role whose template a recipient's message is written from."""
    return sessions.template_role(event_type, role)


# (event type, recipient role) pairs that have a message; the templates directory holds
# one file per pair and language.
MESSAGES = (
    ("referral.received", "referrer"),
    ("case.assessed", "referrer"),
    ("case.assessed", "harmed"),
    ("case.assessed", "harmer"),
    ("facilitator.assigned", "referrer"),
    ("facilitator.assigned", "facilitator"),
    ("assignment.accepted", "harmed"),
    ("assignment.accepted", "harmer"),
    ("case.outcome_recorded", "harmed"),
    ("case.deadline_due", "coordinator"),
    ("case.deadline_missed", "coordinator"),
    # sessions: one template for everyone attending (by their role inside), a briefing for
    # the facilitator where contact is theirs to lead; the reminder is no event of its own
    (sessions.SCHEDULED, sessions.ATTENDEE),
    (sessions.CHANGED, sessions.ATTENDEE),
    (sessions.CANCELLED, sessions.ATTENDEE),
    (sessions.REMINDER, sessions.ATTENDEE),
    (sessions.SCHEDULED, "facilitator"),
    (sessions.CHANGED, "facilitator"),
    (sessions.CANCELLED, "facilitator"),
    # after the intervention: the outcome, the end of it, the agreement's items, surveys
    ("case.outcome_recorded", "referrer"),
    ("case.outcome_recorded", "facilitator"),
    ("case.closed", "referrer"),
    ("case.closed", "harmed"),
    ("case.closed", "facilitator"),
    ("agreement.item_due", "harmer"),
    ("agreement.item_due", "harmed"),
    ("agreement.item_due", "facilitator"),
    ("agreement.item_missed", "facilitator"),
    ("survey.requested", "harmed"),
    ("survey.requested", "harmer"),
    ("survey.requested", "facilitator"),
    # no case: a subscription's owning agency is told it was disabled (owners.py)
    ("subscription.disabled", "agency"),
)
# a case closed from one of these had reached its intervention: the harmed person is told it has ended
AFTER_INTERVENTION = ("INTERVENTION", "AGREEMENT_MONITORING", "FOLLOW_UP")
# the events a closure itself sets off: closing the case does not withdraw their deliveries
CLOSURE_EVENTS = ("case.closed", "case.outcome_recorded", "survey.requested")


def _participants(case, role):
    return [p["participant_id"] for p in case.participants if p["role"] == role]


def contact_led_by_facilitator(case):
    summary = case.summary or {}
    return safeguarding.facilitator_led(summary.get("flags"), summary.get("offence_category"))


def lead_facilitator(case):
    """The facilitator holding the case's lead: the lead assignment last accepted (or, in a
    directory from before acceptances were kept, its only lead assignment); None if unknown."""
    leads = [a for a in (case.assignments or {}).values() if a.get("role") == "lead"]
    accepted = [a for a in leads if a.get("accepted_at")]
    if accepted:
        return max(accepted, key=lambda a: a["accepted_at"])["facilitator_id"]
    return leads[0]["facilitator_id"] if len(leads) == 1 else None


def notices(event, case):
    """The notices an event gives rise to; `case` is its CaseDirectoryEntry."""
    kind, data = event["type"], event["data"]
    found = []

    def tell(role, recipient_id, purpose, holder=REFERRALS, session_id=None):
        found.append(Notice(kind, role, recipient_id, purpose, holder, session_id))

    parties_reachable = not contact_led_by_facilitator(case)
    if kind == "referral.received":
        tell("referrer", case.referrer_id, "referrer_update")
    elif kind == "case.assessed":
        tell("referrer", case.referrer_id, "referrer_update")
        basis = data.get("basis", "referral")
        if data["decision"] == "suitable" and parties_reachable and basis != "consent":
            for pid in _participants(case, "harmed"):
                tell("harmed", pid, "participant_information")
            if basis == "referral":
                for pid in _participants(case, "harmer"):
                    tell("harmer", pid, "participant_information")
    elif kind == "facilitator.assigned":
        if data["role"] == "lead":
            tell("referrer", case.referrer_id, "referrer_update")
        tell("facilitator", data["facilitator_id"], "assignment_offer", MATCHING)
    elif kind == "assignment.accepted":
        assignment = case.assignments.get(data["assignment_id"]) or {}
        if assignment.get("role") == "lead" and parties_reachable:
            # the harmer only on a suitable assessment that needed no review: read so that a
            # directory entry which missed the review's assessment (an update lost to a race)
            # still holds back, rather than writes to the harmer
            assessed = case.assessment or {}
            harmer_too = assessed.get("decision") == "suitable" and assessed.get("basis", "referral") != "review"
            for role in ("harmed", "harmer") if harmer_too else ("harmed",):
                for pid in _participants(case, role):
                    tell(role, pid, "participant_information")
    elif kind in ("case.deadline_due", "case.deadline_missed"):
        # a Victims' Code clock: the coordinating team of the case's region, never a participant
        tell("coordinator", team_id(case.summary.get("region")), "deadline_alert", COORDINATORS)
    elif kind in sessions.EVENTS:
        # past the safety gate; in facilitator-led cases the lead facilitator is briefed instead
        for role, recipient_id in sessions.recipients(data, case, led=not parties_reachable):
            if role == "facilitator":
                tell(role, recipient_id, "assignment_offer", MATCHING, session_id=data["session_id"])
            else:
                tell(role, recipient_id, sessions.PURPOSE, session_id=data["session_id"])
    elif kind in AFTERCARE:
        _aftercare(kind, data, case, parties_reachable, tell)
    return found


AFTERCARE = ("case.outcome_recorded", "case.closed", "agreement.item_due", "agreement.item_missed",
             "survey.requested")


def _aftercare(kind, data, case, parties_reachable, tell):
    """Who hears of what follows the intervention; where a party would be written to in a
    facilitator-led case, the lead facilitator is told instead."""
    def party_or_facilitator(role, recipient_id, purpose):
        if parties_reachable:
            tell(role, recipient_id, purpose)
        else:
            tell_lead()

    def tell_lead():
        lead = lead_facilitator(case)
        if lead is not None:
            tell("facilitator", lead, "case_update", MATCHING)

    def tell_harmed():
        """The outcome, or the end of the intervention: each harmed person, or their facilitator."""
        harmed = _participants(case, "harmed")
        if parties_reachable:
            for pid in harmed:
                tell("harmed", pid, "outcome_update")
        elif harmed:
            tell_lead()

    if kind == "case.outcome_recorded":
        tell("referrer", case.referrer_id, "referrer_update")
        tell_harmed()
    elif kind == "case.closed":
        tell("referrer", case.referrer_id, "referrer_update")
        if data.get("from_status") in AFTER_INTERVENTION:
            tell_harmed()
    elif kind == "agreement.item_due":
        party_or_facilitator(data["owner_role"], data["owner_id"], "agreement_reminder")
    elif kind == "agreement.item_missed":
        tell_lead()
    elif kind == "survey.requested":
        party_or_facilitator(data["participant_role"], data["participant_id"], "survey_invitation")
