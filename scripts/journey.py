"""One case from its offer to closure, through the HTTP APIs, as staff would take it.

The demo (`scripts/demo.py`) and the end-to-end test (`tests/e2e/test_case_to_closure.py`)
both drive a case this way, so the steps a person takes are written once:

1. the facilitator accepts the offer (matching), and the case is ALLOCATED (referrals);
2. preparation: a contact with each party, their consent to take part, the harmed
   person's referral to a support service, a risk assessment with each, and the
   facilitator's safety decision: indirect contact only;
3. the intervention, a letter exchange: the harmed person's impact statement and a
   question, the harmer's answer and apology, each consented to and released by the
   facilitator to the other party;
4. an outcome agreement of two items, one completed and one missed, so the agreement ends
   not completed and the case moves to follow-up;
5. closure (`partial`), and the harmed person's satisfaction survey, answered through the
   link they were sent.

Each step is one request (or a wait for the services to catch up), and a refusal stops the
journey with the answer that refused it.
"""
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta

import requests

from services.referrals.deadlines import today_in_london

SURVEY_TOKEN = re.compile(r"/v1/surveys/([A-Za-z0-9_-]{20,})")
LOW_RISK = {"safety": "low", "power_imbalance": "low", "capacity": "none", "substance_use": "none",
            "mental_health": "low", "support_needs": "low", "access_needs": "low"}
# what the parties write; the words are invented, and never leave referrals unsealed
WORDS = {
    "impact_statement": "Since that night I have not walked to the shop on my own. I want you to know that.",
    "question": "Why did you choose me?",
    "answer": "I was desperate and you were alone. That is no excuse. It was nothing about you.",
    "apology": "I am sorry for what I did to you and for the fear it left. I am working to put it right.",
}


class StepRefused(RuntimeError):
    """A request the platform refused: the journey cannot go on."""


@dataclass
class Journey:
    urls: dict              # service name -> base URL
    keys: dict              # "coordinator", "facilitator" -> API key
    facilitator_id: str     # whose key `keys["facilitator"]` is
    said: list = field(default_factory=list)   # what was done, step by step
    timeout: float = 60

    def call(self, service, method, path, body=None, as_role="facilitator", ok=(200, 201)):
        headers = {"Authorization": f"Bearer {self.keys[as_role]}"} if as_role else {}
        answer = requests.request(method, self.urls[service] + path, json=body, headers=headers, timeout=30)
        if answer.status_code not in ok:
            raise StepRefused(f"{method} {path} answered {answer.status_code}: {answer.text[:400]}")
        return answer.json() if answer.content else {}

    def wait_for(self, what, probe):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.3)
        raise StepRefused(f"waited {self.timeout:.0f} s for {what}")

    def step(self, text):
        self.said.append(text)

    # --- the journey ------------------------------------------------------------------

    def take_to_closure(self, case_id, survey_token_for):
        """Take `case_id`, offered to our facilitator, through to closure and its survey.
        `survey_token_for(participant_id)` finds the survey link the harmed person was sent
        (in a mailbox) and returns its token, or None while it has not arrived."""
        case = f"/v1/cases/{case_id}"
        offer = self.wait_for("the offer to the facilitator", lambda: next(
            (o for o in self.call("matching", "GET", f"{case}/assignment", as_role="coordinator",
                                  ok=(200, 404)).get("offers", [])   # 404: matching has not staffed it yet
             if o["facilitator_id"] == self.facilitator_id and o["state"] == "offered"), None))
        self.call("matching", "POST", f"/v1/assignments/{offer['assignment_id']}/accept")
        view = self.wait_for("referrals to see the case allocated", lambda: (
            lambda v: v if v["status"] == "ALLOCATED" else None)(self.call("referrals", "GET", case)))
        self.step(f"{self.facilitator_id} accepted the offer: ALLOCATED")
        harmed = next(p["participant_id"] for p in view["participants"] if p["role"] == "harmed")
        harmer = next(p["participant_id"] for p in view["participants"] if p["role"] == "harmer")
        today = today_in_london()

        # preparation
        for party, method in ((harmed, "phone"), (harmer, "visit")):
            self.call("referrals", "POST", f"{case}/preparation/contacts", {
                "participant_id": party, "method": method, "outcome": "reached", "held_on": today.isoformat()})
            self.call("referrals", "POST", f"{case}/consents", {
                "participant_id": party, "scope": "participation", "granted": True, "method": "verbal"})
        self.step("preparation: both parties reached, and both consent to take part")
        self.call("referrals", "POST", f"{case}/support-referrals", {
            "participant_id": harmed, "outcome": "referred", "service": "victim_support"})
        self.step("the harmed person referred to a support service")
        for party in (harmed, harmer):
            self.call("referrals", "POST", f"{case}/risk-assessments", {"participant_id": party, "factors": LOW_RISK})
        self.call("referrals", "POST", f"{case}/safety-decision", {
            "decision": "indirect_only", "reasons": ["harmed_prefers_indirect", "risk_low"]})
        self.step("risk assessed with each party; safety decision: indirect contact only")

        # the intervention: a letter exchange
        self.call("referrals", "POST", f"{case}/intervention", {"process_type": "letter_exchange"})
        self.step("intervention chosen: letter exchange (INTERVENTION)")
        written = {}
        for author, kind, to_role in ((harmed, "impact_statement", "harmer"), (harmed, "question", "harmer"),
                                      (harmer, "answer", "harmed"), (harmer, "apology", "harmed")):
            body = {"author_id": author, "kind": kind, "content": WORDS[kind]}
            if kind == "answer":
                body["in_reply_to"] = written["question"]
            written[kind] = self.call("referrals", "POST", f"{case}/items", body)["item_id"]
            self.call("referrals", "POST", f"{case}/consents", {
                "participant_id": author, "scope": "share_item", "item": kind, "with_role": to_role,
                "granted": True, "method": "written"})
            self.call("referrals", "POST", f"{case}/items/{written[kind]}/release",
                      {"to_role": to_role, "reviewed": True})
        self.step("letters exchanged: impact statement and question, answer and apology, each shared with consent")

        # the outcome agreement: one item completed, one missed
        agreement = self.call("referrals", "POST", f"{case}/agreement", {
            "agreed_on": today.isoformat(),
            "items": [
                {"kind": "restitution", "owner_id": harmer, "amount_pence": 4500,
                 "due_on": (today + timedelta(days=14)).isoformat(), "description": "Repay the cost of the phone"},
                {"kind": "community_work", "owner_id": harmer,
                 "due_on": (today + timedelta(days=30)).isoformat(), "description": "Twenty hours at the food bank"},
            ]})
        kept, broken = (item["item_id"] for item in agreement["agreement"]["items"])
        self.step("outcome agreement recorded: restitution and community work (AGREEMENT_MONITORING)")
        self.call("referrals", "POST", f"{case}/agreement/items/{kept}", {"status": "completed"})
        self.call("referrals", "POST", f"{case}/agreement/items/{broken}",
                  {"status": "missed", "note": "did not attend the placement"})
        self.step("restitution completed; community work missed: agreement not completed (FOLLOW_UP)")

        # closure and the survey
        closed = self.call("referrals", "POST", f"{case}/transitions", {"to": "CLOSED", "reason": "partial"})
        self.step(f"case closed: {closed['closure']['reason']}")
        token = self.wait_for("the harmed person's survey link", lambda: survey_token_for(harmed))
        questions = self.call("referrals", "GET", f"/v1/surveys/{token}", as_role=None)
        self.call("referrals", "POST", f"/v1/surveys/{token}", {
            "satisfied_with_process": 4, "felt_safe": 5, "would_recommend": True, "harm_repaired": 3}, as_role=None)
        self.step(f"the harmed person answered the closure survey ({len(questions['questions'])} questions, "
                  f"in {questions['language']})")
        return {"harmed": harmed, "harmer": harmer, "items": written, "agreement": agreement}


def survey_token_in(messages, address):
    """The token of the survey link in the latest message sent to `address`, if any."""
    for message in reversed(messages):
        if message["To"] == address:
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    text = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
                    found = SURVEY_TOKEN.search(text)
                    if found:
                        return found.group(1)
    return None
