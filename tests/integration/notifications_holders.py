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


class RefusingMailbox(Mailbox):
    """A Maildir SMTP handler that answers the first `refusals` messages with `code`."""

    def __init__(self, mail_dir, refusals, code):
        super().__init__(mail_dir)
        self.left = int(refusals)
        self.code = int(code)

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(*args)

    async def handle_DATA(self, server, session, envelope):
        if self.left > 0:
            self.left -= 1
            return f"{self.code} Not now, please try again"
        return await super().handle_DATA(server, session, envelope)


def refusing_smtp_server(mail_dir, refusals, code=451):
    """A real SMTP server (aiosmtpd, own process) refusing the first `refusals` messages."""
    return smtp_server(mail_dir, "tests.integration.notifications_holders.RefusingMailbox", refusals, code)


class SmsRecorder:
    """A local HTTP server shaped like the Notify SMS endpoint; records each request."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)  # answered in turn, then 201
        self.received = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                recorder.received.append({"path": self.path, "headers": dict(self.headers),
                                          "json": json.loads(body or b"{}")})
                self.send_response(recorder.statuses.pop(0) if recorder.statuses else 201)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"id": "sms-1"}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
