"""The demo registry's seed file (deploy/local/facilitators.yaml), read. Pure but for the read.

Its days may be relative to the day it is read (`today-80d`, see shared/relative_days.py),
so the demo registry is as current on every run as on the day it was written. Only the
seed tool reads them so: the registry's HTTP and RPC APIs take ISO days. Each record is
then checked by facilitator_records like any other.
"""
from datetime import date

import yaml

from shared import relative_days

# The record's days (facilitator_records.FacilitatorRecord's Date fields), and
# `last_active`, the older name of last_process_on.
DAYS = ("trained_on", "last_process_on", "last_active", "prison_vetted_until", "available_from")


def read(path, today=None):
    """The records of the seed file at `path`, their days resolved against `today`
    (default: the day it is read). relative_days.BadDay names the file, facilitator and
    field of a day that is neither ISO nor relative; nothing is resolved in part."""
    today = today or date.today()
    with open(path) as handle:
        records = yaml.safe_load(handle)["facilitators"]
    return [relative_days.resolve_fields(record, DAYS, today, f"{path}: {_name(record, number)}")
            for number, record in enumerate(records, 1)]


def _name(record, number):
    if isinstance(record, dict) and record.get("facilitator_id"):
        return str(record["facilitator_id"])
    return f"record {number}"
