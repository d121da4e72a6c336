"""A small stand-in for services/subscriptions/profiles.py, injected into the dispatcher's and
the feed's unit tests: rules simple enough to read off each test, so that what the tests pin
down is the delivery machinery, not the profiles (tests/unit/test_subscription_profiles.py
tests those).

- a case's facts come from its `referral.received`;
- own_cases covers the cases the agency referred; area_cases and statistics those in the
  agreement's regions;
- `notification.sent` is withheld by every profile; otherwise own_cases and area_cases pass
  the case id and the status, statistics the type and region.
"""
from dataclasses import dataclass

PROFILE_NAMES = ("own_cases", "area_cases", "statistics")
PROFILES_VERSION = 7
WITHHELD = "notification.sent"


@dataclass(frozen=True)
class CaseFacts:
    agency: str = None
    region: str = None
    offence_category: str = None


def case_of(event):
    return (event.get("data") or {}).get("case_id")


def follow_case(facts, event):
    if event["type"] != "referral.received":
        return facts
    data = event["data"]
    return CaseFacts(data["agency"], data["region"], data.get("offence_category"))


def entitled(agreement, event, facts):
    if agreement is None or agreement.profile not in PROFILE_NAMES or facts is None:
        return False
    if agreement.profile == "own_cases":
        return facts.agency == agreement.agency
    return facts.region in agreement.regions


def redact(profile, event, facts, statistic_key):
    if event["type"] == WITHHELD:
        return None
    if profile == "statistics":
        return {"event_type": event["type"], "region": facts.region}
    return {"case_id": event["data"]["case_id"], "status": event["data"].get("status")}


@dataclass(frozen=True)
class Agreement:
    """Stands in for sharing.SharingAgreement (the fields entitlement reads)."""
    agency: str
    profile: str
    regions: tuple = ()
    version: int = 1
