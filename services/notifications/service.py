"""The notifications service: tells people what is happening. Entrypoints only."""
import logging
import os

from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.notifications import agencies, coordinators, openapi, workflow
from services.notifications.contacts import Contacts
from services.notifications.couriers import Couriers
from services.notifications.mailer import Mailer
from services.notifications.sms import SmsGateway
from services.notifications.store import NotificationsStore
from shared.config import setting, settings_for
from shared.health import HealthEndpoint
from shared.http_server import http
from shared.jsonlog import LogContext
from shared.messaging.consumer import event_consumer
from shared.messaging.outbox import Outbox, OutboxRelayTimer
from shared.messaging.rpc import IdentifiedRpcProxy
from shared.storage import StoreProvider
from shared.security import access
from shared.openapi import OpenApiEndpoint
from shared.web import Authenticator, api, json_response, read_query, require_case

log = logging.getLogger(__name__)

# The key under which the consumer would tell a worker which attempt it is on
# (see docs/notifications.md); until it does, deliveries count their own attempts.
ATTEMPT_CONTEXT_KEY = "attempt"
# Where replies go (people are told to reply NO to say no): a monitored inbox in production.
REPLY_TO = "Amends restorative justice service <rj-replies@amends.local>"


class CouriersProvider(DependencyProvider):
    def setup(self):
        config = self.container.config
        mailer = Mailer(setting(config, "SMTP_HOST", "127.0.0.1"), setting(config, "SMTP_PORT", 1025),
                        setting(config, "SMTP_FROM", "Amends <no-reply@amends.local>"),
                        setting(config, "SMTP_REPLY_TO", REPLY_TO))
        gateway = setting(config, "SMS_GATEWAY_URL")
        sms = None
        if gateway:
            # a secret: from the environment only, never from a file in the repository
            sms = SmsGateway(gateway, os.environ.get("SMS_API_KEY", ""), setting(config, "SMS_TEMPLATE_ID"))
        self.couriers = Couriers(mailer, sms)

    def get_dependency(self, worker_ctx):
        return self.couriers


class DirectoryProvider(DependencyProvider):
    """One of notifications' own directories of work contacts (the coordinating team of each
    region, coordinators.py; each agency's contact, agencies.py), read and checked when the
    service starts: a file it cannot use stops the service, naming the file and the fault."""

    def __init__(self, directory, error, what):
        self.directory, self.error, self.what = directory, error, what

    def setup(self):
        path = setting(self.container.config, self.directory.SETTING) or None
        try:
            self.entries = self.directory.load(path)
        except self.error as error:
            log.error("%s refused: %s", self.what, error)
            raise
        log.info("%s: %d loaded from %s", self.what, len(self.entries), self.entries.source)

    def get_dependency(self, worker_ctx):
        return self.entries


class DeliveryPolicy(DependencyProvider):
    """Retry delays, the contact lookup timeout, and this worker's attempt number."""

    def setup(self):
        config = self.container.config
        self.retry_delays = settings_for(self.container.service_name, config).retry_delays
        self.lookup_timeout = float(setting(config, "NOTIFICATIONS_CONTACT_TIMEOUT", 10))
        self.reminder_hours = float(setting(config, "NOTIFICATIONS_SESSION_REMINDER_HOURS", 24))

    def get_dependency(self, worker_ctx):
        attempt = worker_ctx.data.get(ATTEMPT_CONTEXT_KEY)
        return {"retry_delays": self.retry_delays, "lookup_timeout": self.lookup_timeout,
                "attempt": int(attempt) if attempt else None, "reminder_hours": self.reminder_hours}


class SettingTimer(Timer):
    """A timer whose interval is a setting, read when the service starts."""

    def __init__(self, key, default, **kwargs):
        self.key, self.default = key, default
        super().__init__(interval=default, **kwargs)

    def setup(self):
        self.interval = float(setting(self.container.config, self.key, self.default))


class NotificationsService(HealthEndpoint, OpenApiEndpoint, OutboxRelayTimer):
    name = "notifications"
    api_document = staticmethod(openapi.document)

    store = StoreProvider(NotificationsStore)
    outbox = Outbox(collections=NotificationsStore.outbox_collections)
    referrals = IdentifiedRpcProxy("referrals")
    matching = IdentifiedRpcProxy("matching")
    couriers = CouriersProvider()
    coordinators = DirectoryProvider(coordinators, coordinators.CoordinatorTeamsError, "coordinating teams")
    agencies = DirectoryProvider(agencies, agencies.AgencyContactsError, "agencies' contacts")
    policy = DeliveryPolicy()
    auth = Authenticator()
    log_context = LogContext()

    def _ports(self):
        return workflow.Ports(
            store=self.store,
            outbox=self.outbox,
            contacts=Contacts(self.referrals, self.matching, self.policy["lookup_timeout"], self.coordinators,
                              self.agencies),
            couriers=self.couriers,
            retry_delays=self.policy["retry_delays"],
            attempt=self.policy["attempt"],
            reminder_hours=self.policy["reminder_hours"],
        )

    @event_consumer("notify")
    def on_case_event(self, event):
        workflow.handle(event, self._ports())

    @SettingTimer.decorator("NOTIFICATIONS_DUE_INTERVAL", 15)
    def send_due_deliveries(self):
        workflow.send_due(self._ports())

    def case_relation(self, case_id):
        """The case as notifications knows it: its agency and region (only coordinators and
        auditors read here, so who holds it does not matter)."""
        known = self.store.case(case_id)
        if known is None:
            return None
        return access.CaseRelation(agency=known.summary.get("agency"), region=known.summary.get("region"))

    @http("GET", "/v1/notifications")
    @api(roles=("coordinator", "auditor"), scope="case")
    def list_notifications(self, request, principal):
        case_id = read_query(request, openapi.QUERY)["case"]
        require_case(principal, self.case_relation(case_id))
        deliveries = self.store.deliveries_for_case(case_id)
        # pseudonymous ids and codes only: no names, addresses or message text
        return json_response({"case_id": case_id, "notifications": [
            {"notification_id": d.notification_id, "event_type": d.event_type, "recipient_role": d.recipient_role,
             "recipient_id": d.recipient_id, "channel": d.channel, "template": d.template,
             "language": d.language, "status": d.status, "reason": d.reason, "attempts": d.attempts,
             "due_at": d.due_at.isoformat() if d.due_at else None, "at": d.at.isoformat()}
            for d in deliveries
        ]})
