"""The standard RJ reports (services/reports): the read model folded from ledger events, the
measures computed from it, their CSV, and the national view's de-identified form.

Each test sends the events of a few cases told as `Story`s (valid events of the catalogue,
at the times the story gives) and derives the figures it expects from those stories, by
rules simple enough to check by hand (docs/reports.md defines each measure).
"""
import csv
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reports import csv_export, measures, national, periods, projection
from shared import statistics_profile as profile
from shared.events import validate_event
from shared.events.vocabulary import CLOSURE_REASONS
from tests.factories import referral_received_data
from tests.support import strings_in
from tests.unit.test_compiled_events import valid_event
from tests.unit.test_statistics_profile import KEY

LONDON = ZoneInfo("Europe/London")


def T(text):
    """A UTC moment from "YYYY-MM-DD HH:MM"."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def month(moment):
    """The London month of a moment, worked out here rather than by the code under test."""
    return moment.astimezone(LONDON).strftime("%Y-%m")


def event(event_type, at, **data):
    """A valid event of the catalogue, at `at`, with `data` over the type's defaults."""
    made = valid_event(event_type)
    if event_type == "referral.received":
        made["data"] = referral_received_data(**data)
    else:
        made["data"].update(data)
    made["time"] = at.isoformat().replace("+00:00", "Z")
    made["subject"] = made["correlationid"] = made["data"]["case_id"]
    return validate_event(made)


@dataclass
class Story:
    """One case's journey, as the events the platform would append to the ledger."""
    case_id: str
    referred: datetime
    region: str = "south-wales"
    agency: str = "south-wales-police"
    offence: str = "burglary"
    enhanced: bool = False
    assessed: tuple = ()        # (at, decision, basis, reason codes)
    allocated: datetime = None
    contacts: tuple = ()        # (at, role, outcome)
    process: tuple = None       # (at, process type)
    agreement: datetime = None
    outcome: tuple = None       # (at, outcome)
    closed: tuple = None        # (at, reason)
    surveys: tuple = ()         # (at, stage, role, (satisfied, felt safe, would recommend, harm repaired))
    notices: tuple = ()         # (at, recipient role)
    clocks: tuple = ()          # (at, "due" | "missed", deadline, due_at)
    support: tuple = ()         # (at, outcome): the harmed person's referral to support
    extra: list = field(default_factory=list)   # more events, made by the test

    @property
    def harmed(self):
        return f"{self.case_id}-harmed"

    @property
    def harmer(self):
        return f"{self.case_id}-harmer"

    def events(self):
        case = self.case_id
        people = [{"participant_id": self.harmed, "role": "harmed", "age_band": "50_64", "language": "en",
                   "access_needs": []},
                  {"participant_id": self.harmer, "role": "harmer", "age_band": "25_34", "language": "cy",
                   "access_needs": []}]
        made = [event("referral.received", self.referred, case_id=case, region=self.region, agency=self.agency,
                      offence_category=self.offence, participants=people,
                      flags=["enhanced_rights_victim"] if self.enhanced else [])]
        status = "RECEIVED"

        def move(at, to):
            nonlocal status
            made.append(event("case.status_changed", at, case_id=case, from_status=status, to_status=to, reason=None))
            status = to

        for number, (at, decision, basis, reasons) in enumerate(self.assessed):
            data = dict(case_id=case, assessment_id=f"{case}-assessment-{number}", decision=decision, basis=basis,
                        reasons=[{"code": code, "text": "why"} for code in reasons], process_types=["shuttle"])
            made.append(event("case.assessed", at, **data))
            if decision == "needs_review":
                made.append(event("case.needs_review", at, **data))
            if decision == "suitable":
                move(at, "CONTACTING")
                made.append(event("facilitator.assigned", at, case_id=case, assessment_id=data["assessment_id"]))
                move(at, "ASSESSMENT")
        if self.allocated:
            made.append(event("assignment.accepted", self.allocated, case_id=case))
            move(self.allocated, "ALLOCATED")
        for at, role, outcome in self.contacts:
            made.append(event("preparation.contact_recorded", at, case_id=case, participant_role=role,
                              participant_id=getattr(self, role), outcome=outcome, method="phone"))
            if status == "ALLOCATED":
                move(at, "PREPARATION")
        if self.process:
            made.append(event("intervention.chosen", self.process[0], case_id=case, process_type=self.process[1]))
            move(self.process[0], "INTERVENTION")
        if self.agreement:
            made.append(event("agreement.recorded", self.agreement, case_id=case, agreement_id=f"{case}-agreement"))
            move(self.agreement, "AGREEMENT_MONITORING")
        if self.outcome:
            made.append(event("case.outcome_recorded", self.outcome[0], case_id=case, outcome=self.outcome[1]))
            move(self.outcome[0], "FOLLOW_UP")
        for at, role in self.notices:
            made.append(event("notification.sent", at, case_id=case, recipient_role=role,
                              recipient_id=getattr(self, role, "ref-1")))
        for at, kind, deadline, due_at in self.clocks:
            made.append(event(f"case.deadline_{kind}", at, case_id=case, deadline=deadline,
                              due_at=due_at.isoformat(), enhanced_rights=self.enhanced))
        for at, outcome in self.support:
            made.append(event("support.referral_recorded", at, case_id=case, participant_id=self.harmed,
                              outcome=outcome, service="victim_support"))
        if self.closed:
            at, reason = self.closed
            made.append(event("case.closed", at, case_id=case, from_status=status, reason=reason))
            move(at, "CLOSED")
        for number, (at, stage, role, (satisfied, safe, recommend, repaired)) in enumerate(self.surveys):
            made.append(event("survey.answered", at, case_id=case, survey_id=f"{case}-survey-{number}", stage=stage,
                              participant_role=role, scores={"satisfied_with_process": satisfied, "felt_safe": safe,
                                                             "would_recommend": recommend,
                                                             "harm_repaired": repaired}))
        return made + self.extra

    def furthest(self):
        """How far the story went, by the stages of docs/reports.md."""
        if self.closed and profile.CLOSURE_CLASSES[self.closed[1]] == "completed":
            return "completed"
        return self.stage_left()

    def stage_left(self):
        if self.process or self.agreement or self.outcome:
            return "intervention"
        if self.contacts:
            return "preparation"
        if self.allocated:
            return "allocated"
        if any(decision == "suitable" for _, decision, _, _ in self.assessed):
            return "suitable"
        return "assessed" if self.assessed else "referred"


# Six cases in two regions, some on either side of the end of March (BST began on 29 March
# 2026, so 22:30 UTC on the 31st is still March in London and 23:30 UTC is April).
WORLD = (
    Story("case-a", T("2026-03-02 09:00"),
          assessed=((T("2026-03-02 09:05"), "suitable", "referral", ("harmer_accepts_responsibility",)),),
          allocated=T("2026-03-03 10:00"),
          contacts=((T("2026-03-04 11:00"), "harmed", "reached"), (T("2026-03-06 11:00"), "harmer", "reached")),
          process=(T("2026-03-10 12:00"), "direct_conference"), agreement=T("2026-03-12 15:00"),
          outcome=(T("2026-04-09 10:00"), "agreement_completed"), closed=(T("2026-04-10 10:00"), "completed_direct"),
          surveys=((T("2026-04-11 10:00"), "closure", "harmed", (5, 5, True, 4)),
                   (T("2026-04-12 10:00"), "closure", "harmer", (3, 4, False, 2))),
          support=((T("2026-03-03 09:00"), "referred"),)),
    Story("case-b", T("2026-03-03 10:00"), agency="south-wales-probation", offence="theft",
          assessed=((T("2026-03-03 10:01"), "unsuitable", "referral", ("harmer_denies_responsibility", "risk_high")),),
          closed=(T("2026-03-05 12:00"), "not_suitable")),
    Story("case-c", T("2026-03-31 23:30"), region="gwent", agency="gwent-police", offence="theft",
          assessed=((T("2026-04-01 08:00"), "needs_review", "referral", ("risk_high",)),
                    (T("2026-04-02 09:00"), "suitable", "review", ("coordinator_review",))),
          allocated=T("2026-04-07 10:00"),
          contacts=((T("2026-04-08 10:00"), "harmed", "no_answer"), (T("2026-04-13 10:00"), "harmed", "reached")),
          process=(T("2026-04-20 10:00"), "letter_exchange"), agreement=T("2026-04-25 10:00"),
          outcome=(T("2026-06-01 10:00"), "agreement_not_completed"), closed=(T("2026-06-02 10:00"), "partial"),
          surveys=((T("2026-08-30 10:00"), "follow_up", "harmed", (4, 5, True, 3)),)),
    Story("case-d", T("2026-03-31 22:30"), offence="criminal_damage",
          assessed=((T("2026-04-01 09:00"), "suitable", "referral", ("harmer_accepts_responsibility",)),),
          allocated=T("2026-04-02 10:00")),
    Story("case-e", T("2026-04-02 08:00"), region="gwent", agency="gwent-police", offence="robbery", enhanced=True,
          assessed=((T("2026-04-02 08:05"), "suitable", "referral", ("harmer_accepts_responsibility",)),),
          allocated=T("2026-04-03 10:00"), contacts=((T("2026-04-08 10:00"), "harmed", "reached"),),
          process=(T("2026-04-15 10:00"), "shuttle"), closed=(T("2026-04-20 10:00"), "harmed_declined"),
          clocks=((T("2026-04-06 23:00"), "due", "victim_told_about_rj", T("2026-04-07 23:00")),
                  (T("2026-04-07 23:00"), "missed", "victim_told_about_rj", T("2026-04-07 23:00")))),
    Story("case-f", T("2026-04-02 09:00"),
          assessed=((T("2026-04-02 09:05"), "suitable", "referral", ("harmer_accepts_responsibility",)),),
          closed=(T("2026-04-20 10:00"), "no_contact"),
          clocks=((T("2026-04-12 23:00"), "due", "victim_told_about_rj", T("2026-04-13 23:00")),
                  (T("2026-04-13 23:00"), "missed", "victim_told_about_rj", T("2026-04-13 23:00")))),
)


def events_of(stories):
    return [e for story in stories for e in story.events()]


def state_of(stories):
    return projection.fold(events_of(stories))


@pytest.fixture(scope="module")
def world_events():
    return events_of(WORLD)


@pytest.fixture(scope="module")
def world(world_events):
    return projection.fold(world_events)


def all_rows(state, **options):
    return {name: measures.compute(name, state, **options) for name in measures.MEASURES}


# --- each measure -------------------------------------------------------------------------

def test_referrals_are_counted_by_month_region_agency_and_offence(world):
    expected = Counter((month(s.referred), s.region, s.agency, s.offence) for s in WORLD)
    rows = measures.referrals(world, "month")
    assert {(r["period"], r["region"], r["agency"], r["offence_category"]): r["referrals"] for r in rows} == expected
    assert [list(r) for r in rows] == [list(measures.REFERRALS)] * len(rows)


@pytest.mark.parametrize("referred, granularity, period", [
    ("2026-03-31 22:30", "month", "2026-03"),     # 23:30 on 31 March in London
    ("2026-03-31 23:30", "month", "2026-04"),     # 00:30 on 1 April in London (BST)
    ("2026-03-31 22:30", "quarter", "2026-Q1"),
    ("2026-03-31 23:30", "quarter", "2026-Q2"),
    ("2026-12-31 23:30", "year", "2026"),         # GMT: London is UTC in winter
    ("2027-01-01 00:00", "year", "2027"),
    ("2026-03-29 23:30", "week", "2026-W14"),     # Monday 30 March, 00:30 in London; Sunday in UTC
    ("2026-03-29 22:30", "week", "2026-W13"),
])
def test_a_referral_falls_in_the_period_of_its_london_day(referred, granularity, period):
    state = state_of([Story("case-1", T(referred))])
    assert [r["period"] for r in measures.referrals(state, granularity)] == [period]


def test_suitability_counts_each_decision_once_with_its_reasons(world):
    decisions, cases, reasons = Counter(), {}, Counter()
    for s in WORLD:
        for at, decision, basis, codes in s.assessed:
            key = (month(at), s.region, decision, basis)
            decisions[key] += 1
            cases.setdefault(key, set()).add(s.case_id)
            reasons.update((month(at), s.region, decision, code) for code in codes)
    rows = measures.suitability(world)
    assert {(r["period"], r["region"], r["decision"], r["basis"]): (r["decisions"], r["cases"]) for r in rows} == {
        key: (n, len(cases[key])) for key, n in decisions.items()}
    # case-c's needs_review came as case.assessed and case.needs_review: one decision still
    assert sum(r["decisions"] for r in rows) == sum(len(s.assessed) for s in WORLD)
    assert {(r["period"], r["region"], r["decision"], r["reason"]): r["decisions"]
            for r in measures.suitability_reasons(world)} == reasons


def test_attrition_follows_each_referral_cohort_through_the_stages(world):
    rows = measures.attrition(world)
    got = {(r["period"], r["region"], r["stage"]): r for r in rows}
    cohorts = {(month(s.referred), s.region) for s in WORLD}
    assert len(rows) == len(cohorts) * len(projection.STAGES)
    for period, region in cohorts:
        cohort = [s for s in WORLD if (month(s.referred), s.region) == (period, region)]
        for index, stage in enumerate(projection.STAGES):
            reached = sum(projection.STAGES.index(s.furthest()) >= index for s in cohort)
            closed = sum(bool(s.closed) and s.furthest() == stage != "completed" for s in cohort)
            still = sum(not s.closed and s.furthest() == stage for s in cohort)
            row = got[(period, region, stage)]
            assert (row["reached"], row["closed_here"], row["open_here"]) == (reached, closed, still), (period, stage)
            assert row["attrition_rate"] == (round(closed / reached, 4) if reached else None)
    # stages in their order, not alphabetically
    assert [r["stage"] for r in rows[:len(projection.STAGES)]] == list(projection.STAGES)


def test_closures_are_counted_by_the_stage_left_and_the_reason(world):
    expected = Counter((month(s.closed[0]), s.region, s.stage_left(), profile.CLOSURE_CLASSES[s.closed[1]],
                        s.closed[1]) for s in WORLD if s.closed)
    rows = measures.closures(world)
    assert {(r["period"], r["region"], r["stage"], r["closure_class"], r["closure_reason"]): r["cases"]
            for r in rows} == expected


def test_time_to_first_contact_is_the_median_in_calendar_and_working_days():
    stories = [
        # Mon 2 March; the harmed person reached on Wed 4th (2 days, 2 working), the harmer on Fri 6th (4, 4)
        Story("c1", T("2026-03-02 09:00"), contacts=((T("2026-03-04 10:00"), "harmed", "reached"),
                                                      (T("2026-03-06 10:00"), "harmer", "reached"))),
        # Thu 5 March; reached on Mon 9th: 4 days, 2 working (Fri 6th, Mon 9th)
        Story("c2", T("2026-03-05 09:00"), contacts=((T("2026-03-09 10:00"), "harmed", "reached"),)),
        # Fri 6 March; tried, never reached: not contacted
        Story("c3", T("2026-03-06 09:00"), contacts=((T("2026-03-09 10:00"), "harmed", "no_answer"),)),
        # Wed 1 April; reached on Mon 13th: 12 days, 6 working (Good Friday and Easter Monday are not)
        Story("c4", T("2026-04-01 08:00"), contacts=((T("2026-04-13 10:00"), "harmed", "reached"),)),
    ]
    expected = {  # (quarter, party): (referred, contacted, calendar days, working days)
        ("2026-Q1", "either"): (3, [2, 4], [2, 2]),
        ("2026-Q1", "harmed"): (3, [2, 4], [2, 2]),
        ("2026-Q1", "harmer"): (3, [4], [4]),
        ("2026-Q2", "either"): (1, [12], [6]),
        ("2026-Q2", "harmed"): (1, [12], [6]),
        ("2026-Q2", "harmer"): (1, [], []),
    }
    rows = measures.first_contact(state_of(stories), "quarter")
    assert {(r["period"], r["party"]): (r["referred"], r["contacted"], r["median_days"], r["median_working_days"])
            for r in rows} == {
        key: (referred, len(days), statistics.median(days) if days else None,
              statistics.median(working) if working else None)
        for key, (referred, days, working) in expected.items()}


def _rj_clocks(state, **options):
    return {(r["working_days"], state_name): r[state_name]
            for r in measures.victims_code(state, "year", **options) if r["deadline"] == "victim_told_about_rj"
            for state_name in ("clocks", "met", "met_late", "missed", "stopped", "open")}


def test_victims_code_compliance_counts_working_days_across_the_easter_bank_holidays():
    # referred on Thursday 2 April 2026. Good Friday (3rd) and Easter Monday (6th) are not
    # working days: the 5th working day after is Monday 13 April, the 1st is Tuesday 7 April
    # (counting weekdays alone would give Thursday 9th and Friday 3rd)
    referred = T("2026-04-02 09:00")
    last_day = {False: "2026-04-13", True: "2026-04-07"}
    reached = [(False, T("2026-04-10 10:00")), (False, T("2026-04-13 20:00")), (False, T("2026-04-14 09:00")),
               (True, T("2026-04-07 15:00")), (True, T("2026-04-08 09:00"))]
    stories = [Story(f"c{n}", referred, enhanced=enhanced, contacts=((at, "harmed", "reached"),))
               for n, (enhanced, at) in enumerate(reached)]
    expected = Counter()
    for enhanced, at in reached:
        on_time = at.astimezone(LONDON).date().isoformat() <= last_day[enhanced]
        expected[(1 if enhanced else 5, "met" if on_time else "met_late")] += 1
        expected[(1 if enhanced else 5, "clocks")] += 1
    got = _rj_clocks(state_of(stories))
    assert {key: n for key, n in got.items() if n} == expected
    rows = [r for r in measures.victims_code(state_of(stories), "year") if r["deadline"] == "victim_told_about_rj"]
    for row in rows:
        judged = row["met"] + row["met_late"] + row["missed"]
        assert row["compliance_rate"] == round(row["met"] / judged, 4)


def test_a_clock_referrals_announced_is_judged_by_its_own_deadline():
    # the referral gave the day the crime was reported, a week before the referral: referrals'
    # clock ran out on Friday 6 March, though five working days from the referral would be the 16th
    story = Story("c1", T("2026-03-09 09:00"), contacts=((T("2026-03-10 10:00"), "harmed", "reached"),),
                  clocks=((T("2026-03-06 00:00"), "due", "victim_told_about_rj", T("2026-03-07 00:00")),
                          (T("2026-03-07 00:00"), "missed", "victim_told_about_rj", T("2026-03-07 00:00"))))
    assert _rj_clocks(state_of([story]))[(5, "met_late")] == 1


def test_victims_code_clocks_open_stopped_and_missed():
    referred = T("2026-03-02 09:00")   # Monday: told by the end of Monday 9 March, supported by Wednesday 4th
    stories = [
        Story("open", referred),
        Story("closed-early", referred, closed=(T("2026-03-03 10:00"), "not_suitable")),
        Story("missed-then-closed", referred, closed=(T("2026-03-12 10:00"), "no_contact"),
              clocks=((T("2026-03-09 23:59"), "missed", "victim_told_about_rj", T("2026-03-10 00:00")),)),
        Story("told-by-letter", referred, notices=((T("2026-03-03 10:00"), "harmed"),)),
        Story("referrer-told", referred, notices=((T("2026-03-03 10:00"), "referrer"),)),
    ]
    # before Monday 9 March begins, the open clocks are still running; after it, missed
    before = _rj_clocks(state_of(stories), as_of=T("2026-03-08 12:00"))
    assert (before[(5, "open")], before[(5, "stopped")], before[(5, "missed")], before[(5, "met")]) == (2, 1, 1, 1)
    after = _rj_clocks(state_of(stories), as_of=T("2026-03-10 00:00"))
    assert (after[(5, "open")], after[(5, "stopped")], after[(5, "missed")], after[(5, "met")]) == (0, 1, 3, 1)


def test_an_older_consent_without_a_role_tells_the_victim_once_the_referral_names_them():
    story = Story("c1", T("2026-03-02 09:00"))
    consent = event("consent.recorded", T("2026-03-03 09:00"), case_id="c1", participant_id=story.harmed,
                    participant_role=None, scope="participation", item=None, with_role=None, granted=True)
    harmer_consent = event("consent.recorded", T("2026-03-03 09:00"), case_id="c2",
                           participant_id="c2-harmer", participant_role=None, scope="participation", item=None,
                           with_role=None, granted=True)
    other = Story("c2", T("2026-03-02 09:00"))
    state = projection.fold([consent, harmer_consent] + story.events() + other.events())
    got = _rj_clocks(state, as_of=T("2026-03-20 00:00"))
    assert (got[(5, "met")], got[(5, "missed")]) == (1, 1)


def test_the_support_referral_clock_is_met_by_a_record_and_stopped_by_erasure():
    referred = T("2026-03-02 09:00")   # Monday: 2 working days, to the end of Wednesday 4 March
    erased = Story("erased", referred)
    erased.extra.append(event("participant.erased", T("2026-03-03 09:00"), case_id="erased",
                              participant_id=erased.harmed))
    erased_late = Story("erased-late", referred)   # missed on Wednesday, erased on Friday: still missed
    erased_late.extra.append(event("participant.erased", T("2026-03-06 09:00"), case_id="erased-late",
                                   participant_id=erased_late.harmed))
    stories = [Story("on-time", referred, support=((T("2026-03-04 16:00"), "declined"),)),
               Story("late", referred, support=((T("2026-03-05 09:00"), "referred"),)), erased, erased_late]
    rows = [r for r in measures.victims_code(state_of(stories), "month") if r["deadline"] == "support_referral"]
    assert [(r["working_days"], r["clocks"], r["met"], r["met_late"], r["missed"], r["stopped"], r["compliance_rate"])
            for r in rows] == [(2, 4, 1, 1, 1, 1, round(1 / 3, 4))]


def test_direct_and_indirect_processes(world):
    chosen = [(month(s.process[0]), s.region, profile.PROCESS_CLASSES[s.process[1]], s.process[1])
              for s in WORLD if s.process]
    totals = Counter(key[:2] for key in chosen)
    rows = measures.processes(world)
    assert {(r["period"], r["region"], r["process_class"], r["process_type"]): (r["cases"], r["share"])
            for r in rows} == {key: (n, round(n / totals[key[:2]], 4)) for key, n in Counter(chosen).items()}


def test_a_process_chosen_again_counts_once_as_the_latest_choice():
    story = Story("c1", T("2026-03-02 09:00"), process=(T("2026-03-10 10:00"), "direct_conference"))
    story.extra.append(event("intervention.chosen", T("2026-03-11 10:00"), case_id="c1", process_type="shuttle"))
    rows = measures.processes(state_of([story]))
    assert [(r["process_class"], r["process_type"], r["cases"], r["share"]) for r in rows] == [
        ("indirect", "shuttle", 1, 1.0)]


def test_outcome_agreements_completed(world):
    recorded = Counter((month(s.agreement), s.region) for s in WORLD if s.agreement)
    outcomes = Counter((month(s.outcome[0]), s.region, s.outcome[1]) for s in WORLD if s.outcome)
    rows = measures.agreements(world)
    for r in rows:
        place = (r["period"], r["region"])
        done, not_done = outcomes[place + ("agreement_completed",)], outcomes[place + ("agreement_not_completed",)]
        assert (r["agreements_recorded"], r["completed"], r["not_completed"], r["outcomes_recorded"]) == (
            recorded[place], done, not_done, done + not_done)
        assert r["completion_rate"] == (round(done / (done + not_done), 4) if done + not_done else None)
    assert {(r["period"], r["region"]) for r in rows} == set(recorded) | {key[:2] for key in outcomes}


def test_satisfaction_counts_favourable_answers_of_each_party(world):
    answers = [(month(at), s.region, stage, role, scores) for s in WORLD for at, stage, role, scores in s.surveys]
    rows = measures.satisfaction(world)
    assert len(rows) == len({a[:4] for a in answers})
    for r in rows:
        given = [a[4] for a in answers if a[:4] == (r["period"], r["region"], r["stage"], r["party"])]
        favourable = (sum(s[0] >= 4 for s in given), sum(s[1] >= 4 for s in given), sum(s[2] for s in given),
                      sum(s[3] >= 4 for s in given))
        assert (r["answers"], r["satisfied"], r["felt_safe"], r["would_recommend"], r["harm_repaired"]) == (
            (len(given),) + favourable)
        assert r["satisfied_rate"] == round(favourable[0] / len(given), 4)
        assert r["median_satisfaction"] == statistics.median(s[0] for s in given)


# --- the read model: order, repetition, regions, missing referrals ----------------------------

@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_order_and_any_redelivery_give_the_same_reports(world_events, data):
    events = data.draw(st.permutations(world_events), label="order")
    again = data.draw(st.lists(st.sampled_from(world_events), max_size=25), label="redelivered")
    positions = data.draw(st.lists(st.integers(0, len(events)), min_size=len(again), max_size=len(again)))
    for position, repeated in zip(positions, again):
        events.insert(position, repeated)
    in_order = projection.fold(world_events)
    shuffled = projection.fold(events)
    assert shuffled == in_order
    assert all_rows(shuffled) == all_rows(in_order)


def test_folding_an_event_twice_changes_nothing(world_events, world):
    state = projection.fold(world_events)
    for e in world_events:
        projection.apply(state, e)
    assert state == world


@pytest.mark.parametrize("granularity", periods.GRANULARITIES)
def test_a_coordinators_regions_see_exactly_their_rows(world, granularity):
    everything = all_rows(world, granularity=granularity)
    regions = {s.region for s in WORLD}
    for region in regions:
        narrowed = all_rows(world, granularity=granularity, regions={region})
        for name, rows in everything.items():
            assert narrowed[name] == [r for r in rows if r["region"] == region], name
    assert all(rows == [] for rows in all_rows(world, regions={"dyfed-powys"}).values())
    assert all(rows for name, rows in everything.items()), "every measure has rows in the world"


def test_events_before_their_referral_wait_for_it():
    story = WORLD[0]
    referral, rest = story.events()[0], story.events()[1:]
    state = projection.fold(rest)
    assert state.unreferred() == 1 and all(rows == [] for rows in all_rows(state).values())
    projection.apply(state, referral)
    assert state.unreferred() == 0
    assert all_rows(state) == all_rows(state_of([story]))


def test_events_of_no_case_or_of_other_types_are_left_alone():
    state = state_of([WORLD[1]])
    before = all_rows(state)
    projection.apply(state, valid_event("key.issued"))
    projection.apply(state, event("voice.item_recorded", T("2026-03-04 09:00"), case_id="case-b"))
    assert all_rows(state) == before


def test_no_row_carries_an_id_of_a_case_or_a_person(world_events, world):
    ids = {e["data"]["case_id"] for e in world_events}
    ids |= {p["participant_id"] for e in world_events if e["type"] == "referral.received"
            for p in e["data"]["participants"]}
    ids |= {e["id"] for e in world_events}
    for name, rows in all_rows(world).items():
        assert not ids & set(strings_in(rows)), name


# --- CSV ------------------------------------------------------------------------------------

def _parsed(text):
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    return header, [dict(zip(header, line)) for line in reader]


@pytest.mark.parametrize("name", measures.MEASURES)
def test_each_measure_round_trips_through_csv(world, name):
    measure = measures.MEASURES[name]
    rows = measures.compute(name, world, "quarter")
    header, parsed = _parsed(csv_export.measure_csv(measure, rows))
    assert header == list(measure.columns)
    assert parsed == [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
    for row, back in zip(rows, parsed):   # numbers come back as the same numbers
        for column, value in row.items():
            if isinstance(value, (int, float)):
                assert type(value)(back[column]) == value


def test_a_measure_with_no_rows_is_a_header_alone():
    measure = measures.MEASURES["referrals"]
    assert csv_export.measure_csv(measure, []) == ",".join(measure.columns) + "\r\n"


def test_an_unknown_measure_or_granularity_is_refused_naming_it(world):
    with pytest.raises(ValueError, match="^measure:"):
        measures.compute("complaints", world)
    with pytest.raises(ValueError, match="^granularity:"):
        measures.compute("referrals", world, "fortnight")
    with pytest.raises(TypeError, match="^regions:"):
        measures.compute("referrals", world, regions="gwent")


# --- the national view ------------------------------------------------------------------------

DEPLOYMENT = {"south-wales": "south", "gwent": "south", "north-wales": "north"}


def _statistics(events):
    """The statistics a region's statistics service sends for these events."""
    category = {e["data"]["case_id"]: e["data"]["offence_category"] for e in events
                if e["type"] == "referral.received"}
    region = {e["data"]["case_id"]: DEPLOYMENT[e["data"]["region"]] for e in events
              if e["type"] == "referral.received"}
    made = [profile.statistic(e, region=region[e["data"]["case_id"]], offence_category=category[e["data"]["case_id"]],
                              key=profile.key_from_text(KEY)) for e in events]
    return [s for s in made if s is not None]


NORTH = Story("case-n", T("2026-03-04 09:00"), region="north-wales", agency="north-wales-police", offence="theft",
              assessed=((T("2026-03-04 10:00"), "suitable", "referral", ("harmer_accepts_responsibility",)),),
              allocated=T("2026-03-05 10:00"), contacts=((T("2026-03-06 10:00"), "harmed", "reached"),),
              process=(T("2026-03-09 10:00"), "shuttle"), agreement=T("2026-03-10 10:00"),
              outcome=(T("2026-03-30 10:00"), "agreement_completed"), closed=(T("2026-03-31 10:00"), "completed_indirect"))


@pytest.fixture(scope="module")
def national_statistics(world_events):
    sent = _statistics(world_events + NORTH.events())
    return sent + sent[::3]   # a region sends some again: each is counted once


def _totals(rows, keys, value):
    totals = Counter()
    for r in rows:
        totals[tuple(r[k] for k in keys)] += r[value]
    return totals


def test_the_national_view_counts_what_its_statistics_allow(world, national_statistics):
    stories = WORLD + (NORTH,)
    regional = projection.fold(events_of(stories))
    rows = national.referrals(national_statistics)
    assert _totals(rows, ["region", "offence_category"], "referrals") == Counter(
        (DEPLOYMENT[s.region], s.offence) for s in stories)
    assert _totals(national.suitability(national_statistics), ["decision"], "decisions") == _totals(
        measures.suitability(regional), ["decision"], "decisions")
    assert _totals(national.closures(national_statistics), ["closure_class"], "cases") == _totals(
        measures.closures(regional), ["closure_class"], "cases")
    assert _totals(national.processes(national_statistics), ["process_class"], "cases") == _totals(
        measures.processes(regional), ["process_class"], "cases")
    for column in ("agreements_recorded", "completed", "not_completed"):
        assert _totals(national.agreements(national_statistics), [], column) == _totals(
            measures.agreements(regional), [], column)
    assert _totals(national.satisfaction(national_statistics), [], "answers") == _totals(
        measures.satisfaction(regional), [], "answers")
    missed = Counter((c[2],) for s in stories for c in s.clocks if c[1] == "missed")
    assert _totals(national.victims_code(national_statistics), ["deadline"], "missed") == missed


def test_the_national_view_is_by_iso_week_and_narrows_to_its_regions(national_statistics):
    rows = national.referrals(national_statistics, regions={"north"})
    assert [(r["period"], r["region"], r["offence_category"], r["referrals"]) for r in rows] == [
        ("2026-W10", "north", "theft", 1)]   # Wednesday 4 March 2026
    with pytest.raises(ValueError, match="^granularity:"):
        national.referrals(national_statistics, "month")


@pytest.mark.parametrize("name", sorted(national.UNAVAILABLE))
def test_a_measure_the_national_view_cannot_have_is_refused_saying_why(national_statistics, name):
    with pytest.raises(national.NotNational, match="not in the national view"):
        national.compute(name, national_statistics)


def test_every_measure_is_either_national_or_said_not_to_be():
    assert set(national.MEASURES) | set(national.UNAVAILABLE) == set(measures.MEASURES)
    assert not set(national.MEASURES) & set(national.UNAVAILABLE)


@pytest.mark.parametrize("name", national.MEASURES)
def test_each_national_measure_round_trips_through_csv(national_statistics, name):
    measure = national.MEASURES[name]
    rows = national.compute(name, national_statistics)
    header, parsed = _parsed(csv_export.measure_csv(measure, rows))
    assert header == list(measure.columns) and rows
    assert parsed == [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]


def test_every_closure_reason_has_a_stage_and_class_in_the_closures_measure():
    stories = [Story(f"c{n}", T("2026-03-02 09:00"), closed=(T("2026-03-03 09:00"), reason))
               for n, reason in enumerate(CLOSURE_REASONS)]
    rows = measures.closures(state_of(stories))
    assert sorted(r["closure_reason"] for r in rows) == sorted(CLOSURE_REASONS)
    assert {r["stage"] for r in rows} == {"referred"}
