"""Which of a person's details may be released, to whom, and for what: pure rules.

Each purpose names the roles it may reach and the smallest set of fields it needs.
A request for any other purpose, or for a person the purpose does not cover, is
refused with a reason code (CONTRACTS.md). Only keys with a value are released.
"""
from dataclasses import dataclass

from services.referrals import consents

PARTICIPANT_FIELDS = ("name", "email", "phone", "language", "preferred_channels", "safe_contact_windows",
                      "contact_safe")
# purpose -> (roles it may reach, fields it releases, whether the person's consent and safety apply)
PURPOSES = {
    "referrer_update": ({"referrer"}, ("name", "email", "language"), False),
    "participant_information": ({"harmed", "harmer", "supporter", "appropriate_adult"}, PARTICIPANT_FIELDS, True),
    "outcome_update": ({"harmed"}, PARTICIPANT_FIELDS, True),
    # a session's invitation, change, cancellation and reminder, to whoever attends it: the
    # person's details and the session (interventions.invitation: when, and where)
    "session_invitation": ({"harmed", "harmer", "supporter", "appropriate_adult", "interpreter"},
                           PARTICIPANT_FIELDS, True),
    # after the intervention (agreement.py, surveys.py): an item's owner reminded before its
    # due date, and a party invited to a satisfaction survey (with the link of their open
    # survey, added by the workflow: `survey_link`; refused `no_open_survey` when none is open)
    "agreement_reminder": ({"harmed", "harmer"}, PARTICIPANT_FIELDS, True),
    "survey_invitation": ({"harmed", "harmer"}, PARTICIPANT_FIELDS, True),
}
SESSION_PURPOSE = "session_invitation"
SURVEY_INVITATION = "survey_invitation"
# channels that need a field to be usable
CHANNEL_NEEDS = {"email": "email", "sms": "phone", "phone": "phone"}


@dataclass(frozen=True)
class Decision:
    granted: bool
    reason: str
    details: dict

    @property
    def fields(self):
        return sorted(self.details)


def refuse(reason):
    return Decision(False, reason, {})


def usable_channels(personal):
    """The preferred channels that can actually reach the person, in their order.
    A letter counts only when there is a safe address to send it to."""
    contact = personal.get("contact", {})
    usable = []
    for channel in personal.get("preferred_channels", []):
        if channel == "letter":
            if personal.get("safe_addresses"):
                usable.append(channel)
        elif contact.get(CHANNEL_NEEDS[channel]):
            usable.append(channel)
    return usable


def decide(party, personal, purpose, consent_records=()):
    """Whether `purpose` may reach `party` (its role, attributes and safeguarding flag),
    and with which of its `personal` details (None once erased)."""
    if purpose not in PURPOSES:
        return refuse("unknown_purpose")
    roles, wanted, guarded = PURPOSES[purpose]
    if party["role"] not in roles:
        return refuse("purpose_does_not_cover_role")
    if personal is None:
        return refuse("personal_data_erased")
    if guarded:
        # No record yet is not a refusal: the first message explains RJ and how to say no.
        consent = consents.in_force(consent_records, party["party_id"], "participation")
        if consent is not None and not consent["granted"]:
            return refuse("consent_withdrawn")
        if not party.get("contact_safe", True):
            return refuse("contact_unsafe")
    contact = personal.get("contact", {})
    flat = {
        "name": personal.get("name"),
        "email": contact.get("email"),
        "phone": contact.get("phone"),
        "language": party.get("attributes", {}).get("language"),
        "preferred_channels": usable_channels(personal),
        "safe_contact_windows": personal.get("safe_contact_windows", []),
        "contact_safe": party.get("contact_safe", True),
    }
    if not (flat["email"] or flat["phone"] or (guarded and flat["preferred_channels"])):
        return refuse("no_contact_details")
    details = {}
    for name in wanted:
        value = flat.get(name)
        # an empty window list means "any time" and contact_safe False is meaningful: keep both
        if value or name in ("safe_contact_windows", "contact_safe") and value is not None:
            details[name] = value
    return Decision(True, "granted", details)


def for_session(decision, refusal, session):
    """A `session_invitation` decision: the person's own refusal first, then the session's
    (`facilitator_led`, `unknown_session`, `not_invited`), else their details with `session`."""
    if not decision.granted:
        return decision
    if refusal:
        return refuse(refusal)
    return Decision(True, "granted", {**decision.details, "session": session})
