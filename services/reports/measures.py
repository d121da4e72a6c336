"""The standard RJ measures, computed from the reports' read model (projection.py).

Every measure is a function `(state, granularity="month", regions=None, as_of=None)`
returning plain rows (dicts whose keys are the measure's `columns`, in that order),
sorted by period and then by breakdown. `granularity` is one of periods.GRANULARITIES;
`regions`, when given, keeps only the cases referred in those regions (a coordinator's);
`as_of` is the moment the Victims' Code clocks are judged at (default: the latest event
folded). docs/reports.md defines each measure: which events, which period a case falls
in, what is counted when an event is missing or repeated.
"""
import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Callable, NamedTuple

from services.referrals import deadlines
from services.reports.periods import check, period_of
from services.reports.projection import PARTIES, STAGES
from shared.events.vocabulary import OUTCOMES
from shared.statistics_profile import CLOSURE_CLASSES, PROCESS_CLASSES

COMPLETED = STAGES.index("completed")
# a survey score of 4 or 5 (of 5) counts as a favourable answer
FAVOURABLE_FROM = 4
AGREEMENT_COMPLETED, AGREEMENT_NOT_COMPLETED = OUTCOMES   # the outcomes of an agreement


class Measure(NamedTuple):
    name: str
    columns: tuple
    compute: Callable


def rate(numerator, denominator):
    """numerator / denominator to 4 places; None (an empty cell) when there is nothing to divide."""
    return round(numerator / denominator, 4) if denominator else None


def median(values):
    """The median, a whole number where it is one; None for no values."""
    if not values:
        return None
    middle = statistics.median(values)
    return int(middle) if float(middle).is_integer() else float(middle)


def table_rows(columns, table):
    """Rows from {key tuple: value tuple}, sorted by key (an unknown key part, None, first)."""
    return [dict(zip(columns, key + values)) for key, values in sorted(table.items(), key=_sort_key)]


def _sort_key(item):
    return tuple("" if part is None else part for part in item[0])


# --- referrals ----------------------------------------------------------------------------

REFERRALS = ("period", "region", "agency", "offence_category", "referrals")


def referrals(state, granularity="month", regions=None, as_of=None):
    """Cases referred, by the period their referral was received in."""
    check(granularity)
    counts = Counter()
    for case in state.referred(regions):
        r = case.referral
        counts[(period_of(r.at, granularity), r.region, r.agency, r.offence_category)] += 1
    return table_rows(REFERRALS, {key: (n,) for key, n in counts.items()})


# --- suitability decisions and their reasons ---------------------------------------------

SUITABILITY = ("period", "region", "decision", "basis", "decisions", "cases")
SUITABILITY_REASONS = ("period", "region", "decision", "reason", "decisions")


def suitability(state, granularity="month", regions=None, as_of=None):
    """Suitability decisions (each assessment once), by the period each was made in."""
    check(granularity)
    decisions, cases = Counter(), defaultdict(set)
    for case in state.referred(regions):
        for assessment in case.assessments.values():
            key = (period_of(assessment.at, granularity), case.referral.region, assessment.decision, assessment.basis)
            decisions[key] += 1
            cases[key].add(case.case_id)
    return table_rows(SUITABILITY, {key: (n, len(cases[key])) for key, n in decisions.items()})


def suitability_reasons(state, granularity="month", regions=None, as_of=None):
    """How many decisions gave each reason, by the period each decision was made in."""
    check(granularity)
    counts = Counter()
    for case in state.referred(regions):
        for assessment in case.assessments.values():
            period = period_of(assessment.at, granularity)
            for reason in set(assessment.reasons):
                counts[(period, case.referral.region, assessment.decision, reason)] += 1
    return table_rows(SUITABILITY_REASONS, {key: (n,) for key, n in counts.items()})


# --- attrition at each stage, and closures -------------------------------------------------

ATTRITION = ("period", "region", "stage", "reached", "closed_here", "open_here", "attrition_rate")
CLOSURES = ("period", "region", "stage", "closure_class", "closure_reason", "cases")


def furthest_stage(case):
    """The index in STAGES of the furthest stage a case reached: completed when it closed
    with a completed reason, else the furthest its events show."""
    if case.closure is not None and CLOSURE_CLASSES[case.closure.code] == "completed":
        return COMPLETED
    return max((STAGES.index(stage) for stage in case.stages), default=0)


def left_at(case):
    """The stage a case was at when it closed (its furthest before completion)."""
    return STAGES[max((STAGES.index(stage) for stage in case.stages), default=0)]


def attrition(state, granularity="month", regions=None, as_of=None):
    """The cases referred in each period followed through the stages: how many reached
    each stage, how many closed there without going further, how many are still there."""
    check(granularity)
    reached, closed_here, open_here = Counter(), Counter(), Counter()
    cohorts = set()
    for case in state.referred(regions):
        cohort = (period_of(case.referral.at, granularity), case.referral.region)
        cohorts.add(cohort)
        furthest = furthest_stage(case)
        for stage in STAGES[:furthest + 1]:
            reached[cohort + (stage,)] += 1
        if furthest != COMPLETED:
            (open_here if case.closure is None else closed_here)[cohort + (STAGES[furthest],)] += 1
    table = {}
    for cohort in cohorts:
        for stage in STAGES:
            key = cohort + (stage,)
            table[(cohort[0], cohort[1], STAGES.index(stage))] = (
                stage, reached[key], closed_here[key], open_here[key], rate(closed_here[key], reached[key]))
    # sorted by period, region, then the stages in their order (not alphabetically)
    return [dict(zip(ATTRITION, key[:2] + values)) for key, values in sorted(table.items())]


def closures(state, granularity="month", regions=None, as_of=None):
    """Cases closed, by the period they closed in, the stage they left at and the reason."""
    check(granularity)
    counts = Counter()
    for case in state.referred(regions):
        if case.closure is not None:
            reason = case.closure.code
            counts[(period_of(case.closure.at, granularity), case.referral.region, left_at(case),
                    CLOSURE_CLASSES[reason], reason)] += 1
    return table_rows(CLOSURES, {key: (n,) for key, n in counts.items()})


# --- time from referral to first contact --------------------------------------------------

FIRST_CONTACT = ("period", "region", "party", "referred", "contacted", "median_days", "median_working_days")
EITHER = "either"


def first_contact(state, granularity="month", regions=None, as_of=None):
    """For the cases referred in each period: how many have had a first contact that
    reached a party (either, the harmed person, the person who harmed), and the median
    time it took, in calendar and in working days."""
    check(granularity)
    referred = Counter()
    days, working_days = defaultdict(list), defaultdict(list)
    for case in state.referred(regions):
        cohort = (period_of(case.referral.at, granularity), case.referral.region)
        referred[cohort] += 1
        referred_on = deadlines.today_in_london(case.referral.at)
        reached = dict(case.first_reached)
        if reached:
            reached[EITHER] = min(reached.values())
        for party, at in reached.items():
            contacted_on = deadlines.today_in_london(at)
            days[cohort + (party,)].append(max(0, (contacted_on - referred_on).days))
            working_days[cohort + (party,)].append(deadlines.working_days_between(referred_on, contacted_on))
    table = {}
    for cohort, n in referred.items():
        for party in (EITHER,) + PARTIES:
            key = cohort + (party,)
            table[key] = (n, len(days[key]), median(days[key]), median(working_days[key]))
    return table_rows(FIRST_CONTACT, table)


# --- Victims' Code compliance ---------------------------------------------------------------

VICTIMS_CODE = ("period", "region", "deadline", "working_days", "clocks", "met", "met_late", "missed", "stopped",
                "open", "compliance_rate")
OPEN_STATES = ("running", "due")


class Clock(NamedTuple):
    deadline: str
    working_days: int
    state: str          # deadlines.CLOCK_STATES


def clocks(case, as_of):
    """The case's two Victims' Code clocks, each in its state at `as_of`."""
    referred_on = deadlines.today_in_london(case.referral.at)
    enhanced = case.referral.enhanced_rights
    told = deadlines.victim_told_about_rj(referred_on, enhanced)
    support = deadlines.support_referral(referred_on, enhanced)
    support_at, supported = _support_settled(case)
    return (
        Clock(deadlines.DEADLINE, deadlines.ENHANCED_DAYS if enhanced else deadlines.STANDARD_DAYS,
              _clock_state(case, told, case.victim_told(), True, as_of)),
        Clock(deadlines.SUPPORT_DEADLINE, deadlines.SUPPORT_DAYS,
              _clock_state(case, support, support_at, supported, as_of)),
    )


def _support_settled(case):
    """When nothing was left for the support_referral clock to wait for (every harmed
    person has a referral or refusal recorded, or was erased), and whether anyone had one
    recorded (met) or not (stopped); (None, False) while someone is still waiting."""
    harmed = case.referral.harmed
    settled = [min(t for t in (case.support_recorded.get(p), case.erased.get(p)) if t is not None)
               for p in harmed if p in case.support_recorded or p in case.erased]
    if not harmed or len(settled) < len(harmed):
        return None, False
    return max(settled), any(p in case.support_recorded for p in harmed)


def _clock_state(case, reckoned, met_at, met, as_of):
    """A clock's state. Its deadline is the one referrals announced (measured from the day
    the crime was reported, when the referral gave it); a clock referrals never announced
    was met (or stopped) before its last day, and is reckoned from the referral's day."""
    due_at = case.clock_due.get(reckoned.deadline) or reckoned.due_at
    notice_at = deadlines.start_of_day(deadlines.today_in_london(due_at - timedelta(microseconds=1)))
    if met_at is None or not met:
        # announced missed (the case may have closed since), or every harmed person erased
        # only after it ran out: missed, not stopped
        if reckoned.deadline in case.clock_missed or (met_at is not None and met_at >= due_at):
            return "missed"
    closed = case.closure is not None and case.closure.at < due_at
    return deadlines.clock_state(notice_at, due_at, met_at, closed, as_of, met=met)


def victims_code(state, granularity="month", regions=None, as_of=None):
    """The Victims' Code clocks of the cases referred in each period, by their state."""
    check(granularity)
    as_of = as_of or state.latest
    counts = defaultdict(Counter)
    for case in state.referred(regions):
        cohort = (period_of(case.referral.at, granularity), case.referral.region)
        for clock in clocks(case, as_of):
            counts[cohort + (clock.deadline, clock.working_days)][clock.state] += 1
    table = {}
    for key, states in counts.items():
        judged = states["met"] + states["met_late"] + states["missed"]
        table[key] = (sum(states.values()), states["met"], states["met_late"], states["missed"], states["stopped"],
                      sum(states[s] for s in OPEN_STATES), rate(states["met"], judged))
    return table_rows(VICTIMS_CODE, table)


# --- direct and indirect processes ------------------------------------------------------------

PROCESSES = ("period", "region", "process_class", "process_type", "cases", "share")


def processes(state, granularity="month", regions=None, as_of=None):
    """The process chosen for each case (its latest choice), by the period it was chosen in."""
    check(granularity)
    counts, totals = Counter(), Counter()
    for case in state.referred(regions):
        if case.process is not None:
            place = (period_of(case.process.at, granularity), case.referral.region)
            counts[place + (PROCESS_CLASSES[case.process.code], case.process.code)] += 1
            totals[place] += 1
    return table_rows(PROCESSES, {key: (n, rate(n, totals[key[:2]])) for key, n in counts.items()})


# --- outcome agreements -----------------------------------------------------------------------

AGREEMENTS = ("period", "region", "agreements_recorded", "outcomes_recorded", "completed", "not_completed",
              "completion_rate")


def agreements(state, granularity="month", regions=None, as_of=None):
    """Agreements recorded (by the period each was recorded in) and outcomes recorded (by
    the period each was recorded in), with the share of outcomes that were completed."""
    check(granularity)
    recorded, outcomes = Counter(), defaultdict(Counter)
    for case in state.referred(regions):
        for at in case.agreements.values():
            recorded[(period_of(at, granularity), case.referral.region)] += 1
        if case.outcome is not None:
            outcomes[(period_of(case.outcome.at, granularity), case.referral.region)][case.outcome.code] += 1
    return agreement_rows(recorded, outcomes)


def agreement_rows(recorded, outcomes):
    """The agreements rows from agreements recorded ({place: n}) and outcomes recorded
    ({place: {outcome: n}}), a place being (period, region)."""
    table = {}
    for place in set(recorded) | set(outcomes):
        done, not_done = outcomes[place][AGREEMENT_COMPLETED], outcomes[place][AGREEMENT_NOT_COMPLETED]
        table[place] = (recorded[place], done + not_done, done, not_done, rate(done, done + not_done))
    return table_rows(AGREEMENTS, table)


# --- satisfaction ---------------------------------------------------------------------------

SATISFACTION = ("period", "region", "stage", "party", "answers", "satisfied", "felt_safe", "would_recommend",
                "harm_repaired", "satisfied_rate", "felt_safe_rate", "would_recommend_rate", "harm_repaired_rate",
                "median_satisfaction")


def satisfaction(state, granularity="month", regions=None, as_of=None):
    """Survey answers, by the period each was given in, the survey's stage and the party."""
    check(granularity)
    answers = defaultdict(list)
    for case in state.referred(regions):
        for answer in case.surveys.values():
            answers[(period_of(answer.at, granularity), case.referral.region, answer.stage, answer.role)].append(answer)
    table = {}
    for key, given in answers.items():
        favourable = (sum(a.satisfied_with_process >= FAVOURABLE_FROM for a in given),
                      sum(a.felt_safe >= FAVOURABLE_FROM for a in given),
                      sum(bool(a.would_recommend) for a in given),
                      sum(a.harm_repaired >= FAVOURABLE_FROM for a in given))
        table[key] = ((len(given),) + favourable + tuple(rate(n, len(given)) for n in favourable)
                      + (median([a.satisfied_with_process for a in given]),))
    return table_rows(SATISFACTION, table)


MEASURES = {measure.name: measure for measure in (
    Measure("referrals", REFERRALS, referrals),
    Measure("suitability", SUITABILITY, suitability),
    Measure("suitability_reasons", SUITABILITY_REASONS, suitability_reasons),
    Measure("attrition", ATTRITION, attrition),
    Measure("closures", CLOSURES, closures),
    Measure("first_contact", FIRST_CONTACT, first_contact),
    Measure("victims_code", VICTIMS_CODE, victims_code),
    Measure("processes", PROCESSES, processes),
    Measure("agreements", AGREEMENTS, agreements),
    Measure("satisfaction", SATISFACTION, satisfaction),
)}


class UnknownMeasure(ValueError):
    def __init__(self, name):
        super().__init__(f"measure: must be one of {', '.join(MEASURES)}")


def compute(name, state, granularity="month", regions=None, as_of=None):
    """The rows of measure `name`."""
    if name not in MEASURES:
        raise UnknownMeasure(name)
    return MEASURES[name].compute(state, granularity, regions, as_of)
