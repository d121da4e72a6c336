"""Following records' ledger: its entries copied into the subscriptions database, with the
facts of each entry's case that entitlement needs.

The follower asks records (RPC `entries_after`) for the entries after the highest position
stored here, stores them (unique on position: a second follower, or a retry, stores
nothing twice), and keeps, per case, its `CaseFacts` (profiles.py), learned from its
`referral.received`. Each stored entry carries its case's facts as they stood when it was
stored, so the dispatcher needs no lookup per entry.
"""
import collections
import dataclasses
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

# the most entries asked for at once, and the most pages read in one round (a backlog is
# caught up over a few rounds rather than holding one for long)
PAGE = 500
PAGES_PER_ROUND = 10
FACTS_KEPT = 20000


@dataclass(frozen=True)
class Entry:
    """A ledger entry as the subscriptions service keeps it."""
    position: int
    event: dict          # the CloudEvent as the ledger holds it
    leaf_hash: str       # hex SHA-256 of the leaf (records' entry_view)
    facts: dict = None   # its case's facts (profiles.CaseFacts as a dict), if it is about a known case


class FeedFollower:
    """One per process: it remembers how far it has read, and recent cases' facts."""

    def __init__(self, store, profiles, page=PAGE, pages_per_round=PAGES_PER_ROUND):
        self.store = store
        self.profiles = profiles
        self.page = page
        self.pages_per_round = pages_per_round
        self.position = None   # the highest position stored, once known
        self._facts = collections.OrderedDict()

    def follow(self, read_page):
        """Read and store what the ledger holds beyond what is stored here; return the new
        entries, in order. `read_page(after, limit)` is records' `entries_after`."""
        if self.position is None:
            self.position = self.store.highest_position()
        found = []
        for _ in range(self.pages_per_round):
            page = read_page(self.position, self.page)
            entries = [self._entry(item) for item in page["items"] if item["seq"] > self.position]
            if not entries:
                break
            if [e.position for e in entries] != list(range(self.position + 1, self.position + 1 + len(entries))):
                raise ValueError("records' feed skipped a position")  # never expected: it serves the tree in order
            self.store.add_entries(entries)
            self.position = entries[-1].position
            self.store.note_position(self.position)
            found.extend(entries)
            if len(page["items"]) < self.page:
                break
        return found

    def _entry(self, item):
        event = item["event"]
        case_id = self.profiles.case_of(event)
        facts = None
        if case_id is not None:
            known = self._known(case_id)
            facts = self.profiles.follow_case(known, event)
            if facts is not None and facts != known:
                self.store.save_case_facts(case_id, dataclasses.asdict(facts))
                self._remember(case_id, facts)
        return Entry(position=item["seq"], event=event, leaf_hash=item["leaf_hash"],
                     facts=dataclasses.asdict(facts) if facts is not None else None)

    def _known(self, case_id):
        if case_id in self._facts:
            self._facts.move_to_end(case_id)
            return self._facts[case_id]
        stored = self.store.case_facts(case_id)
        facts = self.profiles.CaseFacts(**stored) if stored else None
        if facts is not None:
            self._remember(case_id, facts)
        return facts

    def _remember(self, case_id, facts):
        self._facts[case_id] = facts
        self._facts.move_to_end(case_id)
        while len(self._facts) > FACTS_KEPT:
            self._facts.popitem(last=False)
