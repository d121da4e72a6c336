"""Whether the parties of a case may communicate yet, and how: the one gate every
intervention, session and relayed item passes. Pure rules over the case.

Restorative justice happens only when a facilitator judges it safe. So before any
communication between the parties:
- the facilitator records a safety decision (`case.safety`), after assessing the risk
  with each party: `direct` (they may meet), `indirect_only` (shuttle, letters: the
  facilitator carries every word) or `stop` (the case closes for safety);
- in sexual-offence and domestic-abuse cases a supervisor signs that decision off
  (`case.supervision`), and it binds only once they approve it.

`case.safety`:      {} until decided; then {"decision", "reasons", "by", "at"}
`case.supervision`: {} until asked for; then {"decision": "approved" | "refused", "by", "at", ...}
"""
from shared import safeguarding

DIRECT, INDIRECT_ONLY, STOP = "direct", "indirect_only", "stop"
SAFETY_DECISIONS = (DIRECT, INDIRECT_ONLY, STOP)
DIRECT_PROCESSES = frozenset({"direct_conference", "group_conference", "youth_panel"})


def supervision_required(case):
    attributes = case.attributes or {}
    return safeguarding.needs_supervision(attributes.get("flags"), attributes.get("offence_category"))


def communication_refused(case):
    """Why the parties may not communicate yet (a reason code), or None if they may."""
    decision = (case.safety or {}).get("decision")
    if decision is None:
        return "safety_decision_missing"
    if decision == STOP:
        return "safety_stop"
    if supervision_required(case):
        signed = (case.supervision or {}).get("decision")
        if signed is None:
            return "supervision_signoff_missing"
        if signed != "approved":
            return "supervision_refused"
    return None


def process_refused(case, process_type):
    """Why this kind of process may not go ahead (a reason code), or None if it may: the
    gate above, then a meeting only on a `direct` decision."""
    refused = communication_refused(case)
    if refused:
        return refused
    if process_type in DIRECT_PROCESSES and case.safety["decision"] != DIRECT:
        return "indirect_only"
    return None
