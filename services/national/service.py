"""The national service: statistics from every region, each counted once. Entrypoints only."""
from services.national.consumer import statistic_consumer
from services.national.store import NationalStore
from shared.health import HealthEndpoint
from shared.jsonlog import LogContext
from shared.storage import StoreProvider


class NationalService(HealthEndpoint):
    name = "national"

    store = StoreProvider(NationalStore)
    log_context = LogContext()

    @statistic_consumer
    def on_statistic(self, delivery):
        self.store.add(delivery["statistic"])
