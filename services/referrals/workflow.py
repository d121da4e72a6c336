"""What the referrals service does with a request or an event: orchestration only.

The rules live in `intake`, `lifecycle`, `consents`, `contact`, `deadlines` and
`views`, the records in `cases`; every read and write goes through the `store` each
function is given (store.ReferralsStore, or memory_store's fake in unit tests). Every
change is one single-document write (an insert) that carries the events it causes in
its outbox, followed by a flush; the relay timer sends whatever a crash left behind.
"""
import json
import logging
import random
import re
import time
import uuid
from contextlib import contextmanager

from services.referrals import cases, consents, contact, deadlines, intake, lifecycle, support, views
from services.referrals import interventions, preparation, safety, voice
from services.referrals.cases import AlreadyStored, ContactAccess, utcnow
from shared.security import access
from shared.web import BadRequest, Conflict, Forbidden, NotFound

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
INTAKE_NAMESPACE = uuid.UUID("5b0f0c1e-8d3a-4c57-9a57-6f1f2d0c7a11")
# Attempts at making a case's next version before giving up (409 over HTTP, a retry for events).
CONDITIONAL_RETRIES = 30


def who(principal):
    """The person acting, as case histories and the access log name them (pseudonymously)."""
    return principal.who


# --- intake ---------------------------------------------------------------------

def submit_referral(store, body, principal, idempotency_key, outbox, vault):
    """(status, payload, replayed) for a referral; raise BadRequest or Conflict.

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
        raise BadRequest("the referral is not valid", fields=invalid.errors)
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
    view = views.detail(case, personal, record, session_notes=session_notes)
    view.update(views.casework(case, casework_notes(store, vault, case, principal)))   # with their notes
    return view


def list_cases(store, args, principal):
    try:
        query = views.CaseQuerySchema().load(args)
    except Exception as exc:  # a marshmallow ValidationError
        raise BadRequest("the query is not valid", fields=getattr(exc, "messages", {}))
    filters = {k: query[k] for k in ("status", "agency", "region", "measured_from") if k in query}
    one_of = {}
    for field, allowed in access.listing_filter(principal).items():
        # the caller's reach narrows whatever they asked for; asking beyond it finds nothing
        if field in filters:
            allowed = [filters.pop(field)] if filters[field] in allowed else []
        one_of[field] = allowed
    page = store.list_cases(filters, one_of, offset=query["offset"], limit=query["limit"])
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


def transition_case(store, case_id, body, principal, outbox):
    try:
        wanted = lifecycle.TransitionSchema().load(body)
    except Exception as exc:
        raise BadRequest("the transition is not valid", fields=getattr(exc, "messages", {}))
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
        return (*status_change(case, step, by), views.detail)

    try:
        return change_case(store, case_id, decide, by, outbox, principal)
    except KeptChanging:
        raise Conflict("the case kept changing while this transition was applied; retry")


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
    try:
        data = consents.ConsentSchema().load(body)
    except Exception as exc:
        raise BadRequest("the consent is not valid", fields=getattr(exc, "messages", {}))
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

    try:
        return change_case(store, case_id, decide, who(principal), outbox, principal)
    except KeptChanging:
        raise Conflict("the case kept changing while the consent was recorded; retry")


def record_support_referral(store, case_id, body, principal, outbox):
    """A harmed person was referred to a support service, or declined one: the Victims' Code
    support_referral clock is met once every harmed person still on the case has a record."""
    try:
        data = support.SupportReferralSchema().load(body)
    except Exception as exc:  # a marshmallow ValidationError
        raise BadRequest("the support referral is not valid", fields=getattr(exc, "messages", {}))
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

    try:
        return change_case(store, case_id, decide, by, outbox, principal)
    except KeptChanging:
        raise Conflict("the case kept changing while the support referral was recorded; retry")


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
        store.shred(party_id)   # the irreversible step first: from here the ciphertext is noise
        now = utcnow()
        if party["role"] == "referrer":
            state = {"referrer": {**case.referrer, "sealed": None, "erased_at": now}}
        else:
            state = {"participants": [{**p, "sealed": None, "erased_at": now} if p["party_id"] == party_id else p
                                      for p in case.participants]}
            state.update(cases.casework_erased(case, party_id))   # their notes and items, noise already
            if case.support_settled_at is None and support.settled(state["participants"], case.support_referrals):
                state["support_settled_at"] = now   # no harmed person is left to refer: the clock stops
        return state, [("participant.erased", {"case_id": case.case_id, "participant_id": party_id})], {
            "case_id": case.case_id, "participant_id": party_id, "erased_at": now.isoformat(),
            "already_erased": False}

    try:
        return change_case(store, case_id, decide, who(principal), outbox, principal)
    except KeptChanging:
        raise Conflict("the case kept changing while the erasure was applied; retry")


# --- contact details for other services -----------------------------------------

def get_contact(store, party_id, purpose, requester, vault, correlationid=None, session_id=None):
    """The details `purpose` needs of one person, or why not; every call is logged.
    (`session_id`: the session a `session_invitation` is about.)"""
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
    return emitted


# --- preparation, risk, the safety decision and the parties' voice --------------
# The rules are preparation.py's and voice.py's; each write below is one change of the
# case (change_case) carrying its events. Notes and an item's content are sealed under
# their owner's own key before they are stored, and each read of them is logged.

def _valid(schema, body, what):
    try:
        return schema.load(body)
    except Exception as exc:  # a marshmallow ValidationError
        raise BadRequest(f"the {what} is not valid", fields=getattr(exc, "messages", {}))


def _refuse(code, why, case=None):
    extra = {"status": case.status} if case is not None else {}
    return Conflict(why.get(code, code.replace("_", " ")), reason=code, **extra)


def _changed(store, case_id, decide, principal, outbox, what):
    try:
        return change_case(store, case_id, decide, who(principal), outbox, principal)
    except KeptChanging:
        raise Conflict(f"the case kept changing while the {what} was recorded; retry")


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
