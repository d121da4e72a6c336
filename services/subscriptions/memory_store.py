"""An in-memory SubscriptionsStore, for unit tests of the dispatcher, the feed and the API's
workflows. Same public methods as store.SubscriptionsStore, and the behaviours they rely on:
an entry, an agreement's version and an attempt are stored once; reads return copies (what a
caller changes counts only once saved); the entries after a position stop at the first gap.
The events each write adds to a document's outbox are kept, per collection and id.
"""
import copy
from dataclasses import replace

from services.subscriptions.store import AgreementTaken, SubscriptionsStore, agreement_id
from shared.storage.leases import InMemoryLease


class InMemorySubscriptionsStore(InMemoryLease):
    SUBSCRIPTIONS = SubscriptionsStore.SUBSCRIPTIONS
    AGREEMENTS = SubscriptionsStore.AGREEMENTS
    CURSORS = SubscriptionsStore.CURSORS
    OUTBOX_COLLECTIONS = SubscriptionsStore.OUTBOX_COLLECTIONS
    indexes = SubscriptionsStore.indexes

    def __init__(self):
        self.subscriptions = {}
        self.agreements = {}      # (agency, version) -> SharingAgreement
        self.entries = {}         # position -> Entry
        self.facts = {}
        self.position = None      # as the feed noted it
        self.cursors = {}
        self.deliveries = {}      # (subscription_id, number) -> Attempt
        self.outboxes = {name: {} for name in self.OUTBOX_COLLECTIONS}  # collection -> id -> [event]
        self.writes = 0           # cursor writes, for tests of batching
        self.lease = None         # (holder, until)

    def ensure_indexes(self, postgresql_url=""):
        pass

    def _outbox(self, collection, doc_id, events):
        self.outboxes[collection].setdefault(doc_id, []).extend(events)

    # --- subscriptions
    def add_subscription(self, subscription, events=()):
        if subscription.subscription_id in self.subscriptions:
            raise ValueError("subscription id taken")
        self.subscriptions[subscription.subscription_id] = subscription
        self._outbox(self.SUBSCRIPTIONS, subscription.subscription_id, events)

    def save_subscription(self, subscription, events=()):
        self.subscriptions[subscription.subscription_id] = subscription
        self._outbox(self.SUBSCRIPTIONS, subscription.subscription_id, events)

    def subscription(self, subscription_id):
        return self.subscriptions.get(subscription_id)

    def subscriptions_of(self, agency):
        return sorted((s for s in self.subscriptions.values() if s.agency == agency and s.status != "deleted"),
                      key=lambda s: (s.created_at, s.subscription_id))

    def active_subscriptions(self):
        return [s for s in self.subscriptions.values() if s.status == "active"]

    # --- agreements
    def add_agreement(self, agreement, events=()):
        key = (agreement.agency, agreement.version)
        if key in self.agreements:
            raise AgreementTaken(f"version {agreement.version} of {agreement.agency}'s agreement is set already")
        self.agreements[key] = agreement
        self._outbox(self.AGREEMENTS, agreement_id(agreement.agency, agreement.version), events)

    def agreements_of(self, agency):
        return [a for (who, _), a in sorted(self.agreements.items()) if who == agency]

    def current_agreements(self):
        current = {}
        for (agency, version), agreement in sorted(self.agreements.items()):
            current[agency] = agreement
        return current

    # --- entries and facts
    def add_entries(self, entries):
        for entry in entries:
            self.entries.setdefault(entry.position, copy.deepcopy(entry))

    def entries_after(self, after, limit):
        found, position = [], after + 1
        while position in self.entries and len(found) < limit:
            found.append(copy.deepcopy(self.entries[position]))
            position += 1
        return found

    def highest_position(self):
        position = self.position if self.position is not None else -1
        while position + 1 in self.entries:
            position += 1
        return position

    def note_position(self, position):
        self.position = position


    def case_facts(self, case_id):
        return dict(self.facts[case_id]) if case_id in self.facts else None

    def save_case_facts(self, case_id, facts):
        self.facts[case_id] = dict(facts)

    # --- cursors and deliveries
    def cursor(self, subscription_id):
        cursor = self.cursors.get(subscription_id)
        return replace(cursor) if cursor else None

    def save_cursors(self, cursors):
        self.writes += 1
        for cursor in cursors:
            self.cursors[cursor.subscription_id] = replace(cursor)

    def disable(self, cursor, events):
        self.cursors[cursor.subscription_id] = replace(cursor)
        self._outbox(self.CURSORS, cursor.subscription_id, events)

    def add_attempts(self, attempts):
        for attempt in attempts:
            key = (attempt.subscription_id, attempt.number)
            if key in self.deliveries:
                raise ValueError("attempt logged twice")
            self.deliveries[key] = attempt

    def attempts(self, subscription_id, before, limit):
        found = sorted((a for (s, n), a in self.deliveries.items() if s == subscription_id and n < before),
                       key=lambda a: -a.number)
        return found[:limit]
