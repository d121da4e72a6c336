"""The demo: submit sample referrals, follow each into the ledger, take one case on to
closure (preparation, a letter exchange, an agreement with one item completed and one
missed, closure and the harmed person's survey: scripts/journey.py), then print the
timelines and the emails the local SMTP server received. The demo police force (dev-police)
has a webhook subscription for the while, with a receiver on 127.0.0.1 that verifies each
delivery's signature (scripts/demo_webhook.py); what it received is printed at the end.

Runs against the platform that `make demo` started (ports and keys from the environment
and var/dev-keys.json).

The platform runs the shipped suitability policy, as a new area would: no local switch is
on, so the domestic abuse referral (sample 3) is refused, and the demo says why. An area
that has agreed a local policy sets MATCHING_LOCAL_SWITCHES=domestic_abuse_rj_allowed=true
(here: `make stop`, then `make demo` with it in the environment) and sees that case go to a
coordinator's review instead.
"""
import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import mailbox  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import requests  # noqa: E402

from scripts import samples  # noqa: E402
from scripts.demo_webhook import PoliceWebhook  # noqa: E402
from scripts.journey import Journey, StepRefused, survey_token_in  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERRALS = "http://" + os.environ.get("REFERRALS_HTTP_ADDRESS", "127.0.0.1:8001")
MATCHING = "http://" + os.environ.get("MATCHING_HTTP_ADDRESS", "127.0.0.1:8002")
RECORDS = "http://" + os.environ.get("RECORDS_HTTP_ADDRESS", "127.0.0.1:8004")
SUBSCRIPTIONS = "http://" + os.environ.get("SUBSCRIPTIONS_HTTP_ADDRESS", "127.0.0.1:8005")
CONSOLE = "http://" + os.environ.get("CONSOLE_HTTP_ADDRESS", "127.0.0.1:8006")
# The sample taken on to closure: a robbery the harmer asked to put right, offered to the
# facilitator whose key the bootstrap wrote (fac-0001); its harmed person reads Welsh, by email.
JOURNEY_SAMPLE, JOURNEY_FACILITATOR, JOURNEY_HARMED_EMAIL = 4, "fac-0001", "mair@mail.example"
# What the referrer is last told, by the assessment's decision.
REFERRER_LAST_TOLD = {"suitable": "referrer.facilitator_assigned", "unsuitable": "referrer.case_assessed",
                      "needs_review": "referrer.case_assessed"}
# Reasons that come from the deployment's local switches, not the referral: said plainly,
# so the refusal reads as the policy's safe default and not as a fault of the demo.
LOCAL_SWITCH_NOTES = {
    "domestic_abuse_not_allowed_locally":
        "the shipped policy's default: no restorative justice in domestic abuse cases unless the area has agreed "
        "a local policy (MATCHING_LOCAL_SWITCHES=domestic_abuse_rj_allowed=true; then a specialist-led review)",
}


def summarise(entry):
    data = entry["data"]
    detail = {
        "referral.received": lambda: f"{data['offence_category']}, {data['cjs_stage']}, flags {data['flags'] or 'none'}",
        "case.assessed": lambda: f"{data['decision']} ({', '.join(r['code'] for r in data['reasons'])}), policy {data['policy_version']}",
        "facilitator.assigned": lambda: f"{data['facilitator_id']} as {data['role']}",
        "assignment.waitlisted": lambda: data["reason"],
        "notification.sent": lambda: f"{data['channel']} to the {data['recipient_role']} ({data['template']})",
        "notification.suppressed": lambda: f"to the {data['recipient_role']}: {data['reason']}",
        "notification.deferred": lambda: f"to the {data['recipient_role']} until {data['until']}",
        "notification.failed": lambda: f"to the {data['recipient_role']}: {data['reason']}",
        "case.status_changed": lambda: f"{data['from_status']} -> {data['to_status']}",
        "case.needs_review": lambda: "waiting for a coordinator's decision",
        "case.closed": lambda: data["reason"],
        "preparation.contact_recorded": lambda: f"the {data['participant_role']} by {data['method']}: {data['outcome']}",
        "risk.assessed": lambda: f"the {data['participant_role']}: {data['overall']}",
        "case.safety_decided": lambda: data["decision"],
        "intervention.chosen": lambda: data["process_type"],
        "voice.item_recorded": lambda: f"{data['kind']} by the {data['author_role']}",
        "voice.item_released": lambda: f"{data['kind']} to the {data['to_role']}",
        "agreement.recorded": lambda: ", ".join(i["kind"] for i in data["items"]),
        "case.outcome_recorded": lambda: data["outcome"],
        "survey.requested": lambda: f"the {data['participant_role']}, at {data['stage']}",
        "survey.answered": lambda: f"the {data['participant_role']}, at {data['stage']}",
    }.get(entry["type"], lambda: "")()
    return f"  #{entry['seq']:<4} {entry['time'][:19]}  {entry['type']:<24} {detail}"


def timeline(case_id, headers):
    response = requests.get(f"{RECORDS}/v1/cases/{case_id}/timeline", headers=headers, timeout=10)
    return response.json()["entries"] if response.status_code == 200 else []


def complete(entries):
    assessed = next((e for e in entries if e["type"] == "case.assessed"), None)
    if assessed is None:
        return False
    last = REFERRER_LAST_TOLD[assessed["data"]["decision"]]
    waitlisted = any(e["type"] == "assignment.waitlisted" for e in entries)
    return waitlisted or any(e["type"] == "notification.sent" and e["data"]["template"] == last for e in entries)


def main():
    keys = json.load(open(os.path.join(ROOT, "var", "dev-keys.json")))
    with PoliceWebhook(SUBSCRIPTIONS, keys) as police_webhook:
        return run(keys, police_webhook)


def run(keys, police_webhook):
    referrer = {"Authorization": f"Bearer {keys['referrer']}"}
    coordinator = {"Authorization": f"Bearer {keys['coordinator']}"}
    cases = []
    for sample in samples.load():  # its days counted back from today: a crime a fortnight old, whatever the year
        response = requests.post(f"{REFERRALS}/v1/referrals", json=sample, headers=referrer, timeout=10)
        response.raise_for_status()
        cases.append(response.json()["case_id"])
        print(f"submitted referral {cases[-1]} ({sample['offence']['category']}, {sample['region']})")
    deadline = time.time() + 60
    timelines = {}
    while time.time() < deadline:
        timelines = {case: timeline(case, coordinator) for case in cases}
        if all(complete(entries) for entries in timelines.values()):
            break
        time.sleep(0.5)
    journeyed = take_one_case_to_closure(cases[JOURNEY_SAMPLE], keys, coordinator)
    if journeyed:
        timelines[cases[JOURNEY_SAMPLE]] = timeline(cases[JOURNEY_SAMPLE], coordinator)
    print()
    for case in cases:
        print(f"Case {case}")
        for entry in timelines.get(case, []):
            print(summarise(entry))
            if entry["type"] == "case.assessed":
                for reason in entry["data"]["reasons"]:
                    if reason["code"] in LOCAL_SWITCH_NOTES:
                        print(f"         ({reason['code']}: {LOCAL_SWITCH_NOTES[reason['code']]})")
        print()
    box = mailbox.Maildir(os.path.join(ROOT, "var", "mail"), create=True)
    print(f"Emails in the local SMTP server's mailbox (var/mail): {len(box)}")
    for message in sorted(box, key=lambda m: m["Date"] or ""):
        print(f"  to {message['To']}: {' '.join(str(message['Subject']).split())}")
    sms_file = os.path.join(ROOT, "var", "sms", "messages.jsonl")
    texts = [json.loads(line) for line in open(sms_file)] if os.path.exists(sms_file) else []
    print(f"Text messages at the local SMS provider (var/sms/messages.jsonl): {len(texts)}")
    for text in texts:
        print(f"  to {text['phone_number']}: {(text.get('body') or '')[:70]}...")
    print_console_sign_ins()
    # the webhook: everything up to the demo's last ledger entry, then what arrived
    police_webhook.wait_for_position(max((e["seq"] for es in timelines.values() for e in es), default=-1))
    print()
    report = police_webhook.report()
    print("\n".join(report))
    if "signatures verified: yes" not in report[0]:
        print("the demo police force's receiver got nothing, or a delivery it could not verify", file=sys.stderr)
        return 1
    if not all(complete(timelines.get(case, [])) for case in cases):
        print("some cases did not complete within 60 seconds; see var/log/*.log", file=sys.stderr)
        return 1
    if not journeyed:
        return 1
    return 0 if verify_ledger(coordinator) else 1


def print_console_sign_ins():
    """The console's address and the development sign-in of each role (var/console-accounts.json,
    written by the bootstrap; development passwords, never used anywhere else)."""
    path = os.path.join(ROOT, "var", "console-accounts.json")
    if not os.path.exists(path):
        return
    print(f"\nThe console: {CONSOLE} (docs/console.md). Development sign-ins:")
    for role, sign_in in json.load(open(path)).items():
        print(f"  {role:<12} username {sign_in['username']:<16} password {sign_in['password']}")


def take_one_case_to_closure(case_id, keys, coordinator):
    """Take one case from its offer to closure and its survey, printing each step."""
    print(f"\nTaking case {case_id} on to closure, as {JOURNEY_FACILITATOR} and a coordinator would:")
    box = mailbox.Maildir(os.path.join(ROOT, "var", "mail"), create=True)
    journey = Journey({"referrals": REFERRALS, "matching": MATCHING}, {
        "facilitator": keys["facilitator"], "coordinator": keys["coordinator"]}, JOURNEY_FACILITATOR)
    try:
        journey.take_to_closure(case_id, lambda _: survey_token_in(list(box), JOURNEY_HARMED_EMAIL))
    except StepRefused as refused:
        print(f"  stopped: {refused}", file=sys.stderr)
        return False
    finally:
        for number, said in enumerate(journey.said, 1):
            print(f"  {number:>2}. {said}")
    # the survey's answer and the last notices reach the ledger a moment later
    deadline = time.time() + 30
    while time.time() < deadline and "survey.answered" not in [e["type"] for e in timeline(case_id, coordinator)]:
        time.sleep(0.5)
    return True


def verify_ledger(headers):
    """Sign the ledger's current head, verify the whole log, print the signed head."""
    signed = requests.post(f"{RECORDS}/v1/ledger/checkpoints", headers=headers, timeout=30)
    verification = requests.get(f"{RECORDS}/v1/ledger/verify", headers=headers, timeout=300).json()
    print(f"\nLedger verification: {verification}")
    if signed.status_code != 201:
        print(f"No signed head: {signed.json().get('message')} (set AMENDS_LEDGER_SIGNING_KEY; "
              "python -m services.records.keygen makes one)")
        return verification.get("valid") is True
    key = requests.get(f"{RECORDS}/v1/ledger/public-key", headers=headers, timeout=10).text.strip()
    head = requests.get(f"{RECORDS}/v1/ledger/head", headers=headers, timeout=10).text
    print(f"Signed tree head (C2SP checkpoint; verifier key {key}):\n")
    print(head, end="")
    return verification.get("valid") is True


if __name__ == "__main__":
    sys.exit(main())
