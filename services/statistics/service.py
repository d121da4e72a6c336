"""The statistics service: a region's events, de-identified, sent towards the national view.
Entrypoints and plumbing only; the rules are in workflow.py and shared/statistics_profile.py."""
import os

from nameko.extensions import DependencyProvider

from services.statistics import workflow
from services.statistics.store import StatisticsStore
from shared import statistics_profile
from shared.config import settings_for
from shared.health import HealthEndpoint
from shared.jsonlog import LogContext
from shared.messaging import national
from shared.messaging.consumer import event_consumer
from shared.storage import StoreProvider

KEY_SETTING = "AMENDS_STATISTICS_KEY"


class NationalOutbound(DependencyProvider):
    """Injects `send(statistic)` (shared.messaging.national.StatisticSender): it returns once
    the broker has the statistic, so the event it came from is acked only when it is safe.

    The region's key for statistic ids comes from the config or the environment; without a
    valid one the service does not start."""

    def setup(self):
        settings = settings_for(self.container.service_name, self.container.config)
        self.region = settings.region
        text = self.container.config.get(KEY_SETTING) or os.environ.get(KEY_SETTING, "")
        if not text.strip():
            raise RuntimeError(f"{KEY_SETTING} is not set: the statistics service does not start without it")
        self.key = statistics_profile.key_from_text(text)
        self.send = national.StatisticSender(settings.amqp_uri).send

    def get_dependency(self, worker_ctx):
        return self


class StatisticsService(HealthEndpoint):
    name = "statistics"

    store = StoreProvider(StatisticsStore)
    outbound = NationalOutbound()
    log_context = LogContext()

    @event_consumer("deidentify")
    def on_event(self, event):
        workflow.handle(event, store=self.store, region=self.outbound.region, key=self.outbound.key,
                        send=self.outbound.send)
