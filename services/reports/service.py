"""The reports service: the standard RJ measures (docs/reports.md), kept as a read model that
follows records' ledger, served as JSON and CSV. Entrypoints and plumbing only; the rules
are in projection.py, measures.py, national.py, disclosure.py, follower.py and views.py."""
import logging
import time
from contextlib import contextmanager

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from services.reports import openapi, views
from services.reports.follower import LedgerFollower
from services.reports.snapshot import UnreadableSnapshot
from services.reports.store import ReportsStore
from shared.config import settings_for
from shared.health import HealthEndpoint
from shared.http_server import http
from shared.jsonlog import LogContext
from shared.messaging.rpc import IdentifiedRpcProxy, following_ledger
from shared.openapi import OpenApiEndpoint
from shared.storage import StoreProvider, connect, disconnect
from shared.timers import configured_timer
from shared.web import Authenticator, BadRequest, Forbidden, NotFound, api, json_response

log = logging.getLogger(__name__)

READERS = ("coordinator", "auditor")
CSV = "text/csv"


class ReadModel(DependencyProvider):
    """This process's read model and its follower of the ledger (one per process)."""

    def setup(self):
        config = self.container.config
        self.settings = settings_for(self.container.service_name, config)
        self.feed_timeout = float(config.get("REPORTS_FEED_TIMEOUT") or 10)
        self.save_every = float(config.get("REPORTS_SAVE_INTERVAL") or 5)

    def start(self):
        # its own connection: the follower lets go of its lease after the StoreProvider's closed
        self.alias = f"{self.container.service_name}-follower"
        store = ReportsStore(connect(self.container.service_name, self.settings, alias=self.alias))
        self.follower = LedgerFollower(store, save_every=self.save_every)

    def stop(self):
        try:
            self.follower.stop(time.time())
        except Exception as error:   # what was not saved is folded again by the next process
            log.warning("the reports state could not be saved on stopping: %s", type(error).__name__)
        finally:
            disconnect(self.alias)

    def get_dependency(self, worker_ctx):
        return self

    @property
    def region(self):
        return self.settings.region

    def follow(self, records):
        try:
            with following_ledger(records, self.feed_timeout, log) as read_page:
                self.follower.round(read_page, time.time())
        except UnreadableSnapshot as unreadable:
            log.error("the saved reports state cannot be loaded (%s): answering from the state held; "
                      "rebuild it with python -m services.reports.rebuild", unreadable)


@contextmanager
def answers():
    """The views' refusals, as the API answers them."""
    try:
        yield
    except views.InvalidQuery as error:
        raise BadRequest(str(error), param=error.param)
    except views.UnknownMeasure as error:
        raise NotFound(str(error))
    except views.NotAllowed as error:
        raise Forbidden(str(error))


def wants_csv(request, measure):
    return measure.endswith(".csv") or request.accept_mimetypes.best_match(["application/json", CSV]) == CSV


class ReportsService(HealthEndpoint, OpenApiEndpoint):
    name = "reports"
    api_document = staticmethod(openapi.document)

    store = StoreProvider(ReportsStore)
    records = IdentifiedRpcProxy("records")
    model = ReadModel()
    auth = Authenticator()
    log_context = LogContext()

    @configured_timer("REPORTS_FEED_INTERVAL", 1.0)
    def follow_ledger(self):
        self.model.follow(self.records)

    @http("GET", "/v1/reports")
    @api(roles=READERS, scope="report")
    def list_reports(self, request, principal):
        with answers():
            seen_by = views.audience(principal)
            return json_response({"view": seen_by.view, "items": views.catalogue(seen_by)})

    @http("GET", "/v1/reports/<string:measure>")
    @api(roles=READERS, scope="report")
    def get_report(self, request, measure, principal):
        csv = wants_csv(request, measure)
        name = measure[:-len(".csv")] if measure.endswith(".csv") else measure
        follower = self.model.follower
        state, position = follower.state, follower.position   # one state throughout, however it moves on
        with answers():
            seen_by = views.audience(principal)
            made = views.report(name, state, seen_by, views.query(request.args, seen_by), self.model.region)
        if csv:
            return Response(views.as_csv(made), status=200, content_type=f"{CSV}; charset=utf-8; header=present",
                            headers={"Content-Disposition": f'attachment; filename="{views.csv_filename(made)}"'})
        return json_response(views.as_json(made, state, position))
