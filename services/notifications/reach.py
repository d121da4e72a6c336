"""Whether, how and when a person may be reached: pure rules over the answer of a
contact lookup (see CONTRACTS.md) and the channels this deployment can send on.

The outcome is one of:
- send now, on a channel, to an address;
- suppress, with a reason code (copied into notification.suppressed);
- defer until the person's next safe-contact window opens.
"""
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from services.notifications import windows
from shared.events.vocabulary import LANGUAGES

# The detail each channel needs.
ADDRESS_FIELD = {"email": "email", "sms": "phone"}
# Staff are reached by email; a participant who stated no preference by email, then SMS.
DEFAULT_CHANNELS = {"referrer": ("email",), "facilitator": ("email",), "coordinator": ("email",),
                    "agency": ("email",)}
PARTICIPANT_DEFAULT = ("email", "sms")


@dataclass(frozen=True)
class Reach:
    action: str  # "send" | "suppress" | "defer"
    reason: Optional[str] = None
    channel: Optional[str] = None
    address: Optional[str] = None
    language: str = "en"
    name: Optional[str] = None
    until: Optional[datetime] = None
    # a survey invitation's link, released with the person's details (survey_invitation)
    link: Optional[str] = None


def decide(answer, recipient_role, available, now, fallback_language="en", channel=None):
    """How to reach one person now.

    `answer` is the lookup's {"granted", "reason", "details"}; `available` the channels
    that can be sent on here; `channel`, when given, is the only one to consider (a
    retried or deferred delivery keeps the channel it was keyed by).
    """
    if not answer.get("granted"):
        return Reach("suppress", reason=answer.get("reason") or "contact_refused")
    details = answer.get("details") or {}
    language = details.get("language") if details.get("language") in LANGUAGES else fallback_language
    if details.get("contact_safe") is False:
        return Reach("suppress", reason="contact_unsafe")
    preferred = list(details.get("preferred_channels") or DEFAULT_CHANNELS.get(recipient_role, PARTICIPANT_DEFAULT))
    if channel is not None:
        if channel not in preferred:
            return Reach("suppress", reason="channel_not_preferred")
        preferred = [channel]
    usable = [c for c in preferred if c in available]
    if not usable:
        # e.g. only letters or phone calls agreed: nothing we may send on
        return Reach("suppress", reason="channel_not_preferred")
    chosen = next((c for c in usable if details.get(ADDRESS_FIELD[c])), None)
    if chosen is None:
        return Reach("suppress", reason="no_contact_details")
    try:
        until = windows.next_opening(details.get("safe_contact_windows") or [], now)
    except windows.InvalidWindow:
        # no safe time to contact them is known: never guess one
        return Reach("suppress", reason="no_safe_contact_window", channel=chosen)
    base = dict(channel=chosen, language=language, name=details.get("name"), link=details.get("survey_link"))
    if until is not None:
        return Reach("defer", until=until, **base)
    return Reach("send", address=details[ADDRESS_FIELD[chosen]], **base)


# purposes whose message is a link of the person's own, released with their details
LINKED_PURPOSES = ("survey_invitation",)


def link_required(decision, purpose):
    """A survey invitation whose details came without its link is not sent (a holder that
    answered so has no open survey to give)."""
    if purpose in LINKED_PURPOSES and decision.action == "send" and not decision.link:
        return Reach("suppress", reason="no_open_survey", channel=decision.channel, language=decision.language)
    return decision
