"""The notifications service: tells people what is happening. Entrypoints only."""
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from nameko.web.handlers import http

from services.notifications import workflow
from services.notifications.deliveries import Delivery
from services.notifications.mailer import Mailer
from shared.health import HealthEndpoint
from shared.jsonlog import LogContext
from shared.messaging.consumer import event_consumer
from shared.messaging.outbox import Outbox, OutboxRelayTimer
from shared.storage import Database
from shared.web import Authenticator, BadRequest, api, json_response


class MailerProvider(DependencyProvider):
    def setup(self):
        self.mailer = Mailer()

    def get_dependency(self, worker_ctx):
        return self.mailer


class NotificationsService(HealthEndpoint, OutboxRelayTimer):
    name = "notifications"

    db = Database()
    outbox = Outbox(documents=[Delivery])
    referrals = RpcProxy("referrals")
    mailer = MailerProvider()
    auth = Authenticator()
    log_context = LogContext()

    @event_consumer("notify")
    def on_case_event(self, event):
        if event["type"] == "referral.received":
            workflow.remember_case(event)
        elif event["type"] == "facilitator.assigned":
            workflow.tell_referrer_of_assignment(event, self.outbox, self.referrals, self.mailer)

    @http("GET", "/v1/notifications")
    @api(roles=("coordinator", "auditor"))
    def list_notifications(self, request, principal):
        case_id = request.args.get("case")
        if not case_id:
            raise BadRequest("give the case id as ?case=", fields={"case": ["Missing data for required field."]})
        deliveries = Delivery.objects(case_id=case_id).order_by("at")
        return json_response({"case_id": case_id, "notifications": [
            {"notification_id": d.notification_id, "recipient_role": d.recipient_role,
             "recipient_id": d.recipient_id, "channel": d.channel, "template": d.template,
             "status": d.status, "reason": d.reason, "at": d.at.isoformat()}
            for d in deliveries
        ]})
