"""The standard measures the national view can have, from its de-identified statistics.

A statistic (shared/statistics_profile.py) says of one event only its type, the region
(deployment) it happened in, its case's offence category, the ISO week and a coarse
outcome class: no case id, so no two statistics can be linked to the same case. What
needs a case followed from one event to another (attrition by stage, time to first
contact, the Victims' Code compliance rate, which agency referred) cannot be had here:
`UNAVAILABLE` and `LACKS` say what and why, and docs/reports.md in full.

Each measure is a function `(statistics, granularity="week", regions=None)` over the
statistics as the national store keeps them (each counted once, by `statistic_id`),
returning rows like the regional measures' of the same name, with fewer columns. The
only period is the statistic's ISO week (its UTC week, as the region sent it).
"""
from collections import Counter, defaultdict

from services.reports.measures import AGREEMENTS, Measure, agreement_rows, rate, table_rows
from services.reports.periods import check
from services.reports.projection import region_set
from shared.statistics_profile import iso_week

GRANULARITIES = ("week",)

# The measures the national view cannot have at all, and why.
UNAVAILABLE = {
    "suitability_reasons": "a statistic carries a decision's class, not its reasons",
    "attrition": "following a case from stage to stage needs its events linked by case id, which no statistic has",
    "first_contact": "the time from referral to first contact needs two events of one case linked, which they cannot be",
}
# What the national view's form of each other measure lacks, and why.
LACKS = {
    "referrals": "the agency: a statistic does not say who referred the case",
    "suitability": "the basis (referral, review, consent): a statistic carries the decision alone",
    "closures": "the stage a case left at and the exact reason: a statistic carries the reason's class alone",
    "victims_code": ("a compliance rate: a clock met before its last day sends no event, so there is no "
                     "denominator; only clocks that reached their last day unmet (due) and those missed are counted"),
    "processes": "the process type: a statistic carries its class (direct, indirect) alone",
    "agreements": "nothing",
    "satisfaction": "the scores: a statistic of a survey answer carries none, so only answers are counted",
}


def statistics_of(state, region):
    """The statistics a region's events give (the fields national.py reads), from the reports'
    read model (projection.py keeps each event the national view counts): for a region to
    see its own figures as the national view has them. `region` is the deployment
    (AMENDS_REGION). Each is named by its event id, which never leaves the service: only
    the rows computed from them do."""
    for case in state.referred():
        for event_id, counted in case.counted.items():
            yield {"statistic_id": event_id, "event_type": counted.event_type, "region": region,
                   "offence_category": case.referral.offence_category, "week": iso_week(counted.at),
                   "outcome_class": counted.outcome_class}


def distinct(statistics):
    """Each statistic once, by its id (a region may send one again)."""
    return {s["statistic_id"]: s for s in statistics}.values()


def _counts(statistics, granularity, regions, event_type, key):
    """Counter of `key(statistic)` over the statistics of `event_type` in `regions`."""
    check(granularity, GRANULARITIES)
    regions = region_set(regions)
    counts = Counter()
    for s in distinct(statistics):
        if s["event_type"] == event_type and (regions is None or s["region"] in regions):
            counts[(s["week"], s["region"]) + key(s)] += 1
    return counts


REFERRALS = ("period", "region", "offence_category", "referrals")


def referrals(statistics, granularity="week", regions=None):
    counts = _counts(statistics, granularity, regions, "referral.received", lambda s: (s["offence_category"],))
    return table_rows(REFERRALS, {key: (n,) for key, n in counts.items()})


SUITABILITY = ("period", "region", "offence_category", "decision", "decisions")


def suitability(statistics, granularity="week", regions=None):
    # case.assessed only: case.needs_review repeats a needs_review decision for the coordinators' queue
    counts = _counts(statistics, granularity, regions, "case.assessed",
                     lambda s: (s["offence_category"], s["outcome_class"]))
    return table_rows(SUITABILITY, {key: (n,) for key, n in counts.items()})


CLOSURES = ("period", "region", "closure_class", "cases")


def closures(statistics, granularity="week", regions=None):
    counts = _counts(statistics, granularity, regions, "case.closed", lambda s: (s["outcome_class"],))
    return table_rows(CLOSURES, {key: (n,) for key, n in counts.items()})


VICTIMS_CODE = ("period", "region", "deadline", "announced_due", "missed")


def victims_code(statistics, granularity="week", regions=None):
    due = _counts(statistics, granularity, regions, "case.deadline_due", lambda s: (s["outcome_class"],))
    missed = _counts(statistics, granularity, regions, "case.deadline_missed", lambda s: (s["outcome_class"],))
    return table_rows(VICTIMS_CODE, {key: (due[key], missed[key]) for key in set(due) | set(missed)})


PROCESSES = ("period", "region", "process_class", "cases", "share")


def processes(statistics, granularity="week", regions=None):
    counts = _counts(statistics, granularity, regions, "intervention.chosen", lambda s: (s["outcome_class"],))
    totals = Counter()
    for key, n in counts.items():
        totals[key[:2]] += n
    return table_rows(PROCESSES, {key: (n, rate(n, totals[key[:2]])) for key, n in counts.items()})


def agreements(statistics, granularity="week", regions=None):
    recorded = _counts(statistics, granularity, regions, "agreement.recorded", lambda s: ())
    outcomes = defaultdict(Counter)
    for key, n in _counts(statistics, granularity, regions, "case.outcome_recorded",
                          lambda s: (s["outcome_class"],)).items():
        outcomes[key[:2]][key[2]] += n
    return agreement_rows(recorded, outcomes)


SATISFACTION = ("period", "region", "answers")


def satisfaction(statistics, granularity="week", regions=None):
    counts = _counts(statistics, granularity, regions, "survey.answered", lambda s: ())
    return table_rows(SATISFACTION, {key: (n,) for key, n in counts.items()})


MEASURES = {measure.name: measure for measure in (
    Measure("referrals", REFERRALS, referrals),
    Measure("suitability", SUITABILITY, suitability),
    Measure("closures", CLOSURES, closures),
    Measure("victims_code", VICTIMS_CODE, victims_code),
    Measure("processes", PROCESSES, processes),
    Measure("agreements", AGREEMENTS, agreements),
    Measure("satisfaction", SATISFACTION, satisfaction),
)}


class NotNational(ValueError):
    def __init__(self, name):
        self.name = name
        why = UNAVAILABLE.get(name)
        super().__init__(f"measure: not in the national view ({why})" if why
                         else f"measure: must be one of {', '.join(MEASURES)}")


def compute(name, statistics, granularity="week", regions=None):
    if name not in MEASURES:
        raise NotNational(name)
    return MEASURES[name].compute(statistics, granularity, regions)
assert set(LACKS) == set(MEASURES), "say what each national measure lacks"
