"""The matching service: suitability assessment and facilitator assignment. Entrypoints only."""
import logging
import os
from datetime import datetime, timedelta, timezone

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.matching import facilitators, openapi, review, suitability_policy, waiting, workflow
from services.matching.roster import Roster
from services.matching.assignments import Busy
from services.matching.facilitator_records import LISTING_QUERY, InvalidFacilitator, parse, parse_changes
from services.matching.store import MatchingStore
from shared.health import HealthEndpoint
from shared.http_server import http
from shared.jsonlog import LogContext
from shared.messaging.consumer import event_consumer
from shared.messaging.rpc import Caller, rpc
from shared.messaging.outbox import Outbox, OutboxRelayTimer
from shared.storage import StoreProvider
from shared.security import access
from shared.openapi import OpenApiEndpoint
from shared.web import (Authenticator, BadRequest, Conflict, Forbidden, NotFound, api, json_response, read_json,
                        read_query)

log = logging.getLogger(__name__)

READERS = ("coordinator", "auditor")
# How often offers are checked for expiry and the waitlist retried; read when the class
# is defined, as nameko's timer requires.
SWEEP_INTERVAL = float(os.environ.get("MATCHING_SWEEP_INTERVAL", "30"))
ROSTER_INTERVAL = float(os.environ.get("MATCHING_ROSTER_REFRESH", "1"))


class MatchingSettings(DependencyProvider):
    """The suitability policy and the offer rules, loaded and checked at start-up: a bad
    policy file stops the service with its line and fault, and so does a bad local switch
    (MATCHING_LOCAL_SWITCHES). The roster reads the registry through the service's store
    (its StoreProvider, set up before any provider starts)."""

    def setup(self):
        config = self.container.config
        path = config.get("MATCHING_POLICY_FILE") or suitability_policy.DEFAULT_PATH
        try:
            policy = suitability_policy.load(path)
            switched = suitability_policy.local_switches(config.get("MATCHING_LOCAL_SWITCHES"), policy)
        except (suitability_policy.PolicyError, suitability_policy.SwitchError, OSError) as error:
            log.error("suitability policy refused: %s", error)
            raise
        policy = policy.with_local(**switched)
        # which safeguards are in force is the first thing to check when decisions surprise
        in_force = ", ".join(f"{name}={str(value).lower()}" for name, value in sorted(policy.local.items()))
        log.info("suitability policy %s loaded from %s (%d rules); local switches: %s (set for this deployment: %s)",
                 policy.version, path, len(policy.rules), in_force, ", ".join(sorted(switched)) or "none")
        self.settings = workflow.Settings(
            policy=policy,
            roster=Roster(None, refresh_every=ROSTER_INTERVAL / 2),
            offer_for=timedelta(seconds=float(config.get("MATCHING_OFFER_TIMEOUT") or 72 * 3600)),
            waitlist_batch=int(config.get("MATCHING_WAITLIST_BATCH") or 20),
        )

    def start(self):
        stores = [d for d in self.container.dependencies if isinstance(d, StoreProvider)]
        self.settings.roster.store = stores[0].store

    def get_dependency(self, worker_ctx):
        return self.settings


def _require_regions(principal, regions):
    outside = sorted(r for r in regions if not principal.covers(r))
    if outside:
        raise Forbidden("your key does not cover every region given",
                        fields={"regions": [f"Not covered by your key: {', '.join(outside)}."]})


def _invalid(error):
    return BadRequest("the facilitator record is not valid", fields=error.errors)


class MatchingService(HealthEndpoint, OpenApiEndpoint, OutboxRelayTimer):
    name = "matching"
    api_document = staticmethod(openapi.document)

    store = StoreProvider(MatchingStore)
    outbox = Outbox(collections=MatchingStore.OUTBOX_COLLECTIONS)
    auth = Authenticator()
    matching = MatchingSettings()
    log_context = LogContext()
    # RPC callers are checked against shared.messaging.permissions.RPC_CALLERS before any
    # worker runs: the registry calls are the operator's, the contact lookup notifications'
    caller = Caller()

    # --- events ---
    @event_consumer("assess")
    def on_referral_received(self, event):
        workflow.handle_referral_received(event, self.outbox, self.matching, self.store)

    @event_consumer("release")
    def on_case_closed(self, event):
        workflow.close_case(event["data"]["case_id"], event["data"]["reason"], self.outbox, self.matching, self.store)

    @event_consumer("consent")
    def on_consent_changed(self, event):
        workflow.handle_consent_changed(event, self.outbox, self.matching, self.store)

    @event_consumer("erasure")
    def on_participant_erased(self, event):
        self.store.forget_participant(event["data"]["participant_id"])

    @timer(interval=ROSTER_INTERVAL)
    def refresh_roster(self):
        """Follow the registry's change log, off the path of any assignment."""
        self.matching.roster.refresh()

    @timer(interval=SWEEP_INTERVAL)
    def sweep(self):
        """Offers not accepted in time go to the next candidate; waiting cases try again;
        facilitators changed lately are released from cases they no longer fit."""
        workflow.expire_offers(self.outbox, self.matching, self.store)
        workflow.retry_waitlist(self.outbox, self.matching, self.store)
        # registry changes of the last few sweeps: finish any withdrawal their request could not
        workflow.withdraw_after_changes(self.outbox, self.matching, self.store,
                                        datetime.now(timezone.utc) - timedelta(seconds=3 * SWEEP_INTERVAL))
        self.store.prune_changes(datetime.now(timezone.utc) - timedelta(days=1))

    # --- the facilitator registry over HTTP ---
    @http("POST", "/v1/facilitators")
    @api(roles=("coordinator",), scope="region")
    def create_facilitator(self, request, principal):
        try:
            record = parse(read_json(request))
        except InvalidFacilitator as error:
            raise _invalid(error)
        _require_regions(principal, record["regions"])
        try:
            created = facilitators.create(self.store, record)
        except InvalidFacilitator as error:
            raise _invalid(error)
        except facilitators.AlreadyRegistered:
            raise Conflict("a facilitator with this id is already registered")
        self.matching.roster.refresh(force=True)
        workflow.retry_waitlist(self.outbox, self.matching, self.store, regions=set(created.regions))
        return json_response(self._view(self.store.get_facilitator(created.facilitator_id)), 201,
                             {"Location": f"/v1/facilitators/{created.facilitator_id}"})

    @http("PATCH", "/v1/facilitators/<string:facilitator_id>")
    @api(roles=("coordinator",), scope="region")
    def change_facilitator(self, request, facilitator_id, principal):
        self._facilitator_for(principal, facilitator_id)
        changes = read_json(request)
        if isinstance(changes.get("regions"), list):
            _require_regions(principal, [r for r in changes["regions"] if isinstance(r, str)])
        try:
            changed = self._update(facilitator_id, changes)
        except InvalidFacilitator as error:
            raise _invalid(error)
        return json_response(self._view(changed))

    @http("POST", "/v1/facilitators/<string:facilitator_id>/deactivate")
    @api(roles=("coordinator",), scope="region")
    def end_facilitator(self, request, facilitator_id, principal):
        self._facilitator_for(principal, facilitator_id)
        return json_response(self._view(self._deactivate(facilitator_id)))

    @http("GET", "/v1/facilitators/<string:facilitator_id>")
    @api(roles=READERS, scope="region")
    def show_facilitator(self, request, facilitator_id, principal):
        return json_response(self._view(self._facilitator_for(principal, facilitator_id)))

    @http("GET", "/v1/facilitators")
    @api(roles=READERS, scope="listing")
    def list_facilitators(self, request, principal):
        args = read_query(request, LISTING_QUERY)
        active, limit, offset = args.get("active"), args["limit"], args["offset"]
        region = args.get("region")
        if region is not None and not principal.covers(region):
            found = []  # asking beyond one's regions finds nothing
        else:
            found = facilitators.listing(self.store, region, active, limit, offset,
                                         within=None if principal.national else sorted(principal.regions))
        return json_response({"facilitators": [self._view(f) for f in found], "limit": limit, "offset": offset})

    # --- assessments and offers over HTTP ---
    @http("POST", "/v1/cases/<string:case_id>/decision")
    @api(roles=("coordinator",), scope="case-act")
    def decide_case(self, request, case_id, principal):
        try:
            decision = review.read(read_json(request))
        except review.InvalidDecision as error:
            raise BadRequest("the decision is not valid", fields=error.errors)
        try:
            assessment = workflow.decide_review(case_id, decision["decision"], decision["reason_code"],
                                                decision["reason"], principal.who, self.outbox, self.matching,
                                                self.store)
        except workflow.NotFound:
            raise NotFound("no assessment for this case")
        except workflow.InvalidTransition as error:
            raise Conflict(str(error), reason=error.code)
        except Busy:
            raise Conflict("the case is being updated; try again", reason="busy")
        return json_response(self._assessment_view(assessment), 201)

    @http("GET", "/v1/cases/<string:case_id>/assessment")
    @api(roles=READERS, scope="case")
    def get_assessment(self, request, case_id, principal):
        assessment = self.store.latest_assessment(case_id)
        if assessment is None:
            raise NotFound("no assessment for this case")
        return json_response(self._assessment_view(assessment))

    @http("GET", "/v1/cases/<string:case_id>/assignment")
    @api(roles=READERS + ("facilitator",), scope="case")
    def get_assignment(self, request, case_id, principal):
        case = self.store.get_assignment(case_id)
        if case is None:
            raise NotFound("no assignment for this case")
        return json_response({"case_id": case_id, "status": case.status, "offers": [s.view() for s in case.slots]})

    @http("POST", "/v1/assignments/<string:assignment_id>/accept")
    @api(roles=("facilitator", "coordinator"), scope="offer")
    def accept_offer(self, request, assignment_id, principal):
        return self._respond(assignment_id, True, principal)

    @http("POST", "/v1/assignments/<string:assignment_id>/decline")
    @api(roles=("facilitator", "coordinator"), scope="offer")
    def decline_offer(self, request, assignment_id, principal):
        return self._respond(assignment_id, False, principal)

    # --- cases waiting for staff over HTTP ---
    @http("GET", "/v1/waiting")
    @api(roles=READERS, scope="listing")
    def list_waiting(self, request, principal):
        args = read_query(request, waiting.WAITING_QUERY)
        region, limit, offset = args.get("region"), args["limit"], args["offset"]
        if region is not None:
            regions = [region] if principal.covers(region) else []  # asking beyond one's regions finds nothing
        else:
            regions = None if principal.national else sorted(principal.regions)
        if regions == []:
            return json_response({"cases": [], "total": 0, "limit": limit, "offset": offset, "next_offset": None})
        return json_response(waiting.page(self.store, regions, limit, offset))

    # --- the registry over RPC ---
    @rpc
    def register_facilitator(self, record):
        created = facilitators.create(self.store, parse(record))
        self.matching.roster.refresh(force=True)
        workflow.retry_waitlist(self.outbox, self.matching, self.store, regions=set(created.regions))
        return self._view(self.store.get_facilitator(created.facilitator_id))

    @rpc
    def update_facilitator(self, facilitator_id, changes):
        return self._view(self._update(facilitator_id, changes))

    @rpc
    def deactivate_facilitator(self, facilitator_id):
        return self._view(self._deactivate(facilitator_id))

    @rpc
    def get_facilitator(self, facilitator_id):
        return self._view(self.store.get_facilitator(facilitator_id))

    @rpc
    def get_facilitator_contact(self, facilitator_id, purpose, requester):
        """A facilitator's work contact details for a stated purpose (CONTRACTS.md)."""
        answer = facilitators.contact(self.store, facilitator_id, purpose)
        log.info("facilitator contact %s for %s by %s: %s", facilitator_id, purpose, self.caller or requester,
                 answer["reason"])
        return answer

    # --- shared by HTTP and RPC ---
    def _update(self, facilitator_id, changes):
        checked = parse_changes(changes)
        try:
            changed = facilitators.update(self.store, facilitator_id, checked)
        except facilitators.UnknownFacilitator:
            raise NotFound("no such facilitator")
        self.matching.roster.refresh(force=True)
        # a conflict declared, an endorsement or vetting lost: their cases go to someone else
        self._hand_on(facilitator_id)
        workflow.retry_waitlist(self.outbox, self.matching, self.store, regions=set(changed.regions))
        return changed

    def _deactivate(self, facilitator_id):
        try:
            facilitators.deactivate(self.store, facilitator_id)
        except facilitators.UnknownFacilitator:
            raise NotFound("no such facilitator")
        self.matching.roster.refresh(force=True)
        self._hand_on(facilitator_id)
        return self.store.get_facilitator(facilitator_id)

    def _hand_on(self, facilitator_id):
        """Release the facilitator from cases they no longer fit. The registry change is
        made: if a case is busy the sweep finishes the job, and the request succeeds."""
        try:
            workflow.withdraw_unfit(facilitator_id, self.outbox, self.matching, self.store)
        except Busy:
            log.warning("facilitator %s: a case was busy; the sweep will finish handing their cases on",
                        facilitator_id)

    def case_relation(self, case_id):
        return workflow.case_relation(self.store, case_id)

    def _view(self, facilitator):
        return facilitators.view(self.store, facilitator)

    def _facilitator_for(self, principal, facilitator_id):
        """The facilitator, if they work in one of the caller's regions (404 otherwise)."""
        found = self.store.get_facilitator(facilitator_id)
        if found is None or not any(principal.covers(region) for region in found.regions):
            raise NotFound("no such facilitator")
        return found

    def _respond(self, assignment_id, accepted, principal):
        # a facilitator answers their own offers; a coordinator records anyone's answer on a
        # case in their regions
        acting_for = principal.subject if principal.role == "facilitator" else None
        if acting_for is None:
            case_id = self.store.case_of_offer(assignment_id)
            relation = workflow.case_relation(self.store, case_id) if case_id else None
            if relation is None or not access.may_act(principal, relation):
                raise NotFound("no such offer")
        try:
            case, slot = workflow.respond(assignment_id, accepted, self.outbox, self.matching, self.store,
                                          acting_for=acting_for)
        except workflow.NotFound:
            raise NotFound("no such offer")
        except workflow.NotYours:
            raise Forbidden("this offer was made to another facilitator")
        except workflow.InvalidTransition as error:
            raise Conflict(str(error), reason=error.code)
        except Busy:
            raise Conflict("the case is being updated; try again", reason="busy")
        return json_response({"assignment_id": assignment_id, "case_id": case.case_id, "state": slot.state,
                              "facilitator_id": slot.facilitator_id, "role": slot.role})

    @staticmethod
    def _assessment_view(assessment):
        return {"case_id": assessment.case_id, "assessment_id": assessment.assessment_id,
                **{k: v for k, v in assessment.outcome.items()},
                "reviewed": bool(assessment.review)}
