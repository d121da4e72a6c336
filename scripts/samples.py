"""The sample referrals (deploy/local/sample_referrals.json), read with their days
resolved against the day they are read: "today-14d" is a crime a fortnight old whenever
the demo runs, so intake never finds a sample's day in the future or absurdly old.
See shared/relative_days.py. Only the demo and the tests read this form: the referrals
API takes ISO days.

    .venv/bin/python -m scripts.samples 0     prints sample 0 as a request body
"""
import json
import os
import sys
from datetime import date

from shared import relative_days

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "local",
                    "sample_referrals.json")
# The intake record's days (services/referrals/intake.py: ReferralSchema's Date fields).
DAYS = ("offence.date", "crime_reported_on")


def load(today=None):
    """Every sample as a request body, days resolved against `today` (default: the day
    they are read). relative_days.BadDay names the sample and field of a bad day."""
    today = today or date.today()
    with open(PATH) as handle:
        samples = json.load(handle)
    return [relative_days.resolve_fields(sample, DAYS, today, f"{PATH}: sample {index}")
            for index, sample in enumerate(samples)]


def main(argv=None):
    argv = argv if argv is not None else sys.argv[1:]
    print(json.dumps(load()[int(argv[0]) if argv else 0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
