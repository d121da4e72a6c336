"""What matching does with a referral: assess it, then find and book a facilitator.

Orchestration only; the rules live in `suitability` and `allocation`, the storage
in `facilitators` and `assessments`.
"""
import uuid
from dataclasses import asdict
from datetime import date

from pymongo.errors import DuplicateKeyError

from services.matching import facilitators, suitability
from services.matching.allocation import Requirement, rank
from services.matching.assessments import Assessment


def requirement_for(referral, outcome):
    languages = {p["language"] for p in referral["participants"] if p["role"] in ("harmed", "harmer")}
    return Requirement(
        level=outcome.required_level,
        region=referral["region"],
        languages=frozenset(languages),
        endorsements=frozenset(suitability.required_endorsements(referral)),
    )


def book_facilitator(case_id, need, today):
    """Reserve the best-ranked facilitator who still has room; None if nobody fits."""
    holder = facilitators.holder_of(case_id)
    if holder is not None:
        return holder.facilitator_id
    for candidate in rank(facilitators.candidates_in(need.region), need, today):
        if facilitators.reserve(candidate.facilitator_id, case_id):
            return candidate.facilitator_id
    return None


def handle_referral_received(event, outbox, today=None):
    """Assess the referral in `event` once, however often the event arrives."""
    done = Assessment.objects(trigger_event_id=event["id"]).first()
    if done is not None:
        outbox.flush(done)  # a crash may have left its events unsent
        return done
    referral = event["data"]
    case_id = referral["case_id"]
    outcome = suitability.assess(referral)
    assessment_id = str(uuid.uuid4())
    outcome_data = asdict(outcome)
    events = [outbox.event("case.assessed", case_id, {"case_id": case_id, "assessment_id": assessment_id, **outcome_data})]
    assignment = {}
    if outcome.decision == "suitable":
        facilitator_id = book_facilitator(case_id, requirement_for(referral, outcome), today or date.today())
        if facilitator_id:
            assignment = {"assignment_id": str(uuid.uuid4()), "facilitator_id": facilitator_id, "role": "lead"}
            events.append(outbox.event("facilitator.assigned", case_id, {
                "case_id": case_id, "assessment_id": assessment_id, **assignment,
            }))
        else:
            events.append(outbox.event("assignment.waitlisted", case_id, {
                "case_id": case_id, "assessment_id": assessment_id, "reason": "no_eligible_facilitator",
            }))
    assessment = Assessment(
        assessment_id=assessment_id,
        case_id=case_id,
        trigger_event_id=event["id"],
        outcome=outcome_data,
        assignment=assignment,
        outbox=events,
    )
    try:
        assessment.save(force_insert=True)
    except DuplicateKeyError:  # a concurrent delivery of the same event won the race
        return Assessment.objects(trigger_event_id=event["id"]).first()
    outbox.flush(assessment)
    return assessment
