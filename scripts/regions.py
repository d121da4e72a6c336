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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".venv", "bin", "python")
REGIONS_VAR = os.path.join(ROOT, "var", "regions")
# Each service's HTTP port is its stack's base + this; the local mail and SMS sinks likewise.
HTTP_OFFSETS = {"referrals": 1, "matching": 2, "notifications": 3, "records": 4, "statistics": 7, "national": 8}
REGION_SERVICES = ("referrals", "matching", "notifications", "records", "statistics")
SMTP_OFFSET, SMS_OFFSET = 10, 11
# The ledger entry each referral taken in leaves (services/referrals/intake.py)
RECEIVED = "referral.received"


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


def link_password_variable(region):
    return f"NATIONAL_LINK_{region.upper().replace('-', '_')}_PASSWORD"


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


def have(*parts):
    return os.path.exists(os.path.join(ROOT, *parts))


def link_regions():
    if not have("shared", "messaging", "national.py"):
        say("no shared/messaging/national.py in this checkout: regions not linked to the national broker")
        return False
    secrets = NATIONAL.secrets()
    ok = True
    for region in REGIONS:
        password = secrets.get(link_password_variable(region.name))
        if not password:
            say(f"{region.name}: no {link_password_variable(region.name)} in {NATIONAL.var}/secrets.env; not linked")
            ok = False
            continue
        # the vhost "/" spelled %2F: to the shovel's Erlang client a bare trailing "/" is the vhost "",
        # which the national broker refuses (kombu reads both as "/")
        uri = f"amqp://amends-link-{region.name}:{password}@127.0.0.1:{NATIONAL.amqp_port}/%2F"
        result = subprocess.run([PY, "-m", "shared.messaging.national", "link", "--node", region.node,
                                 "--region", region.name, "--national-uri", uri],
                                cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        said = result.stdout.strip().replace(password, "***")
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
    """referral.received entries in the region's ledger, by referral area (auditor key: national scope)."""
    import requests
    auditor = {"Authorization": f"Bearer {keys(region)['auditor']}"}
    counts, after = {}, -1
    while True:
        response = requests.get(f"http://{region.http('records')}/v1/ledger/entries", params={"after": after, "limit": 1000},
                                headers=auditor, timeout=15)
        response.raise_for_status()
        page = response.json()
        for item in page["items"]:
            event = item["event"]
            if event.get("type") == RECEIVED:
                area = (event.get("data") or {}).get("region", "?")
                counts[area] = counts.get(area, 0) + 1
        if not page["items"]:
            return counts
        after = page["next_after"]


def parse_counts(text):
    """{region: count} from services.national.counts' output: JSON ({region: n}, {region: {...}},
    or [{region, count...}]) or lines naming a region and ending with its count."""
    names = {r.name for r in REGIONS}

    def number(value):
        if isinstance(value, int):
            return value
        if isinstance(value, dict):
            for key in ("referrals", "received", "referrals_received", "total", "count"):
                if isinstance(value.get(key), int):
                    return value[key]
            return sum(v for v in value.values() if isinstance(v, int))
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    found = {}
    if isinstance(data, dict):
        data = data.get("regions", data)
    if isinstance(data, dict):
        found = {k: number(v) for k, v in data.items() if k in names and number(v) is not None}
    elif isinstance(data, list):
        for row in data:
            if isinstance(row, dict) and row.get("region") in names:
                found[row["region"]] = number({k: v for k, v in row.items() if k != "region"})
    else:
        for line in text.splitlines():
            tokens = line.replace("|", " ").replace(":", " ").split()
            if tokens and tokens[0] in names:
                ints = [int(t) for t in tokens[1:] if t.isdigit()]
                if ints:
                    found[tokens[0]] = ints[-1]
    return found


def national_counts():
    secrets = NATIONAL.secrets()
    password = secrets.get("NATIONAL_PG_PASSWORD", "")
    env = dict(os.environ, MONGO_URI=f"mongodb://amends_national:{password}@127.0.0.1:{NATIONAL.mongo_port}/"
               "?authMechanism=PLAIN&authSource=$external", AMENDS_REGION="national")
    env.pop("AMQP_URI", None)
    result = subprocess.run([PY, "-m", "services.national.counts"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if result.returncode != 0:
        return None, result.stderr.strip()[-300:]
    return parse_counts(result.stdout), result.stdout.strip()


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
    linked = link_regions()
    before = {r.name: sum(ledger_counts(r).values()) for r in REGIONS}
    accepted, taken = {}, {}
    for region, other in ((REGIONS[0], REGIONS[1]), (REGIONS[1], REGIONS[0])):
        accepted[region.name], taken[region.name] = submit(region, other)
    # each region's ledger, once it holds every referral this run had taken in
    own, deadline = {}, time.time() + 60
    while time.time() < deadline:
        own = {r.name: ledger_counts(r) for r in REGIONS}
        if all(sum(own[r.name].values()) - before[r.name] >= taken[r.name] for r in REGIONS):
            break
        time.sleep(1)
    for region in REGIONS:
        recorded = sum(own[region.name].values()) - before[region.name]
        if recorded < taken[region.name]:
            say(f"{region.name}: its ledger holds {recorded} of the {taken[region.name]} referrals taken in after 60s")
    national, raw = {}, ""
    have_national = have("services", "national", "counts.py")
    if not have_national:
        say("no services/national/counts.py in this checkout: no national counts to compare")
    elif not linked:
        say("the regions are not linked to the national broker: the national counts cannot follow")
    if have_national:
        deadline, last, steady = time.time() + 120, None, 0
        while time.time() < deadline:
            national, raw = national_counts()
            national = national or {}
            agree = all(national.get(r.name) == sum(own[r.name].values()) for r in REGIONS)
            steady = steady + 1 if national == last else 0
            last = national
            if agree or (steady >= 10 and national):
                break
            time.sleep(2)
        say(f"services.national.counts said: {raw[:500] if raw else '(nothing)'}")
    print()
    print(f"{'region':<8} {'areas':<24} {'taken in':>8} {'ledger':>7} {'in area':>8} {'national':>8}  agree")
    agreed = True
    for region in REGIONS:
        ledger = sum(own[region.name].values())
        in_area = sum(own[region.name].get(a, 0) for a in region.areas)
        there = national.get(region.name)
        verdict = "n/a" if there is None else ("yes" if there == ledger else "NO")
        agreed = agreed and verdict != "NO"
        print(f"{region.name:<8} {','.join(region.areas):<24} {taken[region.name]:>8} {ledger:>7} {in_area:>8} "
              f"{'-' if there is None else there:>8}  {verdict}")
    print(f"\n(taken in: referrals this run answered 201, any area; ledger: referral.received entries in the region's "
          f"own ledger, every run and area; in area: those in its own areas; national: services.national.counts "
          f"for the region; checked in {time.time() - started:.0f}s)")
    return 0 if all(up.values()) and agreed and all(accepted.values()) else 1


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
