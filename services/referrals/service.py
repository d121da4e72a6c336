"""The referrals service: intake and the case lifecycle over HTTP, contact details over
RPC, case status from matching's events, Victims' Code clocks on a timer. Entrypoints only."""
import logging
import os

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.referrals import aftercare, openapi, residency, workflow
from services.referrals.protection import Vault, load_master_key
from services.referrals.store import ReferralsStore
from shared.config import StartRefused, setting
from shared.health import HealthEndpoint
from shared.http_server import http
from shared.jsonlog import LogContext, current
from shared.messaging.consumer import event_consumer
from shared.messaging.rpc import Caller, rpc
from shared.messaging.outbox import Outbox, OutboxRelayTimer
from shared.openapi import OpenApiEndpoint
from shared.storage import StoreProvider
from shared.web import Authenticator, api, json_response, read_json

STAFF = ("coordinator", "facilitator", "auditor")
CASEWORKERS = ("coordinator", "facilitator")
# Seconds between checks of the Victims' Code clocks (read at import, as nameko's timer needs).
DEADLINE_INTERVAL = float(os.environ.get("REFERRALS_DEADLINE_INTERVAL", "60"))
# Seconds between looks at agreements, follow-up surveys and retention (aftercare.py), and
# those rules' own settings (days), all read at import as nameko's timers need.
AGREEMENT_INTERVAL = float(os.environ.get("REFERRALS_AGREEMENT_INTERVAL", "60"))
AFTERCARE = aftercare.from_environment()

log = logging.getLogger(__name__)


class VaultProvider(DependencyProvider):
    def setup(self):
        self.vault = Vault(load_master_key())

    def get_dependency(self, worker_ctx):
        return self.vault


class ServedRegions(DependencyProvider):
    """The referral regions this deployment serves (AMENDS_REGIONS, residency.py). Without
    them the service does not start: one line naming the setting, no traceback."""

    def setup(self):
        try:
            self.served = residency.served_regions(setting(self.container.config, residency.SETTING))
        except residency.NotConfigured as error:
            log.error("%s", error)
            raise StartRefused(self.container.service_name, str(error)) from None
        log.info("serving referrals for the regions %s", ", ".join(sorted(self.served)))

    def get_dependency(self, worker_ctx):
        return self.served


class ReferralsService(HealthEndpoint, OpenApiEndpoint, OutboxRelayTimer):
    name = "referrals"
    api_document = staticmethod(openapi.document)

    store = StoreProvider(ReferralsStore)
    outbox = Outbox(collections=ReferralsStore.outbox_collections)
    auth = Authenticator()
    vault = VaultProvider()
    served = ServedRegions()
    log_context = LogContext()
    caller = Caller()

    @http("POST", "/v1/referrals")
    @api(roles=("referrer", "coordinator"), scope="intake")
    def submit_referral(self, request, principal):
        status, payload, replayed = workflow.submit_referral(
            self.store, read_json(request), principal, request.headers.get("Idempotency-Key"), self.outbox, self.vault,
            served=self.served)
        headers = {"Location": f"/v1/cases/{payload['case_id']}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return json_response(payload, status, headers)

    @http("GET", "/v1/cases")
    @api(roles=("referrer",) + STAFF, scope="listing")
    def list_cases(self, request, principal):
        return json_response(workflow.list_cases(self.store, request.args.to_dict(), principal,
                                                   served=self.served))

    @http("GET", "/v1/cases/<string:case_id>")
    @api(roles=("referrer",) + STAFF, scope="case")
    def get_case(self, request, case_id, principal):
        return json_response(workflow.case_view(self.store, case_id, principal, self.vault))

    @http("POST", "/v1/cases/<string:case_id>/transitions")
    @api(roles=CASEWORKERS, scope="case-act")
    def transition_case(self, request, case_id, principal):
        return json_response(workflow.transition_case(self.store, case_id, read_json(request), principal, self.outbox,
                                                      self.vault, AFTERCARE))

    @http("POST", "/v1/cases/<string:case_id>/consents")
    @api(roles=CASEWORKERS, scope="case-act")
    def record_consent(self, request, case_id, principal):
        return json_response(
            workflow.record_consent(self.store, case_id, read_json(request), principal, self.outbox), 201)

    @http("POST", "/v1/cases/<string:case_id>/support-referrals")
    @api(roles=CASEWORKERS, scope="case-act")
    def record_support_referral(self, request, case_id, principal):
        return json_response(
            workflow.record_support_referral(self.store, case_id, read_json(request), principal, self.outbox), 201)

    @http("POST", "/v1/cases/<string:case_id>/participants/<string:party_id>/erasure")
    @api(roles=("coordinator",), scope="case-act")
    def erase_participant(self, request, case_id, party_id, principal):
        return json_response(workflow.erase_participant(self.store, case_id, party_id, principal, self.outbox))

    @http("GET", "/v1/cases/<string:case_id>/access-log")
    @api(roles=("coordinator", "auditor"), scope="case")
    def access_log(self, request, case_id, principal):
        return json_response(workflow.access_log(self.store, case_id, principal))

    # --- preparation, risk, the safety decision and the parties' voice --------------

    @http("POST", "/v1/cases/<string:case_id>/preparation/contacts")
    @api(roles=CASEWORKERS, scope="case-act")
    def record_contact(self, request, case_id, principal):
        return json_response(workflow.record_contact(
            self.store, case_id, read_json(request), principal, self.outbox, self.vault), 201)

    @http("POST", "/v1/cases/<string:case_id>/risk-assessments")
    @api(roles=CASEWORKERS, scope="case-act")
    def record_risk_assessment(self, request, case_id, principal):
        return json_response(workflow.record_risk_assessment(
            self.store, case_id, read_json(request), principal, self.outbox, self.vault), 201)

    @http("POST", "/v1/cases/<string:case_id>/safety-decision")
    @api(roles=CASEWORKERS, scope="case-act")
    def decide_safety(self, request, case_id, principal):
        return json_response(workflow.decide_safety(
            self.store, case_id, read_json(request), principal, self.outbox, self.vault))

    @http("POST", "/v1/cases/<string:case_id>/supervision")
    @api(roles=("coordinator",), scope="case-act")
    def decide_supervision(self, request, case_id, principal):
        return json_response(workflow.decide_supervision(self.store, case_id, read_json(request), principal,
                                                         self.outbox))

    @http("POST", "/v1/cases/<string:case_id>/items")
    @api(roles=CASEWORKERS, scope="case-act")
    def record_item(self, request, case_id, principal):
        return json_response(workflow.record_item(
            self.store, case_id, read_json(request), principal, self.outbox, self.vault), 201)

    @http("GET", "/v1/cases/<string:case_id>/items")
    @api(roles=CASEWORKERS, scope="case")
    def list_items(self, request, case_id, principal):
        return json_response(workflow.list_items(self.store, case_id, principal, self.vault))

    @http("POST", "/v1/cases/<string:case_id>/items/<string:item_id>/release")
    @api(roles=CASEWORKERS, scope="case-act")
    def release_item(self, request, case_id, item_id, principal):
        return json_response(workflow.release_item(self.store, case_id, item_id, read_json(request), principal,
                                                   self.outbox))

    # --- the intervention and its sessions (services/referrals/interventions.py) ---

    @http("POST", "/v1/cases/<string:case_id>/intervention")
    @api(roles=CASEWORKERS, scope="case-act")
    def choose_intervention(self, request, case_id, principal):
        return json_response(workflow.choose_intervention(self.store, case_id, read_json(request), principal,
                                                          self.outbox))

    @http("POST", "/v1/cases/<string:case_id>/sessions")
    @api(roles=CASEWORKERS, scope="case-act")
    def schedule_session(self, request, case_id, principal):
        return json_response(workflow.schedule_session(self.store, case_id, read_json(request), principal,
                                                       self.outbox, self.vault), 201)

    @http("PATCH", "/v1/cases/<string:case_id>/sessions/<string:session_id>")
    @api(roles=CASEWORKERS, scope="case-act")
    def change_session(self, request, case_id, session_id, principal):
        return json_response(workflow.change_session(self.store, case_id, session_id, read_json(request), principal,
                                                     self.outbox, self.vault))

    @http("POST", "/v1/cases/<string:case_id>/sessions/<string:session_id>/cancel")
    @api(roles=CASEWORKERS, scope="case-act")
    def cancel_session(self, request, case_id, session_id, principal):
        return json_response(workflow.cancel_session(self.store, case_id, session_id, read_json(request), principal,
                                                     self.outbox, self.vault))

    @http("POST", "/v1/cases/<string:case_id>/sessions/<string:session_id>/held")
    @api(roles=CASEWORKERS, scope="case-act")
    def record_session_held(self, request, case_id, session_id, principal):
        return json_response(workflow.record_session_held(self.store, case_id, session_id, read_json(request),
                                                          principal, self.outbox, self.vault))

    # --- after the intervention: the outcome agreement, and surveys ------------------

    @http("POST", "/v1/cases/<string:case_id>/agreement")
    @api(roles=CASEWORKERS, scope="case-act")
    def record_agreement(self, request, case_id, principal):
        return json_response(
            workflow.record_agreement(self.store, case_id, read_json(request), principal, self.outbox, self.vault), 201)

    @http("POST", "/v1/cases/<string:case_id>/agreement/items/<string:item_id>")
    @api(roles=CASEWORKERS, scope="case-act")
    def update_agreement_item(self, request, case_id, item_id, principal):
        return json_response(workflow.update_agreement_item(self.store, case_id, item_id, read_json(request),
                                                            principal, self.outbox, self.vault))

    @http("GET", "/v1/surveys/<string:token>")
    @api(roles=None, scope="public")
    def survey_form(self, request, token):
        """The token is the credential (never logged: shared.http_server); guessing is held
        to the address's budget of refused keys."""
        return json_response(self.auth.by_token(request, lambda: workflow.survey_form(self.store, token, self.vault)))

    @http("POST", "/v1/surveys/<string:token>")
    @api(roles=None, scope="public")
    def answer_survey(self, request, token):
        return json_response(self.auth.by_token(request, lambda: workflow.answer_survey(
            self.store, token, read_json(request), self.outbox, self.vault)), 201)

    @timer(interval=AGREEMENT_INTERVAL)
    def check_aftercare(self):
        """Agreement reminders and missed items, follow-up surveys, retention."""
        workflow.run_aftercare(self.store, self.outbox, self.vault, settings=AFTERCARE)

    def case_relation(self, case_id):
        return workflow.case_relation(self.store, case_id)

    @rpc
    def get_contact(self, party_id, purpose, requester, session_id=None):
        """Contact details of one person for one stated purpose; every call is logged.
        Only notifications may call it: the entrypoint refuses anyone else on the broker's
        word (shared.messaging.permissions), and the access log names that caller.
        `session_id`: the session a `session_invitation` is about."""
        return workflow.get_contact(self.store, party_id, purpose, self.caller or requester, self.vault,
                                    current("correlationid"), session_id=session_id, public_url=AFTERCARE.public_url)

    @event_consumer("case_status")
    def on_matching_event(self, event):
        if event["type"] == "notification.sent":
            workflow.note_victim_told(self.store, event, self.outbox)
        else:
            workflow.advance_for_event(self.store, event, self.outbox)

    @timer(interval=DEADLINE_INTERVAL)
    def check_deadlines(self):
        workflow.announce_deadlines(self.store, self.outbox)
