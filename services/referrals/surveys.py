"""Satisfaction surveys: who is asked and when, the standard questions, and what an
answer is. Pure rules, no I/O.

When a case that reached INTERVENTION closes, and again at follow-up (`follow_up_days`
after closure, 90 by default), each party (harmed, harmer) whose consent to take part is
in force (their latest `participation` record is a grant) and who is not erased is asked
four standard questions: satisfied with the process (1-5), felt safe (1-5), would
recommend RJ (yes/no), harm repaired (1-5), and may add comments.

Each survey has a token: an unguessable random value (`secrets.token_urlsafe`), the
credential of the public link `/v1/surveys/{token}`. Referrals holds it sealed under the
person's own data key (so erasure destroys it too) and finds a survey by a keyed hash of
it (`key`); the token itself is never stored in the clear, never on the bus and never
in a log. One answer per survey; a survey expires `VALID_DAYS` after it was requested.

`case.surveys`: [{"survey_id": "srv-<32 hex>", "participant_id", "participant_role",
"stage": "closure" | "follow_up", "language", "key", "sealed_token", "requested_at",
"expires_at", "answered_at", "scores", "comments_sealed"}]

`case.follow_up`: {} or {"due_on": "YYYY-MM-DD", "requested_at": None | when it was done}
"""
import re
import secrets
import uuid
from datetime import datetime, timedelta

from marshmallow import Schema, fields, validate

from services.referrals import consents
from services.referrals.deadlines import today_in_london
from shared import safeguarding

CLOSURE, FOLLOW_UP = "closure", "follow_up"
REACHED = ("INTERVENTION", "AGREEMENT_MONITORING", "FOLLOW_UP")
DEFAULT_FOLLOW_UP_DAYS = 90
VALID_DAYS = 60
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
TOKEN_LABEL = "survey-token"
MAX_COMMENTS = 2000
SCORES = ("satisfied_with_process", "felt_safe", "would_recommend", "harm_repaired")

# The standard questions, in the person's language. (The Welsh wording is the team's own:
# to be checked by a Welsh-language officer, as the notifications' templates are.)
QUESTIONS = (
    ("satisfied_with_process", "scale", {
        "en": "How satisfied are you with the restorative justice process? (1 = not at all, 5 = very satisfied)",
        "cy": "Pa mor fodlon ydych chi â'r broses cyfiawnder adferol? (1 = ddim o gwbl, 5 = bodlon iawn)"}),
    ("felt_safe", "scale", {
        "en": "How safe did you feel taking part? (1 = not at all, 5 = completely safe)",
        "cy": "Pa mor ddiogel oeddech chi'n teimlo wrth gymryd rhan? (1 = ddim o gwbl, 5 = yn hollol ddiogel)"}),
    ("would_recommend", "yes_no", {
        "en": "Would you recommend restorative justice to someone in a similar situation?",
        "cy": "A fyddech chi'n argymell cyfiawnder adferol i rywun mewn sefyllfa debyg?"}),
    ("harm_repaired", "scale", {
        "en": "How far do you feel the harm has been repaired? (1 = not at all, 5 = fully)",
        "cy": "I ba raddau ydych chi'n teimlo bod y niwed wedi'i atgyweirio? (1 = ddim o gwbl, 5 = yn llawn)"}),
    ("comments", "text", {
        "en": "Is there anything else you would like to tell us? (optional)",
        "cy": "Oes unrhyw beth arall yr hoffech ei ddweud wrthym? (dewisol)"}),
)
INTRODUCTION = {
    "en": "Thank you for taking part in restorative justice. Your answers help us improve the service. "
          "Answering is your choice, and it will not affect any support you receive.",
    "cy": "Diolch am gymryd rhan mewn cyfiawnder adferol. Mae eich atebion yn ein helpu i wella'r gwasanaeth. "
          "Eich dewis chi yw ateb, ac ni fydd yn effeithio ar unrhyw gymorth a gewch.",
}


class StrictBool(fields.Boolean):
    """true or false, and nothing else (marshmallow would also take 1, "yes", "on"...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise self.make_error("invalid")
        return value


_scale = dict(required=True, strict=True, validate=validate.Range(min=1, max=5))
_text = validate.Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error="Control characters are not allowed.")


class AnswerSchema(Schema):
    """The body of POST /v1/surveys/{token}."""
    satisfied_with_process = fields.Int(**_scale)
    felt_safe = fields.Int(**_scale)
    would_recommend = StrictBool(required=True)
    harm_repaired = fields.Int(**_scale)
    comments = fields.Str(validate=[validate.Length(max=MAX_COMMENTS), _text])


def new_token():
    return secrets.token_urlsafe(32)


def reached_intervention(case):
    """Whether the case got as far as the intervention (so there is something to ask about)."""
    return case.status in REACHED or any(h.get("to") in REACHED for h in case.history or [])


def recipients(case):
    """The parties to ask: harmed and harmer, not erased, whose latest consent to take part
    is a grant."""
    chosen = []
    for party in case.participants:
        if party["role"] not in safeguarding.PARTIES or not party.get("sealed"):
            continue
        consent = consents.in_force(case.consents, party["party_id"], "participation")
        if consent is not None and consent["granted"]:
            chosen.append(party)
    return chosen


def new_survey(party, stage, key, sealed_token, now, valid_days=VALID_DAYS):
    return {"survey_id": f"srv-{uuid.uuid4().hex}", "participant_id": party["party_id"],
            "participant_role": party["role"], "stage": stage,
            "language": (party.get("attributes") or {}).get("language", "en"), "key": key,
            "sealed_token": sealed_token, "requested_at": now, "expires_at": now + timedelta(days=valid_days),
            "answered_at": None, "scores": None, "comments_sealed": None}


def requested_event_data(case_id, survey):
    return {"case_id": case_id, "survey_id": survey["survey_id"], "participant_id": survey["participant_id"],
            "participant_role": survey["participant_role"], "stage": survey["stage"]}


def keys(surveys):
    """The token keys of a case's surveys (the store finds a survey by one)."""
    return [s["key"] for s in surveys or [] if s.get("key")]


def by_key(surveys, key):
    return next((s for s in surveys or [] if s.get("key") == key), None)


def state(survey, now):
    if survey.get("answered_at") is not None:
        return "answered"
    if now >= survey["expires_at"]:
        return "expired"
    return "open"


def open_survey_for(surveys, party_id, now):
    """The latest survey of a person still open to an answer, or None."""
    found = [s for s in surveys or [] if s["participant_id"] == party_id and state(s, now) == "open"]
    return max(found, key=lambda s: s["requested_at"]) if found else None


def link(base_url, token):
    return f"{base_url.rstrip('/')}/v1/surveys/{token}"


def form(survey):
    """What GET /v1/surveys/{token} answers: the questions in the person's language."""
    language = survey.get("language") if survey.get("language") in INTRODUCTION else "en"
    return {"survey_id": survey["survey_id"], "stage": survey["stage"], "language": language,
            "introduction": INTRODUCTION[language], "expires_at": survey["expires_at"].isoformat(),
            "questions": [{"id": q, "type": kind, "required": q != "comments", "text": text[language],
                           **({"min": 1, "max": 5} if kind == "scale" else {})}
                          for q, kind, text in QUESTIONS]}


def answered(survey, scores, comments_sealed, now):
    return {**survey, "answered_at": now, "scores": scores, "comments_sealed": comments_sealed}


def answered_event_data(case_id, survey):
    return {"case_id": case_id, "survey_id": survey["survey_id"], "stage": survey["stage"],
            "participant_role": survey["participant_role"], "scores": dict(survey["scores"])}


# -- the follow-up ---------------------------------------------------------------------

def follow_up_schedule(closed_at, days=DEFAULT_FOLLOW_UP_DAYS):
    return {"due_on": (today_in_london(closed_at) + timedelta(days=days)).isoformat(), "requested_at": None}


def follow_up_day(follow_up):
    """The day bucket the store keeps for the timer: the due day, until it is done."""
    if not follow_up or follow_up.get("requested_at") is not None:
        return None
    return follow_up.get("due_on")


def follow_up_owed(follow_up, today):
    day = follow_up_day(follow_up)
    return day is not None and day <= today.isoformat()


def _iso(value):
    return value.isoformat() if isinstance(value, datetime) else value


def view(surveys, now):
    """What the case view shows: who was asked what and when, and whether they answered
    (with the scores: pseudonymous). Never a token, its key, or the comments."""
    return [{"survey_id": s["survey_id"], "participant_id": s["participant_id"],
             "participant_role": s["participant_role"], "stage": s["stage"], "state": state(s, now),
             "requested_at": _iso(s["requested_at"]), "expires_at": _iso(s["expires_at"]),
             "answered_at": _iso(s.get("answered_at")), "scores": s.get("scores")}
            for s in surveys or []]


def check_answer(body):
    """The validated answer; raise ValidationError naming every field at fault."""
    return AnswerSchema().load(body)

