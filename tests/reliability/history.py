"""What the fault suite prints for a case that falls short: its events in the ledger and
on the bus, matching's documents for it (assessments, assignment, lease, seats) and the
service log lines that name it, so a failed run says where the case stopped and why.

Case ids and facilitator ids are pseudonymous; no personal data is printed.
"""
import os

import pymongo

from shared.config import settings_for


def _short(doc, fields):
    return {key: doc.get(key) for key in fields if key in doc}


def matching_documents(config, case_id):
    """Matching's stored state for one case, read straight from its database."""
    settings = settings_for("matching", config)
    client = pymongo.MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    try:
        db = client[settings.database]
        assessments = [_short(a, ("_id", "trigger_event_id", "created_at", "review")) | {
            "decision": a.get("outcome", {}).get("decision"), "unsent": len(a.get("outbox", []))}
            for a in db.assessments.find({"case_id": case_id})]
        assignment = db.assignments.find_one({"_id": case_id})
        if assignment is not None:
            assignment = _short(assignment, ("status", "version", "waitlisted_at", "declined_by", "closed_reason")) | {
                "slots": [_short(s, ("role", "facilitator_id", "state", "reason")) for s in assignment["slots"]],
                "unsent": [e["type"] for e in assignment.get("outbox", [])]}
        return {
            "assessments": assessments,
            "assignment": assignment,
            "lease": db.assignment_leases.find_one({"_id": case_id}),
            "seats": [_short(s, ("_id", "taken_at")) for s in db.seats.find({"case_id": case_id})],
        }
    except pymongo.errors.PyMongoError as error:
        return {"unreadable": type(error).__name__}
    finally:
        client.close()


def log_lines(log_dir, case_id, limit=40):
    found = []
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), errors="replace") as log:
            found += [f"{name}: {line.rstrip()[:400]}" for line in log if case_id in line]
    return found[-limit:]


def describe(audit, phase, published, ledger, config, log_dir):
    """A printable account of one case that fell short."""
    on_bus = {}
    for event in published:
        if event["subject"] == audit.case_id:
            on_bus.setdefault(event["id"], event)
    lines = [f"case {audit.case_id} (sent during '{phase}'): {audit}",
             "  ledger: " + ", ".join(e["type"] for e in ledger if e["subject"] == audit.case_id),
             "  bus:    " + ", ".join(f"{e['type']}@{e['time']}" for e in on_bus.values())]
    for key, value in matching_documents(config, audit.case_id).items():
        lines.append(f"  matching {key}: {value}")
    lines += ["  " + line for line in log_lines(log_dir, audit.case_id)]
    return "\n".join(lines)
