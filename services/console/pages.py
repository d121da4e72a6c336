"""The console's pages: what each shows and does, through the services' APIs.

Each page takes a Visit (web.py) and returns a response; web.Console.handle has already
checked the role the page needs and the CSRF token of a POST.
"""
import logging
import os

from werkzeug.wrappers import Response

from services.console import due, forms, i18n, passwords, sessions
from services.console.apis import Refused
from services.console.web import HOME, TEMPLATES, PageError, Redirect, local_path, page_offset

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
    offset = page_offset(visit.args.get("offset"))
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


# --- helpers --------------------------------------------------------------------------------

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
