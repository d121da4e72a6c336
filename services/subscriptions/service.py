"""The subscriptions service: agencies receive the case events they are entitled to, redacted
by their data-sharing profile, as signed webhooks (docs/subscriptions.md). Entrypoints and
plumbing only; the rules are in subscription.py, feed.py, dispatcher.py and workflow.py, and
agencies' AMQP feeds in broker_feeds.py."""
import logging
import os
from contextlib import contextmanager
from datetime import timedelta

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from services.subscriptions import openapi, profiles, sharing, workflow
from services.subscriptions.backoff import Backoff
from services.subscriptions.broker_feeds import ADMIN_URL, AmqpChannel, BrokerFeeds
from services.subscriptions.dispatcher import Dispatcher, Settings as DispatchSettings
from services.subscriptions.feed import FeedFollower
from services.subscriptions.sealing import SecretSeal
from services.subscriptions.store import SubscriptionsStore
from services.subscriptions.subscription import InvalidSubscription
from services.subscriptions.webhooks import WebhookChannel
from shared import statistics_profile
from shared.config import StartRefused, settings_for
from shared.health import HealthEndpoint
from shared.http_server import http
from shared.jsonlog import LogContext
from shared.messaging.outbox import Outbox, OutboxHandle, OutboxRelayTimer
from shared.messaging.rpc import IdentifiedRpcProxy, following_ledger
from shared.storage import StoreProvider, connect, disconnect
from shared.timers import configured_timer
from shared.openapi import OpenApiEndpoint
from shared.web import (Authenticator, BadRequest, Conflict, Forbidden, HttpError, NotFound, api, json_response,
                        read_json, read_query)

log = logging.getLogger(__name__)

KEY_SETTING = "AMENDS_SUBSCRIPTIONS_KEY"
OWNERS = ("referrer", "auditor")
SHARING_READERS = ("coordinator", "referrer", "auditor")


class NotAvailable(HttpError):
    status, code = 501, "not_implemented"


class Unavailable(HttpError):
    status, code = 503, "unavailable"


def _setting(config, name, default):
    value = config.get(name)
    if value in (None, ""):
        value = os.environ.get(name)
    return default if value in (None, "") else value


def _flag(value):
    return str(value).strip().lower() in ("1", "true", "yes")


def service_key(config, service):
    """AMENDS_SUBSCRIPTIONS_KEY: the key of the statistics profile's ids, and the root of the
    key that seals webhook secrets at rest. Without it the service does not start."""
    text = _setting(config, KEY_SETTING, "")
    try:
        key = statistics_profile.key_from_text(text) if text.strip() else None
    except ValueError:
        key = None
    if key is None:
        raise StartRefused(service, f"{KEY_SETTING} must be set to the base64 of 32 random bytes "
                                    "(the key of the statistics profile's ids and of sealed webhook secrets)")
    return key


class SealedStore(StoreProvider):
    """The service's store, sealing webhook secrets under a key derived from the service's own."""

    def __init__(self, **kwargs):
        super().__init__(SubscriptionsStore, **kwargs)

    def setup(self):
        seal = SecretSeal(service_key(self.container.config, self.container.service_name))
        self.factory = lambda db: SubscriptionsStore(db, seal)
        super().setup()


class Delivery(DependencyProvider):
    """This process's feed follower and dispatcher (one each), and the API's settings, read
    and checked at start-up: without the statistics key the service does not start."""

    def setup(self):
        config = self.container.config
        service = self.container.service_name
        key = service_key(config, service)
        number = lambda name, default: float(_setting(config, name, default))  # noqa: E731
        self.api = workflow.ApiSettings(
            allow_local_http=_flag(_setting(config, "SUBSCRIPTIONS_ALLOW_LOCAL_HTTP", "")),
            secret_overlap=timedelta(seconds=number("SUBSCRIPTIONS_SECRET_OVERLAP", 86400)))
        self.feed_timeout = number("SUBSCRIPTIONS_FEED_TIMEOUT", 10)
        self.settings = DispatchSettings(
            region=settings_for(service, config).region, statistic_key=key,
            backoff=Backoff(base=number("SUBSCRIPTIONS_RETRY_BASE", 1), cap=number("SUBSCRIPTIONS_RETRY_CAP", 3600),
                            window=number("SUBSCRIPTIONS_RETRY_WINDOW", 3 * 86400)),
            refresh=number("SUBSCRIPTIONS_REFRESH", 1), flush=number("SUBSCRIPTIONS_FLUSH", 0.5))
        self.channel = WebhookChannel(timeout=number("SUBSCRIPTIONS_TIMEOUT", 10),
                                      allow_loopback=self.api.allow_local_http)
        # amqp feeds are made through the broker's management API, as an administrator: without
        # that setting the service still runs, and answers amqp requests with a 501 naming it
        if _setting(config, ADMIN_URL, ""):
            try:
                self.feeds = BrokerFeeds(config)
            except ValueError:
                raise StartRefused(service, f"{ADMIN_URL} must be http(s)://<user>:<password>@<host>:<port> "
                                            "(user and password URL-quoted)")
        else:
            self.feeds = None
            log.warning("%s is not set: amqp subscriptions cannot be made or closed here", ADMIN_URL)
        # feeds made earlier are still fed without it: publishing needs only the service's own user
        self.amqp = AmqpChannel(settings_for(service, config).amqp_uri, timeout=number("SUBSCRIPTIONS_TIMEOUT", 10))
        if self.api.allow_local_http:
            log.warning("SUBSCRIPTIONS_ALLOW_LOCAL_HTTP=1: webhooks may go over plain http to this machine "
                        "(development only)")

    def start(self):
        # The store on a connection of its own: when the service stops, the dispatcher writes
        # its last cursors and lets go of its lease after the other providers may have closed
        # theirs. (The StoreProvider has made the indexes, on the same database.)
        service = self.container.service_name
        self.alias = f"{service}-delivery"
        store = SubscriptionsStore(connect(service, settings_for(service, self.container.config), alias=self.alias),
                                   SecretSeal(self.settings.statistic_key))
        self.outbox = next(d for d in self.container.dependencies if isinstance(d, Outbox))
        self.follower = FeedFollower(store, profiles)
        self.dispatcher = Dispatcher(store, {"webhook": self.channel, "amqp": self.amqp}, profiles, self.settings)
        if self.feeds is not None:
            try:
                # a changed SUBSCRIPTIONS_FEED_MAX_LENGTH reaches the existing feeds now
                self.feeds.apply_policy()
            except Exception as error:   # tried again with the next feed opened
                log.warning("the feeds' policy could not be set yet: %s", type(error).__name__)

    def stop(self):
        try:
            self.dispatcher.stop(OutboxHandle(self.outbox, _NoWorker()))
        finally:
            self.amqp.close()
            disconnect(self.alias)

    def get_dependency(self, worker_ctx):
        return self

    def follow(self, records):
        """Copy what records' ledger holds beyond what is stored here; hand it to the dispatcher."""
        with following_ledger(records, self.feed_timeout, log) as read_page:
            self.dispatcher.heard(self.follower.follow(read_page))


class _NoWorker:
    data = {}


@contextmanager
def answers():
    """The domain's refusals, as the API answers them."""
    try:
        yield
    except InvalidSubscription as error:
        raise BadRequest("the request is not valid", fields=error.errors)
    except sharing.InvalidSharing as error:
        raise BadRequest("the sharing agreement is not valid", fields=error.errors)
    except sharing.SharingRefused as refused:
        raise Forbidden(str(refused), **({"fields": refused.fields} if refused.fields else {}))
    except workflow.NotFound:
        raise NotFound("no such subscription")
    except workflow.Refused as refused:
        raise Conflict(str(refused))
    except workflow.NotAvailable as error:
        raise NotAvailable(str(error))
    except workflow.BrokerUnavailable as error:
        raise Unavailable(str(error))


class SubscriptionsService(HealthEndpoint, OpenApiEndpoint, OutboxRelayTimer):
    name = "subscriptions"
    api_document = staticmethod(openapi.document)

    store = SealedStore()
    outbox = Outbox(collections=SubscriptionsStore.OUTBOX_COLLECTIONS)
    records = IdentifiedRpcProxy("records")
    delivery = Delivery()
    auth = Authenticator()
    log_context = LogContext()

    # --- following the ledger, and delivering -------------------------------------------

    @configured_timer("SUBSCRIPTIONS_FEED_INTERVAL", 0.2)
    def follow_ledger(self):
        self.delivery.follow(self.records)

    @configured_timer("SUBSCRIPTIONS_DISPATCH_INTERVAL", 0.05)
    def dispatch(self):
        self.delivery.dispatcher.round(self.outbox)

    # --- subscriptions ----------------------------------------------------------------------

    @http("POST", "/v1/subscriptions")
    @api(roles=OWNERS, scope="agency")
    def create_subscription(self, request, principal):
        with answers():
            created, granted = workflow.create(self.store, self.outbox, read_json(request), principal,
                                               self.delivery.api, self.delivery.feeds)
        return json_response({"subscription_id": created.subscription_id, **granted}, 201,
                             {"Location": f"/v1/subscriptions/{created.subscription_id}"})

    @http("GET", "/v1/subscriptions")
    @api(roles=OWNERS, scope="agency")
    def list_subscriptions(self, request, principal):
        return json_response({"items": workflow.listing(self.store, principal)})

    @http("GET", "/v1/subscriptions/<string:subscription_id>")
    @api(roles=OWNERS, scope="agency")
    def get_subscription(self, request, subscription_id, principal):
        with answers():
            return json_response(workflow.view(self.store, workflow.owned(self.store, subscription_id, principal)))

    @http("PATCH", "/v1/subscriptions/<string:subscription_id>")
    @api(roles=OWNERS, scope="agency")
    def change_subscription(self, request, subscription_id, principal):
        with answers():
            changed = workflow.change(self.store, subscription_id, read_json(request), principal, self.delivery.api)
        return json_response(workflow.view(self.store, changed))

    @http("DELETE", "/v1/subscriptions/<string:subscription_id>")
    @api(roles=OWNERS, scope="agency")
    def delete_subscription(self, request, subscription_id, principal):
        with answers():
            workflow.delete(self.store, self.outbox, subscription_id, principal, self.delivery.feeds)
        return Response(status=204)

    @http("POST", "/v1/subscriptions/<string:subscription_id>/rotate-secret")
    @api(roles=OWNERS, scope="agency")
    def rotate_secret(self, request, subscription_id, principal):
        with answers():
            return json_response(workflow.rotate_secret(self.store, subscription_id, principal, self.delivery.api,
                                                        self.delivery.feeds))

    @http("POST", "/v1/subscriptions/<string:subscription_id>/replay")
    @api(roles=OWNERS, scope="agency")
    def replay(self, request, subscription_id, principal):
        with answers():
            return json_response(workflow.replay(self.store, subscription_id, read_json(request), principal), 202)

    @http("GET", "/v1/subscriptions/<string:subscription_id>/deliveries")
    @api(roles=OWNERS, scope="agency")
    def deliveries(self, request, subscription_id, principal):
        asked = read_query(request, openapi.QUERY)
        with answers():
            return json_response(workflow.deliveries(self.store, subscription_id, principal, asked.get("before"),
                                                     asked["limit"]))

    # --- sharing agreements -------------------------------------------------------------------

    @http("PUT", "/v1/agencies/<string:agency>/sharing")
    @api(roles=("coordinator",), scope="sharing")
    def set_sharing(self, request, agency, principal):
        with answers():
            agreement = workflow.set_sharing(self.store, self.outbox, agency, read_json(request), principal, sharing)
        return json_response(workflow.sharing_view(self.store, agreement.agency))

    @http("GET", "/v1/agencies/<string:agency>/sharing")
    @api(roles=SHARING_READERS, scope="sharing")
    def get_sharing(self, request, agency, principal):
        if principal.role != "coordinator" and principal.agency != agency:
            raise NotFound("no such agency")
        return json_response(workflow.sharing_view(self.store, agency))
