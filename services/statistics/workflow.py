"""Turning a region's events into de-identified statistics for the national view.

An event's statistic needs its case's offence category, which only the referral carries:
the category is remembered when `referral.received` arrives, and an event of a case whose
referral has not arrived yet waits for it (TooEarly holds it back, then tries again).
"""
from shared.messaging.consumer import TooEarly
from shared import statistics_profile


class ReferralNotSeen(TooEarly):
    """The case's referral has not reached the statistics service yet."""


def handle(event, *, store, region, key, send):
    """Send the statistic `event` gives, if the profile exports its type; return it (or None)."""
    if not statistics_profile.exported(event["type"]):
        return None
    data = event["data"]
    case_id = data["case_id"]
    if event["type"] == "referral.received":
        store.remember_category(case_id, data["offence_category"])
    category = store.offence_category(case_id)
    if category is None:
        raise ReferralNotSeen(f"{event['type']} came before its case's referral")
    statistic = statistics_profile.statistic(event, region=region, offence_category=category, key=key)
    send(statistic)
    return statistic
