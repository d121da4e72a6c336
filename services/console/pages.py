"""The console's pages: what each shows and does, through the services' APIs.

Each page takes a Visit (web.py) and returns a response; web.Console.handle has already
checked the role the page needs and the CSRF token of a POST.
"""
import logging
import os
from datetime import datetime, timezone

import requests
from werkzeug.wrappers import Response

from services.console import due, forms, i18n, passwords, sessions
from services.console import ledger as ledger_view
from services.console.apis import Refused
from services.console.pipeline import service_health
from services.console.web import HOME, TEMPLATES, PageError, Redirect, local_path
from shared.messaging import topology

log = logging.getLogger(__name__)

REVIEW_SCAN = 100   # cases in TRIAGE looked at for the review queue, per page


# --- signing in and out, the language -------------------------------------------------

def home(visit):
    raise Redirect(HOME[visit.account.role] if visit.account else "/sign-in")


def sign_in_form(visit, values=None, errors=None, status=200, refused_key=None):
    token = visit.request.cookies.get(sessions.SIGN_IN_COOKIE)
    if not token:
        token = sessions.start("", visit.console.settings.session_lifetime)[1].csrf_token
        visit.cookies.append(visit.console.cookie(sessions.SIGN_IN_COOKIE, token))
    return visit.render("sign_in.html", status=status, values=values or {}, errors=errors or {},
                        sign_in_token=token, refused_key=refused_key,
                        next=local_path(visit.args.get("next") or visit.form.get("next"), ""))


def sign_in(visit):
    console, request = visit.console, visit.request
    if not sessions.token_matches(request.cookies.get(sessions.SIGN_IN_COOKIE), request.form.get(sessions.CSRF_FIELD)):
        raise PageError(403, "error.csrf")
    values, errors = forms.sign_in(request.form)
    if errors:
        return sign_in_form(visit, values, errors, status=400)
    address = request.remote_addr or "unknown"
    if console.failures_by_address.wait(address) or console.failures_by_name.wait(values["username"]):
        return sign_in_form(visit, values, status=429, refused_key="error.sign_in_throttled")
    account = console.store.account(values["username"])
    usable = account is not None and account.active
    if not passwords.verify(account.password_hash if usable else None, request.form.get("password", "")):
        console.failures_by_address.take(address)
        console.failures_by_name.take(values["username"])
        log.warning("sign-in refused")
        return sign_in_form(visit, values, status=401, refused_key="error.sign_in_refused")
    if passwords.needs_rehash(account.password_hash):
        console.store.set_password_hash(account.username, passwords.hash_password(request.form["password"]))
    if visit.session is not None:
        console.store.end_session(visit.session.id_hash)
    session_id, session = sessions.start(account.username, console.settings.session_lifetime)
    console.store.add_session(session)
    log.info("signed in", extra={"fields": {"role": account.role}})
    raise Redirect(local_path(request.form.get("next"), HOME[account.role]), cookies=[
        console.cookie(sessions.COOKIE, session_id, console.settings.session_lifetime),
        (sessions.SIGN_IN_COOKIE, None, {"secure": console.settings.secure_cookies})])


def sign_out(visit):
    visit.console.store.end_session(visit.session.id_hash)
    raise Redirect("/sign-in", cookies=[(sessions.COOKIE, None, {"secure": visit.console.settings.secure_cookies})])


def choose_language(visit):
    """A display preference only (nothing on the server changes), so a plain link sets it."""
    language = i18n.language_of(visit.args.get("to"))
    raise Redirect(local_path(visit.args.get("next")), cookies=[
        visit.console.cookie(sessions.LANGUAGE_COOKIE, language, 365 * 24 * 3600)])


# --- coordinators (and auditors): cases, a case, the review queue --------------------

def case_list(visit):
    values, errors = forms.case_filters(visit.args)
    offset = _offset(visit.args.get("offset"))
    page = {"items": [], "total": 0, "next_offset": None}
    if not errors:
        try:
            page = visit.apis().get("referrals", "/v1/cases", offset=offset, **forms.case_query(values))
        except Refused as refused:
            if refused.status != 400:
                raise
            errors = {name: forms.CASE_FILTER_REFUSED.get(name, "error.code_format") for name in refused.fields}
    rows = [(case, due.listed(case)) for case in page["items"]]
    return visit.render("cases.html", status=400 if errors else 200, values=values, errors=errors, page=page,
                        rows=rows, statuses=forms.statuses(), offset=offset,
                        more_query={**values, "offset": page.get("next_offset")})


def case_page(visit, case_id):
    apis = visit.apis()
    case = apis.get("referrals", f"/v1/cases/{case_id}")
    assessment = apis.optional("matching", f"/v1/cases/{case_id}/assessment")
    assignment = apis.optional("matching", f"/v1/cases/{case_id}/assignment")
    timeline = apis.optional("records", f"/v1/cases/{case_id}/timeline")
    return visit.render("case.html", case=case, assessment=assessment, assignment=assignment,
                        timeline=(timeline or {}).get("entries") or [], upcoming=due.upcoming(case))


def review_queue(visit):
    """The cases whose latest assessment is needs_review: those in TRIAGE in the coordinator's
    regions, each asked of matching (the referrals API does not filter by decision)."""
    apis = visit.apis()
    waiting = []
    page = apis.get("referrals", "/v1/cases", status="TRIAGE", limit=REVIEW_SCAN)
    for case in page["items"]:
        assessment = apis.optional("matching", f"/v1/cases/{case['case_id']}/assessment")
        if assessment and assessment.get("decision") == "needs_review":
            waiting.append({"case": case, "assessment": assessment})
    return visit.render("review.html", waiting=waiting, more=page.get("next_offset") is not None)


def decision_form(visit, case_id, values=None, errors=None, status=200, refused_key=None):
    apis = visit.apis()
    case = apis.get("referrals", f"/v1/cases/{case_id}")
    assessment = apis.optional("matching", f"/v1/cases/{case_id}/assessment")
    return visit.render("decide.html", status=status, case=case, assessment=assessment, values=values or {},
                        errors=errors or {}, refused_key=refused_key)


def decide(visit, case_id):
    values, errors = forms.decision(visit.form)
    if errors:
        return decision_form(visit, case_id, values, errors, status=400)
    try:
        visit.apis().post("matching", f"/v1/cases/{case_id}/decision", values)
    except Refused as refused:
        if refused.status == 400:
            return decision_form(visit, case_id, values, {f: "error.api_field" for f in refused.fields}, status=400)
        if refused.status == 409:
            return decision_form(visit, case_id, values, status=409, refused_key="error.decision_conflict")
        raise
    raise Redirect(f"/cases/{case_id}?decided=1")


# --- facilitators: my offers, my cases ---------------------------------------------------

def _my_offers(visit):
    """(case summary, the case's assignment, my offer) for every case my key reaches."""
    apis = visit.apis()
    found = []
    for case in apis.get("referrals", "/v1/cases", limit=100)["items"]:
        assignment = apis.optional("matching", f"/v1/cases/{case['case_id']}/assignment")
        for offer in (assignment or {}).get("offers") or ():
            if offer.get("facilitator_id") == visit.account.subject:
                found.append((case, assignment, offer))
    return found


def offers(visit):
    open_offers = [(case, offer) for case, _, offer in _my_offers(visit) if offer["state"] == "offered"]
    return visit.render("offers.html", offers=open_offers, answered=visit.args.get("answered"))


def answer_offer(visit, assignment_id, answer):
    try:
        visit.apis().post("matching", f"/v1/assignments/{assignment_id}/{answer}")
    except Refused as refused:
        if refused.status == 409:
            raise PageError(409, "error.offer_gone")
        raise
    raise Redirect(f"/offers?answered={answer}")


def my_cases(visit):
    apis = visit.apis()
    held = []
    for case, _, offer in _my_offers(visit):
        if offer["state"] == "accepted":
            detail = apis.get("referrals", f"/v1/cases/{case['case_id']}")
            held.append((detail, due.next_due(detail)))
    return visit.render("my_cases.html", held=held)


# --- operators: pipeline health, dead letters --------------------------------------------

def _operations(visit):
    operations = visit.console.operations
    if not operations.configured:
        raise PageError(503, "error.operator_unconfigured")
    return operations


def pipeline(visit):
    operations = _operations(visit)
    health = service_health(visit.console.urls, get=(visit.console.api_session or requests).get)
    try:
        queues = operations.queues()
    except Exception as error:   # the broker's management API is down or refuses us: say so, show the rest
        log.warning("queue depths unavailable: %s", type(error).__name__)
        queues = None
    return visit.render("operator.html", health=health, queues=queues)


def _service(service):
    if service not in topology.SERVICES:
        raise PageError(404, "error.not_found")
    return service


def dead_letters(visit, service):
    operations = _operations(visit)
    letters = operations.dead_letters(_service(service))
    return visit.render("dead_letters.html", service=service, letters=letters, services=topology.SERVICES,
                        done=visit.args.get("done"))


def dead_letter(visit, service, letter_id):
    operations = _operations(visit)
    letter = next((found for found in operations.dead_letters(_service(service)) if found["id"] == letter_id), None)
    if letter is None:
        raise PageError(404, "error.letter_gone")
    return visit.render("dead_letter.html", service=service, letter=letter)


def act_on_letter(visit, service, letter_id, action):
    operations = _operations(visit)
    try:
        done = operations.act(_service(service), action, letter_id)
    except SystemExit:   # deadletters refuses a letter that names no queue to go back to
        raise PageError(409, "error.letter_no_queue")
    if done is None:
        raise PageError(404, "error.letter_gone")
    log.warning("operator %s dead letter", action, extra={"fields": {"service": service, "letter": letter_id}})
    raise Redirect(f"/operator/dead-letters/{service}?done={action}")


# --- operators: the ledger (records' API, with the operator's own key) ---------------------

def ledger(visit, values=None, errors=None, status=200, verification=None):
    head = ledger_view.signed_head(visit.apis())
    return visit.render("ledger.html", status=status, head=head, verification=verification,
                        values=values or {}, errors=errors or {})


def verify_ledger(visit):
    verification = ledger_view.verify(visit.apis())
    log.info("ledger verified from the console", extra={"fields": {
        "valid": verification.valid, "first_bad_seq": verification.first_bad_seq}})
    return ledger(visit, verification=verification)


def ledger_bundle(visit):
    """The operator's form: a case's bundle by its reference. A case outside the key's regions
    is refused by records as if it did not exist, and shown here the same way."""
    values, errors = forms.case_reference(visit.args)
    if errors:
        return ledger(visit, values, errors, status=400)
    try:
        return _bundle_download(visit, values["case"])
    except Refused as refused:
        if refused.status != 404:
            raise
        return ledger(visit, values, {"case_id": "error.case_not_found_or_not_yours"}, status=404)


def case_bundle(visit, case_id):
    """A case's bundle, from its page (for the people who may see the case)."""
    values, errors = forms.case_reference({"case_id": case_id})
    if errors:
        raise PageError(404, "error.not_found")
    return _bundle_download(visit, values["case"])


def _bundle_download(visit, case_id):
    name, body = ledger_view.bundle_file(visit.apis().get("records", f"/v1/cases/{case_id}/bundle"), case_id)
    response = Response(body, content_type="application/json; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return visit.console.finish(response, visit.cookies)


# --- coordinators (auditors to read): the facilitator registry, cases waiting for staff ---

REGISTRY_PAGE = 100   # facilitators a page of the registry shows


def facilitator_list(visit):
    values, errors = forms.registry_filters(visit.args)
    offset = _offset(visit.args.get("offset"))
    found = []
    if not errors:
        found = visit.apis().get("matching", "/v1/facilitators", limit=REGISTRY_PAGE, offset=offset,
                                 **values)["facilitators"]
    return visit.render("facilitators.html", status=400 if errors else 200, values=values, errors=errors,
                        facilitators=found, offset=offset,
                        next_offset=offset + REGISTRY_PAGE if len(found) == REGISTRY_PAGE else None,
                        done=visit.args.get("done"), done_id=visit.args.get("id"))


def new_facilitator(visit, values=None, errors=None, status=200, refused_key=None):
    values = values or {"language": "en", "languages": ["en"], "endorsements": [], "capacity": "3"}
    return _facilitator_form(visit, None, values, errors, status, refused_key)


def create_facilitator(visit):
    def send(body):
        visit.apis().post("matching", "/v1/facilitators", body)
        return body["facilitator_id"]
    return _submit_facilitator(visit, True, send, lambda *shown: new_facilitator(visit, *shown), "created")


def facilitator_page(visit, facilitator_id, values=None, errors=None, status=200, refused_key=None):
    record = visit.apis().get("matching", f"/v1/facilitators/{facilitator_id}")
    return _facilitator_form(visit, record, values or forms.facilitator_values(record), errors, status, refused_key)


def change_facilitator(visit, facilitator_id):
    def send(body):
        visit.apis().patch("matching", f"/v1/facilitators/{facilitator_id}", body)
        return facilitator_id
    return _submit_facilitator(visit, False, send, lambda *shown: facilitator_page(visit, facilitator_id, *shown),
                               "changed")


def confirm_deactivation(visit, facilitator_id):
    record = visit.apis().get("matching", f"/v1/facilitators/{facilitator_id}")
    return visit.render("facilitator_deactivate.html", record=record)


def deactivate_facilitator(visit, facilitator_id):
    visit.apis().post("matching", f"/v1/facilitators/{facilitator_id}/deactivate")
    raise Redirect(f"/facilitators?done=deactivated&id={facilitator_id}")


def _facilitator_form(visit, record, values, errors, status, refused_key):
    return visit.render("facilitator_form.html", status=status, record=record, values=values, errors=errors or {},
                        refused_key=refused_key, editable=visit.account.role == "coordinator",
                        levels=forms.LEVELS, spoken=forms.SPOKEN, endorsements=forms.ENDORSEMENTS)


def _submit_facilitator(visit, creating, send, again, done):
    """Check the form, `send` the record (it returns the facilitator's id), and go to the list;
    or show the form `again(values, errors, status, refused_key)` with each fault beside its field."""
    values, errors, body = forms.facilitator(visit.form, creating)
    if errors:
        return again(values, errors, 400, None)
    try:
        facilitator_id = send(body)
    except Refused as refused:
        if refused.status == 409:
            return again(values, {"facilitator_id": "error.facilitator_taken"}, 409, None)
        if refused.status == 403:
            return again(values, {"regions": "error.regions_not_yours"}, 403, None)
        if refused.status == 400:
            named, refused_key = _api_errors(refused)
            return again(values, named, 400, refused_key)
        raise
    raise Redirect(f"/facilitators?done={done}&id={facilitator_id}")


def _api_errors(refused):
    """The fields of a 400 from matching, each beside the same field of the form (any other
    fault said above the form)."""
    named = {name: "error.api_field" for name in refused.fields if name in forms.FACILITATOR_FIELDS}
    return named, (None if named else "error.bad_request")


def waiting_list(visit):
    offset = _offset(visit.args.get("offset"))
    page = visit.apis().get("matching", "/v1/waiting", offset=offset)
    now = datetime.now(timezone.utc)
    cases = [dict(case, waited=_waited(case.get("waiting_since"), now)) for case in page["cases"]]
    return visit.render("waiting.html", cases=cases, total=page["total"], next_offset=page.get("next_offset"))


def _waited(since, now):
    """How long a case has waited, as a catalogue key and its fields (None: it is being offered now)."""
    if not since:
        return None
    hours = max(0, int((now - datetime.fromisoformat(since)).total_seconds() // 3600))
    if hours < 1:
        return "waiting.under_an_hour", {}
    return "waiting.days_hours", {"days": hours // 24, "hours": hours % 24}


# --- helpers --------------------------------------------------------------------------------

def _offset(raw):
    try:
        return max(0, min(int(raw or 0), 1_000_000))
    except ValueError:
        return 0


def static_file(visit, name):
    folder = os.path.join(os.path.dirname(TEMPLATES), "static")
    if name not in os.listdir(folder):
        raise PageError(404, "error.not_found")
    with open(os.path.join(folder, name), "rb") as handle:
        body = handle.read()
    kind = {"css": "text/css", "js": "application/javascript"}.get(name.rsplit(".", 1)[-1], "text/plain")
    response = Response(body, content_type=f"{kind}; charset=utf-8")
    response.headers["Cache-Control"] = "max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def not_found(visit):
    raise PageError(404, "error.not_found")
