"""The deployment artefacts, checked offline: the compose file, the Kubernetes manifests and
KEDA objects against their schemas, the project's own rules, the Dockerfile, and the generated
files (RabbitMQ definitions, manifests) against the code that generates them.

Each check is also shown to fail: a copy of a manifest, broken one way, must be flagged.
"""
import copy
import json

import pytest

from deploy import broker_setup, container, definitions, manifests, stacks, validate
from services.records import dependencies as records_dependencies
from shared.messaging import national, topology
from shared.messaging.permissions import GRANTS, OPERATOR_GRANT, OPERATOR_USER, user_for


@pytest.fixture(scope="module")
def documents():
    return validate.k8s_documents()


@pytest.fixture(scope="module")
def compose():
    return validate.compose()


def _find(documents, stack, kind, name):
    for path, stack_name, document in documents:
        if stack_name == stack and document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise LookupError(f"{stack} {kind}/{name}")


def _broken(documents, change, stack="south-wales", kind="Deployment", name="matching"):
    """A deep copy of the manifests with `change` applied to one object."""
    documents = copy.deepcopy(documents)
    change(_find(documents, stack, kind, name))
    return documents


# ---- the committed artefacts pass every check ----

@pytest.mark.parametrize("run", validate.CHECKS, ids=lambda run: run.__name__)
def test_every_check_passes(run):
    check = run()
    assert check.covered, f"{check.name} checked nothing"
    assert check.problems == [], "\n".join(check.problems)


def test_every_stack_is_rendered(documents):
    assert {stack for _, stack, _ in documents} == {stack.name for stack in stacks.STACKS}
    assert len(stacks.REGIONS) >= 2


def test_the_cli_prints_what_it_checked(capsys):
    assert validate.main() == 0
    out = capsys.readouterr().out
    assert out.count("[ok]") == len(validate.CHECKS)
    assert "deploy/k8s/south-wales/13-records.yaml: Deployment/records" in out


# ---- schemas catch what they should ----

def test_kubernetes_schema_flags_a_wrong_type_and_an_unknown_field(documents):
    wrong = _broken(documents, lambda d: d["spec"].update(replicas="two"))
    assert any("replicas" in p for p in validate.kubernetes_schema(wrong).problems)
    unknown = _broken(documents, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}))
    assert validate.kubernetes_schema(unknown).problems


def test_keda_schema_flags_a_broken_scaled_object_and_trigger_authentication(documents):
    broken = _broken(documents, lambda d: d["spec"].pop("scaleTargetRef"), kind="ScaledObject")
    assert any("scaleTargetRef" in p for p in validate.kubernetes_schema(broken).problems)
    broken = _broken(documents, lambda d: d["spec"].update(minReplicaCount="one"), kind="ScaledObject")
    assert validate.kubernetes_schema(broken).problems
    broken = _broken(documents, lambda d: d["spec"]["secretTargetRef"][0].pop("key"),
                     kind="TriggerAuthentication", name=manifests.KEDA_AUTH)
    assert validate.kubernetes_schema(broken).problems


def test_compose_schema_flags_an_unknown_key(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["referrals"]["helthcheck"] = {}
    assert validate.compose_schema(broken).problems


# ---- the project's Kubernetes rules ----

@pytest.mark.parametrize("change, says", [
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe"), "readinessProbe"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"].update(path="/healthz"),
     "livenessProbe"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["resources"].pop("requests"), "resource requests"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "AMENDS_MASTER_KEY", "value": "c2VjcmV0"}), "literal value"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "SMTP_RELAY", "value": "smtp://mailer:hunter2@relay:25"}), "credentials written into a URI"),
    (lambda d: d["spec"].update(replicas=3), "sets replicas"),
], ids=["no readiness", "liveness elsewhere", "no requests", "literal secret", "uri credentials", "replicas"])
def test_kubernetes_rules_flag_a_broken_deployment(documents, change, says):
    problems = validate.kubernetes_rules(_broken(documents, change)).problems
    assert any(says in problem for problem in problems), problems


def test_a_secret_with_data_is_refused(documents):
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "amends-referrals", "namespace": "amends-south-wales"},
              "data": {"AMENDS_MASTER_KEY": "c2VjcmV0"}}
    assert validate.kubernetes_schema([("x.yaml", "south-wales", secret)]).problems == []  # valid Kubernetes...
    problems = validate.kubernetes_rules(documents + [("x.yaml", "south-wales", secret)]).problems
    assert any("a Secret in the repository" in p for p in problems)  # ...but never in this repository


def test_a_secret_in_a_config_map_is_refused(documents):
    broken = _broken(documents, lambda d: d["data"].update(MONGO_URI="mongodb://db/"), kind="ConfigMap",
                     name=manifests.CONFIG)
    assert any("in a ConfigMap" in p for p in validate.kubernetes_rules(broken).problems)


def test_every_consuming_service_is_scaled_on_its_topology_queues(documents):
    for stack in stacks.STACKS:
        for service in stack.services:
            if not service.queues or service.single_writer:
                continue
            scaled = _find(documents, stack.name, "ScaledObject", service.name)
            assert scaled["spec"]["scaleTargetRef"]["name"] == service.name
            queues = {t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]}
            assert queues == set(service.queues)
    declared = {topology.consumer_queue_name(s, c) for s, c in topology.CONSUMERS}
    assert set(stacks.SERVICES["matching"].queues) == {q for q in declared if q.startswith("matching.")}
    assert stacks.SERVICES["national"].queues == (national.NATIONAL_QUEUE,)


@pytest.mark.parametrize("stack, name", [("south-wales", "matching"), ("north-wales", "referrals"),
                                         ("south-wales", "notifications"), ("national", "national")])
def test_a_missing_scaled_object_is_flagged(documents, stack, name):
    broken = [item for item in documents
              if not (item[1] == stack and item[2]["kind"] == "ScaledObject" and item[2]["metadata"]["name"] == name)]
    assert any("has no ScaledObject" in p for p in validate.kubernetes_rules(broken).problems)


def test_scaling_on_a_queue_topology_does_not_declare_is_flagged(documents):
    broken = _broken(documents, lambda d: d["spec"]["triggers"][0]["metadata"].update(queueName="matching.assesss"),
                     kind="ScaledObject")
    problems = validate.kubernetes_rules(broken).problems
    assert any("which topology.py does not declare" in p for p in problems)
    assert any("is not scaled on matching.assess" in p for p in problems)


def test_records_runs_a_writer_and_a_standby_and_is_never_scaled(documents):
    for stack in stacks.REGIONS:
        records = _find(documents, stack.name, "Deployment", "records")
        assert records["spec"]["replicas"] == 2
        assert _find(documents, stack.name, "PodDisruptionBudget", "records")["spec"]["minAvailable"] == 1
        with pytest.raises(LookupError):
            _find(documents, stack.name, "ScaledObject", "records")
    assert stacks.SERVICES["records"].single_writer  # from topology.SINGLE_ACTIVE

    one = _broken(documents, lambda d: d["spec"].update(replicas=1), name="records")
    assert any("2 replicas" in p for p in validate.kubernetes_rules(one).problems)
    matching = _find(documents, "south-wales", "ScaledObject", "matching")
    scaled = copy.deepcopy(matching)
    scaled["metadata"]["name"], scaled["spec"]["scaleTargetRef"]["name"] = "records", "records"
    problems = validate.kubernetes_rules(documents + [("x.yaml", "south-wales", scaled)]).problems
    assert any("must not be scaled" in p for p in problems)
    budget = _broken(documents, lambda d: d["spec"].pop("minAvailable"), kind="PodDisruptionBudget", name="records")
    assert any("minAvailable 1" in p for p in validate.kubernetes_rules(budget).problems)


def test_each_region_has_its_own_namespace_region_and_ledger_origin(documents):
    for stack in stacks.REGIONS:
        config = _find(documents, stack.name, "ConfigMap", manifests.CONFIG)
        assert config["metadata"]["namespace"] == f"amends-{stack.name}"
        assert config["data"]["AMENDS_REGION"] == stack.name
        assert config["data"]["AMENDS_REGIONS"] == ",".join(stack.areas)
        assert stack.ledger_origin == f"amends.{stack.name}/ledger"
    moved = _broken(documents, lambda d: d["metadata"].update(namespace="amends-north-wales"))
    assert any("not amends-south-wales" in p for p in validate.kubernetes_rules(moved).problems)


def test_a_new_topology_queue_reaches_the_manifests_and_the_definitions(monkeypatch):
    """A queue added to topology.py: a re-render scales its service on it too."""
    consumers = {**topology.CONSUMERS, ("statistics", "tally"): [("referrals", "#")]}
    monkeypatch.setattr(topology, "CONSUMERS", consumers)
    region = stacks.REGIONS[0]
    rendered = manifests.files(region)[f"{10 + [s.name for s in region.services].index('statistics')}-statistics.yaml"]
    scaled = [document for _, document in rendered if document["kind"] == "ScaledObject"]
    assert [t["metadata"]["queueName"] for t in scaled[0]["spec"]["triggers"]] == [
        "statistics.deidentify", "statistics.tally"]
    assert manifests.stale() and definitions.stale()  # the committed files would be out of date


def test_statistics_and_national_are_scaled_on_their_queues(documents):
    for stack in stacks.REGIONS:
        scaled = _find(documents, stack.name, "ScaledObject", "statistics")
        assert [t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]] == ["statistics.deidentify"]
        assert "replicas" not in _find(documents, stack.name, "Deployment", "statistics")["spec"]
    scaled = _find(documents, stacks.NATIONAL.name, "ScaledObject", national.NATIONAL_SERVICE)
    assert [t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]] == [national.NATIONAL_QUEUE]


def _secret_refs(deployment):
    return {v["name"]: v["valueFrom"]["secretKeyRef"] for v in deployment["spec"]["template"]["spec"]["containers"][0]
            ["env"] if "valueFrom" in v}


def test_each_service_takes_its_own_secrets_by_reference(documents):
    for stack in stacks.REGIONS:
        statistics = _secret_refs(_find(documents, stack.name, "Deployment", "statistics"))
        assert statistics["AMENDS_STATISTICS_KEY"] == {"name": "amends-statistics", "key": "AMENDS_STATISTICS_KEY"}
        for other in ("referrals", "matching", "notifications", "records"):
            assert "AMENDS_STATISTICS_KEY" not in _secret_refs(_find(documents, stack.name, "Deployment", other))
    broken = _broken(documents, lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].pop(), name="statistics")
    assert any("does not take AMENDS_STATISTICS_KEY" in p for p in validate.kubernetes_rules(broken).problems)


def test_each_records_signs_with_its_own_regions_key(documents):
    assert stacks.LEDGER_SIGNING_KEY == records_dependencies.SIGNING_KEY
    for stack in stacks.REGIONS:
        path, _, records = next(item for item in documents if item[1] == stack.name
                                and item[2]["kind"] == "Deployment" and item[2]["metadata"]["name"] == "records")
        # the Secret of the region's own namespace
        assert records["metadata"]["namespace"] == stack.namespace
        assert _secret_refs(records)[stacks.LEDGER_SIGNING_KEY]["name"] == "amends-records"
        # and the manifest says what that key must be named
        assert f"must be named amends.{stack.name}/ledger" in " ".join(
            (validate.ROOT / path).read_text().replace("\n# ", " ").split())
    wrong = _broken(documents, lambda d: d["data"].update(AMENDS_REGION="north-wales"), kind="ConfigMap",
                    name=manifests.CONFIG)
    assert any("records signs as amends.south-wales/ledger" in p for p in validate.kubernetes_rules(wrong).problems)


def test_referrals_gets_each_stacks_areas(documents):
    for stack in stacks.REGIONS:
        referrals = _find(documents, stack.name, "Deployment", "referrals")
        assert {"configMapRef": {"name": manifests.CONFIG}} in \
            referrals["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    empty = _broken(documents, lambda d: d["data"].pop("AMENDS_REGIONS"), kind="ConfigMap", name=manifests.CONFIG)
    assert any("referrals needs them to start" in p for p in validate.kubernetes_rules(empty).problems)
    detached = _broken(documents, lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("envFrom"),
                       name="referrals")
    assert any("referrals does not take the stack's settings" in p for p in validate.kubernetes_rules(detached).problems)


def test_an_area_served_by_two_stacks_is_flagged(documents, monkeypatch):
    south, north = stacks.REGIONS
    monkeypatch.setattr(stacks, "REGIONS", (south, stacks.Stack(north.name, areas=north.areas + ("gwent",))))
    assert any("area gwent is served by more than one stack" in p for p in validate.kubernetes_rules(documents).problems)


# ---- the compose file's rules ----

def _compose_problems(compose, change):
    broken = copy.deepcopy(compose)
    change(broken["services"])
    return validate.compose_rules(broken).problems


@pytest.mark.parametrize("change, says", [
    (lambda s: s["matching"]["build"].update(dockerfile="services/matching/Dockerfile"), "must build from"),
    (lambda s: s["records"]["build"]["args"].update(SERVICE="matching"), "builds SERVICE=matching"),
    (lambda s: s["records"].pop("build"), "must be built from"),
    (lambda s: s["notifications"]["healthcheck"].update(test=["CMD", "true"]), "/health"),
    (lambda s: s["referrals"].update(depends_on=["rabbitmq", "mongo"]), "must name a condition"),
    (lambda s: s["referrals"]["depends_on"].update(mongo={"condition": "service_started"}), "service_healthy"),
    (lambda s: s["referrals"]["environment"].update(AMENDS_MASTER_KEY="c2VjcmV0"), "AMENDS_MASTER_KEY must be"),
    (lambda s: s["records"]["environment"].update(AMENDS_LEDGER_SIGNING_KEY="${AMENDS_LEDGER_SIGNING_KEY:-dev}"),
     "AMENDS_LEDGER_SIGNING_KEY must be"),
    (lambda s: s["matching"]["environment"].update(AMQP_URI="amqp://amends-matching:hunter2@rabbitmq:5672/"),
     "credentials into a URI"),
    (lambda s: s.pop("statistics"), "no service statistics"),
    (lambda s: s["statistics"]["environment"].pop("AMENDS_STATISTICS_KEY"), "no AMENDS_STATISTICS_KEY"),
], ids=["other dockerfile", "wrong service", "no build", "health elsewhere", "depends list", "not healthy",
        "literal secret", "defaulted secret", "uri password", "service missing", "secret missing"])
def test_compose_rules_flag(compose, change, says):
    problems = _compose_problems(compose, change)
    assert any(says in problem for problem in problems), problems


def test_compose_builds_every_service_from_the_one_dockerfile(compose):
    built = {name: service["build"] for name, service in compose["services"].items() if "build" in service}
    assert set(stacks.SERVICES) <= set(built)
    assert {b["dockerfile"] for b in built.values()} == {"deploy/docker/Dockerfile"}
    assert compose["services"]["mongo"]["image"].startswith("mongo:7.")
    assert "--replSet" in " ".join(compose["services"]["mongo"]["entrypoint"])


# ---- the Dockerfile ----

@pytest.mark.parametrize("old, new, says", [
    ("ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm", "ARG PYTHON_IMAGE=python:3.11-slim", "exact"),
    ("USER 10001:10001", "USER root", "non-root"),
    ('  CMD ["python", "-m", "deploy.container", "health"]\n', "", "HEALTHCHECK"),
    ("ARG SERVICE\n", "", "ARG SERVICE"),
])
def test_dockerfile_rules_flag(old, new, says):
    text = validate.DOCKERFILE.read_text()
    assert old in text
    problems = validate.dockerfile_rules(text.replace(old, new)).problems
    assert any(says in problem for problem in problems), problems


def test_the_container_checks_health_on_its_own_port(monkeypatch):
    asked = []

    class Answer:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(container.urllib.request, "urlopen", lambda url, timeout: asked.append(url) or Answer())
    assert container.health({"AMENDS_SERVICE": "records"}) == 0
    assert asked == ["http://127.0.0.1:8004/health"]
    program, env = container.command({"AMENDS_SERVICE": "statistics"})
    assert program[-1] == "services.statistics.service:StatisticsService"
    assert env["STATISTICS_HTTP_ADDRESS"] == "0.0.0.0:8007"
    assert container.command({"AMENDS_SERVICE": "national", "NATIONAL_HTTP_ADDRESS": "0.0.0.0:9"})[1][
        "NATIONAL_HTTP_ADDRESS"] == "0.0.0.0:9"
    with pytest.raises(SystemExit):
        container.command({"AMENDS_SERVICE": "nobody"})


# ---- the broker's definitions and setup ----

def test_definitions_hold_topology_and_no_users():
    document = json.loads(definitions.REGIONAL_FILE.read_text())
    assert not {"users", "permissions", "topic_permissions"} & set(document)
    queues = {q["name"]: q["arguments"] for q in document["queues"]}
    for service, consumer in topology.CONSUMERS:
        assert queues[topology.consumer_queue_name(service, consumer)]["x-queue-type"] == "quorum"
    assert queues["records.ledger"]["x-single-active-consumer"] is True
    assert queues[national.OUTBOUND_QUEUE] == national.outbound_queue().queue_arguments
    assert {"source": national.OUTBOUND_EXCHANGE, "destination": national.OUTBOUND_QUEUE} .items() <= {
        k: v for b in document["bindings"] if b["destination"] == national.OUTBOUND_QUEUE for k, v in b.items()}.items()
    national_document = json.loads(definitions.NATIONAL_FILE.read_text())
    national_queues = {q["name"]: q["arguments"] for q in national_document["queues"]}
    # the queue as the national service declares it: an import with other arguments would fail it
    assert national_queues[national.NATIONAL_QUEUE] == national.national_queue().queue_arguments
    assert {national.NATIONAL_QUEUE, "national.dead-letters"} <= set(national_queues)
    assert {e["name"] for e in national_document["exchanges"]} == {national.NATIONAL_EXCHANGE, "national.dlx"}


def test_the_link_is_named_once():
    """deploy/ names the link as shared/messaging/national.py does, never again."""
    assert (stacks.OUTBOUND_EXCHANGE, stacks.OUTBOUND_QUEUE, stacks.NATIONAL_EXCHANGE, stacks.NATIONAL_QUEUE,
            stacks.SHOVEL_NAME) == (national.OUTBOUND_EXCHANGE, national.OUTBOUND_QUEUE, national.NATIONAL_EXCHANGE,
                                    national.NATIONAL_QUEUE, national.SHOVEL_NAME)
    for module in (stacks, definitions, broker_setup, manifests):
        text = open(module.__file__).read()
        for name in ("statistics.national", "national.outbound", "amends.national", "national.statistics",
                     "national-link", "amends-link-"):
            assert f'"{name}' not in text, f"{module.__name__} names {name} again"


REGION_ENV = {"AMENDS_BUS_ADMIN_PASSWORD": "admin-pw", "KEDA_BUS_PASSWORD": "keda-pw",
              "AMENDS_BUS_OPERATOR_PASSWORD": "operator-pw",
              **{f"{s.upper()}_BUS_PASSWORD": f"{s}-pw" for s in topology.SERVICES},
              "NATIONAL_LINK_URI": "amqps://amends-link-south-wales:link-pw@national:5671/%2F"}


def test_broker_setup_makes_every_service_user_with_its_grant():
    steps = broker_setup.plan("region", REGION_ENV)
    assert steps[0][1] == "/api/definitions"
    for service in topology.SERVICES:
        user = user_for(service)
        grant = GRANTS[service]
        assert ("PUT", f"/api/users/{user}") in [(m, p) for m, p, *_ in steps]
        permissions = [body for m, p, body, *_ in steps if p == f"/api/permissions/%2F/{user}"]
        assert permissions == [{"configure": grant.configure, "write": grant.write, "read": grant.read}]
    # the operators' narrower user: monitoring (queue depths) and the dead letters, nothing else
    assert ("PUT", f"/api/users/{OPERATOR_USER}", {"password": "operator-pw", "tags": "monitoring"}) in [
        (m, p, body) for m, p, body, *_ in steps]
    assert [body for m, p, body, *_ in steps if p == f"/api/permissions/%2F/{OPERATOR_USER}"] == [
        {"configure": OPERATOR_GRANT.configure, "write": OPERATOR_GRANT.write, "read": OPERATOR_GRANT.read}]
    shovels = [(p, body) for m, p, body, *_ in steps if p.startswith("/api/parameters/shovel/")]
    # national.py's shovel, as it is: on-confirm, the routing key (the region) kept, nothing added
    assert shovels == [(f"/api/parameters/shovel/%2F/{national.SHOVEL_NAME}",
                        national.shovel_definition(REGION_ENV["NATIONAL_LINK_URI"]))]
    assert shovels[0][1]["value"]["ack-mode"] == "on-confirm"
    assert steps[-1][:2] == ("DELETE", "/api/users/guest")


def test_broker_setup_gives_the_national_broker_national_pys_accounts():
    regions = [stack.name for stack in stacks.REGIONS]
    environ = {"KEDA_BUS_PASSWORD": "k", "NATIONAL_BUS_PASSWORD": "n", "AMENDS_LINK_REGIONS": ",".join(regions),
               **{national.link_password_variable(r): f"{r}-pw" for r in regions}}
    steps = broker_setup.plan("national", environ)
    assert steps[0][2] == json.loads(definitions.NATIONAL_FILE.read_text())
    for user, grant in national.national_accounts(regions).items():
        assert [body for m, p, body, *_ in steps if p == f"/api/permissions/%2F/{user}"] == [
            {"configure": grant.configure, "write": grant.write, "read": grant.read}]
        assert [body for m, p, body, *_ in steps if m == "PUT" and p == f"/api/topic-permissions/%2F/{user}"] == [
            {"exchange": exchange, "write": w, "read": r} for exchange, (w, r) in sorted(grant.topics.items())]
    users = {body["password"] for m, p, body, *_ in steps if p.startswith("/api/users/") and m == "PUT"}
    assert users == {"k", "n", *(f"{r}-pw" for r in regions)}
    assert not [p for _, p, *_ in steps if "shovel" in p]
    # the national stack's Job is told every region of deploy/stacks.py
    job = manifests.broker_setup(stacks.NATIONAL)[0][1]
    env = {v["name"]: v.get("value") for v in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AMENDS_LINK_REGIONS"] == ",".join(regions)


def test_broker_setup_refuses_a_missing_password():
    with pytest.raises(SystemExit, match="RECORDS_BUS_PASSWORD"):
        broker_setup.plan("region", {k: v for k, v in REGION_ENV.items() if k != "RECORDS_BUS_PASSWORD"})
    with pytest.raises(SystemExit, match="NATIONAL_LINK_NORTH_WALES_PASSWORD"):
        broker_setup.plan("national", {"KEDA_BUS_PASSWORD": "k", "NATIONAL_BUS_PASSWORD": "n",
                                       "AMENDS_LINK_REGIONS": "north-wales"})


def test_broker_setup_prints_no_password(capsys):
    class Session:
        def get(self, url, timeout):
            return type("R", (), {"status_code": 200})()

        def request(self, method, url, json, timeout):
            return type("R", (), {"status_code": 204, "text": ""})()

    assert broker_setup.run("region", REGION_ENV, session=Session()) == 0
    out = capsys.readouterr().out
    assert "ok  user amends-records" in out
    assert not any(secret in out for secret in ("admin-pw", "keda-pw", "records-pw", "link-pw"))
