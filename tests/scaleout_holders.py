"""Stand-in holders of contact details for the scale-out test and benchmark, run as a
process of their own (`nameko run tests.scaleout_holders:Referrals tests.scaleout_holders:Matching`).

They answer `get_contact` and `get_facilitator_contact` by the rules of
tests/integration/notifications_holders.py (CONTRACTS.md shapes), for anyone whose id
ends in a role suffix, made up on first ask: `<anything>-ref` a referrer, `-h` the
harmed person, `-o` the harmer, and any id asked of matching a facilitator. Each has
an email address and no safe-contact window, so every notice is sent at once: what is
measured is notifications itself.
"""
from tests.integration.notifications_holders import People, holder_services

ROLES = {"ref": "referrer", "h": "harmed", "o": "harmer"}


class Everyone(People):
    def get_contact(self, party_id, purpose, requester, session_id=None):
        role = ROLES.get(str(party_id).rsplit("-", 1)[-1])
        if role and party_id not in self.parties:
            self.parties[party_id] = {"role": role, "name": f"Person {party_id}", "language": "en",
                                      "email": f"{party_id}@people.example", "preferred_channels": ["email"]}
        self.calls.clear()   # nothing here reads them; a long run must not keep them all
        return super().get_contact(party_id, purpose, requester, session_id)

    def get_facilitator_contact(self, facilitator_id, purpose, requester):
        self.facilitators.setdefault(facilitator_id, {"name": f"Facilitator {facilitator_id}", "language": "en",
                                                      "email": f"{facilitator_id}@rj.example"})
        self.calls.clear()
        return super().get_facilitator_contact(facilitator_id, purpose, requester)


EVERYONE = Everyone()


Referrals, Matching = holder_services(EVERYONE)
