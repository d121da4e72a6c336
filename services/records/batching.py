"""`batch_consumer`: the shared event consumer's rules, with events handed over in batches.

Messages are validated as they arrive (a bad one is dead-lettered at once, as by
`event_consumer`) and queued locally. One batching greenthread takes up to
RECORDS_BATCH_SIZE of them, waiting at most RECORDS_BATCH_LINGER seconds for a batch to
fill, and runs one worker with the whole list. Only after that worker returns are the
batch's messages acked, so nothing is acked before it is durably written; and the next
batch starts only then, so there is a single writer, in arrival order.

If a batch fails, each of its messages is run again on its own, so one bad event takes
the usual retry and dead-letter path without dragging its neighbours along.

Each event of a batch is counted as consumed like any other; the batch's time is the
ledger's append latency (shared.metrics), not a handler time per event.
"""
import logging
import time
from functools import partial

from eventlet.event import Event
from eventlet.queue import Empty, LightQueue
from nameko.exceptions import ContainerBeingKilled

from shared import metrics
from shared.messaging.consumer import EventConsumer, EventQueueConsumer

log = logging.getLogger(__name__)


class BatchQueueConsumer(EventQueueConsumer):
    """Prefetches enough for the next batch to fill while the current one is written
    (nameko's default, max_workers, would allow one message in flight), and decodes each
    message on the consuming greenthread itself: a message is validated, and dead-lettered
    and acked if bad, before the next is looked at. So when a batch is done, every message
    delivered before its last one is settled, and one ack with `multiple` settles it."""

    @property
    def prefetch_count(self):
        return int(self.container.config.get("RECORDS_PREFETCH", 2000))

    def handle_message(self, provider, message):
        provider.handle_message(message)

    def ack_through(self, message):
        """Ack `message` and every earlier delivery on its channel."""
        if message.channel.connection:
            try:
                message.ack(multiple=True)
            except ConnectionError:  # the broker redelivers what was unacked
                pass


class BatchEventConsumer(EventConsumer):
    queue_consumer = BatchQueueConsumer()

    def __init__(self, consumer, admit=None, admission=None, **kwargs):
        """`admit(event)` raises ValueError for a valid event the handler can never take;
        such a message is dead-lettered at once, like a malformed one (the reason: the
        error's `reason` if it has one, else its class). With `admit`, the handler gets what
        it returned for each event too: handler(events, admitted). `admission(settings)`,
        instead, makes `admit` at setup from the service's settings (its region, say)."""
        self.admit = admit
        self.admission = admission
        super().__init__(consumer, **kwargs)

    def setup(self):
        super().setup()
        if self.admission is not None:
            self.admit = self.admission(self.settings)
        config = self.container.config
        self.batch_size = max(1, int(config.get("RECORDS_BATCH_SIZE", 1000)))
        self.linger = float(config.get("RECORDS_BATCH_LINGER", 0.05))
        self.arrivals = LightQueue()
        self.batcher = None

    def start(self):
        self.batcher = self.container.spawn_managed_thread(self._run, identifier="BatchEventConsumer.batcher")

    def stop(self):
        super().stop()
        # Messages still queued here are unacked: the broker redelivers them.
        if self.batcher is not None:
            self.batcher.kill()

    def kill(self):
        if self.batcher is not None:
            self.batcher.kill()

    def handle_message(self, message):
        decoded = self._decode(message)
        if decoded is not None:
            self.arrivals.put((message, decoded))

    def _decode(self, message):
        """(the validated event, what admit made of it), or None once the message has
        been dead-lettered."""
        event = self.validated(message)
        if event is None:
            return None
        admitted = None
        if self.admit is not None:
            try:
                admitted = self.admit(event)
            except ValueError as exc:
                with self._broker_may_be_gone(message):
                    reason = getattr(exc, "reason", None) or f"not admitted: {type(exc).__name__}"
                    self._dead_letter(message, reason, attempt=self._attempt(message), kind="not_admitted",
                                      event_type=event["type"])
                return None
        return event, admitted

    def _run(self):
        while True:
            batch = [self.arrivals.get()]
            deadline = time.monotonic() + self.linger
            while len(batch) < self.batch_size:
                try:
                    batch.append(self.arrivals.get(timeout=max(0.0, deadline - time.monotonic())))
                except Empty:
                    break
            if not self._run_batch(batch) and len(batch) > 1:
                for item in batch:
                    self._run_batch([item])

    def _run_batch(self, batch):
        """Run one worker over `batch`; True if it succeeded (and the batch is acked)."""
        done = Event()
        try:
            events = [event for _, (event, _) in batch]
            args = (events,) if self.admit is None else (events, [admitted for _, (_, admitted) in batch])
            self.container.spawn_worker(
                self, args, {}, context_data={},
                handle_result=partial(self._batch_result, batch, done),
            )
        except ContainerBeingKilled:
            for message, _ in batch:
                self.queue_consumer.requeue_message(message)
            return True
        return done.wait()

    def _batch_result(self, batch, done, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_through(batch[-1][0])
            for _, (event, _) in batch:
                metrics.consumed(self.queue.name, event["type"], "handled")
            done.send(True)
        elif len(batch) == 1:
            message, (event, _) = batch[0]
            self._handle_result(message, event, worker_ctx, result, exc_info)
            done.send(True)
        else:
            log.warning("a batch of %d events failed (%s); running them one by one", len(batch), exc_info[0].__name__)
            done.send(False)
        return result, exc_info


batch_consumer = BatchEventConsumer.decorator
