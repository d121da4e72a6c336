"""Test-only stand-ins for the services that hold contact details, and the local
servers the notifications tests send to.

`Referrals` and `Matching` are small nameko services named "referrals" and "matching"
that serve `get_contact` and `get_facilitator_contact` exactly as CONTRACTS.md states,
from fixture data held in `PEOPLE`. They stand in for the other services (built in
parallel on other branches), not for RabbitMQ or FerretDB, which stay real: the RPCs
travel over the test's own vhost.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.handlers import Mailbox
from nameko.rpc import rpc

from tests.support import smtp_server

PARTICIPANT_ROLES = ("harmed", "harmer", "supporter", "appropriate_adult")
PURPOSES = {
    "referrer_update": (("referrer",), ("name", "email", "language")),
    "participant_information": (PARTICIPANT_ROLES, ("name", "email", "phone", "language", "preferred_channels",
                                                    "safe_contact_windows", "contact_safe")),
    "outcome_update": (("harmed",), ("name", "email", "phone", "language", "preferred_channels",
                                     "safe_contact_windows", "contact_safe")),
    # a session's messages: the person's details, and the session (when, and where for those attending)
    "session_invitation": (PARTICIPANT_ROLES + ("interpreter",), ("name", "email", "phone", "language",
                                                                   "preferred_channels", "safe_contact_windows",
                                                                   "contact_safe")),
    "agreement_reminder": (("harmed", "harmer"), ("name", "email", "phone", "language", "preferred_channels",
                                                  "safe_contact_windows", "contact_safe")),
    # and the link of the person's open survey, when the fixture gives them one
    "survey_invitation": (("harmed", "harmer"), ("name", "email", "phone", "language", "preferred_channels",
                                                 "safe_contact_windows", "contact_safe", "survey_link")),
}
FACILITATOR_PURPOSES = ("assignment_offer", "case_update")


class People:
    """party id -> {"role", details..., "consent": None|"granted"|"withdrawn", "unsafe": bool}"""

    def __init__(self):
        self.parties = {}
        self.facilitators = {}
        # session id -> {"revision", "status", "starts_at", "venue", "attendees", "removed"}, as referrals keeps it
        self.sessions = {}
        self.calls = []
        self.session_calls = []   # (party id, purpose, session id) of each lookup naming a session

    def reset(self):
        self.parties.clear()
        self.facilitators.clear()
        self.sessions.clear()
        self.calls.clear()
        self.session_calls.clear()

    def get_contact(self, party_id, purpose, requester, session_id=None):
        self.calls.append((party_id, purpose, requester))
        if session_id is not None:
            self.session_calls.append((party_id, purpose, session_id))
        party = self.parties.get(party_id)
        if party is None:
            return refuse("unknown_party")
        if purpose not in PURPOSES:
            return refuse("unknown_purpose")
        roles, released = PURPOSES[purpose]
        if party["role"] not in roles:
            return refuse("purpose_does_not_cover_role")
        if party["role"] != "referrer":
            if party.get("consent") == "withdrawn":
                return refuse("consent_withdrawn")
            if party.get("unsafe"):
                return refuse("contact_unsafe")
        details = {k: party[k] for k in released if k in party and party[k] not in (None, "")}
        if "contact_safe" in released:
            details["contact_safe"] = not party.get("unsafe", False)
        if not (details.get("email") or details.get("phone")):
            return refuse("no_contact_details")
        if purpose == "session_invitation":
            session = self.sessions.get(session_id)
            if session is None:
                return refuse("unknown_session")
            attending = party_id in session["attendees"]
            if not attending and party_id not in session.get("removed", []):
                return refuse("not_invited")
            details["session"] = {"session_id": session_id, "revision": session["revision"],
                                  "status": session["status"], "starts_at": session["starts_at"],
                                  "attending": attending, **({"venue": session["venue"]} if attending else {})}
        return {"granted": True, "reason": "granted", "details": details}

    def get_facilitator_contact(self, facilitator_id, purpose, requester):
        self.calls.append((facilitator_id, purpose, requester))
        if purpose not in FACILITATOR_PURPOSES:
            return refuse("unknown_purpose")
        facilitator = self.facilitators.get(facilitator_id)
        if facilitator is None:
            return refuse("unknown_facilitator")
        details = {k: facilitator[k] for k in ("name", "email", "language") if facilitator.get(k)}
        if not details.get("email"):
            return refuse("no_contact_details")
        return {"granted": True, "reason": "granted", "details": details}


def refuse(reason):
    return {"granted": False, "reason": reason, "details": {}}


PEOPLE = People()


def holder_services(people):
    """The two services that hold contact details, answering from `people` (a module of
    tests runs them with `nameko run module:Referrals module:Matching`)."""

    class Referrals:
        name = "referrals"

        @rpc
        def get_contact(self, party_id, purpose, requester, session_id=None):
            return people.get_contact(party_id, purpose, requester, session_id)

    class Matching:
        name = "matching"

        @rpc
        def get_facilitator_contact(self, facilitator_id, purpose, requester):
            return people.get_facilitator_contact(facilitator_id, purpose, requester)

    return Referrals, Matching


Referrals, Matching = holder_services(PEOPLE)
