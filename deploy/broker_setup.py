"""Make a deployed broker ready: its topology, its users from secrets, its link.

    python -m deploy.broker_setup region     # a regional broker
    python -m deploy.broker_setup national   # the national broker

Run once per broker after it starts (compose's `broker-setup`, the Kubernetes Job of the same
name), and again after every release or password rotation: every step is idempotent.
Through the broker's management HTTP API, as the admin user the broker was started with:

1. imports the generated definitions (deploy/rabbitmq/*.json): exchanges, queues, bindings;
   an import only adds or leaves alone, and fails on a queue whose arguments changed;
2. makes or updates each user, with its password from the environment, and sets its
   permissions and topic permissions: shared/messaging/permissions.py's for the services of a
   region, shared/messaging/national.py's national_accounts for the national broker;
3. on a regional broker, (re)defines the shovel that carries `national.outbound` to the
   national broker (national.shovel_definition), when NATIONAL_LINK_URI is set;
4. deletes `guest`.

Environment: AMENDS_BROKER_MANAGEMENT_URL (e.g. http://rabbitmq:15672), AMENDS_BUS_ADMIN_PASSWORD,
KEDA_BUS_PASSWORD (the read-only user the autoscaler reads queue depths as), and
- region: <SERVICE>_BUS_PASSWORD for every service; AMENDS_BUS_OPERATOR_PASSWORD (amends-operator,
  the console's operator pages: dead letters and queue depths); NATIONAL_LINK_URI (optional): the national
  broker's AMQP URI as this region's link user, e.g.
  amqps://amends-link-south-wales:...@national-broker:5671/%2F
- national: NATIONAL_BUS_PASSWORD; AMENDS_LINK_REGIONS (e.g. south-wales,north-wales) and, per
  region, NATIONAL_LINK_<REGION>_PASSWORD (NATIONAL_LINK_SOUTH_WALES_PASSWORD).
No password is ever printed or put on a command line.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

import requests

from shared.messaging import national, topology
from shared.messaging.accounts import ADMIN_PASSWORD_VARIABLE, OPERATOR_PASSWORD_VARIABLE, TAGS, password_variable
from shared.messaging.permissions import ADMIN_USER, GRANTS, OPERATOR_GRANT, OPERATOR_USER, Grant, user_for
from deploy import definitions

VHOST = definitions.VHOST
KEDA_USER = "amends-keda"
KEDA_PASSWORD_VARIABLE = "KEDA_BUS_PASSWORD"
# the national broker's URI as this region's link user (the variable national.py's `link` reads)
LINK_URI_VARIABLE = "NATIONAL_LINK_URI"
# the regions whose link users the national broker gets
LINK_REGIONS_VARIABLE = "AMENDS_LINK_REGIONS"
# The autoscaler only reads queue depths: no configure, write or read on anything.
NOTHING = Grant("^$", "^$", "^$", {})


def link_regions(environ):
    return [r.strip() for r in environ.get(LINK_REGIONS_VARIABLE, "").split(",") if r.strip()]


def users_and_grants(stack, environ):
    """user -> (password variable, tags, grant) for a `region` or `national` broker."""
    wanted = {KEDA_USER: (KEDA_PASSWORD_VARIABLE, "monitoring", NOTHING)}
    if stack == "region":
        wanted[OPERATOR_USER] = (OPERATOR_PASSWORD_VARIABLE, TAGS[OPERATOR_USER], OPERATOR_GRANT)
        for service in topology.SERVICES:
            wanted[user_for(service)] = (password_variable(service), "", GRANTS[service])
    else:
        regions = link_regions(environ)
        variables = {national.NATIONAL_USER: password_variable(national.NATIONAL_SERVICE),
                     **{national.link_user(region): national.link_password_variable(region) for region in regions}}
        try:
            accounts = national.national_accounts(regions)
        except ValueError as error:  # a region that is not a region code
            raise SystemExit(f"{LINK_REGIONS_VARIABLE}: {error}") from None
        for user, grant in accounts.items():
            wanted[user] = (variables[user], "", grant)
    missing = sorted(variable for variable, _, _ in wanted.values() if not environ.get(variable))
    if missing:
        raise SystemExit(f"no password in the environment for: {', '.join(missing)}")
    return wanted


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
    if stack == "region" and environ.get(LINK_URI_VARIABLE):
        steps.append(("PUT", f"/api/parameters/shovel/{v}/{national.SHOVEL_NAME}",
                      national.shovel_definition(environ[LINK_URI_VARIABLE]), False,
                      f"shovel {national.SHOVEL_NAME}: {national.OUTBOUND_QUEUE} -> national "
                      f"{national.NATIONAL_EXCHANGE}"))
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
