"""The reports' read model: what the standard RJ measures need of each case, folded from
the ledger's events one at a time.

`apply(state, event)` folds one event (a CloudEvent as the ledger holds it) into `state`,
in place, and returns it. Every fold keeps the earliest (or, for a choice that can be
made again, the latest) of what it is told, keyed by the id the event names, so:
- the order events arrive in does not matter: the ledger interleaves services, and a
  case's assessment may be appended before its referral;
- an event folded twice (a redelivery, a replay from an earlier position) changes nothing.
Both hold for any order and any repetition: the state is a function of the *set* of
events folded (tests/unit/test_reports.py checks it with hypothesis).

Per case it keeps codes, dates and pseudonymous ids only: the referral's agency, region,
offence category and whether the victim has enhanced rights; the harmed people's
pseudonymous ids (to tell when each has a support referral recorded); when each stage was
reached; each assessment's decision, basis and reason codes; when the harmed person was
first told about RJ and each party first reached; the Victims' Code clocks' deadlines and
misses; the process chosen; agreements and their outcome; the closure; and each survey
answer's scores. Never a name, a contact detail, a note or a free text.
"""
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from services.referrals.lifecycle import MAIN_LINE
from shared.statistics_profile import OUTCOME_CLASS

# The stages a case passes through, in order, as the attrition measure follows them. A
# case's `stages` holds those its events show reached; `completed` is its closure's class.
STAGES = ("referred", "assessed", "suitable", "allocated", "preparation", "intervention", "completed")
# How far a case status says a case has come (TRIAGE may be a coordinator's move before
# any assessment, so it says no more than referred; CONTACTING and ASSESSMENT follow a
# suitable decision).
STATUS_STAGES = {
    "RECEIVED": "referred", "TRIAGE": "referred", "CONTACTING": "suitable", "ASSESSMENT": "suitable",
    "ALLOCATED": "allocated", "PREPARATION": "preparation", "INTERVENTION": "intervention",
    "AGREEMENT_MONITORING": "intervention", "FOLLOW_UP": "intervention",
}
assert set(STATUS_STAGES) == set(MAIN_LINE), "every main-line status needs its stage"
PARTIES = ("harmed", "harmer")
# The event types the national view counts (national.py): each such event is kept as a
# `Counted` mark, so the de-identified view can be computed from this state alone.
COUNTED_NATIONALLY = ("referral.received", "case.assessed", "case.closed", "case.deadline_due",
                      "case.deadline_missed", "intervention.chosen", "agreement.recorded",
                      "case.outcome_recorded", "survey.answered")


class Referral(NamedTuple):
    at: datetime
    event_id: str
    agency: str
    region: str
    offence_category: str
    enhanced_rights: bool
    harmed: tuple           # the harmed people's pseudonymous participant ids


class Assessment(NamedTuple):
    at: datetime
    decision: str
    basis: str
    reasons: tuple          # reason codes


class Mark(NamedTuple):
    """A dated code from one event; ordered by time, then event id, so a tie is settled the
    same way whatever order the events came in."""
    at: datetime
    event_id: str
    code: str


class Counted(NamedTuple):
    """An event the national view counts: its type, moment and coarse outcome class only,
    as the statistics profile would export it."""
    at: datetime
    event_type: str
    outcome_class: str


class SurveyAnswer(NamedTuple):
    at: datetime
    stage: str              # closure, follow_up
    role: str               # harmed, harmer
    satisfied_with_process: int
    felt_safe: int
    would_recommend: bool
    harm_repaired: int


@dataclass
class CaseFacts:
    case_id: str
    referral: Referral = None
    stages: dict = field(default_factory=dict)             # stage -> when first reached
    assessments: dict = field(default_factory=dict)        # assessment id -> Assessment
    victim_told_at: datetime = None                        # the harmed person first told about RJ
    told_unknown_role: dict = field(default_factory=dict)  # participant id -> a consent of no stated role
    first_reached: dict = field(default_factory=dict)      # party -> first preparation contact that reached them
    clock_due: dict = field(default_factory=dict)          # deadline -> its due_at, as referrals announced it
    clock_missed: dict = field(default_factory=dict)       # deadline -> when referrals announced it missed
    support_recorded: dict = field(default_factory=dict)   # participant id -> first support referral recorded
    erased: dict = field(default_factory=dict)             # participant id -> erased or reduced to statistics
    process: Mark = None                                   # the process chosen (the latest choice)
    agreements: dict = field(default_factory=dict)         # agreement id -> when recorded
    outcome: Mark = None                                   # agreement_completed / agreement_not_completed
    closure: Mark = None                                   # the closure reason
    surveys: dict = field(default_factory=dict)            # survey id -> SurveyAnswer
    counted: dict = field(default_factory=dict)            # event id -> Counted (for the national view)

    def victim_told(self):
        """When the harmed person was first told about RJ, as far as the events say."""
        harmed = self.referral.harmed if self.referral else ()
        moments = [self.victim_told_at] + [self.told_unknown_role.get(p) for p in harmed]
        return min((m for m in moments if m is not None), default=None)


@dataclass
class ReportState:
    cases: dict = field(default_factory=dict)   # case id -> CaseFacts
    latest: datetime = None                     # the latest event time folded: the report's "now"

    def case(self, case_id):
        facts = self.cases.get(case_id)
        if facts is None:
            facts = self.cases[case_id] = CaseFacts(case_id)
        return facts

    def referred(self, regions=None):
        """The cases whose referral has been folded, in `regions` (None: every region)."""
        regions = region_set(regions)
        for facts in self.cases.values():
            if facts.referral is not None and (regions is None or facts.referral.region in regions):
                yield facts

    def unreferred(self):
        """How many cases have events but no referral yet (left out of every measure)."""
        return sum(1 for facts in self.cases.values() if facts.referral is None)


def region_set(regions):
    """The regions a report is narrowed to (None: every region)."""
    if isinstance(regions, str):   # one code is not a collection of one-letter regions
        raise TypeError("regions: give a collection of region codes")
    return None if regions is None else frozenset(regions)


def apply(state, event):
    """Fold one ledger event into `state` (in place) and return it. Events of other types,
    or naming no case, leave it as it was."""
    fold = FOLDS.get(event.get("type"))
    data = event.get("data") or {}
    case_id = data.get("case_id")
    if fold is None or not case_id:
        return state
    at = _moment(event["time"])
    state.latest = at if state.latest is None else max(state.latest, at)
    case = state.case(case_id)
    fold(case, data, at, event["id"])
    if event["type"] in COUNTED_NATIONALLY:
        outcome = OUTCOME_CLASS.get(event["type"], lambda _: None)(data)
        case.counted[event["id"]] = Counted(at, event["type"], outcome)
    return state


def fold(events, state=None):
    """The state the events give (folded onto `state`, if given)."""
    state = state if state is not None else ReportState()
    for event in events:
        apply(state, event)
    return state


def _moment(text):
    """An aware datetime from RFC 3339 text (a time without an offset is UTC, as every
    service writes it)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# --- keeping the earliest (or latest) of what the events say ---------------------------

def _earliest(mapping, key, at):
    if key not in mapping or at < mapping[key]:
        mapping[key] = at


def _first(current, candidate):
    return candidate if current is None or candidate < current else current


def _last(current, candidate):
    return candidate if current is None or candidate > current else current


# --- one fold per event type ---------------------------------------------------------------

def _referral_received(case, data, at, event_id):
    harmed = tuple(sorted(p["participant_id"] for p in data["participants"] if p["role"] == "harmed"))
    case.referral = _first(case.referral, Referral(at, event_id, data["agency"], data["region"],
                                                   data["offence_category"],
                                                   "enhanced_rights_victim" in data["flags"], harmed))
    _earliest(case.stages, "referred", at)


def _assessed(case, data, at, event_id):
    # case.needs_review repeats case.assessed's data: the assessment id keeps it one
    assessment = Assessment(at, data["decision"], data.get("basis", "referral"),
                            tuple(reason["code"] for reason in data["reasons"]))
    case.assessments[data["assessment_id"]] = _first(case.assessments.get(data["assessment_id"]), assessment)
    _earliest(case.stages, "assessed", at)
    if data["decision"] == "suitable":
        _earliest(case.stages, "suitable", at)


def _stage(stage):
    def reached(case, data, at, event_id):
        _earliest(case.stages, stage, at)
    return reached


def _status_changed(case, data, at, event_id):
    stage = STATUS_STAGES.get(data["to_status"])
    if stage is not None:
        _earliest(case.stages, stage, at)


def _closed(case, data, at, event_id):
    case.closure = _first(case.closure, Mark(at, event_id, data["reason"]))
    stage = STATUS_STAGES.get(data["from_status"])
    if stage is not None:
        _earliest(case.stages, stage, at)   # it had got that far (a status event may be missing)


def _contact(case, data, at, event_id):
    _earliest(case.stages, "preparation", at)
    role = data["participant_role"]
    if data["outcome"] == "reached" and role in PARTIES:
        _earliest(case.first_reached, role, at)
        if role == "harmed":
            case.victim_told_at = _first(case.victim_told_at, at)


def _notification_sent(case, data, at, event_id):
    # as referrals has it: a notice that reached the harmed person told them about RJ
    if data["recipient_role"] == "harmed":
        case.victim_told_at = _first(case.victim_told_at, at)


def _consent(case, data, at, event_id):
    # as referrals has it: nobody consents (or withdraws) without having been told about RJ
    role = data.get("participant_role")
    if role == "harmed":
        case.victim_told_at = _first(case.victim_told_at, at)
    elif role is None:   # older events: the referral's participants say whether they were harmed
        _earliest(case.told_unknown_role, data["participant_id"], at)


def _deadline(missed):
    def clock(case, data, at, event_id):
        _earliest(case.clock_due, data["deadline"], _moment(data["due_at"]))
        if missed:
            _earliest(case.clock_missed, data["deadline"], at)
    return clock


def _support_referral(case, data, at, event_id):
    _earliest(case.support_recorded, data["participant_id"], at)


def _erased(case, data, at, event_id):
    _earliest(case.erased, data["participant_id"], at)


def _intervention_chosen(case, data, at, event_id):
    case.process = _last(case.process, Mark(at, event_id, data["process_type"]))
    _earliest(case.stages, "intervention", at)


def _agreement_recorded(case, data, at, event_id):
    _earliest(case.agreements, data["agreement_id"], at)
    _earliest(case.stages, "intervention", at)


def _outcome_recorded(case, data, at, event_id):
    case.outcome = _first(case.outcome, Mark(at, event_id, data["outcome"]))
    _earliest(case.stages, "intervention", at)


def _survey_answered(case, data, at, event_id):
    scores = data["scores"]
    answer = SurveyAnswer(at, data["stage"], data["participant_role"], scores["satisfied_with_process"],
                          scores["felt_safe"], scores["would_recommend"], scores["harm_repaired"])
    case.surveys[data["survey_id"]] = _first(case.surveys.get(data["survey_id"]), answer)


FOLDS = {
    "referral.received": _referral_received,
    "case.assessed": _assessed,
    "case.needs_review": _assessed,
    "facilitator.assigned": _stage("suitable"),
    "assignment.waitlisted": _stage("suitable"),
    "assignment.accepted": _stage("allocated"),
    "case.status_changed": _status_changed,
    "case.closed": _closed,
    "preparation.contact_recorded": _contact,
    "notification.sent": _notification_sent,
    "consent.recorded": _consent,
    "consent.withdrawn": _consent,
    "case.deadline_due": _deadline(missed=False),
    "case.deadline_missed": _deadline(missed=True),
    "support.referral_recorded": _support_referral,
    "participant.erased": _erased,
    "participant.reduced_to_statistics": _erased,
    "intervention.chosen": _intervention_chosen,
    "session.scheduled": _stage("intervention"),
    "session.held": _stage("intervention"),
    "agreement.recorded": _agreement_recorded,
    "case.outcome_recorded": _outcome_recorded,
    "survey.answered": _survey_answered,
}
