"""The referrals service: intake over HTTP, contact details over RPC. Entrypoints only."""
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.web.handlers import http

from services.referrals import cases, contact, intake
from services.referrals.protection import Vault, load_master_key
from shared.health import HealthEndpoint
from shared.jsonlog import LogContext, current
from shared.messaging.outbox import Outbox, OutboxRelayTimer
from shared.storage import Database
from shared.web import Authenticator, BadRequest, Forbidden, NotFound, api, json_response, read_json

STAFF = ("coordinator", "facilitator", "auditor")


class VaultProvider(DependencyProvider):
    def setup(self):
        self.vault = Vault(load_master_key())

    def get_dependency(self, worker_ctx):
        return self.vault


class ReferralsService(HealthEndpoint, OutboxRelayTimer):
    name = "referrals"

    db = Database()
    outbox = Outbox(documents=[cases.Case])
    auth = Authenticator()
    vault = VaultProvider()
    log_context = LogContext()

    @http("POST", "/v1/referrals")
    @api(roles=("referrer", "coordinator"))
    def submit_referral(self, request, principal):
        try:
            referral = intake.parse(read_json(request), principal.agency)
        except intake.InvalidReferral as invalid:
            raise BadRequest("the referral is not valid", fields=invalid.errors)
        event = self.outbox.event(
            "referral.received", referral.case_id, referral.received_event_data(), correlationid=referral.case_id
        )
        case = cases.open_case(referral, self.vault, event)
        case.save(force_insert=True)
        self.outbox.flush(case)
        return json_response({"case_id": case.case_id, "status": case.status}, 201,
                             {"Location": f"/v1/cases/{case.case_id}"})

    @http("GET", "/v1/cases/<string:case_id>")
    @api(roles=("referrer",) + STAFF)
    def get_case(self, request, case_id, principal):
        case = cases.Case.objects(case_id=case_id).first()
        if case is None:
            raise NotFound("no such case")
        if principal.role == "referrer" and case.agency != principal.agency:
            raise Forbidden("this case belongs to another agency")
        return json_response({
            "case_id": case.case_id,
            "status": case.status,
            "agency": case.agency,
            "region": case.region,
            "attributes": case.attributes,
            "participants": [
                {"participant_id": p["party_id"], "role": p["role"], **p["attributes"]} for p in case.participants
            ],
            "created_at": case.created_at.isoformat(),
        })

    @rpc
    def get_contact(self, party_id, purpose, requester):
        """Contact details of one person for one stated purpose; every call is logged."""
        case = cases.Case.objects(__raw__={"$or": [
            {"referrer.party_id": party_id}, {"participants.party_id": party_id}
        ]}).first()
        if case is None:
            decision = contact.Decision(False, "unknown_party", {})
        else:
            party = case.party(party_id)
            personal = cases.unseal(self.vault, party_id, party["sealed"])
            decision = contact.decide(party["role"], personal, purpose)
        cases.ContactAccess(
            party_id=party_id,
            case_id=case.case_id if case else None,
            purpose=purpose,
            requester=requester,
            granted=decision.granted,
            reason=decision.reason,
            fields_released=decision.fields,
            correlationid=current("correlationid"),
        ).save()
        return {"granted": decision.granted, "reason": decision.reason, "details": decision.details}
