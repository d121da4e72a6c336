"""Make a deployed broker ready: its topology, its users from secrets, its link.

    python -m deploy.broker_setup region     # a regional broker
    python -m deploy.broker_setup national   # the national broker

Run once per broker after it starts (compose's `broker-setup`, the Kubernetes Job of the same
name), and again after every release or password rotation: every step is idempotent.
Through the broker's management HTTP API, as the admin user the broker was started with:

1. imports the generated definitions (deploy/rabbitmq/*.json): exchanges, queues, bindings;
   an import only adds or leaves alone, and fails on a queue whose arguments changed;
2. makes or updates each user, with its password from the environment, and sets its
   permissions and topic permissions (shared/messaging/permissions.py for the services);
3. on a regional broker, (re)defines the shovel that carries `national.outbound` to the
   national broker, when AMENDS_NATIONAL_LINK_URI is set;
4. deletes `guest`.

Environment: AMENDS_BROKER_MANAGEMENT_URL (e.g. http://rabbitmq:15672), AMENDS_BUS_ADMIN_PASSWORD,
KEDA_BUS_PASSWORD (the read-only user the autoscaler reads queue depths as), and
- region: <SERVICE>_BUS_PASSWORD for every service; AMENDS_NATIONAL_LINK_URI (optional): the
  national broker's AMQP URI as this region's link user, e.g.
  amqps://amends-link-south-wales:...@national-broker:5671/%2F
- national: NATIONAL_BUS_PASSWORD; AMENDS_LINK_REGIONS (e.g. south-wales,north-wales) and, per
  region, LINK_<REGION>_BUS_PASSWORD (LINK_SOUTH_WALES_BUS_PASSWORD).
No password is ever printed or put on a command line.
"""
import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from shared.messaging import topology
from shared.messaging.accounts import ADMIN_PASSWORD_VARIABLE, password_variable
from shared.messaging.permissions import ADMIN_USER, GRANTS, Grant, user_for
from deploy import definitions, stacks

VHOST = definitions.VHOST
KEDA_USER = "amends-keda"
KEDA_PASSWORD_VARIABLE = "KEDA_BUS_PASSWORD"
NATIONAL_USER = "amends-national"
NATIONAL_PASSWORD_VARIABLE = "NATIONAL_BUS_PASSWORD"
# The autoscaler only reads queue depths: no configure, write or read on anything.
NOTHING = Grant("^$", "^$", "^$", {})


def link_user(region):
    return f"amends-link-{region}"


def link_password_variable(region):
    return f"LINK_{region.upper().replace('-', '_')}_BUS_PASSWORD"


def national_grants(link_regions):
    """The national broker's users. The national service consumes its queue (declaring it, as
    every consumer does, needs configure on it) and nothing else; each region's link user may
    only publish to the national exchange. Kept here until shared/messaging/permissions.py
    covers the national broker."""
    queue, exchange = re.escape(stacks.NATIONAL_QUEUE), re.escape(stacks.NATIONAL_EXCHANGE)
    grants = {NATIONAL_USER: Grant(f"^{queue}$", "^$", f"^({queue}|{exchange})$", {})}
    for region in link_regions:
        grants[link_user(region)] = Grant("^$", f"^{exchange}$", "^$", {})
    return grants


def users_and_grants(stack, environ):
    """user -> (password variable, tags, grant) for a `region` or `national` broker."""
    wanted = {KEDA_USER: (KEDA_PASSWORD_VARIABLE, "monitoring", NOTHING)}
    if stack == "region":
        for service in topology.SERVICES:
            wanted[user_for(service)] = (password_variable(service), "", GRANTS[service])
    else:
        regions = [r.strip() for r in environ.get("AMENDS_LINK_REGIONS", "").split(",") if r.strip()]
        for user, grant in national_grants(regions).items():
            variable = NATIONAL_PASSWORD_VARIABLE if user == NATIONAL_USER else link_password_variable(
                user.removeprefix("amends-link-"))
            wanted[user] = (variable, "", grant)
    missing = sorted(variable for variable, _, _ in wanted.values() if not environ.get(variable))
    if missing:
        raise SystemExit(f"no password in the environment for: {', '.join(missing)}")
    return wanted


def shovel(link_uri):
    """The dynamic shovel from this region's outbound queue to the national exchange. on-confirm:
    a message leaves the regional queue only once the national broker has confirmed it, so a link
    that is down loses nothing; it waits in `national.outbound`. The national broker checks a
    message's user_id against the user that published it, so the shovel sets it to the link user:
    the national side then knows from the broker which region a count came from."""
    return {"value": {
        "src-protocol": "amqp091", "src-uri": "amqp://", "src-queue": stacks.OUTBOUND_QUEUE,
        "dest-protocol": "amqp091", "dest-uri": link_uri, "dest-exchange": stacks.NATIONAL_EXCHANGE,
        "dest-publish-properties": {"delivery_mode": 2, "user_id": urlsplit(link_uri).username or ""},
        "ack-mode": "on-confirm", "src-delete-after": "never", "reconnect-delay": 5,
    }}


def plan(stack, environ):
    """The HTTP requests, in order, as (method, path, body, may fail, what to print)."""
    v = quote(VHOST, safe="")
    source = definitions.REGIONAL_FILE if stack == "region" else definitions.NATIONAL_FILE
    steps = [("POST", "/api/definitions", json.loads(Path(source).read_text()), False,
              f"import {source.name}")]
    for user, (variable, tags, grant) in users_and_grants(stack, environ).items():
        u = quote(user, safe="")
        steps.append(("PUT", f"/api/users/{u}", {"password": environ[variable], "tags": tags}, False,
                      f"user {user}"))
        steps.append(("PUT", f"/api/permissions/{v}/{u}",
                      {"configure": grant.configure, "write": grant.write, "read": grant.read}, False,
                      f"permissions of {user}"))
        # topic permissions are per exchange: clear them all, then set the table's
        steps.append(("DELETE", f"/api/topic-permissions/{v}/{u}", None, True, f"clear topic permissions of {user}"))
        for exchange, (write, read) in sorted(grant.topics.items()):
            steps.append(("PUT", f"/api/topic-permissions/{v}/{u}", {"exchange": exchange, "write": write,
                                                                     "read": read}, False,
                          f"topic permissions of {user} on {exchange}"))
    if stack == "region" and environ.get("AMENDS_NATIONAL_LINK_URI"):
        steps.append(("PUT", f"/api/parameters/shovel/{v}/{stacks.SHOVEL_NAME}",
                      shovel(environ["AMENDS_NATIONAL_LINK_URI"]), False,
                      f"shovel {stacks.SHOVEL_NAME}: {stacks.OUTBOUND_QUEUE} -> national {stacks.NATIONAL_EXCHANGE}"))
    steps.append(("DELETE", "/api/users/guest", None, True, "delete guest"))
    return steps


def run(stack, environ, session=None, wait=120):
    base = environ.get("AMENDS_BROKER_MANAGEMENT_URL", "http://127.0.0.1:15672").rstrip("/")
    admin_password = environ.get(ADMIN_PASSWORD_VARIABLE)
    if not admin_password:
        raise SystemExit(f"no password in the environment for: {ADMIN_PASSWORD_VARIABLE}")
    steps = plan(stack, environ)
    session = session or requests.Session()
    session.auth = (ADMIN_USER, admin_password)
    deadline = time.monotonic() + wait
    while True:  # the broker may still be starting
        try:
            if session.get(f"{base}/api/overview", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the broker's management API at {base} did not answer within {wait}s")
        time.sleep(2)
    for method, path, body, may_fail, what in steps:
        response = session.request(method, base + path, json=body, timeout=30)
        if response.status_code >= 300 and not may_fail:
            # the step, never its body: bodies carry passwords
            raise SystemExit(f"{what}: HTTP {response.status_code} {response.text[:300]}")
        print(f"ok  {what}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m deploy.broker_setup", description=__doc__.split("\n")[0])
    parser.add_argument("stack", choices=("region", "national"))
    args = parser.parse_args(argv)
    return run(args.stack, os.environ)


if __name__ == "__main__":
    sys.exit(main())
