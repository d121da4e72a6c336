"""Safeguarding rules more than one service applies, kept in one place so they cannot drift.

- The parties are the harmed person and the harmer. Supporters, interpreters and
  appropriate adults help a party take part; they are not parties, so their consent
  (or its withdrawal) decides whether *they* take part, not whether the case goes ahead.
- In domestic-abuse, gender-based-violence and sexual-offence cases every contact with
  the parties is led by a facilitator: the platform tells the facilitator and never
  writes to a party on its own initiative, because a message arriving unannounced (or
  being read by the person who harmed them) can itself put someone at risk.
"""
PARTIES = ("harmed", "harmer")

FACILITATOR_LED_FLAGS = frozenset({"domestic_abuse", "gender_based_violence", "sexual_offence"})
FACILITATOR_LED_OFFENCES = frozenset({"sexual_offence"})


def is_party(role):
    """Whether a person in `role` is a party to the case (None, an unknown role, counts:
    when in doubt, treat a withdrawal as one that stops the case)."""
    return role is None or role in PARTIES


def facilitator_led(flags, offence_category=None):
    """Whether all contact with the parties must go through a facilitator."""
    return bool(FACILITATOR_LED_FLAGS & set(flags or ())) or offence_category in FACILITATOR_LED_OFFENCES


SUPERVISED_FLAGS = frozenset({"domestic_abuse", "sexual_offence"})
SUPERVISED_OFFENCES = frozenset({"sexual_offence"})


def needs_supervision(flags, offence_category=None):
    """Whether a second sign-off (supervision) must follow the facilitator's safety
    decision before the parties may communicate at all: sexual-offence and domestic-abuse
    cases, which specialists run under supervision."""
    return bool(SUPERVISED_FLAGS & set(flags or ())) or offence_category in SUPERVISED_OFFENCES
