"""Readiness of a service's two dependencies, for its `GET /health` endpoint; and, beside
it, `GET /metrics` for Prometheus (shared/metrics.py)."""
import json

from kombu import Connection
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from shared import metrics
from shared.config import settings_for
from shared.storage import connect
from shared.http_server import http
from shared.web import api


def check(db, amqp_uri):
    problems = []
    try:
        db.command("ping")
    except Exception as exc:
        problems.append(f"database: {type(exc).__name__}")
    try:
        with Connection(amqp_uri, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        problems.append(f"broker: {type(exc).__name__}")
    return {"status": "ok" if not problems else "unavailable", "problems": problems}


class HealthCheck(DependencyProvider):
    """Injects a function that reports on the service's database and broker."""

    def setup(self):
        self.service = self.container.service_name
        self.settings = settings_for(self.service, self.container.config)
        self.db = connect(self.service, self.settings)

    def get_dependency(self, worker_ctx):
        return lambda: check(self.db, self.settings.amqp_uri)


class HealthEndpoint:
    """Mixin for a service class: `GET /health`, 200 when ready and 503 when not; and
    `GET /metrics`, the process's metrics for Prometheus to scrape (no key: they hold
    counts by route, event type and outcome, nothing about any case or person)."""

    health_check = HealthCheck()

    @http("GET", "/health")
    @api(roles=None, scope="public")
    def health(self, request):
        report = self.health_check()
        return Response(json.dumps(report), status=200 if report["status"] == "ok" else 503,
                        mimetype="application/json")

    @http("GET", "/metrics")
    @api(roles=None, scope="public")
    def scrape(self, request):
        body, content_type = metrics.exposition(request.headers.get("Accept"))
        return Response(body, status=200, content_type=content_type)
