"""The matching service: assessment and facilitator assignment. Entrypoints only."""

from services.matching import workflow
from services.matching.assessments import Assessment
from shared.health import HealthEndpoint
from shared.jsonlog import LogContext
from shared.messaging.consumer import event_consumer
from shared.messaging.outbox import Outbox, OutboxRelayTimer
from shared.storage import Database


class MatchingService(HealthEndpoint, OutboxRelayTimer):
    name = "matching"

    db = Database()
    outbox = Outbox(documents=[Assessment])
    log_context = LogContext()

    @event_consumer("assess")
    def on_referral_received(self, event):
        workflow.handle_referral_received(event, self.outbox)
