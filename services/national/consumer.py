"""The national service's consumer: statistics from the regions' shovels, checked.

It is the shared event consumer (retries, holds, dead letters, nothing acked away) on the
national queue, with its own test of what it is given: a statistic of the profile and
nothing else, from the region the broker says sent it. A region's link user may publish
only with routing keys that start with its region (shared.messaging.national), so a
statistic whose `region` differs from its routing key's is refused as not theirs.
"""
import json

from shared.messaging import national
from shared.messaging.consumer import EventConsumer
from shared.statistics_profile import InvalidStatistic, validate_statistic

ORIGINAL_KEY = "x-amends-original-routing-key"


class StatisticConsumer(EventConsumer):
    def __init__(self, **kwargs):
        super().__init__("statistics", **kwargs)

    def consumer_queue(self, service):
        return national.national_queue(declare_exchange=False)

    def validated(self, message):
        """{"id", "type", "statistic"} for a sound statistic, else None once dead-lettered."""
        try:
            statistic = validate_statistic(json.loads(message.body))
            # after a retry the message comes back through the default exchange, and the key
            # it was first sent with is in the header the consumer itself wrote
            key = (message.headers or {}).get(ORIGINAL_KEY) or message.delivery_info.get("routing_key", "")
            if national.region_of(key) != statistic["region"]:
                raise ValueError("refused: a statistic for another region than its link's")
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, InvalidStatistic):
                reason, kind = str(exc), "invalid"
            elif str(exc).startswith("refused"):
                reason, kind = str(exc), "refused"
            else:
                reason, kind = "malformed JSON body", "malformed"
            with self._broker_may_be_gone(message):
                self._dead_letter(message, reason, attempt=self._attempt(message), kind=kind)
            return None
        # the inbox and the log know a statistic by its id; it has no case to correlate
        return {"id": statistic["statistic_id"], "type": "statistic." + statistic["event_type"],
                "statistic": statistic}

    def context_of(self, event, message):
        return {"correlationid": event["id"], "causationid": event["id"], "event_type": event["type"],
                "attempt": self._attempt(message)}


statistic_consumer = StatisticConsumer.decorator
