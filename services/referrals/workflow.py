"""What the referrals service does with a request or an event: orchestration only.

The rules live in `intake`, `lifecycle`, `consents`, `contact`, `deadlines` and
`views`, the records in `cases`; every read and write goes through the `store` each
function is given (store.ReferralsStore, or memory_store's fake in unit tests). Every
change is one single-document write (an insert) that carries the events it causes in
its outbox, followed by a flush; the relay timer sends whatever a crash left behind.
"""
import copy
import json
import logging
import random
import re
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from marshmallow import ValidationError

from services.referrals import cases, consents, contact, deadlines, intake, lifecycle, support, views
from services.referrals import aftercare, agreement, interventions, preparation, retention, safety, surveys, voice
from services.referrals import residency
from services.referrals.cases import AlreadyStored, ContactAccess, utcnow
from shared import metrics
from shared.security import access
from shared.web import BadRequest, Conflict, Forbidden, Gone, NotFound

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
INTAKE_NAMESPACE = uuid.UUID("5b0f0c1e-8d3a-4c57-9a57-6f1f2d0c7a11")
# Attempts at making a case's next version before giving up (409 over HTTP, a retry for events).
CONDITIONAL_RETRIES = 30


def who(principal):
    """The person acting, as case histories and the access log name them (pseudonymously)."""
    return principal.who


# --- requests -------------------------------------------------------------------

def _valid(schema, body, what):
    """The request body `schema` loads; 400 naming every field at fault."""
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise BadRequest(f"the {what} is not valid", fields=exc.messages)


# --- intake ---------------------------------------------------------------------

def submit_referral(store, body, principal, idempotency_key, outbox, vault, *, served):
    """(status, payload, replayed) for a referral; raise BadRequest or Conflict.

    `served`: the referral regions this deployment serves (residency.served_regions); a
    referral for any other is a 400 naming `region`, before anything is stored (no case, no
    event, no fingerprint, no data key).

    With an Idempotency-Key, the case id is derived from a keyed hash of (agency, key), so
    the case insert itself is the claim: of any number of concurrent requests with one
    key, exactly one stores its case (the _id is unique) and the others answer with it,
    or 409 if their body differs. No separate claim, nothing to wait for or take over."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise BadRequest("the Idempotency-Key header is not valid", fields={
            "Idempotency-Key": ["Use 1 to 255 printable ASCII characters, no spaces."]})
    try:
        referral = intake.parse(body, principal.agency)
    except intake.InvalidReferral as invalid:
        errors = dict(invalid.errors)
        region = body.get("region") if isinstance(body, dict) else None
        if isinstance(region, str) and "region" not in errors:
            errors.update(residency.refusal(served, region) or {})
        raise BadRequest("the referral is not valid", fields=errors)
    refused = residency.refusal(served, referral.region)
    if refused:
        raise BadRequest("this deployment does not serve the referral's region", fields=refused)
    if not principal.covers(referral.region):
        raise Forbidden("your key does not cover this region", fields={
            "region": ["Not one of the regions your key covers."]})
    if idempotency_key is None:
        create_case(store, referral, outbox, vault)
        return 201, accepted(referral.case_id), False
    key_id, body_hash = intake_fingerprints(vault, principal.agency, idempotency_key, body)
    referral.case_id = str(uuid.uuid5(INTAKE_NAMESPACE, key_id))
    existing = store.intake_fingerprint(referral.case_id)
    if existing is None:
        if create_case(store, referral, outbox, vault, intake_fingerprint=body_hash):
            return 201, accepted(referral.case_id), False
        existing = store.intake_fingerprint(referral.case_id)
    if existing != body_hash:
        raise Conflict("this Idempotency-Key was already used with a different body")
    return 201, accepted(referral.case_id), True


def intake_fingerprints(vault, agency, idempotency_key, body):
    """Keyed hashes of (agency, key) and of the body: equal requests match, and neither
    the key nor the body (which is personal data) is stored."""
    return (vault.fingerprint("idempotency-key", f"{agency}\n{idempotency_key}"),
            vault.fingerprint("referral-body", json.dumps(body, sort_keys=True, separators=(",", ":"))))


def accepted(case_id):
    return {"case_id": case_id, "status": "RECEIVED"}


def create_case(store, referral, outbox, vault, intake_fingerprint=None):
    """Store the case and announce it; False if a case with its id already exists. The
    data keys of its people and of its own record are stored first, in one write."""
    clock = deadlines.victim_told_about_rj(referral.reported_on, referral.enhanced_rights)
    support_clock = deadlines.support_referral(referral.reported_on, referral.enhanced_rights)
    event = outbox.event("referral.received", referral.case_id, referral.received_event_data(),
                         correlationid=referral.case_id)
    case, keys = cases.open_case(referral, vault, [event], clock, intake_fingerprint, support_clock=support_clock)
    store.save_data_keys(keys)
    try:
        store.insert_case(case)
    except AlreadyStored:
        for key in keys:
            store.shred(key.owner_id)   # keys of a case that was never stored
        return False
    outbox.flush(store.cases_outbox, case.case_id, case.outbox)
    return True


# --- reading --------------------------------------------------------------------

def valid_case_id(case_id):
    if not intake.CASE_ID.match(case_id or ""):
        raise NotFound("no such case")
    return case_id


def case_for(store, case_id):
    """The case, for a route whose policy has already judged the caller's relation to it."""
    case = store.load_case(valid_case_id(case_id))
    if case is None:
        raise NotFound("no such case")
    return case


def case_relation(store, case_id):
    """What decides who may reach the case (None: no such case)."""
    if not intake.CASE_ID.match(case_id or ""):
        return None
    case = store.load_case(case_id)
    return case.relation if case is not None else None


def case_view(store, case_id, principal, vault):
    case = case_for(store, case_id)
    if not access.sees_personal_data(principal, case.relation):
        return views.detail(case)
    personal = {}
    for party in [dict(case.referrer, role="referrer")] + list(case.participants):
        data = cases.unseal(store, vault, party["party_id"], party.get("sealed"))
        personal[party["party_id"]] = data
        log_access(store, party["party_id"], case.case_id, "case_view", who(principal), data is not None,
                   "granted" if data is not None else "personal_data_erased", sorted(data or {}),
                   key_id=principal.key_id)
    record = cases.unseal(store, vault, case.sensitive["owner_id"], case.sensitive.get("sealed"))
    session_notes = {s["session_id"]: open_notes(store, vault, case, s) for s in case.sessions}
    view = views.detail(case, personal, record, session_notes=session_notes,
                        agreement_texts=agreement_texts(store, vault, case))
    view.update(views.casework(case, casework_notes(store, vault, case, principal)))   # with their notes
    return view


def list_cases(store, args, principal, *, served):
    query = _valid(views.CaseQuerySchema(), args, "query")
    refused = residency.refusal(served, query["region"]) if "region" in query else None
    if refused:
        raise BadRequest("this deployment does not serve that region", fields=refused)
    filters = {k: query[k] for k in ("status", "agency", "region", "measured_from") if k in query}
    one_of = {}
    for field, allowed in access.listing_filter(principal).items():
        # the caller's reach narrows whatever they asked for; asking beyond it finds nothing
        if field in filters:
            allowed = [filters.pop(field)] if filters[field] in allowed else []
        one_of[field] = allowed
    page = store.list_cases(filters, one_of, offset=query["offset"], limit=query["limit"],
                            due=views.due_window(query, utcnow()))
    items = [views.summary(case) for case in page.items]
    total = page.total
    following = query["offset"] + len(items)
    return {"items": items, "total": total, "limit": query["limit"], "offset": query["offset"],
            "next_offset": following if following < total else None}


def access_log(store, case_id, principal):
    case = case_for(store, case_id)
    return {"case_id": case.case_id, "entries": [
        {"party_id": a.party_id, "purpose": a.purpose, "requester": a.requester, "key_id": a.key_id,
         "granted": a.granted,
         "reason": a.reason, "fields_released": list(a.fields_released), "at": a.at.isoformat()}
        for a in store.access_log(case.case_id)
    ]}


def log_access(store, party_id, case_id, purpose, requester, granted, reason, fields, correlationid=None,
               key_id=None):
    store.log_access(ContactAccess(party_id=party_id, case_id=case_id, purpose=purpose, requester=requester,
                                   key_id=key_id, granted=granted, reason=reason, fields_released=list(fields),
                                   correlationid=correlationid))


# --- changes --------------------------------------------------------------------

class KeptChanging(Exception):
    pass


def change_case(store, case_id, decide, by, outbox, principal=None):
    """Load the case, let `decide(case)` return (state, events, result) or raise, and
    record that as the case's next version; if another writer made that version first,
    load again and decide again. Returns `result`. (A request's caller was judged by its
    route's policy; `principal` only makes an unknown case a 404.)"""
    for _ in range(CONDITIONAL_RETRIES):
        case = case_for(store, case_id) if principal else store.load_case(case_id)
        if case is None:
            raise LookupError(f"case {case_id} is not known to referrals")
        state, events, result = decide(case)
        if state is None:
            return result   # nothing to change
        change = store.record_change(case, cases.next_change(
            case, state, [outbox.event(t, case.case_id, d) for t, d in events], by))
        if change is not None:
            outbox.flush(store.changes_outbox, change.change_id, change.outbox)
            return result(case) if callable(result) else result
        time.sleep(random.uniform(0, 0.02))   # another writer won: let the crowd thin out
    raise KeptChanging(f"case {case_id} kept changing; try again")


def _changed(store, case_id, decide, principal, outbox, what):
    """`change_case` for a request: a case that keeps changing under it is a 409."""
    try:
        return change_case(store, case_id, decide, who(principal), outbox, principal)
    except KeptChanging:
        raise Conflict(f"the case kept changing while the {what} was recorded; retry")


def status_change(case, step, by):
    """The state and events of moving `case` by `step`."""
    now = utcnow()
    state = {"status": step.to_status, "held_from": step.held_from,
             "history": list(case.history) + [{"from": step.from_status, "to": step.to_status,
                                                "reason": step.reason, "at": now, "by": by}]}
    events = [("case.status_changed", step.event_data(case.case_id))]
    if step.closes:
        state["closure"] = {"reason": step.reason, "at": now}
        events.append(("case.closed", {"case_id": case.case_id, "from_status": step.from_status,
                                       "reason": step.reason}))
    return state, events


def transition_case(store, case_id, body, principal, outbox, vault=None, settings=None):
    """`vault` seals the survey tokens a closure may make; `settings` (aftercare.Aftercare)
    times the follow-up and the retention it may start."""
    wanted = _valid(lifecycle.TransitionSchema(), body, "transition")
    by = who(principal)

    def decide(case):
        try:
            step = lifecycle.transition(case.status, wanted["to"], wanted.get("reason"), case.held_from)
        except lifecycle.IllegalTransition as illegal:
            raise Conflict(str(illegal), status=case.status, allowed=illegal.allowed)
        except lifecycle.ReasonRequired as missing:
            raise BadRequest(str(missing), fields={"reason": [str(missing)]})
        if step.to_status == "INTERVENTION":
            refused = safety.communication_refused(case)   # the parties may not communicate yet
            if refused:
                raise Conflict(f"the intervention cannot start: {refused.replace('_', ' ')}", reason=refused,
                               status=case.status)
        state, events = status_change(case, step, by)
        if step.closes:
            closing_state, closing_events = closing_aftercare(store, vault, case, step.reason,
                                                              settings or aftercare.Aftercare())
            state.update(closing_state)
            events += closing_events
        return state, events, views.detail

    return _changed(store, case_id, decide, principal, outbox, "transition")


def advance_for_event(store, event, outbox):
    """Follow one of matching's events: move the case forward (nothing if it already has
    moved) and note who is offered or holds it."""
    by = f"event:{event['id']}"

    def decide(case):
        step = lifecycle.advance_for_event(case.status, event["type"], event["data"])
        state, events = status_change(case, step, by) if step is not None else ({}, [])
        staffing = access.follow_staffing(dict(case.staffing or {}), event["type"], event["data"])
        if staffing != (case.staffing or {}):
            state.update(staffing_state(staffing))
        if event["type"] == "case.assessed":
            assessed = assessment_state(event["data"])
            if assessed != (case.assessment or {}):
                state["assessment"] = assessed
        return (state, events, step) if state else (None, None, None)

    return change_case(store, event["data"]["case_id"], decide, by, outbox)


def assessment_state(data):
    """What the case keeps of matching's latest assessment: what may happen, and why not."""
    return {"assessment_id": data["assessment_id"], "decision": data["decision"], "risk_level": data["risk_level"],
            "process_types": list(data["process_types"]), "basis": data.get("basis", "referral"),
            "reasons": [r["code"] for r in data["reasons"]]}


def staffing_state(staffing):
    offered, held = access.holders(staffing)
    return {"staffing": staffing, "offered_to": sorted(offered), "held_by": sorted(held),
            "facilitators": sorted(offered | held)}


def note_victim_told(store, event, outbox):
    """A notification reached the harmed person: the Victims' Code clock is met."""
    data = event["data"]
    if data.get("recipient_role") != "harmed":
        return False

    def decide(case):
        if case.victim_told_at is not None:
            return None, None, False
        return {"victim_told_at": utcnow()}, [], True

    return change_case(store, data["case_id"], decide, f"event:{event['id']}", outbox)


def record_consent(store, case_id, body, principal, outbox):
    data = _valid(consents.ConsentSchema(), body, "consent")
    record, event_data = consents.record_for(data)
    record.update(by=who(principal))

    def decide(case):
        party = case.party(data["participant_id"])
        if party is None or party["role"] == "referrer":
            raise BadRequest("no such participant on this case",
                             fields={"participant_id": ["No such participant on this case."]})
        if not party.get("sealed"):
            raise Conflict("this participant's personal data has been erased; no consent can be recorded")
        if case.status == lifecycle.CLOSED and data["granted"]:
            raise Conflict("the case is closed: consent can be withdrawn, not granted")
        record["at"] = utcnow()
        state = {"consents": list(case.consents) + [record]}
        if party["role"] == "harmed" and case.victim_told_at is None:
            state["victim_told_at"] = record["at"]  # they could not consent without being told about RJ
        answer = {"case_id": case.case_id, **{k: record[k] for k in (
            "participant_id", "scope", "item", "with_role", "granted", "method")}, "at": record["at"].isoformat()}
        return state, [(consents.event_type(record), {"case_id": case.case_id, "participant_role": party["role"],
                                                      **event_data})], answer

    return _changed(store, case_id, decide, principal, outbox, "consent")


def record_support_referral(store, case_id, body, principal, outbox):
    """A harmed person was referred to a support service, or declined one: the Victims' Code
    support_referral clock is met once every harmed person still on the case has a record."""
    data = _valid(support.SupportReferralSchema(), body, "support referral")
    by = who(principal)

    def decide(case):
        party = case.party(data["participant_id"])
        if party is None or party["role"] != "harmed":
            raise BadRequest("no such harmed person on this case", fields={
                "participant_id": ["Not a harmed person on this case."]})
        if not party.get("sealed"):
            raise Conflict("this participant's personal data has been erased; nothing can be recorded for them")
        if case.status == lifecycle.CLOSED:
            raise Conflict("the case is closed")
        now = utcnow()
        record, event_data = support.record_for(data, by, now)
        state = {"support_referrals": list(case.support_referrals) + [record]}
        if case.support_settled_at is None and support.settled(case.participants, state["support_referrals"]):
            state["support_settled_at"] = now

        def answer(changed):
            return {"case_id": changed.case_id, **event_data, "at": now.isoformat(),
                    "support_referral": views.support_clock(changed)}

        return state, [("support.referral_recorded", {"case_id": case.case_id, **event_data})], answer

    return _changed(store, case_id, decide, principal, outbox, "support referral")


def shredded(store, case, party_id, now):
    """Crypto-shred one person of `case` (who still has their data): destroy their key, then
    drop their ciphertext: their personal data, and a participant's casework notes and items
    (cases.casework_erased); with no harmed person left to refer, the support_referral clock
    stops. The case's fields that change and the event. Used by the erasure endpoint and by
    retention (reduce_to_statistics)."""
    store.shred(party_id)   # the irreversible step first: from here the ciphertext is noise
    if party_id == case.referrer.get("party_id"):
        state = {"referrer": {**case.referrer, "sealed": None, "erased_at": now}}
    else:
        state = {"participants": [{**p, "sealed": None, "erased_at": now} if p["party_id"] == party_id else p
                                  for p in case.participants]}
        state.update(cases.casework_erased(case, party_id))   # their notes and items, noise already
        if case.support_settled_at is None and support.settled(state["participants"], case.support_referrals):
            state["support_settled_at"] = now   # no harmed person is left to refer: the clock stops
    return state, ("participant.erased", {"case_id": case.case_id, "participant_id": party_id})


def erase_participant(store, case_id, party_id, principal, outbox):
    """Crypto-shred one person: destroy their key, drop their ciphertext, keep the case whole."""
    def decide(case):
        party = case.party(party_id) if intake.PARTY_ID.match(party_id or "") else None
        if party is None:
            raise NotFound("no such participant on this case")
        if not party.get("sealed"):
            erased_at = party.get("erased_at")
            return None, None, {"case_id": case.case_id, "participant_id": party_id,
                                "erased_at": erased_at.isoformat() if erased_at else None, "already_erased": True}
        now = utcnow()
        state, event = shredded(store, case, party_id, now)
        return state, [event], {"case_id": case.case_id, "participant_id": party_id, "erased_at": now.isoformat(),
                                "already_erased": False}

    return _changed(store, case_id, decide, principal, outbox, "erasure")


# --- contact details for other services -----------------------------------------

def get_contact(store, party_id, purpose, requester, vault, correlationid=None, session_id=None,
                public_url=aftercare.PUBLIC_URL):
    """The details `purpose` needs of one person, or why not; every call is logged.
    (`session_id`: the session a `session_invitation` is about; for a survey invitation, the
    link of their open survey, served at `public_url`.)"""
    case = None
    if purpose not in contact.PURPOSES:
        decision = contact.refuse("unknown_purpose")
    else:
        if isinstance(party_id, str) and intake.PARTY_ID.match(party_id):
            case_id = store.case_of_party(party_id)
            if case_id is not None:
                case = store.load_case(case_id)   # with its latest consents and erasures
        if case is None:
            decision = contact.refuse("unknown_party")
        else:
            party = case.party(party_id)
            personal = cases.unseal(store, vault, party_id, party.get("sealed"))
            decision = contact.decide(party, personal, purpose, case.consents)
            if purpose == contact.SESSION_PURPOSE:
                decision = contact.for_session(decision, *interventions.invitation(case, party_id, session_id))
            if purpose == contact.SURVEY_INVITATION and decision.granted:
                decision = with_survey_link(store, vault, case, party_id, decision, public_url)
    log_access(store, str(party_id)[:100], case.case_id if case else None, str(purpose)[:100], str(requester)[:100],
               decision.granted, decision.reason, decision.fields, correlationid)
    return {"granted": decision.granted, "reason": decision.reason, "details": decision.details}


# --- Victims' Code clocks -------------------------------------------------------

def announce_deadlines(store, outbox, now=None, limit=200):
    """Emit case.deadline_due, then case.deadline_missed, once each per case and clock
    (victim_told_about_rj, then support_referral): the flag and the event are one change
    of the case, made only by whoever makes its next version, so a second tick (or a
    second instance of the service) finds nothing left to do. Returns (event type, case
    id, deadline) for each event emitted."""
    now = now or utcnow()
    emitted = []
    for kind, clock in cases.CLOCKS.items():
        for case_id in store.owed_clocks(kind, now, limit):
            def decide(case, kind=kind, clock=clock):
                if not cases.clock_running(case, kind, now):
                    return None, None, None
                return {clock.flag: True}, [(clock.event_type, cases.deadline_event_data(case, kind))], True

            if change_case(store, case_id, decide, "timer:deadlines", outbox):
                emitted.append((clock.event_type, case_id, clock.deadline))
                metrics.deadline_announced(clock.event_type, clock.deadline)
    return emitted


# --- preparation, risk, the safety decision and the parties' voice --------------
# The rules are preparation.py's and voice.py's; each write below is one change of the
# case (change_case) carrying its events. Notes and an item's content are sealed under
# their owner's own key before they are stored, and each read of them is logged.

def _refuse(code, why, case=None):
    extra = {"status": case.status} if case is not None else {}
    return Conflict(why.get(code, code.replace("_", " ")), reason=code, **extra)


def _working_participant(case, participant_id, parties_only=False):
    """The participant a body names, on a case whose preparation may be recorded; else 400 or 409."""
    party = case.party(participant_id)
    faults = preparation.participant_faults(party, parties_only)
    if faults:
        raise BadRequest("no such participant on this case", fields=faults)
    refused = preparation.work_refused(case) or ("personal_data_erased" if preparation.erased(party) else None)
    if refused:
        raise _refuse(refused, preparation.WHY, case)
    return party


def _sealed(store, vault, owner_id, data, field):
    """The body's personal `field`, sealed under its owner's key (None if absent); 409 if the key is gone."""
    if field not in data:
        return None
    sealed = cases.seal(store, vault, owner_id, {field: data[field]})
    if sealed is None:
        raise _refuse("personal_data_erased", preparation.WHY)
    return sealed


def _answer(case_id, record, **extra):
    return {"case_id": case_id, **views.record_view(record), **extra}


def record_contact(store, case_id, body, principal, outbox, vault):
    """A facilitator's contact with a participant; the first moves an ALLOCATED case to PREPARATION."""
    data = _valid(preparation.ContactSchema(), body, "contact")
    by = who(principal)

    def decide(case):
        party = _working_participant(case, data["participant_id"])
        record = preparation.contact_record(data, party, by, utcnow(),
                                            _sealed(store, vault, party["party_id"], data, "notes"))
        state = {"preparation_contacts": list(case.preparation_contacts) + [record]}
        events = [("preparation.contact_recorded", preparation.contact_event(case, record))]
        if preparation.starts_preparation(case):
            moved, moved_events = status_change(case, lifecycle.transition(case.status, "PREPARATION"), by)
            state.update(moved)
            events += moved_events
        if preparation.tells_victim(case, party, data["outcome"]):
            state["victim_told_at"] = record["at"]   # told about RJ in person
        return state, events, lambda changed: _answer(changed.case_id, record, status=changed.status)

    return _changed(store, case_id, decide, principal, outbox, "contact")


def record_risk_assessment(store, case_id, body, principal, outbox, vault):
    """One party's risk, factor by factor; a later one replaces it for decisions, both are kept."""
    data = _valid(preparation.RiskAssessmentSchema(), body, "risk assessment")
    by = who(principal)

    def decide(case):
        party = _working_participant(case, data["participant_id"], parties_only=True)
        record = preparation.assessment_record(data, party, by, utcnow(),
                                               _sealed(store, vault, party["party_id"], data, "notes"))
        return ({"risk_assessments": list(case.risk_assessments) + [record]},
                [("risk.assessed", preparation.assessment_event(case, record))], _answer(case.case_id, record))

    return _changed(store, case_id, decide, principal, outbox, "risk assessment")


def decide_safety(store, case_id, body, principal, outbox, vault):
    """The facilitator's safety decision: it replaces any earlier one (and its sign-off);
    `stop` closes the case for safety in the same change."""
    data = _valid(preparation.SafetyDecisionSchema(), body, "safety decision")
    by = who(principal)

    def decide(case):
        refused = preparation.decision_refused(case, data["decision"])
        if refused:
            raise _refuse(refused, preparation.WHY, case)
        record = preparation.decision_record(case, data, by, utcnow(),
                                             _sealed(store, vault, case.sensitive["owner_id"], data, "notes"))
        state = preparation.decision_state(case, record)
        events = [("case.safety_decided", preparation.decision_event(case, record))]
        if data["decision"] == safety.STOP:
            step = lifecycle.transition(case.status, lifecycle.CLOSED, "safety_stop", case.held_from)
            closed, closed_events = status_change(case, step, by)
            state.update(closed)
            events += closed_events
        return state, events, lambda changed: _answer(
            changed.case_id, record, status=changed.status, communication_refused=safety.communication_refused(changed))

    return _changed(store, case_id, decide, principal, outbox, "safety decision")


def decide_supervision(store, case_id, body, principal, outbox):
    """A supervisor's sign-off of the current safety decision: never by the person who made it."""
    data = _valid(preparation.SupervisionSchema(), body, "supervision")
    by = who(principal)

    def decide(case):
        refused = preparation.supervision_refused(case, by)
        if refused:
            raise _refuse(refused, preparation.WHY, case)
        record = preparation.supervision_record(case, data, by, utcnow())
        return (preparation.supervision_state(case, record),
                [("case.supervision_decided", preparation.supervision_event(case, record))],
                lambda changed: _answer(changed.case_id, record,
                                        communication_refused=safety.communication_refused(changed)))

    return _changed(store, case_id, decide, principal, outbox, "supervision")


def record_item(store, case_id, body, principal, outbox, vault):
    """A party's item (impact statement, question, answer, apology, letter, message), sealed under its author's key."""
    data = _valid(voice.ItemSchema(), body, "item")
    by = who(principal)

    def decide(case):
        author = case.party(data["author_id"])
        faults = voice.item_faults(case, author, data)
        if faults:
            raise BadRequest("the item is not valid", fields=faults)
        refused = preparation.work_refused(case) or ("personal_data_erased" if preparation.erased(author) else None)
        if refused:
            raise _refuse(refused, preparation.WHY, case)
        item = voice.item_record(data, author, by, utcnow(), _sealed(store, vault, author["party_id"], data, "content"))
        return ({"voice_items": list(case.voice_items) + [item]},
                [("voice.item_recorded", voice.item_event(case, item))], _answer(case.case_id, item))

    return _changed(store, case_id, decide, principal, outbox, "item")


def list_items(store, case_id, principal, vault):
    """The parties' items: with their content for the caseworkers who may see personal data
    (each author's read logged), without it for anyone else."""
    case = case_for(store, case_id)
    listed, read = views.casework(case)["voice_items"], {}
    if access.sees_personal_data(principal, case.relation):
        for item, metadata in zip(case.voice_items, listed):
            opened = cases.unseal(store, vault, item["author_id"], item.get("sealed"))
            metadata["content"] = opened["content"] if opened else None
            read.setdefault(item["author_id"], []).append(item["item_id"] if opened else None)
    for author, ids in read.items():
        released = sorted(i for i in ids if i)
        log_access(store, author, case.case_id, "voice_items", who(principal), bool(released),
                   "granted" if released else "personal_data_erased", released, key_id=principal.key_id)
    return {"case_id": case.case_id, "items": listed}


def release_item(store, case_id, item_id, body, principal, outbox):
    """The facilitator relays an item to the other party: only through the gate, with its author's consent."""
    data = _valid(voice.ReleaseSchema(), body, "release")
    by = who(principal)

    def decide(case):
        item = voice.find_item(case, item_id)
        if item is None:
            raise NotFound("no such item on this case")
        faults = voice.release_faults(item, data)
        if faults:
            raise BadRequest("the release is not valid", fields=faults)
        refused = voice.release_refused(case, item, data["to_role"], case.party(item["author_id"]))
        if refused:
            raise _refuse(refused, {**preparation.WHY, **voice.WHY}, case)
        release = voice.release_record(case, item, data, by, utcnow())
        return ({"voice_releases": list(case.voice_releases) + [release]},
                [("voice.item_released", voice.release_event(case, release))],
                _answer(case.case_id, release, consent=views.record_view(release["consent"])))

    return _changed(store, case_id, decide, principal, outbox, "release")


def casework_notes(store, vault, case, principal):
    """record id -> its notes (None where erased), for a caller who may see personal data;
    each owner whose notes are read is logged, as case_view logs each person."""
    notes, read = {}, {}
    for owner, record_id, sealed in views.sealed_notes(case):
        opened = cases.unseal(store, vault, owner, sealed)
        notes[record_id] = opened["notes"] if opened else None
        read.setdefault(owner, []).append(f"{record_id}.notes" if opened else None)
    for owner, fields in read.items():
        released = sorted(f for f in fields if f)
        log_access(store, owner, case.case_id, "case_view", who(principal), bool(released),
                   "granted" if released else "personal_data_erased", released, key_id=principal.key_id)
    return notes


# --- the intervention and its sessions (rules: interventions.py) ----------------

@contextmanager
def session_rules(what):
    """interventions' refusals as HTTP answers: Invalid a 400 naming the fields, Refused a
    409 with its reason code and what stands in the way."""
    try:
        yield
    except interventions.Invalid as invalid:
        raise BadRequest(f"{what} is not valid", fields=invalid.fields)
    except interventions.Refused as refused:
        raise Conflict(str(refused), reason=refused.reason, **refused.details)


def intervention_answer(case):
    return {"case_id": case.case_id, "status": case.status, "intervention": interventions.intervention_view(case)}


def choose_intervention(store, case_id, body, principal, outbox):
    """Choose (or change) the kind of process; a case in PREPARATION moves to INTERVENTION."""
    with session_rules("the intervention"):
        wanted = interventions.load(interventions.InterventionSchema, body)
    by = who(principal)

    def decide(case):
        with session_rules("the intervention"):
            if not interventions.choose(case, wanted["process_type"]):
                return None, None, intervention_answer(case)   # chosen already: nothing to do
        state, events = {}, []
        step = interventions.moves_to_intervention(case)
        if step is not None:
            state, events = status_change(case, step, by)
        state["intervention"] = interventions.intervention_record(wanted["process_type"], by, utcnow())
        events.append(("intervention.chosen", {"case_id": case.case_id, "process_type": wanted["process_type"]}))
        return state, events, intervention_answer

    return _changed(store, case_id, decide, principal, outbox, "intervention")


def seal_notes(store, vault, case, text):
    """A session's notes sealed under the case's own record key (they may name people)."""
    if text is None:
        return None
    sealed = cases.seal(store, vault, case.sensitive["owner_id"], {"notes": text})
    if sealed is None:
        raise Conflict("the case's record key is gone: notes cannot be kept")
    return sealed


def open_notes(store, vault, case, session):
    opened = cases.unseal(store, vault, case.sensitive["owner_id"], session.get("notes"))
    return opened["notes"] if opened else None


def session_answer(store, vault, case, session_id):
    """A session as its caller (who acts on the case, so may see its venue) is answered."""
    session = interventions.session_of(case, session_id)
    return {"case_id": case.case_id, **interventions.session_view(session, True, open_notes(store, vault, case, session))}


def _session(case, session_id):
    session = interventions.session_of(case, session_id)
    if session is None:
        raise NotFound("no such session")
    return session


def schedule_session(store, case_id, body, principal, outbox, vault):
    with session_rules("the session"):
        data = interventions.load(interventions.SessionSchema, body)
    by = who(principal)

    def decide(case):
        notes = seal_notes(store, vault, case, data.get("notes"))
        with session_rules("the session"):
            session = interventions.schedule(case, data, by, utcnow(), notes)
        return ({"sessions": interventions.replaced(case, session)},
                [("session.scheduled", interventions.event_data(case, session))],
                lambda changed: session_answer(store, vault, changed, session["session_id"]))

    return _changed(store, case_id, decide, principal, outbox, "session")


def change_session(store, case_id, session_id, body, principal, outbox, vault):
    """Move a session, or change its venue, attendees or notes; those attending (and those
    taken off it) are told of anything but the notes."""
    with session_rules("the change"):
        data = interventions.load(interventions.SessionChangeSchema, body)

    def decide(case):
        session = _session(case, session_id)
        notes = seal_notes(store, vault, case, data.get("notes"))
        with session_rules("the change"):
            changed, told, removed = interventions.change(case, session, data, utcnow(), notes)
        if changed is None:
            return None, None, session_answer(store, vault, case, session_id)
        events = [("session.changed", interventions.event_data(case, changed, removed_attendee_ids=removed))] \
            if told else []
        return ({"sessions": interventions.replaced(case, changed)}, events,
                lambda after: session_answer(store, vault, after, session_id))

    return _changed(store, case_id, decide, principal, outbox, "change of the session")


def cancel_session(store, case_id, session_id, body, principal, outbox, vault):
    with session_rules("the cancellation"):
        data = interventions.load(interventions.CancelSchema, body)
    by = who(principal)

    def decide(case):
        with session_rules("the cancellation"):
            cancelled = interventions.cancel(_session(case, session_id), data["reason"], by, utcnow())
        return ({"sessions": interventions.replaced(case, cancelled)},
                [("session.cancelled", interventions.event_data(case, cancelled, reason=data["reason"]))],
                lambda after: session_answer(store, vault, after, session_id))

    return _changed(store, case_id, decide, principal, outbox, "cancellation")


def record_session_held(store, case_id, session_id, body, principal, outbox, vault):
    with session_rules("the record"):
        data = interventions.load(interventions.HeldSchema, body)
    by = who(principal)

    def decide(case):
        with session_rules("the record"):
            done = interventions.held(_session(case, session_id), data["attended"], by, utcnow())
        return ({"sessions": interventions.replaced(case, done)},
                [("session.held", interventions.event_data(case, done, attended_ids=list(data["attended"])))],
                lambda after: session_answer(store, vault, after, session_id))

    return _changed(store, case_id, decide, principal, outbox, "attendance")


# --- after the intervention: the outcome agreement, surveys, retention ---------------
# (rules in agreement.py, surveys.py, retention.py and aftercare.py; each write is one
# change of the case through change_case, so the timers act once per event even with
# several instances, and a timer racing a request settles an agreement once)

AGREEMENT_MONITORING, FOLLOW_UP = "AGREEMENT_MONITORING", "FOLLOW_UP"
AGREEMENT_TIMER, FOLLOW_UP_TIMER, RETENTION_TIMER = "timer:agreements", "timer:follow_ups", "timer:retention"


def agreement_answer(case):
    """What the agreement endpoints answer: the case's status and its agreement, without
    the descriptions (the case view gives those to whoever may see them)."""
    return {"case_id": case.case_id, "status": case.status, "agreement": agreement.view(case.agreement)}


def agreement_texts(store, vault, case):
    """item id -> the description and note of each agreed item, None once its owner is erased."""
    texts = {}
    for entry in (case.agreement or {}).get("items", []):
        description = cases.unseal(store, vault, entry["owner_id"], entry.get("sealed"))
        note = cases.unseal(store, vault, entry["owner_id"], entry.get("note_sealed"))
        texts[entry["item_id"]] = {"description": (description or {}).get("description"),
                                   "note": (note or {}).get("note")}
    return texts


def concluded(case, updated, events, now, by):
    """The state (and events) once an item has changed: when that settled the last one, the
    agreement's outcome is recorded, here and only here, and the case moves to FOLLOW_UP."""
    state = {"agreement": updated}
    result = agreement.outcome(updated)
    if result is not None:
        state["agreement"] = agreement.conclude(updated, result, now, "monitoring")
        events.append(("case.outcome_recorded", {"case_id": case.case_id, "outcome": result}))
        moved, moved_events = status_change(case, lifecycle.transition(case.status, FOLLOW_UP), by)
        state.update(moved)
        events += moved_events
    return state, events


def record_agreement(store, case_id, body, principal, outbox, vault, now=None):
    """Record the outcome agreement of a case in INTERVENTION, each description sealed under
    its owner's key; the case moves to AGREEMENT_MONITORING."""
    try:
        data, faults = agreement.AgreementSchema().load(body), {}
    except ValidationError as invalid:
        data, faults = None, invalid.messages
        loaded = invalid.valid_data if isinstance(invalid.valid_data, dict) else {}
    now = now or utcnow()
    faults = agreement.merged_faults(faults, agreement.date_faults(loaded if data is None else data,
                                                                   deadlines.today_in_london(now)))
    if faults:
        raise BadRequest("the agreement is not valid", fields=faults)
    by = who(principal)

    def decide(case):
        if case.agreement:
            raise Conflict("this case already has an outcome agreement", status=case.status)
        if case.status != "INTERVENTION":
            raise Conflict("an outcome agreement is recorded for a case in INTERVENTION", status=case.status)
        faults = agreement.owner_faults(case, data["items"])
        if faults:
            raise BadRequest("the agreement is not valid", fields=faults)
        sealed = {index: cases.seal(store, vault, item["owner_id"], {"description": item["description"]})
                  for index, item in enumerate(data["items"])}
        erased = sorted({data["items"][i]["owner_id"] for i, text in sealed.items() if text is None})
        if erased:
            raise Conflict("an item's owner has had their personal data erased", erased_owners=erased)
        recorded, event_data = agreement.new_agreement(case, data, sealed, utcnow(), by)
        state, events = status_change(case, lifecycle.transition(case.status, AGREEMENT_MONITORING), by)
        state["agreement"] = recorded
        return state, [("agreement.recorded", event_data)] + events, agreement_answer

    return _changed(store, case_id, decide, principal, outbox, "agreement")


def update_agreement_item(store, case_id, item_id, body, principal, outbox, vault):
    """Settle one item of the agreement being monitored: completed, missed or waived."""
    if not agreement.ITEM_ID.match(item_id or ""):
        raise NotFound("no such item on this case's agreement")
    data = _valid(agreement.ItemUpdateSchema(), body, "item update")
    by = who(principal)

    def decide(case):
        entry = agreement.item(case.agreement, item_id)
        if entry is None:
            raise NotFound("no such item on this case's agreement")
        if not agreement.is_open(case.agreement) or case.status != AGREEMENT_MONITORING:
            raise Conflict("the agreement is no longer being monitored", status=case.status,
                           agreement_status=case.agreement.get("status"))
        if entry["status"] != agreement.OPEN:
            raise Conflict(f"this item is already {entry['status']}", item_status=entry["status"])
        note = None
        if "note" in data:
            note = cases.seal(store, vault, entry["owner_id"], {"note": data["note"]})
            if note is None:
                raise Conflict("the item's owner has had their personal data erased: no note can be kept")
        now = utcnow()
        updated, event = agreement.settle(case.case_id, case.agreement, item_id, data["status"], now, by, note)
        state, events = concluded(case, updated, [event], now, by)
        return state, events, agreement_answer

    return _changed(store, case_id, decide, principal, outbox, "item")


def monitor_agreements(store, outbox, now=None, settings=None, limit=200):
    """The agreement timer: remind each open item's owner `reminder_days` before its due
    date, and record it missed once its due date has passed: each once (the reminder's
    mark or the item's status and the event are one change of the case, made only by
    whoever makes its next version). Returns [(event type, item id)]."""
    settings = settings or aftercare.Aftercare()
    now = now or utcnow()
    today = deadlines.today_in_london(now)
    horizon = today + timedelta(days=settings.reminder_days)
    candidates = dict.fromkeys(store.agreement_items_overdue(today, limit)
                               + store.agreement_reminders_owed(today, horizon, limit))
    emitted = []
    for case_id in candidates:
        def decide(case):
            actions = agreement.due_actions(case.agreement, today, settings.reminder_days)
            if case.status != AGREEMENT_MONITORING or not actions:
                return None, None, []
            updated, events = case.agreement, []
            for action, entry in actions:
                if action == "miss":
                    updated, event = agreement.settle(case.case_id, updated, entry["item_id"], agreement.MISSED,
                                                      now, AGREEMENT_TIMER, detected="due_date_passed")
                else:
                    updated = agreement.remind(updated, entry["item_id"], now)
                    event = ("agreement.item_due", agreement.item_event_data(case.case_id, updated, entry,
                                                                            owner_id=entry["owner_id"]))
                events.append(event)
            done = [(t, d["item_id"]) for t, d in events]
            state, events = concluded(case, updated, events, now, AGREEMENT_TIMER)
            return state, events, done

        emitted += change_case(store, case_id, decide, AGREEMENT_TIMER, outbox)
    return emitted


def ask_for_surveys(store, vault, case, stage, now, settings):
    """A new survey for each party still taking part, its token sealed under their own key."""
    asked = []
    for party in surveys.recipients(case):
        if vault is None:
            raise RuntimeError("surveys need the vault, to seal their tokens")
        token = surveys.new_token()
        sealed = cases.seal(store, vault, party["party_id"], {"token": token})
        if sealed is not None:
            asked.append(surveys.new_survey(party, stage, vault.fingerprint(surveys.TOKEN_LABEL, token), sealed,
                                            now, settings.survey_valid_days))
    return asked


def _survey_events(case, asked):
    return [("survey.requested", surveys.requested_event_data(case.case_id, s)) for s in asked]


def closing_aftercare(store, vault, case, reason, settings):
    """What closing `case` sets off beside its new status (aftercare.at_closure), with the
    closure surveys made."""
    now = utcnow()
    state, events, ask = aftercare.at_closure(case, reason, now, settings)
    if ask:
        asked = ask_for_surveys(store, vault, case, surveys.CLOSURE, now, settings)
        if asked:
            state["surveys"] = list(case.surveys) + asked
            events += _survey_events(case, asked)
    return state, events


def request_follow_up_surveys(store, outbox, vault, now=None, settings=None, limit=200):
    """The follow-up timer: the follow-up survey of each case whose day has come, once."""
    settings = settings or aftercare.Aftercare()
    now = now or utcnow()
    today = deadlines.today_in_london(now)
    done = []
    for case_id in store.follow_ups_owed(today, limit):
        def decide(case):
            if not surveys.follow_up_owed(case.follow_up, today):
                return None, None, None
            asked = ask_for_surveys(store, vault, case, surveys.FOLLOW_UP, now, settings)
            state = {"follow_up": {**case.follow_up, "requested_at": now, "asked": len(asked)}}
            if asked:
                state["surveys"] = list(case.surveys) + asked
            return state, _survey_events(case, asked), case_id

        if change_case(store, case_id, decide, FOLLOW_UP_TIMER, outbox):
            done.append(case_id)
    return done


def reduce_to_statistics(store, outbox, now=None, limit=200):
    """The retention timer: once a declined or unreachable victim's retention period is
    over, their data and their supporters' is crypto-shredded as the erasure endpoint does
    it (`shredded`: their personal data, casework notes and items), and their records keep
    only the statistical attributes."""
    now = now or utcnow()
    today = deadlines.today_in_london(now)
    done = []
    for case_id in store.retention_owed(today, limit):
        def decide(case):
            if not retention.owed(case.retention, today):
                return None, None, None
            working, state, events, targets = copy.copy(case), {}, [], retention.targets(case)
            for party_id in targets:
                if working.party(party_id).get("sealed"):
                    erased, event = shredded(store, working, party_id, now)
                    for name, value in erased.items():   # each erasure sees the ones before it
                        setattr(working, name, value)
                    state.update(erased)
                    events.append(event)
            participants = []
            for party in working.participants:
                if party["party_id"] in targets:
                    party, kept = retention.reduced(party)
                    events.append(("participant.reduced_to_statistics", {
                        "case_id": case.case_id, "participant_id": party["party_id"], "reason": "retention",
                        "retained": kept}))
                participants.append(party)
            state.update(participants=participants,
                         retention={**case.retention, "reduced_at": now, "participants": targets})
            return state, events, case_id

        if change_case(store, case_id, decide, RETENTION_TIMER, outbox):
            done.append(case_id)
    return done


def run_aftercare(store, outbox, vault, now=None, settings=None):
    """One tick of the aftercare timer: agreements, follow-up surveys, retention; one
    failing does not stop the others (each is retried on the next tick)."""
    results = {}
    for name, step in (("agreements", lambda: monitor_agreements(store, outbox, now, settings)),
                       ("follow_ups", lambda: request_follow_up_surveys(store, outbox, vault, now, settings)),
                       ("retention", lambda: reduce_to_statistics(store, outbox, now))):
        try:
            results[name] = step()
        except Exception as exc:
            log.warning("aftercare %s not finished this tick: %s", name, type(exc).__name__)
            results[name] = None
    return results


# --- surveys, answered by the people asked (the token is their credential) -----------

def with_survey_link(store, vault, case, party_id, decision, public_url):
    """A granted survey_invitation decision with the link of the person's open survey, or
    a refusal when they have none (answered, expired) or its token cannot be read."""
    survey = surveys.open_survey_for(case.surveys, party_id, utcnow())
    token = cases.unseal(store, vault, party_id, survey.get("sealed_token")) if survey else None
    if not token:
        return contact.refuse("no_open_survey")
    return contact.Decision(True, decision.reason, {**decision.details,
                                                    "survey_link": surveys.link(public_url, token["token"])})


def _survey(store, vault, token):
    """(case, survey, key) of a token; 404 for a token that names no survey."""
    if not isinstance(token, str) or not surveys.TOKEN.match(token):
        raise NotFound("no such survey")
    key = vault.fingerprint(surveys.TOKEN_LABEL, token)
    case_id = store.case_of_survey(key)
    case = store.load_case(case_id) if case_id else None
    survey = surveys.by_key(case.surveys, key) if case else None
    if survey is None:
        raise NotFound("no such survey")
    return case, survey, key


def _open_for_answers(case, survey, now):
    """409 once answered; 410 once expired, or once the person has been erased."""
    state = surveys.state(survey, now)
    if state == "answered":
        raise Conflict("this survey has been answered already")
    party = case.party(survey["participant_id"]) or {}
    if state == "expired" or not party.get("sealed"):
        raise Gone("this survey has closed")


def survey_form(store, token, vault, now=None):
    case, survey, _ = _survey(store, vault, token)
    _open_for_answers(case, survey, now or utcnow())
    return surveys.form(survey)


def answer_survey(store, token, body, outbox, vault, now=None):
    """Keep one answer to a survey: the scores as they are, the comments sealed under the
    person's own key; survey.answered carries the scores, never the comments."""
    case, survey, key = _survey(store, vault, token)
    _open_for_answers(case, survey, now or utcnow())
    data = _valid(surveys.AnswerSchema(), body, "answer")
    by = f"survey:{survey['survey_id']}"

    def decide(case):
        current = surveys.by_key(case.surveys, key)
        at = now or utcnow()
        _open_for_answers(case, current, at)
        sealed = None
        if data.get("comments"):
            sealed = cases.seal(store, vault, current["participant_id"], {"comments": data["comments"]})
            if sealed is None:
                raise Gone("this survey has closed")
        answered = surveys.answered(current, {k: data[k] for k in surveys.SCORES}, sealed, at)
        state = {"surveys": [answered if s["survey_id"] == current["survey_id"] else s for s in case.surveys]}
        return state, [("survey.answered", surveys.answered_event_data(case.case_id, answered))], {
            "survey_id": answered["survey_id"], "stage": answered["stage"], "answered_at": at.isoformat()}

    try:
        return change_case(store, case.case_id, decide, by, outbox)
    except KeptChanging:
        raise Conflict("the survey kept changing while it was answered; retry")
