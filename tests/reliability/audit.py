"""What a fault run is judged by: pure functions over what the bus, the ledger and the
mail server hold at the end. Tested on their own in tests/unit/test_reliability_audit.py,
so that a check that could never fail would be caught.
"""
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# Ids minted anew each time a handler runs: two events that differ only in these are
# the same fact recorded twice, the mark of a handler that ran twice.
MINTED = {"assessment_id", "assignment_id", "notification_id", "until", "due_at"}


def fact(event):
    """The fact an event states, without the ids its producer minted for it."""
    data = {k: v for k, v in event["data"].items() if k not in MINTED}
    return event["type"], repr(sorted(data.items(), key=lambda kv: kv[0]))


@dataclass
class CaseAudit:
    case_id: str
    expected: int = 0
    found: int = 0
    missing: list = field(default_factory=list)     # event ids published but not in the ledger
    duplicates: list = field(default_factory=list)  # facts recorded more than once
    absent_types: list = field(default_factory=list)  # required event types nobody published
    # ledger entries whose event the bus never showed: an entry nobody published is a fault,
    # never a legitimate extra (every legitimate entry was published, and the tap sees all)
    unexplained: list = field(default_factory=list)

    @property
    def faults(self):
        return bool(self.missing or self.duplicates or self.absent_types or self.unexplained)


def audit_cases(case_ids, published, ledger, required_types=()):
    """Compare, case by case, the events published on the bus with the ledger's entries.

    `published`: every event a tap saw (a republished event appears more than once).
    `ledger`: every event in the ledger, in order.

    `expected` counts distinct facts on the bus and `found` the ledger's entries, so found
    exceeds expected only by an entry that is a duplicate or unexplained, each named: the
    table's "extra" column is their sum, and any extra fails the run. The bus must be read
    after the ledger, or an entry recorded in between would look unexplained.
    """
    by_case_bus, by_case_ledger = defaultdict(dict), defaultdict(list)
    for event in published:
        by_case_bus[event["subject"]][event["id"]] = event
    for event in ledger:
        by_case_ledger[event["subject"]].append(event)
    audits = []
    for case_id in case_ids:
        bus, entries = by_case_bus.get(case_id, {}), by_case_ledger.get(case_id, [])
        ledger_ids = Counter(e["id"] for e in entries)
        facts = Counter(fact(e) for e in entries)
        audits.append(CaseAudit(
            case_id=case_id,
            expected=len({fact(e) for e in bus.values()}),
            found=len(entries),
            missing=sorted(set(bus) - set(ledger_ids)),
            duplicates=sorted([f"{t} x{n}" for (t, _), n in facts.items() if n > 1]
                              + [f"event {i} x{n}" for i, n in ledger_ids.items() if n > 1]),
            absent_types=sorted(set(required_types) - {e["type"] for e in entries}),
            unexplained=sorted(set(ledger_ids) - set(bus)),
        ))
    return audits


def duplicate_mails(messages):
    """Mails sent twice for one delivery: the same delivery header, or failing that the
    same recipient, subject and message body."""
    keys = Counter()
    for message in messages:
        key = message.get("X-Amends-Delivery") or (message.get("To"), message.get("Subject"),
                                                   _body(message))
        keys[key] += 1
    return {repr(k): n for k, n in keys.items() if n > 1}


def _body(message):
    if message.is_multipart():
        return "".join(str(part.get_payload()) for part in message.walk() if not part.is_multipart())
    return str(message.get_payload())
