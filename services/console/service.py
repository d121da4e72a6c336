"""The console: a server-rendered web app for coordinators, facilitators and operators.
Entrypoints only; the pages are in pages.py, the request handling in web.py."""
import json
from datetime import timedelta

from nameko.extensions import DependencyProvider
from nameko.timer import timer
from werkzeug.wrappers import Response

from services.console import ledger_pages, operator_pages, pages, registry_pages, report_pages
from services.console.apis import SERVICES as API_SERVICES
from services.console.key_vault import KEY_SETTING, KeyVault, VaultError
from services.console.pipeline import Operations
from services.console.store import ConsoleStore
from services.console.web import Console, ConsoleSettings
from shared import metrics
from shared.config import StartRefused, setting, settings_for
from shared.http_server import http
from shared.storage import connect, disconnect

STAFF = ("coordinator", "auditor")
CASE_READERS = ("coordinator", "auditor", "facilitator")
EVERYONE = ("coordinator", "auditor", "facilitator", "operator")
# seconds between sweeps of expired sessions (each is also refused, and deleted, when next presented)
SWEEP_INTERVAL = 3600


def urls_from(config):
    return {service: "http://" + setting(config, f"{service.upper()}_HTTP_ADDRESS") for service in API_SERVICES}


class ConsoleProvider(DependencyProvider):
    """The Console, on the console's own database, with its key vault and settings; the
    console does not start without AMENDS_CONSOLE_KEY."""

    def setup(self):
        config = self.container.config
        service = self.container.service_name
        try:
            vault = KeyVault(setting(config, KEY_SETTING))
        except VaultError as error:
            raise StartRefused(service, str(error)) from None
        self.settings = settings_for(service, config)
        self.store = ConsoleStore(connect(service, self.settings))
        operations = Operations(setting(config, "CONSOLE_OPERATOR_AMQP_URI"), setting(config, "CONSOLE_MANAGEMENT_URL"))
        failures = float(setting(config, "CONSOLE_SIGN_IN_FAILURES", "5"))
        self.console = Console(self.store, vault, urls_from(config), operations, ConsoleSettings(
            secure_cookies=str(setting(config, "CONSOLE_DEVELOPMENT", "0")) != "1",
            session_lifetime=timedelta(hours=float(setting(config, "CONSOLE_SESSION_HOURS", "8"))),
            sign_in_failures_per_minute=failures, sign_in_failures_burst=max(1, int(failures))))

    def start(self):
        self.store.ensure_indexes(self.settings.ferretdb_postgresql_url)

    def stop(self):
        disconnect(self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self.console


class ConsoleService:
    name = "console"

    console = ConsoleProvider()

    @timer(interval=SWEEP_INTERVAL)
    def sweep_sessions(self):
        self.console.store.sweep()

    @http("GET", "/health")
    def health(self, request):
        try:
            self.console.store.db.command("ping")
            report = {"status": "ok", "problems": []}
        except Exception as error:
            report = {"status": "unavailable", "problems": [f"database: {type(error).__name__}"]}
        return Response(json.dumps(report), status=200 if report["status"] == "ok" else 503,
                        mimetype="application/json")

    @http("GET", "/metrics")
    def scrape(self, request):
        body, content_type = metrics.exposition(request.headers.get("Accept"))
        return Response(body, status=200, content_type=content_type)

    @http("GET", "/static/<string:name>")
    def static(self, request, name):
        return self.console.handle(request, pages.static_file, name=name)

    @http("GET", "/")
    def home(self, request):
        return self.console.handle(request, pages.home)

    @http("GET", "/sign-in")
    def sign_in_form(self, request):
        return self.console.handle(request, pages.sign_in_form)

    @http("POST", "/sign-in")
    def sign_in(self, request):
        return self.console.handle(request, pages.sign_in)

    @http("POST", "/sign-out")
    def sign_out(self, request):
        return self.console.handle(request, pages.sign_out, roles=EVERYONE)

    @http("GET", "/language")
    def language(self, request):
        return self.console.handle(request, pages.choose_language)

    @http("GET", "/cases")
    def cases(self, request):
        return self.console.handle(request, pages.case_list, roles=STAFF)

    @http("GET", "/cases/<string:case_id>")
    def case(self, request, case_id):
        return self.console.handle(request, pages.case_page, roles=CASE_READERS, case_id=case_id)

    @http("GET", "/review")
    def review(self, request):
        return self.console.handle(request, pages.review_queue, roles=("coordinator",))

    @http("GET", "/review/<string:case_id>")
    def decision_form(self, request, case_id):
        return self.console.handle(request, pages.decision_form, roles=("coordinator",), case_id=case_id)

    @http("POST", "/review/<string:case_id>")
    def decide(self, request, case_id):
        return self.console.handle(request, pages.decide, roles=("coordinator",), case_id=case_id)

    @http("GET", "/offers")
    def offers(self, request):
        return self.console.handle(request, pages.offers, roles=("facilitator",))

    @http("POST", "/offers/<string:assignment_id>/<string:answer>")
    def answer_offer(self, request, assignment_id, answer):
        if answer not in ("accept", "decline"):
            return self.console.handle(request, pages.not_found, roles=("facilitator",))
        return self.console.handle(request, pages.answer_offer, roles=("facilitator",),
                                   assignment_id=assignment_id, answer=answer)

    @http("GET", "/my-cases")
    def my_cases(self, request):
        return self.console.handle(request, pages.my_cases, roles=("facilitator",))

    @http("GET", "/operator")
    def pipeline(self, request):
        return self.console.handle(request, operator_pages.pipeline, roles=("operator",))

    @http("GET", "/operator/dead-letters/<string:service>")
    def dead_letters(self, request, service):
        return self.console.handle(request, operator_pages.dead_letters, roles=("operator",), service=service)

    @http("GET", "/operator/dead-letters/<string:service>/<string:letter_id>")
    def dead_letter(self, request, service, letter_id):
        return self.console.handle(request, operator_pages.dead_letter, roles=("operator",), service=service,
                                   letter_id=letter_id)

    @http("POST", "/operator/dead-letters/<string:service>/<string:letter_id>/<string:action>")
    def act_on_letter(self, request, service, letter_id, action):
        if action not in ("replay", "discard"):
            return self.console.handle(request, pages.not_found, roles=("operator",))
        return self.console.handle(request, operator_pages.act_on_letter, roles=("operator",), service=service,
                                   letter_id=letter_id, action=action)

    # --- the ledger (records' API, with the operator's key; a case's bundle for those who see it) ---
    @http("GET", "/operator/ledger")
    def ledger(self, request):
        return self.console.handle(request, ledger_pages.ledger, roles=("operator",))

    @http("POST", "/operator/ledger/verify")
    def verify_ledger(self, request):
        return self.console.handle(request, ledger_pages.verify_ledger, roles=("operator",))

    @http("GET", "/operator/ledger/bundle")
    def ledger_bundle(self, request):
        return self.console.handle(request, ledger_pages.ledger_bundle, roles=("operator",))

    @http("GET", "/cases/<string:case_id>/bundle")
    def case_bundle(self, request, case_id):
        return self.console.handle(request, ledger_pages.case_bundle, roles=STAFF, case_id=case_id)

    # --- reports (coordinators: their regions; national auditors: the national view) ---
    @http("GET", "/reports")
    def reports(self, request):
        return self.console.handle(request, report_pages.report_list, roles=STAFF)

    @http("GET", "/reports/<string:measure>")
    def report(self, request, measure):
        return self.console.handle(request, report_pages.report_page, roles=STAFF, measure=measure)

    # --- the facilitator registry, and cases waiting for staff ---
    @http("GET", "/facilitators")
    def facilitators(self, request):
        return self.console.handle(request, registry_pages.facilitator_list, roles=STAFF)

    @http("GET", "/facilitators/new")
    def new_facilitator(self, request):
        return self.console.handle(request, registry_pages.new_facilitator, roles=("coordinator",))

    @http("POST", "/facilitators/new")
    def create_facilitator(self, request):
        return self.console.handle(request, registry_pages.create_facilitator, roles=("coordinator",))

    @http("GET", "/facilitators/<string:facilitator_id>")
    def facilitator(self, request, facilitator_id):
        return self.console.handle(request, registry_pages.facilitator_page, roles=STAFF, facilitator_id=facilitator_id)

    @http("POST", "/facilitators/<string:facilitator_id>")
    def change_facilitator(self, request, facilitator_id):
        return self.console.handle(request, registry_pages.change_facilitator, roles=("coordinator",),
                                   facilitator_id=facilitator_id)

    @http("GET", "/facilitators/<string:facilitator_id>/deactivate")
    def confirm_deactivation(self, request, facilitator_id):
        return self.console.handle(request, registry_pages.confirm_deactivation, roles=("coordinator",),
                                   facilitator_id=facilitator_id)

    @http("POST", "/facilitators/<string:facilitator_id>/deactivate")
    def deactivate_facilitator(self, request, facilitator_id):
        return self.console.handle(request, registry_pages.deactivate_facilitator, roles=("coordinator",),
                                   facilitator_id=facilitator_id)

    @http("GET", "/waiting")
    def waiting(self, request):
        return self.console.handle(request, registry_pages.waiting_list, roles=STAFF)
