"""The CloudEvents a subscriber receives: one per ledger entry it is sent, carrying the
redacted data, and the position and leaf hash that let it check the entry against a signed
checkpoint (records' `GET /v1/ledger/proof/inclusion?seq=N`). Pure.

Under the statistics profile a subscriber is told nothing that leads back to a case: no
subject, no position, no leaf hash and no exact time (the statistic holds its ISO week); its
events' ids are keyed hashes, stable across retries and replays but naming no entry.
"""
import json

from shared import statistics_profile

SPECVERSION = "1.0"
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
STATISTICS = "statistics"


def cloud_event(subscription_id, region, entry, data, profile, profile_version, statistic_key):
    """The CloudEvent for one ledger `entry` (an Entry: position, event, leaf_hash), its
    `data` already redacted under `profile`. Its id, `<subscription_id>.<position>`, is the
    receiver's dedup key: the same entry always gets the same id."""
    event = entry.event
    delivered = {
        "specversion": SPECVERSION,
        "source": f"/amends/{region}/subscriptions",
        "type": event["type"],
        "datacontenttype": "application/json",
        "data": data,
        "profile": profile,
        "profileversion": profile_version,
    }
    if profile == STATISTICS:
        delivered["id"] = f"{subscription_id}.{statistics_profile.statistic_id(statistic_key, event['id'])}"
        return delivered
    delivered.update({
        "id": f"{subscription_id}.{entry.position}",
        "time": event["time"],
        "ledgerposition": entry.position,
        "leafhash": entry.leaf_hash,
    })
    if event.get("subject"):
        delivered["subject"] = event["subject"]
    return delivered


def body(cloud_events, max_batch):
    """(content type, body text) of one request: with max_batch 1, one structured
    CloudEvent; with more, a batch (a JSON array), however many it holds this time."""
    if max_batch == 1:
        if len(cloud_events) != 1:
            raise ValueError("a subscription of max_batch 1 is sent one event at a time")
        return SINGLE, json.dumps(cloud_events[0], separators=(",", ":"), ensure_ascii=False)
    return BATCH, json.dumps(list(cloud_events), separators=(",", ":"), ensure_ascii=False)
