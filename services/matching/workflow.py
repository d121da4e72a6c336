"""What matching does: assess referrals, staff cases, and follow offers through.

Orchestration only; the rules live in `suitability` and `allocation`, the domain in
`facilitators`, `assessments` and `assignments`, and the storage behind the store each
function is given (store.MatchingStore; memory_store.InMemoryMatchingStore in unit
tests). Every handler is idempotent by its own domain key: the referral event id for an
assessment, the case id for an assignment (under its lease), an offer's state for
accept, decline and expiry.

Leases. Every change to an existing Assignment happens in `with store.lease(case_id)
as held:` (taken by a unique insert; Busy if held elsewhere). The lease is given back
on every way out of the block, exceptions included, and `_save` gives it back itself
right after the save and relay (before giving back reservations when the lease was
lost, as ever). What happens after a save that does not touch the Assignment (seats of
the facilitators it let go, the waitlist) is done after the block, without the lease:
a crash there leaves a reservation the case's next holder gives back. A lease on a case
with no Assignment is given back as soon as it is taken (`held.assignment` is None).
"""
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from services.matching import allocation, assignments, facilitators, suitability
from services.matching.allocation import Requirement
from services.matching.assessments import Assessment, review_key
from services.matching.assignments import PATIENCE, Busy
from shared import safeguarding
from shared.messaging.consumer import TooEarly
from shared.security.access import CaseRelation

PARTIES = ("harmed", "harmer")


@dataclass(frozen=True)
class Settings:
    policy: object
    roster: object  # the in-memory registry (roster.Roster) staffing reads
    offer_for: timedelta = timedelta(hours=72)
    waitlist_batch: int = 20


def _release(settings, store, facilitator_id, case_id):
    """Give back the case's seat with this facilitator, and tell the roster."""
    seat = store.release_seat(facilitator_id, case_id)
    if seat is not None:
        settings.roster.released(facilitator_id, seat)
    return seat


class NotFound(LookupError):
    pass


class NotYours(PermissionError):
    """A facilitator answering an offer made to someone else."""


class InvalidTransition(ValueError):
    """The request does not fit the case's state (the message says why)."""

    def __init__(self, code, message):
        self.code = code
        super().__init__(message)


def _now():
    return datetime.now(timezone.utc)


def case_relation(store, case_id):
    """What decides who may reach the case (None if matching has not seen it)."""
    assessment = store.latest_assessment(case_id)
    if assessment is None:
        return None
    case = store.get_assignment(case_id)
    slots = case.slots if case else []
    return CaseRelation(
        agency=assessment.referral.get("agency"), region=assessment.referral.get("region"),
        offered_to=frozenset(s.facilitator_id for s in slots if s.state == "offered"),
        held_by=frozenset(s.facilitator_id for s in slots if s.state == "accepted"))


# --- assessment ----------------------------------------------------------------------------

def requirement_for(referral, outcome):
    """What the case needs of its facilitators, as stored with its Assignment."""
    people = referral["participants"]
    return {
        "level": outcome.required_level,
        "region": referral["region"],
        "languages": sorted({p["language"] for p in people if p["role"] in PARTIES}),
        "endorsements": sorted(outcome.required_endorsements),
        "prison_vetting": outcome.prison_vetting,
        "co_facilitation": outcome.co_facilitation,
        "conflicts": sorted(allocation.conflict_keys([p["participant_id"] for p in people],
                                                     referral.get("referrer_id"), referral.get("agency"))),
        "preferred_endorsements": sorted(outcome.preferred_endorsements),
    }


def _stored(outcome):
    return {**outcome.event_data(), "preferred_endorsements": list(outcome.preferred_endorsements)}


def _assessed_events(outbox, case_id, assessment_id, outcome, basis="referral"):
    data = {"case_id": case_id, "assessment_id": assessment_id, **outcome.event_data(), "basis": basis}
    events = [outbox.event("case.assessed", case_id, data)]
    if outcome.decision == "needs_review":
        events.append(outbox.event("case.needs_review", case_id, data))
    return events


def handle_referral_received(event, outbox, settings, store, today=None):
    """Assess the referral in `event` once, however often the event arrives, and staff
    the case if it is suitable."""
    today = today or date.today()
    referral = event["data"]
    case_id = referral["case_id"]
    outcome = _assess(referral, settings, today)
    assessment_id = str(uuid.uuid4())
    assessment = Assessment(
        assessment_id=assessment_id, case_id=case_id, trigger_event_id=event["id"], outcome=_stored(outcome),
        referral=referral, outbox=_assessed_events(outbox, case_id, assessment_id, outcome),
    )
    # insert first: the unique trigger_event_id tells a redelivery without a read
    if store.insert_assessment(assessment):
        done = assessment
        outbox.flush(store.ASSESSMENTS, done.assessment_id, done.outbox)
        redelivered = False
    else:
        # a redelivery (its events, if a crash left any unsent, are the relay timer's:
        # flushing here too would race the first delivery's flush and publish them twice)
        done = store.assessment_by_trigger(event["id"])
        redelivered = True
    if done.outcome["decision"] == "suitable":
        try:
            open_and_staff(done, outbox, settings, store, today, redelivered)
        except Busy:
            pass  # another worker is staffing this case; if it dies, the sweep takes the case up
    return done


def _assess(referral, settings, today):
    """The policy's outcome on a referral, as things stand today."""
    specialist = None
    if "domestic_abuse" in referral["flags"]:
        specialist = settings.roster.specialist_available(referral["region"], "domestic_abuse", today)
    return suitability.assess(referral, settings.policy, specialist_available=specialist)


class InFlight(TooEarly):
    """A redelivered referral whose first delivery may still be staffing the case: the
    consumer holds it back until that delivery has finished or its lease has run out."""


def open_and_staff(assessment, outbox, settings, store, today=None, redelivered=False):
    """Staff a suitable case. A new case is staffed (or waitlisted) before its Assignment
    is first saved, so the save is one insert holding slots and events, with no lease;
    a case that already has an Assignment goes through `staff_case`."""
    today = today or date.today()
    outcome = suitability.Outcome.from_data(assessment.outcome)
    referral = assessment.referral
    case_id = assessment.case_id
    if redelivered or assessment.basis != "referral":
        if store.get_assignment(case_id) is not None:
            return staff_case(case_id, outbox, settings, store, today, reopen=assessment)
        if redelivered:
            if _now() - _aware(assessment.created_at) < assignments.LEASE:
                raise InFlight(case_id)  # the first delivery may be between its seats and its save
            for facilitator_id in store.holders(case_id):  # it died there: undo its seats
                _release(settings, store, facilitator_id, case_id)
    case = assignments.new_case(case_id, assessment.assessment_id, referral["region"],
                                requirement_for(referral, outcome),
                                [p["participant_id"] for p in referral["participants"]])
    events, reserved = _fill(case, False, outbox, settings, store, today, _now())
    assignments.settle(case, _roles(case))
    if store.insert_assignment(case, events):
        outbox.flush(store.ASSIGNMENTS, case_id, events)
        return case
    for facilitator_id in reserved:  # another worker saved it first: ours are not needed
        _release(settings, store, facilitator_id, case_id)
    return staff_case(case_id, outbox, settings, store, today)


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def decide_review(case_id, decision, reason_code, reason, decided_by, outbox, settings, store, today=None):
    """A coordinator's decision on a needs_review case: stored, announced as
    case.assessed, and, if suitable, the case is staffed. One decision per case."""
    if decision not in ("suitable", "unsuitable"):
        raise InvalidTransition("bad_decision", "decision must be suitable or unsuitable")
    previous = store.latest_assessment(case_id)
    if previous is None:
        raise NotFound(case_id)
    if previous.basis == "review":
        raise InvalidTransition("already_decided", "a coordinator has already decided this case")
    if previous.outcome["decision"] != "needs_review":
        raise InvalidTransition("not_under_review", "this case's assessment does not need review")
    outcome = suitability.coordinator_outcome(suitability.Outcome.from_data(previous.outcome), decision, reason_code)
    assessment_id = str(uuid.uuid4())
    assessment = Assessment(
        assessment_id=assessment_id, case_id=case_id, trigger_event_id=review_key(previous.assessment_id),
        outcome=_stored(outcome), referral=previous.referral, basis="review", withdrawn_by=list(previous.withdrawn_by),
        outbox=_assessed_events(outbox, case_id, assessment_id, outcome, "review"),
        review={"decision": decision, "reason_code": reason_code, "reason": reason, "decided_by": decided_by,
                "reviewed_assessment_id": previous.assessment_id},
    )
    if not store.insert_assessment(assessment):
        raise InvalidTransition("already_decided", "a coordinator has already decided this case")
    outbox.flush(store.ASSESSMENTS, assessment.assessment_id, assessment.outbox)
    if decision == "suitable":
        open_and_staff(assessment, outbox, settings, store, today)
    return assessment


# --- staffing ------------------------------------------------------------------------------

def need_of(store, case, excluded=()):
    r = case.requirement
    taken = {slot.facilitator_id for slot in assignments.active_slots(case)}
    return Requirement(
        level=r["level"], region=r["region"], languages=frozenset(r["languages"]),
        endorsements=frozenset(r["endorsements"]), prison_vetting=r["prison_vetting"],
        co_facilitation=r["co_facilitation"], conflicts=frozenset(r["conflicts"]),
        preferred_endorsements=frozenset(r.get("preferred_endorsements", [])),
        continuity=store.facilitators_seen(case.participant_ids),
        excluded=frozenset(case.declined_by) | taken | frozenset(excluded),
    )


def _fill(case, taken_over, outbox, settings, store, today, now):
    """Reserve facilitators for the case's unfilled roles (lease held, or a case not yet
    saved). Returns the events to save and the reservations to give back if the save
    fails. `taken_over`: the lease was taken from a holder that died."""
    case_id = case.case_id
    need = need_of(store, case)
    if case.version > 0 or taken_over:
        # reservations no active slot records were left by a holder that died: give them
        # back (a case never saved before, under a fresh lease, can have none)
        recorded = {slot.facilitator_id for slot in assignments.active_slots(case)}
        for facilitator_id in set(store.holders(case_id)) - recorded:
            _release(settings, store, facilitator_id, case_id)
    missing = [role for role in need.roles() if role not in assignments.filled_roles(case)]
    if not missing:
        return [], []

    def attempt():
        team = allocation.staff(
            missing, need, today,
            candidates_for=lambda n, role: settings.roster.candidates(n, today, role),
            reserve=lambda c, n, role: settings.roster.reserve(c.facilitator_id, case_id, n, today, role,
                                                               confirm=False),
        )
        for _ in range(3):  # a registry change since the roster's last look: replace who no longer fits
            lost = settings.roster.confirm(team.reserved, need, today, case_id)
            if not lost:
                break
            for role in lost:
                del team.reserved[role]
            again = allocation.staff(
                lost, need.excluding(*team.reserved.values()), today,
                candidates_for=lambda n, role: settings.roster.candidates(n, today, role),
                reserve=lambda c, n, role: settings.roster.reserve(c.facilitator_id, case_id, n, today, role,
                                                                   confirm=False))
            team.reserved.update(again.reserved)
            team.unfilled += again.unfilled
        else:
            lost = settings.roster.confirm(team.reserved, need, today, case_id)
            for role in lost:
                del team.reserved[role]
            team.unfilled += lost
        return team

    team = attempt()
    if team.unfilled and settings.roster.refresh(force=True):
        # the roster had not yet seen a registry change: look again before waitlisting
        for facilitator_id in team.reserved.values():
            _release(settings, store, facilitator_id, case_id)
        team = attempt()
    if team.unfilled:
        for facilitator_id in team.reserved.values():
            _release(settings, store, facilitator_id, case_id)
        reason = "no_eligible_facilitator" if "lead" in team.unfilled else "no_eligible_co_facilitator"
        # the latest reason, and what ruled out the region's facilitators, for the list of cases waiting for staff
        role = "lead" if "lead" in team.unfilled else "co_facilitator"
        short_of = need.excluding(*team.reserved.values())
        case.waitlist_reason = reason
        case.waitlist_shortfall = allocation.shortfall(settings.roster.candidates(short_of, today, role), short_of,
                                                       today, role)
        if case.waitlisted_at:
            return [], []  # already waiting, already announced
        case.waitlisted_at = now
        return [outbox.event("assignment.waitlisted", case_id, {
            "case_id": case_id, "assessment_id": case.assessment_id, "reason": reason})], []
    events = []
    for role, facilitator_id in team.reserved.items():
        slot = assignments.new_slot(role, facilitator_id, now, settings.offer_for)
        case.slots.append(slot)
        case.offer_ids.append(slot.assignment_id)
        events.append(outbox.event("facilitator.assigned", case_id, {
            "case_id": case_id, "assignment_id": slot.assignment_id, "assessment_id": case.assessment_id,
            "facilitator_id": facilitator_id, "role": role}))
    return events, list(team.reserved.values())


def _save(held, case, events, reserved, outbox, need_roles, settings, store):
    """Save the case's new state and events in one write, relay them, then give the lease
    back (the relay's removal of sent events is a write too, and must not race another
    holder). The lease is given back whatever happens, here; if it had run out and been
    taken, the reservations made under it are given back after it, and Busy raised.
    (A failure of the save itself keeps them: the next holder gives them back.)"""
    assignments.settle(case, need_roles)
    try:
        if store.commit(held, case, events):
            if events:
                outbox.flush(store.ASSIGNMENTS, case.case_id, events)
            return True
    finally:
        store.release_lease(held)
    for facilitator_id in reserved:  # the lease ran out under us: undo what we took
        _release(settings, store, facilitator_id, case.case_id)
    raise Busy(case.case_id)


def _roles(case):
    return allocation.ROLES if case.requirement.get("co_facilitation") else allocation.ROLES[:1]


def staff_case(case_id, outbox, settings, store, today=None, now=None, reopen=None):
    """Offer the case to the best facilitators who fit, or waitlist it. Busy if another
    worker holds the case; None if the case has no Assignment. `reopen`: a suitable
    assessment made after the referral's, which opens a paused case again."""
    today, now = today or date.today(), now or _now()
    with store.lease(case_id, now=now) as held:
        case = held.assignment
        if case is not None and reopen is not None and assignments.paused(case):
            referral = reopen.referral
            assignments.reopen(case, reopen.assessment_id, referral["region"],
                               requirement_for(referral, suitability.Outcome.from_data(reopen.outcome)),
                               [p["participant_id"] for p in referral["participants"]])
        if case is None or case.status == assignments.CLOSED:
            return case  # no such case (its lease is given back already), or closed: nothing to staff
        events, reserved = _fill(case, held.taken_over, outbox, settings, store, today, now)
        _save(held, case, events, reserved, outbox, _roles(case), settings, store)
    return case


def _offer_case(store, assignment_id):
    case_id = store.case_of_offer(assignment_id)
    if case_id is None:
        raise NotFound(assignment_id)
    return case_id


def respond(assignment_id, accepted, outbox, settings, store, reason="declined", today=None, now=None,
            acting_for=None):
    """A facilitator accepts or declines an offer (or the offer expires: reason
    offer_expired). Accepting twice, or declining twice, has no second effect."""
    today, now = today or date.today(), now or _now()
    case_id = _offer_case(store, assignment_id)
    released = None
    with store.lease(case_id, wait=PATIENCE) as held:
        case = held.assignment
        slot = assignments.find_slot(case, assignment_id)
        if acting_for is not None and slot.facilitator_id != acting_for:
            raise NotYours(assignment_id)
        wanted = "accepted" if accepted else ("expired" if reason == "offer_expired" else "declined")
        if slot.state == wanted or (not accepted and slot.state in ("declined", "expired")):
            return case, slot
        if slot.state != "offered":
            raise InvalidTransition(f"offer_{slot.state}", f"this offer is already {slot.state}")
        if accepted and slot.expires_at <= now:
            raise InvalidTransition("offer_expired", "this offer has expired")
        slot.state, slot.decided_at, slot.reason = wanted, now, None if accepted else reason
        data = {"case_id": case_id, "assignment_id": assignment_id, "facilitator_id": slot.facilitator_id}
        if accepted:
            events, reserved = [outbox.event("assignment.accepted", case_id, {**data, "reason": None})], []
            store.record_worked_with(case.participant_ids, slot.facilitator_id)
        else:
            case.declined_by.append(slot.facilitator_id)
            released = slot.facilitator_id
            events = [outbox.event("assignment.declined", case_id, {**data, "reason": reason})]
            more, reserved = _fill(case, held.taken_over, outbox, settings, store, today, now)
            events += more
        _save(held, case, events, reserved, outbox, _roles(case), settings, store)
    if released:  # after the save: a crash before this leaves a reservation the next holder gives back
        _release(settings, store, released, case_id)
        retry_waitlist(outbox, settings, store, regions=_regions_of(settings, [released]), today=today)
    return case, slot


def expire_offers(outbox, settings, store, now=None, today=None):
    """Offers not accepted in time go to the next candidate. Returns how many expired."""
    now = now or _now()
    expired = 0
    for case_id in store.expired_offers(now):
        case = store.get_assignment(case_id)
        for slot in list(case.slots):
            if slot.state == "offered" and slot.expires_at <= now:
                try:
                    respond(slot.assignment_id, False, outbox, settings, store, reason="offer_expired", today=today,
                            now=now)
                    expired += 1
                except Busy:
                    pass  # the next sweep will see it
    return expired


def close_case(case_id, reason, outbox, settings, store, today=None, release_reason="case_closed"):
    """The case is closed (or can no longer go ahead): release everyone on it, then
    offer the freed capacity to the cases waiting longest."""
    freed = _close(case_id, reason, outbox, settings, store, release_reason)
    if freed is None:
        return []  # closed already, or never opened
    for facilitator_id in set(freed) | set(store.holders(case_id)):
        _release(settings, store, facilitator_id, case_id)
    if freed:
        retry_waitlist(outbox, settings, store, regions=_regions_of(settings, freed), today=today)
    return freed


def _close(case_id, reason, outbox, settings, store, release_reason, tombstone=True):
    """Close the case under its lease; the facilitators it let go, or None if it was
    closed already or is now closed without ever having been opened."""
    with store.lease(case_id, wait=PATIENCE) as held:
        case = held.assignment
        if case is not None:
            if case.status == assignments.CLOSED:
                if assignments.paused(case) and reason != assignments.PAUSED:
                    case.closed_reason = reason  # closed for good now: never opened again
                    _save(held, case, [], [], outbox, (), settings, store)
                return None
            now = _now()
            events, freed = [], []
            for slot in assignments.active_slots(case):
                slot.state, slot.decided_at, slot.reason = "released", now, release_reason
                freed.append(slot.facilitator_id)
                events.append(outbox.event("facilitator.released", case_id, {
                    "case_id": case_id, "assignment_id": slot.assignment_id, "facilitator_id": slot.facilitator_id,
                    "reason": release_reason}))
            case.status, case.closed_reason, case.waitlisted_at = assignments.CLOSED, reason, None
            case.waitlist_reason = case.waitlist_shortfall = None
            _save(held, case, events, [], outbox, _roles(case) if case.requirement else (), settings, store)
            return freed
    # never staffed (its lease, on nothing, is given back already): staffing only ever
    # happens on an Assignment's lease, so a tombstone stops it for good
    if not tombstone or store.close_unopened(case_id, reason):
        return None
    return _close(case_id, reason, outbox, settings, store, release_reason, tombstone=False)  # opened meanwhile


def handle_consent_changed(event, outbox, settings, store, today=None):
    """A person's consent to take part was withdrawn or given again.

    Only a party's consent decides whether the case goes ahead: a supporter, interpreter
    or appropriate adult who withdraws stops taking part themselves, and the case goes
    on (`shared.safeguarding`). When a party withdraws, the case is assessed again (the
    policy's consent rule makes it unsuitable) and its facilitators are released; the
    case is paused, not closed. When every party who withdrew has consented again, the
    case is assessed afresh under the policy and, if suitable, staffed again.
    Once per event; other consent scopes change nothing here. Returns the new
    Assessment, or None."""
    data = event["data"]
    if data["scope"] != "participation" or not safeguarding.is_party(data.get("participant_role")):
        return None
    case_id, participant_id = data["case_id"], data["participant_id"]
    previous = store.latest_assessment(case_id)
    if previous is None:
        return None  # not assessed yet: its referral is assessed when it arrives
    withdrawn = set(previous.withdrawn_by)
    if data["granted"]:
        if participant_id not in withdrawn:
            return None  # consent given in the ordinary course: nothing had stopped
        withdrawn.discard(participant_id)
    else:
        if participant_id in withdrawn:
            return None
        withdrawn.add(participant_id)
    today = today or date.today()
    if not withdrawn:
        outcome = _assess(previous.referral, settings, today)  # everyone is back: afresh
    elif previous.outcome["decision"] != "unsuitable":
        outcome = suitability.assess(previous.referral, settings.policy, consent_withdrawn=True)
    else:
        outcome = None  # unsuitable already: the withdrawal is noted, with nothing to announce
    assessment_id = str(uuid.uuid4())
    assessment = Assessment(
        assessment_id=assessment_id, case_id=case_id, trigger_event_id=event["id"],
        outcome=_stored(outcome) if outcome else dict(previous.outcome), referral=previous.referral,
        basis="consent", withdrawn_by=sorted(withdrawn),
        outbox=_assessed_events(outbox, case_id, assessment_id, outcome, "consent") if outcome else [],
    )
    if store.insert_assessment(assessment):
        if assessment.outbox:
            outbox.flush(store.ASSESSMENTS, assessment.assessment_id, assessment.outbox)
    else:
        assessment = store.assessment_by_trigger(event["id"])  # a redelivery: what follows is idempotent
    if assessment.withdrawn_by:
        close_case(case_id, assignments.PAUSED, outbox, settings, store, today, release_reason="consent_withdrawn")
    elif assessment.outcome["decision"] == "suitable":
        try:
            open_and_staff(assessment, outbox, settings, store, today)
        except Busy:
            pass  # another worker holds the case; the sweep's waitlist retry takes it up
    return assessment


def withdraw_unfit(facilitator_id, outbox, settings, store, today=None):
    """After a registry change: every case this facilitator holds that they no longer fit
    (deactivated, a conflict declared with a party, an endorsement or vetting lost) is
    released from them (reason `deactivated` or `no_longer_eligible`) and staffed again.
    A capacity cut is not a reason: the cases they hold stay. Returns the number of cases
    released.

    The cases are found by their slots and by their seats: a case being staffed right now
    holds the seat before its slot is saved. Either that staffing's `roster.confirm` sees
    this change (the change was logged before the seat was taken), or the seat is found
    here and the case is handled once its staffing has saved it."""
    today = today or date.today()
    fresh = store.get_facilitator(facilitator_id)
    if fresh is None:
        return 0
    candidate = replace(facilitators.candidate(fresh), spare=1)  # capacity is not in question
    reason = "no_longer_eligible" if candidate.active else "deactivated"
    case_ids = store.cases_held_by(facilitator_id) | set(store.caseloads([facilitator_id])[facilitator_id])
    released = 0
    for case_id in sorted(case_ids):
        with _lease_once_opened(store, case_id, facilitator_id) as held:
            if held is None:
                continue
            case = held.assignment
            mine = [s for s in assignments.active_slots(case) if s.facilitator_id == facilitator_id]
            if case.status == assignments.CLOSED or not mine:
                continue
            need = replace(need_of(store, case), excluded=frozenset())
            unfit = [s for s in mine if not allocation.fits(candidate, need, today, s.role)]
            if not unfit:
                continue
            now = _now()
            events = []
            for slot in unfit:
                slot.state, slot.decided_at, slot.reason = "released", now, reason
                events.append(outbox.event("facilitator.released", case_id, {
                    "case_id": case_id, "assignment_id": slot.assignment_id, "facilitator_id": facilitator_id,
                    "reason": reason}))
            case.declined_by.append(facilitator_id)  # not offered this case again
            more, reserved = _fill(case, held.taken_over, outbox, settings, store, today, now)
            _save(held, case, events + more, reserved, outbox, _roles(case), settings, store)
        _release(settings, store, facilitator_id, case_id)
        released += 1
    return released


def withdraw_after_changes(outbox, settings, store, since, today=None):
    """The sweep's second look at facilitators changed since `since`: a withdrawal the
    registry request could not finish (a case busy, a crash) is finished here. Returns
    the number of cases released."""
    released = 0
    for facilitator_id in sorted({c.facilitator_id for c in store.changes_since(since)}):
        try:
            released += withdraw_unfit(facilitator_id, outbox, settings, store, today)
        except Busy:
            continue  # a case held elsewhere: the next sweep looks again
    return released


@contextmanager
def _lease_once_opened(store, case_id, facilitator_id, wait=5.0):
    """Hold the case's lease, waiting for a case being opened right now (its seats are
    taken before its first save) to be saved; None if it never is and the seat has gone.
    Busy if another worker holds the lease for longer than PATIENCE."""
    deadline = time.monotonic() + wait
    while True:
        with store.lease(case_id, wait=PATIENCE) as held:
            if held.assignment is not None:
                yield held
                return
        if facilitator_id not in store.holders(case_id):
            break  # the opening gave the seat back (waitlisted, or lost a race)
        if time.monotonic() >= deadline:
            # the worker opening it died holding the seat: the referral's redelivery gives
            # it back (`open_and_staff`); nothing was offered meanwhile
            break
        time.sleep(0.05)
    yield None


def _regions_of(settings, facilitator_ids):
    regions = set()
    for facilitator_id in facilitator_ids:
        found = settings.roster.get(facilitator_id)
        regions.update(found.regions if found else ())
    return regions


def retry_waitlist(outbox, settings, store, regions=None, today=None):
    """Try again to staff the cases waiting longest (in `regions`, if given)."""
    staffed = 0
    for case_id in store.waiting(regions, settings.waitlist_batch):
        try:
            case = staff_case(case_id, outbox, settings, store, today)
        except Busy:
            continue
        if case is not None and case.status in (assignments.OFFERED, assignments.ACCEPTED):
            staffed += 1
    return staffed
