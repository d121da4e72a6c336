"""Several region stacks and a national one on one machine: their layout, and the check
`make regions` runs once they are up (docs/regions.md).

    python -m scripts.regions names          the stacks, national first
    python -m scripts.regions env STACK      its settings, as `export` lines for bootstrap.sh
    python -m scripts.regions ports          refuse (exit 1) if a port of a stack not yet running is taken
    python -m scripts.regions table          the ports table
    python -m scripts.regions report         link each region to the national broker, send referrals to
                                             each region, and compare each region's ledger with the
                                             national counts

deploy/local/regions.sh starts and stops the stacks (bootstrap.sh, stop.sh, one AMENDS_VAR each);
this module holds the one description of them. Every port differs from the main stack's
(5672, 15672, 25672, 5432, 27017, 1025, 8025, 8001-8008) and from scaled services' 8101-8104
and 8201-8204.
"""
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from shared import statistics_profile
from shared.messaging import national

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".venv", "bin", "python")
REGIONS_VAR = os.path.join(ROOT, "var", "regions")
# Each service's HTTP port is its stack's base + this; the local mail and SMS sinks likewise.
HTTP_OFFSETS = {"referrals": 1, "matching": 2, "notifications": 3, "records": 4, "subscriptions": 5, "statistics": 7,
                "national": 8, "reports": 9, "console": 6}
REGION_SERVICES = ("referrals", "matching", "notifications", "records", "statistics", "subscriptions", "reports", "console")
SMTP_OFFSET, SMS_OFFSET = 10, 11
# The ledger entry each referral taken in leaves (services/referrals/intake.py)
RECEIVED = "referral.received"
# the event types the comparison shows one by one (then all the exported ones together)
SHOWN = ("referral.received", "case.assessed", "facilitator.assigned", "notification.sent")


@dataclass(frozen=True)
class Stack:
    name: str
    index: int          # ports: 5700 + index, 15700 + index, ...
    areas: tuple = ()   # the referral areas a region accepts (AMENDS_REGIONS); none for national

    @property
    def national(self):
        return not self.areas

    @property
    def var(self):
        return os.path.join(REGIONS_VAR, self.name)

    @property
    def node(self):
        return f"amends-{self.name}@localhost"

    @property
    def amqp_port(self):
        return 5700 + self.index

    @property
    def mgmt_port(self):
        return 15700 + self.index

    @property
    def dist_port(self):
        return 25700 + self.index

    @property
    def pg_port(self):
        return 5440 + self.index

    @property
    def mongo_port(self):
        return 27040 + self.index

    @property
    def http_base(self):
        return 9000 + 100 * self.index

    @property
    def smtp_port(self):
        return self.http_base + SMTP_OFFSET

    @property
    def sms_port(self):
        return self.http_base + SMS_OFFSET

    @property
    def services(self):
        if self.national:
            return ("national",)
        present = os.path.exists(os.path.join(ROOT, "services", "statistics", "service.py"))
        return tuple(s for s in REGION_SERVICES if s != "statistics" or present)

    def http(self, service):
        return f"127.0.0.1:{self.http_base + HTTP_OFFSETS[service]}"

    def ports(self):
        """(port, what) of everything the stack listens on."""
        ports = [(self.amqp_port, "AMQP"), (self.mgmt_port, "RabbitMQ management"),
                 (self.dist_port, "RabbitMQ distribution"), (self.pg_port, "PostgreSQL"),
                 (self.mongo_port, "FerretDB")]
        services = ("national",) if self.national else REGION_SERVICES
        ports += [(self.http_base + HTTP_OFFSETS[s], f"{s} HTTP") for s in services]
        if not self.national:
            ports += [(self.smtp_port, "SMTP sink"), (self.sms_port, "SMS sink")]
        return ports

    def environ(self):
        env = {
            "AMENDS_VAR": self.var, "AMENDS_REGION": self.name, "AMENDS_RABBIT_NODE": self.node,
            "AMENDS_AMQP_PORT": self.amqp_port, "AMENDS_RABBIT_MGMT_PORT": self.mgmt_port,
            "AMENDS_RABBIT_DIST_PORT": self.dist_port, "AMENDS_PG_PORT": self.pg_port,
            "AMENDS_MONGO_PORT": self.mongo_port,
        }
        if self.national:
            env["AMENDS_NATIONAL_REGIONS"] = ",".join(s.name for s in REGIONS)
            env["NATIONAL_HTTP_ADDRESS"] = self.http("national")
        else:
            env["AMENDS_REGIONS"] = ",".join(self.areas)
            # linked to the national broker: its statistics service runs
            env["AMENDS_NATIONAL_LINK"] = 1
            env.update({f"{s.upper()}_HTTP_ADDRESS": self.http(s) for s in REGION_SERVICES})
            env.update(SMTP_PORT=self.smtp_port, SMS_SINK_PORT=self.sms_port,
                       REFERRALS_PUBLIC_URL=f"http://{self.http('referrals')}")
        return {key: str(value) for key, value in env.items()}

    def running(self):
        """Whether its broker (by the pid the bootstrap recorded) is running."""
        try:
            with open(os.path.join(self.var, "run", "rabbitmq.pid")) as handle:
                os.kill(int(handle.read().strip()), 0)
            return True
        except (OSError, ValueError):
            return False

    def secrets(self):
        path = os.path.join(self.var, "secrets.env")
        found = {}
        if os.path.exists(path):
            with open(path) as handle:
                for line in handle:
                    name, sep, value = line.rstrip("\n").partition("=")
                    if sep:
                        found[name] = value
        return found


NATIONAL = Stack("national", 0)
REGIONS = (Stack("south", 1, ("south-wales", "gwent")), Stack("north", 2, ("north-wales", "dyfed-powys")))
STACKS = (NATIONAL, *REGIONS)


def stack(name):
    for candidate in STACKS:
        if candidate.name == name:
            return candidate
    raise SystemExit(f"no stack {name!r}: one of {', '.join(s.name for s in STACKS)}")




def free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the servers bind: a port whose last connections linger in TIME_WAIT is free to them
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def check_ports():
    taken = [(s.name, port, what) for s in STACKS if not s.running() for port, what in s.ports() if not free(port)]
    for name, port, what in taken:
        print(f"[regions] port {port} ({name}'s {what}) is taken by something else", file=sys.stderr)
    return 1 if taken else 0


def ports_table():
    print("| stack | var dir | node | AMQP | mgmt | dist | PostgreSQL | FerretDB | HTTP | SMTP | SMS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in STACKS:
        services = ("national",) if s.national else REGION_SERVICES
        http = ", ".join(f"{svc} {s.http_base + HTTP_OFFSETS[svc]}" for svc in services)
        mail = ("-", "-") if s.national else (s.smtp_port, s.sms_port)
        print(f"| {s.name} | var/regions/{s.name} | {s.node} | {s.amqp_port} | {s.mgmt_port} | {s.dist_port} | "
              f"{s.pg_port} | {s.mongo_port} | {http} | {mail[0]} | {mail[1]} |")


# --- report ---------------------------------------------------------------------------

def say(text):
    print(f"[regions] {text}", flush=True)


def link_regions():
    """Give each region's broker its shovel to the national broker (shared/messaging/national.py),
    the link user's URI and the region admin's password through the environment only."""
    secrets = NATIONAL.secrets()
    ok = True
    for region in REGIONS:
        password = secrets.get(national.link_password_variable(region.name))
        admin = region.secrets().get("AMENDS_BUS_ADMIN_PASSWORD")
        if not password or not admin:
            say(f"{region.name}: no link or admin password in the stacks' secrets.env; not linked")
            ok = False
            continue
        env = dict(os.environ, AMENDS_BUS_ADMIN_PASSWORD=admin, NATIONAL_LINK_URI=(
            f"amqp://{national.link_user(region.name)}:{password}@127.0.0.1:{NATIONAL.amqp_port}/%2F"))
        result = subprocess.run([PY, "-m", "shared.messaging.national", "link", "--region", region.name,
                                 "--management-url", f"http://127.0.0.1:{region.mgmt_port}"],
                                cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=120)
        said = result.stdout.strip().replace(password, "***").replace(admin, "***")
        say(f"{region.name}: linked to the national broker" if result.returncode == 0
            else f"{region.name}: link failed ({result.returncode}): {said[-500:]}")
        ok = ok and result.returncode == 0
    return ok


def health(region):
    import requests
    found = {}
    for service in region.services:
        try:
            found[service] = requests.get(f"http://{region.http(service)}/health", timeout=5).status_code == 200
        except requests.RequestException:
            found[service] = False
    return found


def keys(region):
    with open(os.path.join(region.var, "dev-keys.json")) as handle:
        return json.load(handle)


def referrals_for(region, other):
    """What to send a region: the samples, moved into its areas (alternately), and one more
    in an area it does not serve (the other region's first), which residency should refuse."""
    from scripts import samples
    bodies = samples.load()
    sent = []
    for number, body in enumerate(bodies):
        body = dict(body, region=region.areas[number % len(region.areas)])
        sent.append((True, body))
    sent.append((False, dict(bodies[0], region=other.areas[0])))
    return sent


def submit(region, other):
    """Send them; how many were taken in (201), in its areas and in all."""
    import requests
    referrer = {"Authorization": f"Bearer {keys(region)['referrer']}"}
    accepted = taken = 0
    for in_area, body in referrals_for(region, other):
        headers = {**referrer, "Idempotency-Key": str(uuid.uuid4())}
        try:
            response = requests.post(f"http://{region.http('referrals')}/v1/referrals", json=body, headers=headers,
                                     timeout=15)
        except requests.RequestException as error:
            say(f"{region.name}: {body['region']} referral not sent: {error}")
            continue
        where = "in its area" if in_area else "NOT in its area"
        if response.status_code == 201:
            accepted += in_area
            taken += 1
            say(f"{region.name}: {body['region']} ({where}) -> 201 case {response.json()['case_id']}")
        else:
            say(f"{region.name}: {body['region']} ({where}) -> {response.status_code} {response.text.strip()[:300]}")
    return accepted, taken


def ledger_counts(region):
    """The region's own ledger, counted as the national view counts it: the events the statistics
    profile exports, by type (the auditor key has national scope)."""
    import requests
    auditor = {"Authorization": f"Bearer {keys(region)['auditor']}"}
    counts, after = {}, -1
    while True:
        response = requests.get(f"http://{region.http('records')}/v1/ledger/entries",
                                params={"after": after, "limit": 1000}, headers=auditor, timeout=15)
        response.raise_for_status()
        page = response.json()
        for item in page["items"]:
            kind = item["event"].get("type")
            if statistics_profile.exported(kind):
                counts[kind] = counts.get(kind, 0) + 1
        if not page["items"]:
            return counts
        after = page["next_after"]


def national_counts():
    """{region: {event type: n, "all": n}} from the national database, as the national service's role."""
    password = NATIONAL.secrets().get("NATIONAL_PG_PASSWORD", "")
    env = dict(os.environ, MONGO_URI=f"mongodb://amends_national:{password}@127.0.0.1:{NATIONAL.mongo_port}/"
               "?authMechanism=PLAIN&authSource=$external", AMENDS_REGION="national")
    env.pop("AMQP_URI", None)
    result = subprocess.run([PY, "-m", "services.national.counts", "--json"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if result.returncode != 0:
        say(f"services.national.counts failed: {result.stderr.strip()[-300:]}")
        return {}
    return json.loads(result.stdout)


def report():
    started = time.time()
    up = {}
    for region in REGIONS:
        found = health(region)
        up[region.name] = all(found.values())
        states = ", ".join(f"{service} {'ok' if ok else 'DOWN'}" for service, ok in found.items())
        say(f"{region.name}: {sum(found.values())} of {len(found)} services healthy ({states})")
    if not all(up.values()):
        say("not every region's services are up (their logs: var/regions/<region>/log/); nothing sent")
        return 1
    if not link_regions():
        return 1
    before = {r.name: ledger_counts(r).get(RECEIVED, 0) for r in REGIONS}
    accepted, taken = {}, {}
    for region, other in ((REGIONS[0], REGIONS[1]), (REGIONS[1], REGIONS[0])):
        accepted[region.name], taken[region.name] = submit(region, other)
    # each region's ledger, once it holds every referral this run had taken in
    own, deadline = {}, time.time() + 60
    while time.time() < deadline:
        own = {r.name: ledger_counts(r) for r in REGIONS}
        if all(own[r.name].get(RECEIVED, 0) - before[r.name] >= taken[r.name] for r in REGIONS):
            break
        time.sleep(1)
    for region in REGIONS:
        recorded = own[region.name].get(RECEIVED, 0) - before[region.name]
        if recorded < taken[region.name]:
            say(f"{region.name}: its ledger holds {recorded} of the {taken[region.name]} referrals taken in after 60s")
    # the national counts follow each region's ledger through the statistics services and the
    # shovels: wait until they agree (or stop changing)
    national_seen, deadline, last, steady = {}, time.time() + 180, None, 0
    while time.time() < deadline:
        own = {r.name: ledger_counts(r) for r in REGIONS}
        national_seen = national_counts()
        agree = all(_agrees(own[r.name], national_seen.get(r.name, {})) for r in REGIONS)
        steady = steady + 1 if (own, national_seen) == last else 0
        last = (own, national_seen)
        if agree or steady >= 15:
            break
        time.sleep(2)
    print()
    print(f"{'region':<8} {'event type':<24} {'own ledger':>10} {'national':>9}  agree")
    agreed = True
    for region in REGIONS:
        theirs = national_seen.get(region.name, {})
        for kind in SHOWN + ("all exported",):
            mine = sum(own[region.name].values()) if kind == "all exported" else own[region.name].get(kind, 0)
            there = theirs.get("all" if kind == "all exported" else kind, 0)
            agreed = agreed and mine == there
            print(f"{region.name:<8} {kind:<24} {mine:>10} {there:>9}  {'yes' if mine == there else 'NO'}")
    print(f"\n(own ledger: the region's ledger entries of the types the statistics profile exports; national: "
          f"the statistics the national service counted for the region, each once; taken in this run: "
          f"{taken}; checked in {time.time() - started:.0f}s)")
    return 0 if agreed and all(accepted.values()) else 1


def _agrees(own, national_row):
    return sum(own.values()) == national_row.get("all", 0) and all(
        national_row.get(kind, 0) == count for kind, count in own.items())


def main(argv=None):
    argv = argv if argv is not None else sys.argv[1:]
    command = argv[0] if argv else "report"
    if command == "names":
        print(" ".join(s.name for s in STACKS))
    elif command == "env":
        print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in stack(argv[1]).environ().items()))
    elif command == "var":
        print(stack(argv[1]).var)
    elif command == "ports":
        return check_ports()
    elif command == "table":
        ports_table()
    elif command == "report":
        return report()
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
