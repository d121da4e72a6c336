"""Realistic test data, built fresh for each test."""
import copy
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

with open(os.path.join(ROOT, "deploy", "local", "sample_referrals.json")) as _handle:
    SAMPLES = json.load(_handle)


def referral_body(index=0, **changes):
    body = copy.deepcopy(SAMPLES[index])
    body.update(changes)
    return body


def referral_received_data(**changes):
    data = {
        "case_id": "case-1",
        "agency": "south-wales-police",
        "referrer_id": "ref-1",
        "offence_category": "burglary",
        "cjs_stage": "pre_sentence",
        "initiated_by": "harmed",
        "flags": [],
        "harmer_accepts_responsibility": True,
        "participants": [
            {"participant_id": "p-1", "role": "harmed", "age_band": "50_64", "language": "en", "access_needs": []},
            {"participant_id": "p-2", "role": "harmer", "age_band": "25_34", "language": "en", "access_needs": []},
        ],
        "region": "south-wales",
    }
    data.update(changes)
    return data
