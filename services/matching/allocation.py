"""Choosing facilitators for a case: hard constraints first, then a score. Pure rules.

Hard constraints (all must hold, for every role):
  active, and available today (not on leave);
  current: trained or delivered a process within the last 12 months;
  level: a lead needs the required level (an intermediate with complex-case training
    counts as advanced); foundation practitioners only ever co-facilitate;
  the required endorsements; prison vetting, valid today, for custody cases;
  every participant's language; the case's region; spare capacity;
  no declared conflict with any party, the referrer or the referring agency;
  not already on the case, and not someone who declined or let the offer lapse.

The score, over those who are left (0 to 100, higher is better):
  40 x specialism   half: the share of the case's preferred endorsements they hold;
                    half: level fit, 1 at the level the role needs and 0.5 less per level
                    above it, so seniors stay free for the complex cases that need them
  30 x balance      spare / capacity, spreading caseloads
  20 x continuity   1 if they worked with one of these participants before
  10 x region       1 if the case's region is their home region (their first listed)
Ties go to the lower facilitator id, so a ranking is reproducible.

`fits` is checked twice: when ranking (from the process's roster) and again after a
seat is taken, against any registry change the roster had not yet applied (see
`roster.Roster.still_fits`).
"""
from dataclasses import dataclass, field
from datetime import date, timedelta

from shared.events.vocabulary import FACILITATOR_LEVELS as LEVELS

CURRENCY = timedelta(days=365)
ROLES = ("lead", "co_facilitator")
WEIGHTS = {"specialism": 40, "balance": 30, "continuity": 20, "region": 10}


@dataclass(frozen=True)
class Candidate:
    facilitator_id: str
    level: str
    regions: tuple
    languages: frozenset
    endorsements: frozenset
    capacity: int
    spare: int
    trained_on: date = None
    last_process_on: date = None
    complex_case_trained: bool = False
    prison_vetted_until: date = None
    available_from: date = date.min
    conflicts: frozenset = frozenset()  # "participant:<id>", "referrer:<id>", "agency:<code>"
    active: bool = True


@dataclass(frozen=True)
class Requirement:
    """What a case needs of its facilitators."""
    level: str
    region: str
    languages: frozenset
    endorsements: frozenset = frozenset()
    prison_vetting: bool = False
    co_facilitation: bool = False
    conflicts: frozenset = frozenset()  # the case's parties, referrer and agency, as conflict keys
    preferred_endorsements: frozenset = frozenset()
    continuity: frozenset = frozenset()  # facilitators who worked with these participants
    excluded: frozenset = frozenset()  # already on the case, or declined it

    def roles(self):
        return ROLES if self.co_facilitation else ROLES[:1]

    def excluding(self, *facilitator_ids):
        return _replace(self, excluded=self.excluded | frozenset(facilitator_ids))


def _replace(need, **changes):
    values = {name: getattr(need, name) for name in need.__dataclass_fields__}
    values.update(changes)
    return Requirement(**values)


def conflict_keys(participant_ids=(), referrer_id=None, agency=None):
    keys = {f"participant:{p}" for p in participant_ids}
    if referrer_id:
        keys.add(f"referrer:{referrer_id}")
    if agency:
        keys.add(f"agency:{agency}")
    return frozenset(keys)


def current_until(trained_on, last_process_on):
    """The last day on which a facilitator is current, or None if never trained."""
    known = [d for d in (trained_on, last_process_on) if d is not None]
    return max(known) + CURRENCY if known else None


def is_current(candidate, today):
    until = current_until(candidate.trained_on, candidate.last_process_on)
    return until is not None and today <= until


def meets_level(candidate, level, role):
    if role == "co_facilitator":
        return True
    if candidate.level == "foundation":
        return False  # foundation practitioners co-facilitate only
    if LEVELS.index(candidate.level) >= LEVELS.index(level):
        return True
    return level == "advanced" and candidate.level == "intermediate" and candidate.complex_case_trained


def _vetted(candidate, need, today):
    return not need.prison_vetting or (candidate.prison_vetted_until is not None
                                       and candidate.prison_vetted_until >= today)


# each hard constraint of a role, in the order they are checked: (the code that rules a
# facilitator out on it, the test a facilitator who fits passes)
CONSTRAINTS = (
    ("inactive", lambda c, need, today, role: c.active),
    ("on_leave", lambda c, need, today, role: c.available_from <= today),
    ("not_current", lambda c, need, today, role: is_current(c, today)),
    ("level", lambda c, need, today, role: meets_level(c, need.level, role)),
    ("region", lambda c, need, today, role: need.region in c.regions),
    ("languages", lambda c, need, today, role: need.languages <= c.languages),
    ("endorsements", lambda c, need, today, role: need.endorsements <= c.endorsements),
    ("prison_vetting", lambda c, need, today, role: _vetted(c, need, today)),
    ("capacity", lambda c, need, today, role: c.spare > 0),
    ("conflict", lambda c, need, today, role: not (c.conflicts & need.conflicts)),
    ("declined_or_on_case", lambda c, need, today, role: c.facilitator_id not in need.excluded),
)
RULED_OUT = tuple(code for code, _ in CONSTRAINTS)


def fits(candidate, need, today, role="lead"):
    return all(passes(candidate, need, today, role) for _, passes in CONSTRAINTS)


def ruled_out(candidate, need, today, role="lead"):
    """The codes of every hard constraint `candidate` fails for `role`: none if and only if
    they fit."""
    return [code for code, passes in CONSTRAINTS if not passes(candidate, need, today, role)]


def shortfall(candidates, need, today, role="lead"):
    """Why nobody fits `role`, as counts: how many of the region's facilitators (`candidates`)
    each constraint rules out (one may be ruled out by several). Codes and counts only."""
    counts = {}
    for candidate in candidates:
        for code in ruled_out(candidate, need, today, role):
            counts[code] = counts.get(code, 0) + 1
    return {"role": role, "in_region": len(candidates), "ruled_out": counts}


def level_fit(candidate, need, role):
    target = need.level if role == "lead" else "foundation"
    above = LEVELS.index(candidate.level) - LEVELS.index(target)
    return max(0.0, 1.0 - 0.5 * max(above, 0))


def score(candidate, need, role="lead"):
    preferred = need.preferred_endorsements
    share = len(preferred & candidate.endorsements) / len(preferred) if preferred else 0.0
    parts = {
        "specialism": 0.5 * share + 0.5 * level_fit(candidate, need, role),
        "balance": candidate.spare / candidate.capacity if candidate.capacity else 0.0,
        "continuity": 1.0 if candidate.facilitator_id in need.continuity else 0.0,
        "region": 1.0 if candidate.regions and candidate.regions[0] == need.region else 0.0,
    }
    return sum(WEIGHTS[name] * value for name, value in parts.items())


def rank(candidates, need, today, role="lead"):
    eligible = [c for c in candidates if fits(c, need, today, role)]
    return sorted(eligible, key=lambda c: (-score(c, need, role), c.facilitator_id))


@dataclass
class Team:
    """The outcome of one staffing attempt: who was reserved in which role, and which
    roles nobody could fill."""
    reserved: dict = field(default_factory=dict)  # role -> facilitator_id
    unfilled: list = field(default_factory=list)


def staff(roles, need, today, candidates_for, reserve):
    """Reserve a facilitator for each of `roles`, the lead first.

    `candidates_for(need, role)` lists registry candidates; `reserve(candidate, need,
    role)` takes one unit of their capacity atomically and says whether it could. A
    refused reservation (someone else took the last place) moves on to the next best.
    """
    team = Team()
    for role in roles:
        ranked = rank(candidates_for(need, role), need, today, role)
        chosen = next((c for c in ranked if reserve(c, need, role)), None)
        if chosen is None:
            team.unfilled.append(role)
            continue
        team.reserved[role] = chosen.facilitator_id
        need = need.excluding(chosen.facilitator_id)  # a co-facilitator is someone else
    return team
