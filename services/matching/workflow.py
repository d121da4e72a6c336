"""What matching does: assess referrals, staff cases, and follow offers through.

Orchestration only; the rules live in `suitability` and `allocation`, the storage in
`facilitators`, `assessments` and `assignments`. Every handler is idempotent by its
own domain key: the referral event id for an assessment, the case id for an
assignment (under its lease), an offer's state for accept, decline and expiry.
"""
import time
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from mongoengine.errors import NotUniqueError
from pymongo.errors import DuplicateKeyError

from services.matching import allocation, assignments, facilitators, suitability
from services.matching.allocation import Requirement
from services.matching.assessments import Assessment, latest, review_key
from services.matching.assignments import Busy
from shared.messaging.consumer import TooEarly
from shared.security.access import CaseRelation

# A second insert of a unique key: pymongo's error, or mongoengine's wrapping of it on save().
DUPLICATE = (DuplicateKeyError, NotUniqueError)

PARTIES = ("harmed", "harmer")


@dataclass(frozen=True)
class Settings:
    policy: object
    roster: object  # the in-memory registry (roster.Roster) staffing reads
    offer_for: timedelta = timedelta(hours=72)
    waitlist_batch: int = 20


def _release(settings, facilitator_id, case_id):
    """Give back the case's seat with this facilitator, and tell the roster."""
    seat = facilitators.release(facilitator_id, case_id)
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


def case_relation(case_id):
    """What decides who may reach the case (None if matching has not seen it)."""
    assessment = latest(case_id)
    if assessment is None:
        return None
    doc = assignments.get(case_id)
    slots = doc["slots"] if doc else []
    return CaseRelation(
        agency=assessment.referral.get("agency"), region=assessment.referral.get("region"),
        offered_to=frozenset(s["facilitator_id"] for s in slots if s["state"] == "offered"),
        held_by=frozenset(s["facilitator_id"] for s in slots if s["state"] == "accepted"))


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


def _assessed_events(outbox, case_id, assessment_id, outcome):
    data = {"case_id": case_id, "assessment_id": assessment_id, **outcome.event_data()}
    events = [outbox.event("case.assessed", case_id, data)]
    if outcome.decision == "needs_review":
        events.append(outbox.event("case.needs_review", case_id, data))
    return events


def handle_referral_received(event, outbox, settings, today=None):
    """Assess the referral in `event` once, however often the event arrives, and staff
    the case if it is suitable."""
    today = today or date.today()
    referral = event["data"]
    case_id = referral["case_id"]
    specialist = None
    if "domestic_abuse" in referral["flags"]:
        specialist = settings.roster.specialist_available(referral["region"], "domestic_abuse", today)
    outcome = suitability.assess(referral, settings.policy, specialist_available=specialist)
    assessment_id = str(uuid.uuid4())
    assessment = Assessment(
        assessment_id=assessment_id, case_id=case_id, trigger_event_id=event["id"], outcome=_stored(outcome),
        referral=referral, outbox=_assessed_events(outbox, case_id, assessment_id, outcome),
    )
    try:  # insert first: the unique trigger_event_id tells a redelivery without a read
        assessment.save(force_insert=True)
        done = assessment
        outbox.flush("assessments", done.pk, done.outbox)
        redelivered = False
    except DUPLICATE:
        # a redelivery (its events, if a crash left any unsent, are the relay timer's:
        # flushing here too would race the first delivery's flush and publish them twice)
        done = Assessment.objects(trigger_event_id=event["id"]).first()
        redelivered = True
    if done.outcome["decision"] == "suitable":
        try:
            open_and_staff(done, outbox, settings, today, redelivered)
        except Busy:
            pass  # another worker is staffing this case; if it dies, the sweep takes the case up
    return done


class InFlight(TooEarly):
    """A redelivered referral whose first delivery may still be staffing the case: the
    consumer holds it back until that delivery has finished or its lease has run out."""


def open_and_staff(assessment, outbox, settings, today=None, redelivered=False):
    """Staff a suitable case. A new case is staffed (or waitlisted) before its Assignment
    is first saved, so the save is one insert holding slots and events, with no lease;
    a case that already has an Assignment goes through `staff_case`."""
    today = today or date.today()
    outcome = suitability.Outcome.from_data(assessment.outcome)
    referral = assessment.referral
    case_id = assessment.case_id
    if redelivered or assessment.review:
        if assignments.get(case_id) is not None:
            return staff_case(case_id, outbox, settings, today)
        if redelivered:
            if _now() - _aware(assessment.created_at) < assignments.LEASE:
                raise InFlight(case_id)  # the first delivery may be between its seats and its save
            for facilitator_id in facilitators.holders(case_id):  # it died there: undo its seats
                _release(settings, facilitator_id, case_id)
    doc = assignments.new_case(case_id, assessment.assessment_id, referral["region"],
                               requirement_for(referral, outcome),
                               [p["participant_id"] for p in referral["participants"]])
    events, reserved = _fill(doc, outbox, settings, today, _now())
    assignments.settle(doc, _roles(doc))
    doc["outbox"] = events
    if assignments.insert(doc):
        outbox.flush("assignments", case_id, events)
        return doc
    for facilitator_id in reserved:  # another worker saved it first: ours are not needed
        _release(settings, facilitator_id, case_id)
    return staff_case(case_id, outbox, settings, today)


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def decide_review(case_id, decision, reason_code, reason, decided_by, outbox, settings, today=None):
    """A coordinator's decision on a needs_review case: stored, announced as
    case.assessed, and, if suitable, the case is staffed. One decision per case."""
    if decision not in ("suitable", "unsuitable"):
        raise InvalidTransition("bad_decision", "decision must be suitable or unsuitable")
    previous = latest(case_id)
    if previous is None:
        raise NotFound(case_id)
    if previous.trigger_event_id == review_key(case_id):
        raise InvalidTransition("already_decided", "a coordinator has already decided this case")
    if previous.outcome["decision"] != "needs_review":
        raise InvalidTransition("not_under_review", "this case's assessment does not need review")
    outcome = suitability.coordinator_outcome(suitability.Outcome.from_data(previous.outcome), decision, reason_code)
    assessment_id = str(uuid.uuid4())
    assessment = Assessment(
        assessment_id=assessment_id, case_id=case_id, trigger_event_id=review_key(case_id), outcome=_stored(outcome),
        referral=previous.referral, outbox=_assessed_events(outbox, case_id, assessment_id, outcome),
        review={"decision": decision, "reason_code": reason_code, "reason": reason, "decided_by": decided_by,
                "reviewed_assessment_id": previous.assessment_id},
    )
    try:
        assessment.save(force_insert=True)
    except DUPLICATE:
        raise InvalidTransition("already_decided", "a coordinator has already decided this case")
    outbox.flush("assessments", assessment.pk, assessment.outbox)
    if decision == "suitable":
        open_and_staff(assessment, outbox, settings, today)
    return assessment


# --- staffing ------------------------------------------------------------------------------

def need_of(doc, excluded=()):
    r = doc["requirement"]
    taken = {slot["facilitator_id"] for slot in assignments.active_slots(doc)}
    return Requirement(
        level=r["level"], region=r["region"], languages=frozenset(r["languages"]),
        endorsements=frozenset(r["endorsements"]), prison_vetting=r["prison_vetting"],
        co_facilitation=r["co_facilitation"], conflicts=frozenset(r["conflicts"]),
        preferred_endorsements=frozenset(r.get("preferred_endorsements", [])),
        continuity=assignments.facilitators_seen(doc.get("participant_ids", [])),
        excluded=frozenset(doc.get("declined_by", [])) | taken | frozenset(excluded),
    )


def _fill(doc, outbox, settings, today, now):
    """Reserve facilitators for the case's unfilled roles (lease held). Returns the
    events to save and the reservations to give back if the save fails."""
    case_id = doc["_id"]
    need = need_of(doc)
    if doc.get("version", 0) > 0 or doc.get("lease_taken_over"):
        # reservations no active slot records were left by a holder that died: give them
        # back (a case never saved before, under a fresh lease, can have none)
        recorded = {slot["facilitator_id"] for slot in assignments.active_slots(doc)}
        for facilitator_id in set(facilitators.holders(case_id)) - recorded:
            _release(settings, facilitator_id, case_id)
    missing = [role for role in need.roles() if role not in assignments.filled_roles(doc)]
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
            _release(settings, facilitator_id, case_id)
        team = attempt()
    if team.unfilled:
        for facilitator_id in team.reserved.values():
            _release(settings, facilitator_id, case_id)
        if doc.get("waitlisted_at"):
            return [], []  # already waiting, already announced
        doc["waitlisted_at"] = now
        reason = "no_eligible_facilitator" if "lead" in team.unfilled else "no_eligible_co_facilitator"
        return [outbox.event("assignment.waitlisted", case_id, {
            "case_id": case_id, "assessment_id": doc["assessment_id"], "reason": reason})], []
    events = []
    for role, facilitator_id in team.reserved.items():
        slot = assignments.new_slot(role, facilitator_id, now, settings.offer_for)
        doc["slots"].append(slot)
        doc["offer_ids"].append(slot["assignment_id"])
        events.append(outbox.event("facilitator.assigned", case_id, {
            "case_id": case_id, "assignment_id": slot["assignment_id"], "assessment_id": doc["assessment_id"],
            "facilitator_id": facilitator_id, "role": role}))
    return events, list(team.reserved.values())


def _save(doc, events, reserved, outbox, need_roles, settings):
    """Save the case's new state and events, relay them, then give the lease back (the
    relay's removal of sent events is a write too, and must not race another holder)."""
    assignments.settle(doc, need_roles)
    try:
        if assignments.commit(doc, events):
            if events:
                outbox.flush("assignments", doc["_id"], events)
            return True
    finally:
        assignments.let_go(doc)
    for facilitator_id in reserved:  # the lease ran out under us: undo what we took
        _release(settings, facilitator_id, doc["_id"])
    raise Busy(doc["_id"])


def _roles(doc):
    return allocation.ROLES if doc["requirement"].get("co_facilitation") else allocation.ROLES[:1]


def staff_case(case_id, outbox, settings, today=None, now=None):
    """Offer the case to the best facilitators who fit, or waitlist it. Busy if another
    worker holds the case; None if the case has no Assignment."""
    today, now = today or date.today(), now or _now()
    doc = assignments.claim(case_id, now)
    if doc is None:
        return None
    try:
        if doc["status"] == assignments.CLOSED:
            assignments.let_go(doc)
            return doc
        events, reserved = _fill(doc, outbox, settings, today, now)
    except Exception:
        assignments.let_go(doc)
        raise
    _save(doc, events, reserved, outbox, _roles(doc), settings)
    return doc


def _offer_case(assignment_id):
    found = assignments.by_offer(assignment_id)
    if found is None:
        raise NotFound(assignment_id)
    return found["_id"]


def respond(assignment_id, accepted, outbox, settings, reason="declined", today=None, now=None, acting_for=None):
    """A facilitator accepts or declines an offer (or the offer expires: reason
    offer_expired). Accepting twice, or declining twice, has no second effect."""
    today, now = today or date.today(), now or _now()
    case_id = _offer_case(assignment_id)
    doc = assignments.claim_patiently(case_id)
    released = None
    try:
        slot = assignments.find_slot(doc, assignment_id)
        if acting_for is not None and slot["facilitator_id"] != acting_for:
            assignments.let_go(doc)
            raise NotYours(assignment_id)
        wanted = "accepted" if accepted else ("expired" if reason == "offer_expired" else "declined")
        if slot["state"] == wanted or (not accepted and slot["state"] in ("declined", "expired")):
            assignments.let_go(doc)
            return doc, slot
        if slot["state"] != "offered":
            assignments.let_go(doc)
            raise InvalidTransition(f"offer_{slot['state']}", f"this offer is already {slot['state']}")
        if accepted and slot["expires_at"] <= now:
            assignments.let_go(doc)
            raise InvalidTransition("offer_expired", "this offer has expired")
        slot.update({"state": wanted, "decided_at": now, "reason": None if accepted else reason})
        data = {"case_id": case_id, "assignment_id": assignment_id, "facilitator_id": slot["facilitator_id"]}
        if accepted:
            events, reserved = [outbox.event("assignment.accepted", case_id, {**data, "reason": None})], []
            assignments.worked_with(doc.get("participant_ids", []), slot["facilitator_id"])
        else:
            doc["declined_by"].append(slot["facilitator_id"])
            released = slot["facilitator_id"]
            events = [outbox.event("assignment.declined", case_id, {**data, "reason": reason})]
            more, reserved = _fill(doc, outbox, settings, today, now)
            events += more
    except (NotYours, InvalidTransition):
        raise
    except Exception:
        assignments.let_go(doc)
        raise
    _save(doc, events, reserved, outbox, _roles(doc), settings)
    if released:  # after the save: a crash before this leaves a reservation the next holder gives back
        _release(settings, released, case_id)
        retry_waitlist(outbox, settings, regions=_regions_of(settings, [released]), today=today)
    return doc, slot


def expire_offers(outbox, settings, now=None, today=None):
    """Offers not accepted in time go to the next candidate. Returns how many expired."""
    now = now or _now()
    expired = 0
    for case_id in assignments.expired_offers(now):
        doc = assignments.get(case_id)
        for slot in list(doc["slots"]):
            if slot["state"] == "offered" and slot["expires_at"] <= now:
                try:
                    respond(slot["assignment_id"], False, outbox, settings, reason="offer_expired", today=today,
                            now=now)
                    expired += 1
                except Busy:
                    pass  # the next sweep will see it
    return expired


def close_case(case_id, reason, outbox, settings, today=None, release_reason="case_closed"):
    """The case is closed (or can no longer go ahead): release everyone on it, then
    offer the freed capacity to the cases waiting longest."""
    doc = assignments.claim_patiently(case_id)
    if doc is None:
        if assignments.close_unopened(case_id, reason):
            return []  # never staffed: staffing only ever happens on an Assignment's lease
        doc = assignments.claim_patiently(case_id)  # opened meanwhile
    if doc["status"] == assignments.CLOSED:
        assignments.let_go(doc)
        return []
    now = _now()
    events, freed = [], []
    for slot in assignments.active_slots(doc):
        slot.update({"state": "released", "decided_at": now, "reason": release_reason})
        freed.append(slot["facilitator_id"])
        events.append(outbox.event("facilitator.released", case_id, {
            "case_id": case_id, "assignment_id": slot["assignment_id"], "facilitator_id": slot["facilitator_id"],
            "reason": release_reason}))
    doc.update({"status": assignments.CLOSED, "closed_reason": reason, "waitlisted_at": None})
    _save(doc, events, [], outbox, _roles(doc) if doc["requirement"] else (), settings)
    for facilitator_id in set(freed) | set(facilitators.holders(case_id)):
        _release(settings, facilitator_id, case_id)
    if freed:
        retry_waitlist(outbox, settings, regions=_regions_of(settings, freed), today=today)
    return freed


def handle_consent_withdrawn(event, outbox, settings, today=None):
    """A party withdrew consent to take part: the case is assessed again under the
    policy (its consent rule makes it unsuitable), announced, and its facilitators are
    released. Once per withdrawal event; other consent scopes change nothing here."""
    data = event["data"]
    if data["scope"] != "participation":
        return None
    case_id = data["case_id"]
    previous = latest(case_id)
    if previous is None or previous.outcome["decision"] == "unsuitable":
        return None  # nothing to withdraw from (an unassessed case is assessed when its referral arrives)
    referral = previous.referral
    outcome = suitability.assess(referral, settings.policy, consent_withdrawn=True)
    assessment_id = str(uuid.uuid4())
    assessment = Assessment(
        assessment_id=assessment_id, case_id=case_id, trigger_event_id=event["id"], outcome=_stored(outcome),
        referral=referral, outbox=_assessed_events(outbox, case_id, assessment_id, outcome),
    )
    try:
        assessment.save(force_insert=True)
        outbox.flush("assessments", assessment.pk, assessment.outbox)
    except DUPLICATE:
        pass  # a redelivery: assessed already; the release below is idempotent
    close_case(case_id, "consent_withdrawn", outbox, settings, today, release_reason="consent_withdrawn")
    return assessment


def withdraw_unfit(facilitator_id, outbox, settings, today=None):
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
    fresh = facilitators.get(facilitator_id)
    if fresh is None:
        return 0
    candidate = replace(facilitators.candidate(fresh), spare=1)  # capacity is not in question
    reason = "no_longer_eligible" if candidate.active else "deactivated"
    case_ids = {doc["_id"] for doc in assignments.collection().find({"slots.facilitator_id": facilitator_id},
                                                                    {"_id": 1})}
    case_ids |= set(facilitators.caseloads([facilitator_id])[facilitator_id])
    released = 0
    for case_id in sorted(case_ids):
        held = _claim_once_opened(case_id, facilitator_id)
        if held is None:
            continue
        try:
            mine = [s for s in assignments.active_slots(held) if s["facilitator_id"] == facilitator_id]
            if held["status"] == assignments.CLOSED or not mine:
                assignments.let_go(held)
                continue
            need = replace(need_of(held), excluded=frozenset())
            unfit = [s for s in mine if not allocation.fits(candidate, need, today, s["role"])]
            if not unfit:
                assignments.let_go(held)
                continue
            now = _now()
            events = []
            for slot in unfit:
                slot.update({"state": "released", "decided_at": now, "reason": reason})
                events.append(outbox.event("facilitator.released", case_id, {
                    "case_id": case_id, "assignment_id": slot["assignment_id"], "facilitator_id": facilitator_id,
                    "reason": reason}))
            held["declined_by"].append(facilitator_id)  # not offered this case again
            more, reserved = _fill(held, outbox, settings, today, now)
        except Exception:
            assignments.let_go(held)
            raise
        _save(held, events + more, reserved, outbox, _roles(held), settings)
        _release(settings, facilitator_id, case_id)
        released += 1
    return released


def withdraw_after_changes(outbox, settings, since, today=None):
    """The sweep's second look at facilitators changed since `since`: a withdrawal the
    registry request could not finish (a case busy, a crash) is finished here. Returns
    the number of cases released."""
    released = 0
    for facilitator_id in sorted({c["facilitator_id"] for c in facilitators.changes_since(since)}):
        try:
            released += withdraw_unfit(facilitator_id, outbox, settings, today)
        except Busy:
            continue  # a case held elsewhere: the next sweep looks again
    return released


def _claim_once_opened(case_id, facilitator_id, wait=5.0):
    """The case's lease, waiting for a case being opened right now (its seats are taken
    before its first save) to be saved; None if it never is and the seat has gone."""
    deadline = time.monotonic() + wait
    while True:
        held = assignments.claim_patiently(case_id)
        if held is not None:
            return held
        if facilitator_id not in facilitators.holders(case_id):
            return None  # the opening gave the seat back (waitlisted, or lost a race)
        if time.monotonic() >= deadline:
            # the worker opening it died holding the seat: the referral's redelivery gives
            # it back (`open_and_staff`); nothing was offered meanwhile
            return None
        time.sleep(0.05)


def _regions_of(settings, facilitator_ids):
    regions = set()
    for facilitator_id in facilitator_ids:
        doc = settings.roster.get(facilitator_id)
        regions.update(doc["regions"] if doc else ())
    return regions


def retry_waitlist(outbox, settings, regions=None, today=None):
    """Try again to staff the cases waiting longest (in `regions`, if given)."""
    staffed = 0
    for case_id in assignments.waiting(regions, settings.waitlist_batch):
        try:
            doc = staff_case(case_id, outbox, settings, today)
        except Busy:
            continue
        if doc is not None and doc["status"] in (assignments.OFFERED, assignments.ACCEPTED):
            staffed += 1
    return staffed
