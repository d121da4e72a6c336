"""The period a moment falls in, at the granularity a report asks for.

Periods are London calendar days grouped (a referral received at 00:30 BST on 1 April
falls in April and in the second quarter), labelled so that they sort in time order:
`2026-W14` (ISO week, for operational views), `2026-04`, `2026-Q2`, `2026`.
"""
from services.referrals.deadlines import LONDON, today_in_london
from shared.statistics_profile import iso_week

GRANULARITIES = ("week", "month", "quarter", "year")


class UnknownGranularity(ValueError):
    def __init__(self, granularity, allowed=GRANULARITIES):
        self.allowed = allowed
        super().__init__(f"granularity: must be one of {', '.join(allowed)}")


def period_of(moment, granularity):
    """The label of the period of `granularity` that `moment` falls in."""
    if granularity == "week":
        return iso_week(moment.astimezone(LONDON))
    day = today_in_london(moment)
    if granularity == "month":
        return f"{day.year}-{day.month:02d}"
    if granularity == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if granularity == "year":
        return str(day.year)
    raise UnknownGranularity(granularity)


def check(granularity, allowed=GRANULARITIES):
    if granularity not in allowed:
        raise UnknownGranularity(granularity, allowed)
    return granularity
