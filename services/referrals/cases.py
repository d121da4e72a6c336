"""Cases, their changes, sealed personal data and the access log: the domain's records.

A case holds the case, the participants' pseudonymous ids and attributes, their
personal data sealed under each person's own key, and (when it is first saved) the
referral.received event in its outbox.

Every later change is a CaseChange, version by version: the change holds both the new
values of the fields it changes and the events it causes, so the change and its events
become durable in one single-document write; the case is then brought up to date from
it. Readers roll a case forward over any change it has not caught up with. How that is
stored (and why it is made by a unique insert, not a conditional update) is the store's
business: services/referrals/store.py.

Plain dataclasses, no I/O: the store returns and accepts these, and so does its
in-memory fake (memory_store.py).
"""
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone

from services.referrals import deadlines, due_dates, lifecycle
from shared.security import access


def utcnow():
    return datetime.now(timezone.utc)


class AlreadyStored(Exception):
    """A record with this identity is stored already (a case id, a change's version):
    the unique claim was someone else's."""


@dataclass
class DataKey:
    """A person's data key, wrapped by the master key. Deleting it shreds their data."""
    owner_id: str
    wrapped: bytes
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class Case:
    case_id: str
    status: str
    agency: str
    region: str
    attributes: dict
    referrer: dict                                        # party_id, attributes, sealed
    participants: list = field(default_factory=list)      # party_id, role, attributes, contact_safe, sealed, erased_at
    sensitive: dict = field(default_factory=dict)         # owner_id, sealed: crime reference and dates
    held_from: str = None                                 # the state to resume after ON_HOLD
    history: list = field(default_factory=list)           # from, to, reason, at, by
    closure: dict = field(default_factory=dict)           # reason, at
    consents: list = field(default_factory=list)          # appended only; the latest per key is in force
    # what the clocks are measured from: crime_reported, or referral_received when the referral
    # did not give the day the crime was reported (not_recorded: stored before this was kept)
    measured_from: str = None
    # the Victims' Code clock: when the victim must have been told about RJ
    deadline: dict = field(default_factory=dict)          # deadline, last_day, enhanced_rights
    deadline_notice_at: datetime = None
    deadline_due_at: datetime = None
    deadline_due_sent: bool = False
    deadline_missed_sent: bool = False
    victim_told_at: datetime = None
    # the Victims' Code clock of the referral to support services (support.py): when every
    # harmed person must have been referred to a support service, or their refusal recorded
    support_deadline: dict = field(default_factory=dict)  # deadline, last_day, enhanced_rights (backfilled)
    support_notice_at: datetime = None
    support_due_at: datetime = None
    support_due_sent: bool = False
    support_missed_sent: bool = False
    support_settled_at: datetime = None                   # nothing left to wait for: met, or stopped
    support_referrals: list = field(default_factory=list)  # appended only: participant_id, outcome, service, by, at
    # who holds the case, followed from matching's events (never asked on a read):
    # assignment id -> {facilitator_id, state: offered | accepted | ended}
    staffing: dict = field(default_factory=dict)
    offered_to: list = field(default_factory=list)        # derived from staffing: an open offer
    held_by: list = field(default_factory=list)           # derived from staffing: an accepted assignment
    facilitators: list = field(default_factory=list)      # offered_to and held_by: what a facilitator's listing reads
    # matching's latest case.assessed: decision, risk_level, process_types, basis (codes only)
    assessment: dict = field(default_factory=dict)
    # the facilitator's safety decision and its supervision (services/referrals/safety.py)
    safety: dict = field(default_factory=dict)
    supervision: dict = field(default_factory=dict)
    # --- preparation, risk, the safety decision and the parties' voice (preparation.py,
    # voice.py): appended only; notes and content sealed under their owner's own key
    preparation_contacts: list = field(default_factory=list)
    risk_assessments: list = field(default_factory=list)
    safety_decisions: list = field(default_factory=list)  # every decision; `safety` is the latest
    supervisions: list = field(default_factory=list)      # every sign-off; `supervision` the current one's
    voice_items: list = field(default_factory=list)
    voice_releases: list = field(default_factory=list)
    # the intervention chosen, and its sessions (services/referrals/interventions.py); a
    # session's venue name and address are kept here only, its notes sealed
    intervention: dict = field(default_factory=dict)      # process_type, chosen_at, by
    sessions: list = field(default_factory=list)          # session_id, revision, status, starts_at, venue, attendee_ids...
    # after the intervention: the outcome agreement and its monitoring (agreement.py), the
    # satisfaction surveys and the follow-up's (surveys.py), and the retention of a
    # declined or unreachable victim's record (retention.py)
    agreement: dict = field(default_factory=dict)
    surveys: list = field(default_factory=list)
    follow_up: dict = field(default_factory=dict)
    retention: dict = field(default_factory=dict)
    version: int = 0                                      # of the last CaseChange applied
    # a keyed hash of the body, when the case was opened with an Idempotency-Key (never the body)
    intake_fingerprint: str = None
    outbox: list = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def relation(self):
        return access.CaseRelation(agency=self.agency, region=self.region, offered_to=frozenset(self.offered_to),
                                   held_by=frozenset(self.held_by))

    @property
    def next_due(self):
        """Its earliest open deadline (due_dates.NextDue), or None."""
        return due_dates.next_due(self)

    @property
    def party_ids(self):
        """Everyone on the case: the referrer, then the participants."""
        return [self.referrer["party_id"]] + [p["party_id"] for p in self.participants]

    def party(self, party_id):
        if self.referrer.get("party_id") == party_id:
            return dict(self.referrer, role="referrer")
        return next((p for p in self.participants if p["party_id"] == party_id), None)

    def apply(self, state, version):
        """This case after the change `state` that made `version`."""
        for name, value in state.items():
            if name in CASE_FIELDS:
                setattr(self, name, value)
        self.version = version


CASE_FIELDS = frozenset(f.name for f in fields(Case))


@dataclass
class CaseSummary:
    """What a listing shows of a case: nothing in it identifies or reaches a person."""
    case_id: str
    status: str
    agency: str
    region: str
    attributes: dict
    held_from: str = None
    measured_from: str = None
    created_at: datetime = None
    updated_at: datetime = None
    # its earliest open deadline, as the store keeps it (due_dates.stored_fields)
    next_due_at: datetime = None
    next_due_kind: str = None

    @property
    def next_due(self):
        return due_dates.NextDue(self.next_due_at, self.next_due_kind) if self.next_due_at else None


SUMMARY_FIELDS = tuple(f.name for f in fields(CaseSummary))


@dataclass
class CaseChange:
    """One change to one case: the fields it sets, and the events it causes (its outbox)."""
    change_id: str          # change_key(case_id, version): unique per version
    case_id: str
    version: int
    state: dict
    by: str = None
    at: datetime = field(default_factory=utcnow)
    outbox: list = field(default_factory=list)


def change_key(case_id, version):
    return f"{case_id}:{version:09d}"


def next_change(case, state, events, by):
    """The change that makes the next version of `case`: `state` (stamped) and `events`."""
    version = (case.version or 0) + 1
    return CaseChange(change_id=change_key(case.case_id, version), case_id=case.case_id, version=version,
                      state={**state, "updated_at": utcnow()}, by=by, outbox=list(events))


@dataclass
class ContactAccess:
    """Every request for a person's personal data, granted or refused: who, what, when, why."""
    party_id: str
    case_id: str
    purpose: str
    requester: str                # who: a service, or a person as role:subject
    granted: bool
    reason: str
    fields_released: list = field(default_factory=list)
    key_id: str = None            # the API key a person used
    correlationid: str = None
    at: datetime = field(default_factory=utcnow)


@dataclass
class CasePage:
    items: list     # CaseSummary, newest first
    total: int


def open_case(referral, vault, events, clock, intake_fingerprint=None, support_clock=None):
    """A new, unsaved Case for `referral` with `events` in its outbox, and the DataKeys
    of its people and of its own record (to be stored before the case)."""
    keys = []

    def seal(owner_id, payload):
        key, wrapped = vault.new_data_key(owner_id)
        keys.append(DataKey(owner_id=owner_id, wrapped=wrapped))
        return vault.seal(key, owner_id, payload)

    # unique per attempt, so two attempts at one case id never share (or shred) a key
    sensitive_owner = f"{referral.case_id}-record-{uuid.uuid4().hex[:12]}"
    case = Case(
        case_id=referral.case_id,
        status="RECEIVED",
        agency=referral.agency,
        region=referral.region,
        attributes=referral.attributes,
        referrer={"party_id": referral.referrer.party_id, "attributes": referral.referrer.attributes,
                  "sealed": seal(referral.referrer.party_id, referral.referrer.personal)},
        participants=[
            {
                "party_id": p.party_id,
                "role": p.role,
                "attributes": p.attributes,
                "contact_safe": p.contact_safe,
                "sealed": seal(p.party_id, p.personal),
            }
            for p in referral.participants
        ],
        sensitive={"owner_id": sensitive_owner, "sealed": seal(sensitive_owner, referral.sensitive)},
        measured_from=referral.measured_from,
        deadline={"deadline": clock.deadline, "last_day": clock.last_day.isoformat(),
                  "enhanced_rights": clock.enhanced_rights},
        deadline_notice_at=clock.notice_at,
        deadline_due_at=clock.due_at,
        **(support_clock_fields(support_clock) if support_clock else {}),
        intake_fingerprint=intake_fingerprint,
        outbox=list(events),
    )
    return case, keys


def support_clock_fields(clock, **spec):
    """A case's fields for its support_referral clock (`spec`: more to say of it)."""
    return {"support_deadline": {"deadline": clock.deadline, "last_day": clock.last_day.isoformat(),
                                 "enhanced_rights": clock.enhanced_rights, **spec},
            "support_notice_at": clock.notice_at, "support_due_at": clock.due_at}


def unseal(store, vault, owner_id, sealed):
    """A person's personal data, or None once their key has been destroyed."""
    if not sealed:
        return None
    wrapped = store.data_key(owner_id)
    if wrapped is None:
        return None
    return vault.open(vault.unwrap(owner_id, wrapped), owner_id, sealed)


@dataclass(frozen=True)
class ClockKind:
    """One event of one Victims' Code clock, as a case keeps it: each name is a case field."""
    deadline: str       # which clock (deadlines.DEADLINE, deadlines.SUPPORT_DEADLINE)
    event_type: str
    at: str             # when the event falls
    flag: str           # that it was sent
    met: str            # set once the clock owes nothing more (met, or nothing left to meet)
    due: str            # when the clock is missed: the event's due_at
    spec: str           # the clock's description: deadline, last_day, enhanced_rights


# The clocks a store keeps for the timer, kind -> ClockKind; each kind has its day bucket
# in the store (store.DAY_FIELDS).
CLOCKS = {
    "due": ClockKind(deadlines.DEADLINE, "case.deadline_due", "deadline_notice_at", "deadline_due_sent",
                     "victim_told_at", "deadline_due_at", "deadline"),
    "missed": ClockKind(deadlines.DEADLINE, "case.deadline_missed", "deadline_due_at", "deadline_missed_sent",
                        "victim_told_at", "deadline_due_at", "deadline"),
    "support_due": ClockKind(deadlines.SUPPORT_DEADLINE, "case.deadline_due", "support_notice_at",
                             "support_due_sent", "support_settled_at", "support_due_at", "support_deadline"),
    "support_missed": ClockKind(deadlines.SUPPORT_DEADLINE, "case.deadline_missed", "support_due_at",
                                "support_missed_sent", "support_settled_at", "support_due_at", "support_deadline"),
}


def clock_owed(at, sent, met_at, status, now):
    """Whether a clock that falls at `at` has come and its event is still owed."""
    return at is not None and at <= now and not sent and met_at is None and status != lifecycle.CLOSED


def clock_running(case, kind, now):
    """Whether the clock `kind` of `case` has come and its event is still owed."""
    clock = CLOCKS[kind]
    return clock_owed(getattr(case, clock.at), getattr(case, clock.flag), getattr(case, clock.met), case.status, now)


def deadline_event_data(case, kind):
    """The data of the case.deadline_due / case.deadline_missed event of clock `kind`."""
    clock = CLOCKS[kind]
    spec = getattr(case, clock.spec) or {}
    return {"case_id": case.case_id, "deadline": clock.deadline, "due_at": getattr(case, clock.due).isoformat(),
            "enhanced_rights": bool(spec.get("enhanced_rights")), "measured_from": case.measured_from}


# --- preparation, risk, the safety decision and the parties' voice -----------------

def seal(store, vault, owner_id, payload):
    """`payload` sealed under `owner_id`'s own data key; None once that key is destroyed."""
    wrapped = store.data_key(owner_id)
    if wrapped is None:
        return None
    return vault.seal(vault.unwrap(owner_id, wrapped), owner_id, payload)


# the casework records holding a person's sealed content, and the field naming that person
CASEWORK_OWNED = {"preparation_contacts": "participant_id", "risk_assessments": "participant_id",
                  "voice_items": "author_id"}


def casework_erased(case, party_id):
    """The casework fields of `case` with `party_id`'s ciphertext dropped (their key is gone,
    so it was noise already), for the change that erases them."""
    state = {}
    for name, owner in CASEWORK_OWNED.items():
        records = getattr(case, name)
        if any(r[owner] == party_id and r.get("sealed") for r in records):
            state[name] = [{**r, "sealed": None} if r[owner] == party_id else r for r in records]
    return state
