"""Choosing a facilitator for a case: hard constraints first, then a score. Pure rules."""
from dataclasses import dataclass
from datetime import date, timedelta

LEVELS = ("foundation", "intermediate", "advanced")
CURRENCY = timedelta(days=365)


@dataclass(frozen=True)
class Candidate:
    facilitator_id: str
    level: str
    regions: frozenset
    languages: frozenset
    endorsements: frozenset
    spare: int
    last_active: date
    active: bool = True


@dataclass(frozen=True)
class Requirement:
    level: str
    region: str
    languages: frozenset
    endorsements: frozenset


def is_current(candidate, today):
    return today - candidate.last_active <= CURRENCY


def fits(candidate, need, today):
    return (
        candidate.active
        and LEVELS.index(candidate.level) >= LEVELS.index(need.level)
        and is_current(candidate, today)
        and need.region in candidate.regions
        and need.languages <= candidate.languages
        and need.endorsements <= candidate.endorsements
        and candidate.spare > 0
    )


def score(candidate, need):
    """Higher is better: spare capacity spreads caseloads; an over-qualified lead is
    kept free for the complex cases that need one."""
    over_level = LEVELS.index(candidate.level) - LEVELS.index(need.level)
    return candidate.spare * 10 - over_level * 5


def rank(candidates, need, today):
    eligible = [c for c in candidates if fits(c, need, today)]
    return sorted(eligible, key=lambda c: (-score(c, need), c.facilitator_id))
