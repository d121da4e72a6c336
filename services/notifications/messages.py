"""The words of each notification: Jinja2 templates, pure rendering, no I/O.

One template file per (event type, recipient role, language), in
`templates/<language>/<event type>.<role>.j2`. Each defines the blocks `subject`,
`text` and `html` (email) and, for people who may choose SMS, `sms`. The same source
is compiled twice: once with HTML autoescaping for the `html` block, once without for
the plain-text blocks, so a name like "O'Brien & Co" is escaped in HTML only.

A message is rendered from two things only: the recipient's own released name, and
the non-personal facts of the case (`facts_for`). Nothing about one party is ever
put into what another is sent, and StrictUndefined makes a template that reaches
for anything else fail loudly instead of rendering a blank.
"""
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Optional

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from services.notifications import labels
from services.notifications import audience
from services.notifications import sessions
from services.notifications.audience import MESSAGES

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
LANGUAGES = ("en", "cy")


def _environment(autoescape):
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


TEXT = _environment(False)
HTML = _environment(True)


@dataclass(frozen=True)
class Message:
    template: str
    language: str
    subject: str
    text: str
    html: str
    sms: Optional[str]


def template_path(event_type, role, language):
    return f"{language}/{event_type}.{role}.j2"


def template_names():
    """Every template file that must exist: each message in each language."""
    return [template_path(e, r, lang) for e, r in MESSAGES for lang in LANGUAGES]


def facts_for(notice, event, case):
    """The non-personal facts a message may use, chosen per recipient role.

    Codes and pseudonymous references only; the recipient's name is added at send time.
    """
    data = event["data"]
    facts = {"case_ref": case.case_id, "event_type": notice.event_type, "role": notice.recipient_role}
    if notice.event_type in sessions.MESSAGE_EVENTS:
        return {**facts, **sessions.facts(notice.event_type, notice.recipient_role, notice.recipient_id, data, case)}
    if notice.event_type == "case.assessed":
        facts["decision"] = data["decision"]
        if notice.recipient_role == "referrer":
            facts["reasons"] = [{"code": r["code"], "text": r["text"]} for r in data["reasons"]]
    if notice.event_type == "case.outcome_recorded":
        facts["outcome"] = data["outcome"]
    if notice.recipient_role == "facilitator" and notice.event_type == "facilitator.assigned":
        facts["assignment_role"] = data["role"]
        facts["summary"] = case_summary(case)
        # the facilitator must know that no one else will write to the parties
        facts["contact_led"] = audience.contact_led_by_facilitator(case)
    if notice.recipient_role == "coordinator":
        # a Victims' Code clock: which one, when, and what it is measured from; codes and times only
        facts.update(deadline=data["deadline"], due_at=data["due_at"], last_day=last_day(data["due_at"]),
                     enhanced_rights=bool(data.get("enhanced_rights")), measured_from=data.get("measured_from"),
                     region=(case.summary or {}).get("region"))
    if notice.event_type in audience.AFTERCARE:
        facts.update(aftercare_facts(notice, data, case))
    return facts


def aftercare_facts(notice, data, case):
    """The codes a message after the intervention may use: the closure reason, an agreed
    item's kind, owner's role and due day, a survey's stage and who it is for. Never an
    item's description (sealed in referrals) nor a survey's link (given at send time)."""
    facts = {}
    if notice.event_type == "case.closed":
        facts.update(reason=data["reason"], from_status=data["from_status"],
                     reached_intervention=data["from_status"] in audience.AFTER_INTERVENTION)
    if notice.event_type.startswith("agreement."):
        facts.update(kind=data["kind"], due_on=data["due_on"], owner_role=data["owner_role"])
    if notice.event_type == "agreement.item_missed":
        facts["detected"] = data["detected"]
    if notice.event_type == "survey.requested":
        facts.update(stage=data["stage"], participant_role=data["participant_role"])
    if notice.recipient_role == "facilitator":
        facts["contact_led"] = audience.contact_led_by_facilitator(case)
    return facts


def last_day(due_at):
    """The London day a clock that is missed at `due_at` (the end of its last day) ends on."""
    moment = datetime.fromisoformat(due_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment.astimezone(labels.LONDON) - timedelta(microseconds=1)).date().isoformat()


def case_summary(case):
    """What a facilitator is told before accepting: attributes, never identities."""
    summary = case.summary or {}
    assessment = case.assessment or {}
    return {
        "offence_category": summary.get("offence_category"),
        "cjs_stage": summary.get("cjs_stage"),
        "flags": list(summary.get("flags") or []),
        "region": summary.get("region"),
        "initiated_by": summary.get("initiated_by"),
        "risk_level": assessment.get("risk_level"),
        "process_types": list(assessment.get("process_types") or []),
        "co_facilitation": assessment.get("co_facilitation"),
        "participants": [
            {"role": p["role"], "age_band": p.get("age_band", "unknown"), "language": p.get("language", "en"),
             "access_needs": list(p.get("access_needs") or [])}
            for p in case.participants
        ],
    }


def _block(template, name, context):
    if name not in template.blocks:
        return None
    rendered = "".join(template.blocks[name](template.new_context(context)))
    return rendered.strip()


def render(event_type, role, language, facts, name=None, released=None):
    """Render one message for one recipient; `name` is the recipient's own name, `released`
    what the holder of their details released with them for this message alone (a session's
    venue, a survey invitation's `survey_link`), never stored."""
    path = template_path(event_type, audience.template_role(event_type, role), language)
    context = {"venue": None, "survey_link": "", **facts, **(released or {}), "name": name or "",
               "say": labels.sayer(language), "day": labels.day_words(language), "language": language}
    text_template, html_template = TEXT.get_template(path), HTML.get_template(path)
    subject = " ".join(_block(text_template, "subject", context).split())
    body = _block(html_template, "html", context)
    page = HTML.get_template("layout.html.j2").render(
        subject=subject, language=language, body=Markup(body))
    return Message(
        template=f"{audience.template_role(event_type, role)}.{event_type.replace('.', '_')}",
        language=language,
        subject=subject,
        text=_block(text_template, "text", context) + "\n",
        html=page,
        sms=_block(text_template, "sms", context),
    )


def as_email(message, *, sender, recipient, message_id, reply_to=None):
    email = EmailMessage()
    email["From"] = sender
    email["To"] = recipient
    if reply_to:
        # the messages tell people to reply to say no: replies must reach a person
        email["Reply-To"] = reply_to
    email["Subject"] = message.subject
    # Derived from the notification id, so a copy sent twice is recognisably the same message.
    email["Message-ID"] = message_id
    email["X-Amends-Template"] = message.template
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    # after the parts: setting the content clears any Content-* header set before it
    email["Content-Language"] = message.language
    return email
