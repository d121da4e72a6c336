"""The console's request handling, independent of nameko: who is signed in, CSRF on
every POST, the language, rendering, and the pages' common answers (sign-in redirect,
403, 404, a service that is down). The pages themselves are in pages.py.
"""
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.wrappers import Response

from services.console import i18n, sessions
from services.console.apis import Apis, Refused
from services.console.key_vault import VaultError
from shared.security.rate_limit import Buckets

log = logging.getLogger(__name__)

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
HOME = {"coordinator": "/cases", "auditor": "/cases", "facilitator": "/offers", "operator": "/operator"}


class PageError(Exception):
    """An answer other than the page: its status and the catalogue key that explains it."""

    def __init__(self, status, message_key, **fields):
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key
        self.fields = fields


class Redirect(Exception):
    def __init__(self, location, cookies=()):
        super().__init__(location)
        self.location = location
        self.cookies = cookies


@dataclass(frozen=True)
class ConsoleSettings:
    secure_cookies: bool = True
    session_lifetime: timedelta = timedelta(hours=8)
    # sign-in attempts that fail, a minute, per client address and per username (then a burst)
    sign_in_failures_per_minute: float = 5
    sign_in_failures_burst: int = 5


def local_path(target, default="/"):
    """`target` if it is a path on this site, else `default`: never a redirect elsewhere."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 32 or ord(c) == 127 for c in target)):
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


@dataclass
class Visit:
    """One request, as the pages see it."""
    console: "Console"
    request: object
    language: str
    session: object = None
    account: object = None
    cookies: list = field(default_factory=list)

    @property
    def form(self):
        return self.request.form

    @property
    def args(self):
        return self.request.args

    def _(self, key, **fields):
        return i18n.translate(self.language, key, **fields)

    def apis(self):
        """The services' APIs, as the signed-in person."""
        try:
            key = self.console.vault.open(self.account.sealed_key)
        except VaultError:
            log.error("an account's API key does not open with the console key")
            raise PageError(503, "error.key_unusable")
        return Apis(self.console.urls, key, session=self.console.api_session)

    def render(self, template, status=200, **context):
        body = self.console.templates.get_template(template).render(
            _=i18n.translator(self.language), lang=self.language, account=self.account,
            csrf_token=self.session.csrf_token if self.session else None, csrf_field=sessions.CSRF_FIELD,
            path=self.request.full_path.rstrip("?"), languages=i18n.LANGUAGES, **context)
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
        return self.console.finish(response, self.cookies)


class Console:
    """Everything the pages need: the store, the key vault, the services' URLs, the operator
    credentials, the settings and the sign-in throttle."""

    def __init__(self, store, vault, urls, operations, settings=ConsoleSettings(), api_session=None):
        self.store = store
        self.vault = vault
        self.urls = urls
        # what the calls to the services go through: requests itself, or (a test that checks
        # them against the services' OpenAPI documents, tests/contracts.py) a recording Session
        self.api_session = api_session
        self.operations = operations
        self.settings = settings
        self.templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                                     trim_blocks=True, lstrip_blocks=True)
        self.failures_by_address = Buckets(settings.sign_in_failures_per_minute, settings.sign_in_failures_burst)
        self.failures_by_name = Buckets(settings.sign_in_failures_per_minute, settings.sign_in_failures_burst)

    # --- the common answers ---
    def finish(self, response, cookies=()):
        for name, value, options in cookies:
            if value is None:
                response.delete_cookie(name, path="/", secure=options.get("secure", False),
                                       httponly=True, samesite="Lax")
            else:
                response.set_cookie(name, value, **options)
        # no page of the console is cached, framed or sniffed
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = ("default-src 'self'; form-action 'self'; "
                                                       "frame-ancestors 'none'; base-uri 'none'")
        return response

    def cookie(self, name, value, max_age=None):
        return name, value, sessions.cookie_options(self.settings.secure_cookies, max_age)

    def visit(self, request):
        language = i18n.language_of(request.cookies.get(sessions.LANGUAGE_COOKIE))
        visit = Visit(self, request, language)
        session_id = request.cookies.get(sessions.COOKIE)
        if session_id:
            session = self.store.session(sessions.id_hash(session_id))
            account = self.store.account(session.username) if session else None
            if account is not None and account.active:
                visit.session, visit.account = session, account
        return visit

    def handle(self, request, page, roles=None, **kwargs):
        """Answer `request` with `page(visit, **kwargs)`: with `roles`, only for an account
        of one of them (others: 403; nobody signed in: to the sign-in page). Every POST
        must carry the session's CSRF token (403 otherwise)."""
        visit = self.visit(request)
        try:
            if roles is not None:
                if visit.account is None:
                    raise Redirect("/sign-in?next=" + quote(local_path(request.full_path.rstrip("?")), safe="/"))
                if visit.account.role not in roles:
                    raise PageError(403, "error.role_refused")
                if request.method == "POST" and not sessions.token_matches(
                        visit.session.csrf_token, request.form.get(sessions.CSRF_FIELD)):
                    raise PageError(403, "error.csrf")
            return page(visit, **kwargs)
        except Redirect as redirect:
            return self.finish(Response(status=303, headers={"Location": redirect.location}),
                               visit.cookies + list(redirect.cookies))
        except PageError as error:
            if error.status >= 400 and error.status != 404:
                log.info("page refused", extra={"fields": {"status": error.status, "reason": error.message_key}})
            return visit.render("error.html", status=error.status, message_key=error.message_key,
                                message_fields=error.fields)
        except Refused as refused:
            return self.refused_page(visit, refused)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("console page failed; incident %s", incident)
            return visit.render("error.html", status=500, message_key="error.internal",
                                message_fields={"incident": incident})

    def refused_page(self, visit, refused):
        """A service's refusal, said in the person's language."""
        known = {400: "error.bad_request", 401: "error.key_refused", 403: "error.api_forbidden",
                 404: "error.not_found", 409: "error.conflict", 429: "error.too_many"}
        status = refused.status if refused.status in known else 503
        return visit.render("error.html", status=status, message_key=known.get(status, "error.service_unavailable"),
                            message_fields={})


def page_offset(raw):
    """A listing's `offset` from the query: a whole number from 0, else 0."""
    try:
        return max(0, min(int(raw or 0), 1_000_000))
    except ValueError:
        return 0
