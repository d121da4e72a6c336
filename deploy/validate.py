"""Check the deployment artefacts offline: schemas, and the project's own rules.

    python -m deploy.validate

Prints each check, what it covered and any problem, and exits 1 if there is one. The unit tests
(tests/unit/test_deploy_manifests.py) run the same checks. Nothing here needs a network, a Docker
engine or a cluster: the Compose and KEDA schemas are vendored (deploy/schemas/), the Kubernetes
ones come with the pinned kubernetes-validate package.

What the schemas cannot say, the rules below do: every Deployment is probed on /health and has
resource requests; no Secret is written anywhere and no secret is given as a literal value; each
service takes the secrets deploy/stacks.py gives it from its own Secret, and the stack's settings
(AMENDS_REGION, and in a region the AMENDS_REGIONS referrals needs, no area in two stacks); every
service that consumes a queue is scaled by KEDA on queues that topology.py declares, except the
ledger's single writer, which runs as two replicas (writer and standby) and is never scaled; the
compose file builds every service from the one Dockerfile, checks /health, waits on healthy
dependencies and takes every secret from the environment; the generated files are up to date.
"""
import json
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

from shared.messaging import topology
from deploy import definitions, manifests, stacks

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "deploy" / "schemas"
COMPOSE_FILE = ROOT / "deploy" / "compose" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE_IN_COMPOSE = "deploy/docker/Dockerfile"
KEDA_SCHEMAS = {"ScaledObject": "keda-scaledobject-v1alpha1.json",
                "TriggerAuthentication": "keda-triggerauthentication-v1alpha1.json"}

# A variable whose value is a secret, by its name; and credentials written into a URI.
SECRET_NAME = re.compile(r"PASSWORD|PASS$|KEY|SECRET|TOKEN|CREDENTIAL", re.I)
URI_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:([^/@\s]+)@", re.I)
INTERPOLATION = re.compile(r"\$\{[^}]*\}")
REQUIRED = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$")


@dataclass
class Check:
    name: str
    covered: list = field(default_factory=list)
    problems: list = field(default_factory=list)


# ---- loading ----

def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def k8s_documents():
    """[(path relative to the repository, stack directory, document)] for every manifest."""
    found = []
    for path in sorted(K8S.glob("*/*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                found.append((str(path.relative_to(ROOT)), path.parent.name, document))
    return found


@lru_cache(maxsize=None)
def vendored(name):
    return json.loads((SCHEMAS / name).read_text())


def _schema_errors(schema, document):
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:300]}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def _name(document):
    return f"{document.get('kind')}/{(document.get('metadata') or {}).get('name')}"


# ---- schemas ----

def compose_schema(document=None):
    check = Check("compose file against the Compose Specification schema")
    check.covered = [str(COMPOSE_FILE.relative_to(ROOT))]
    check.problems = _schema_errors(vendored("compose-spec.json"), document if document is not None else compose())
    return check


def kubernetes_schema(documents=None):
    check = Check(f"Kubernetes manifests against the Kubernetes {stacks.KUBERNETES_VERSION} and KEDA schemas")
    for path, _, document in documents if documents is not None else k8s_documents():
        where = f"{path}: {_name(document)}"
        check.covered.append(where)
        kind = document.get("kind")
        if kind in KEDA_SCHEMAS:
            if document.get("apiVersion") != "keda.sh/v1alpha1":
                check.problems.append(f"{where}: apiVersion must be keda.sh/v1alpha1")
            check.problems += [f"{where}: {error}" for error in _schema_errors(vendored(KEDA_SCHEMAS[kind]), document)]
            continue
        try:
            kubernetes_validate.validate(document, stacks.KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            # the package's error carries jsonschema's: where in the document, and what
            check.problems.append(f"{where}: {'/'.join(map(str, error.absolute_path)) or '(top)'}: "
                                  f"{error.message[:300]}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
            check.problems.append(f"{where}: {error}")
    return check


# ---- the project's rules for Kubernetes ----

def _containers(document):
    spec = document.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def all_strings(value):
    """Every string anywhere inside a JSON-like value (a manifest, an event)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_strings(item)
    elif isinstance(value, str):
        yield value


def kubernetes_rules(documents=None):
    documents = documents if documents is not None else k8s_documents()
    check = Check("Kubernetes rules: probes, resources, secrets by reference, KEDA on topology's queues, records")
    problems = check.problems
    by_stack = {}
    for path, stack_name, document in documents:
        by_stack.setdefault(stack_name, []).append((path, document))
        where = f"{path}: {_name(document)}"
        kind = document.get("kind")
        if kind == "Secret":
            problems.append(f"{where}: a Secret in the repository; reference one by name, never write one")
        for text in all_strings(document):
            if URI_CREDENTIALS.search(text):
                problems.append(f"{where}: credentials written into a URI ({URI_CREDENTIALS.sub('://***@', text)[:80]})")
        if kind == "ConfigMap":
            for key in (document.get("data") or {}):
                if SECRET_NAME.search(key) or key.endswith("_URI"):
                    problems.append(f"{where}: {key} in a ConfigMap; a secret goes in a Secret, by reference")
        for container in _containers(document):
            for variable in container.get("env", []):
                if "value" in variable and (SECRET_NAME.search(variable["name"]) or variable["name"].endswith("_URI")):
                    problems.append(f"{where}: env {variable['name']} has a literal value; use valueFrom.secretKeyRef")
        if kind == "Deployment":
            for container in _containers(document):
                named = f"{where} container {container.get('name')}"
                for probe in ("readinessProbe", "livenessProbe"):
                    if (container.get(probe) or {}).get("httpGet", {}).get("path") != "/health":
                        problems.append(f"{named}: no {probe} on /health")
                requests = (container.get("resources") or {}).get("requests") or {}
                limits = (container.get("resources") or {}).get("limits") or {}
                if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
                    problems.append(f"{named}: needs resource requests (cpu, memory) and a memory limit")
        if kind == "TriggerAuthentication":
            spec = document.get("spec", {})
            if set(spec) - {"secretTargetRef"}:
                problems.append(f"{where}: only secretTargetRef (a Secret by reference) may give KEDA credentials")
        if kind == "ScaledObject":
            for trigger in document.get("spec", {}).get("triggers", []):
                if set(trigger.get("metadata", {})) & {"host", "password", "username"}:
                    problems.append(f"{where}: a trigger with credentials in its metadata; use its authenticationRef")

    declared = {topology.consumer_queue_name(service, consumer) for service, consumer in topology.CONSUMERS}
    national_queues = {stacks.NATIONAL_QUEUE}
    stacks_by_name = {stack.name: stack for stack in stacks.STACKS}
    for stack_name, items in sorted(by_stack.items()):
        stack = stacks_by_name.get(stack_name)
        if stack is None:
            problems.append(f"deploy/k8s/{stack_name}: not a stack of deploy/stacks.py")
            continue
        check.covered.append(f"stack {stack_name} ({len(items)} objects)")
        for path, document in items:
            namespace = (document.get("metadata") or {}).get("namespace")
            if document.get("kind") != "Namespace" and namespace != stack.namespace:
                problems.append(f"{path}: {_name(document)} is in namespace {namespace}, not {stack.namespace}")
        of_kind = lambda kind: {(d.get("metadata") or {}).get("name"): d for _, d in items if d.get("kind") == kind}  # noqa: E731
        deployments, scaled, budgets = of_kind("Deployment"), of_kind("ScaledObject"), of_kind("PodDisruptionBudget")
        services, auths = of_kind("Service"), of_kind("TriggerAuthentication")
        wanted = {service.name for service in stack.services}
        if set(deployments) != wanted:
            problems.append(f"stack {stack_name}: Deployments {sorted(deployments)}, expected {sorted(wanted)}")
        known_queues = national_queues if stack.national else declared
        config = (of_kind("ConfigMap").get(manifests.CONFIG) or {}).get("data") or {}
        if config.get("AMENDS_REGION") != stack.name:
            problems.append(f"stack {stack_name}: AMENDS_REGION is {config.get('AMENDS_REGION')!r}, not {stack.name!r} "
                            f"(records signs as {stack.ledger_origin})")
        if not stack.national and (not stack.areas or config.get("AMENDS_REGIONS") != ",".join(stack.areas)):
            problems.append(f"stack {stack_name}: AMENDS_REGIONS is {config.get('AMENDS_REGIONS')!r}, not the areas "
                            f"deploy/stacks.py gives it ({','.join(stack.areas)!r}); referrals needs them to start")
        targets = {so.get("spec", {}).get("scaleTargetRef", {}).get("name"): name for name, so in scaled.items()}
        for service in stack.services:
            deployment = deployments.get(service.name)
            if deployment is None:
                continue
            pod_labels = deployment["spec"]["template"]["metadata"].get("labels", {})
            for container in _containers(deployment):
                if {"configMapRef": {"name": manifests.CONFIG}} not in container.get("envFrom", []):
                    problems.append(f"stack {stack_name}: {service.name} does not take the stack's settings "
                                    f"(ConfigMap {manifests.CONFIG})")
                given = {v["name"]: ((v.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                         for v in container.get("env", [])}
                for variable in service.secrets + service.optional_secrets:
                    if given.get(variable) != manifests.secret_name(service.name):
                        problems.append(f"stack {stack_name}: {service.name} does not take {variable} from its "
                                        f"Secret {manifests.secret_name(service.name)}")
            for kind, objects in (("Service", services), ("PodDisruptionBudget", budgets)):
                selector = (objects.get(service.name) or {}).get("spec", {}).get("selector")
                selector = (selector or {}).get("matchLabels", selector) if kind == "PodDisruptionBudget" else selector
                if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
                    problems.append(f"stack {stack_name}: {service.name} has no {kind} selecting its pods")
            if service.single_writer:
                if deployment["spec"].get("replicas") != 2:
                    problems.append(f"stack {stack_name}: {service.name} must run 2 replicas (writer and standby)")
                if service.name in targets:
                    problems.append(f"stack {stack_name}: {service.name} is single-active-consumer; it must not be "
                                    f"scaled on queue depth (ScaledObject {targets[service.name]})")
                if (budgets.get(service.name) or {}).get("spec", {}).get("minAvailable") != 1:
                    problems.append(f"stack {stack_name}: {service.name}'s PodDisruptionBudget must be minAvailable 1")
                continue
            if not service.queues:
                continue
            so = scaled.get(targets.get(service.name))
            if so is None:
                problems.append(f"stack {stack_name}: {service.name} consumes {', '.join(service.queues)} "
                                "but has no ScaledObject")
                continue
            if "replicas" in deployment["spec"]:
                problems.append(f"stack {stack_name}: {service.name} sets replicas, which KEDA owns")
            queues = set()
            for trigger in so["spec"].get("triggers", []):
                queue = trigger.get("metadata", {}).get("queueName")
                queues.add(queue)
                if trigger.get("type") != "rabbitmq":
                    problems.append(f"stack {stack_name}: {service.name}: a trigger that is not rabbitmq")
                if queue not in known_queues:
                    problems.append(f"stack {stack_name}: {service.name} scales on {queue}, which topology.py "
                                    "does not declare")
                if (trigger.get("authenticationRef") or {}).get("name") not in auths:
                    problems.append(f"stack {stack_name}: {service.name}: a trigger without this namespace's "
                                    "TriggerAuthentication")
            missing = set(service.queues) - queues
            if missing:
                problems.append(f"stack {stack_name}: {service.name} is not scaled on {', '.join(sorted(missing))}")
        for name, target in targets.items():
            if name not in deployments:
                problems.append(f"stack {stack_name}: ScaledObject {target} targets no Deployment of the stack")
    served = {}
    for stack in stacks.REGIONS:
        for area in stack.areas:
            served.setdefault(area, []).append(stack.name)
    for area, by in sorted(served.items()):
        if len(by) > 1:
            problems.append(f"area {area} is served by more than one stack: {', '.join(by)}")
    return check


# ---- the project's rules for the compose file ----

def compose_rules(document=None):
    document = document if document is not None else compose()
    check = Check("compose rules: the one Dockerfile, /health checks, healthy dependencies, secrets from the environment")
    problems = check.problems
    services = document.get("services", {})
    for name in stacks.SERVICES:
        if name not in services:
            problems.append(f"compose: no service {name}")
    for name, service in services.items():
        check.covered.append(name)
        build = service.get("build")
        if build is not None:
            args = build.get("args", {}) if isinstance(build, dict) else {}
            if not isinstance(build, dict) or build.get("dockerfile") != DOCKERFILE_IN_COMPOSE \
                    or build.get("context") != "../..":
                problems.append(f"compose {name}: must build from {DOCKERFILE_IN_COMPOSE} (context ../..)")
            elif args.get("SERVICE") not in (name, "broker-setup") and not name.endswith("broker-setup"):
                problems.append(f"compose {name}: builds SERVICE={args.get('SERVICE')}, not {name}")
        if name in stacks.SERVICES:
            if build is None:
                problems.append(f"compose {name}: an Amends service must be built from {DOCKERFILE_IN_COMPOSE}")
            test = " ".join((service.get("healthcheck") or {}).get("test") or [])
            port = stacks.SERVICES[name].port
            if f":{port}/health" not in test:
                problems.append(f"compose {name}: its healthcheck must GET /health on port {port}")
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            problems.append(f"compose {name}: depends_on must name a condition for each dependency")
            depends = {}
        for dependency, how in depends.items():
            condition = (how or {}).get("condition")
            has_health = "healthcheck" in services.get(dependency, {})
            wanted = "service_healthy" if has_health else "service_completed_successfully"
            if condition != wanted:
                problems.append(f"compose {name}: depends on {dependency} with {condition}, not {wanted}")
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
        for variable in stacks.SERVICES[name].secrets if name in stacks.SERVICES else ():
            if variable not in environment:
                problems.append(f"compose {name}: no {variable}, which the service needs")
        for variable, value in environment.items():
            value = "" if value is None else str(value)
            literal = INTERPOLATION.sub("", value)
            if URI_CREDENTIALS.search(literal):
                problems.append(f"compose {name}: {variable} writes credentials into a URI; "
                                "take the password from the environment")
            if SECRET_NAME.search(variable):
                optional = any(variable in s.optional_secrets for s in stacks.SERVICES.values())
                if optional and value in ("", f"${{{variable}:-}}"):
                    continue
                if not REQUIRED.match(value):
                    problems.append(f"compose {name}: {variable} must be ${{VAR:?...}} from the environment, "
                                    "never a value or a default")
    return check


# ---- the Dockerfile ----

def dockerfile_rules(text=None):
    text = text if text is not None else DOCKERFILE.read_text()
    check = Check("Dockerfile rules: pinned base, non-root user, HEALTHCHECK on /health, SERVICE argument")
    check.covered = [str(DOCKERFILE.relative_to(ROOT))]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    arguments = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
    for line in lines:
        if line.upper().startswith("FROM "):
            image = line.split()[1]
            image = re.sub(r"\$\{(\w+)\}", lambda m: arguments.get(m.group(1), m.group(0)), image)
            if image in ("dependencies",):
                continue
            if not re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", image):
                check.problems.append(f"Dockerfile: base image {image} is not an exact python:3.11.N-slim tag")
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        check.problems.append("Dockerfile: the image must end as a non-root USER")
    if not any(line.upper().startswith("ARG SERVICE") for line in lines):
        check.problems.append("Dockerfile: no ARG SERVICE selecting the service")
    health = [line for line in lines if line.upper().startswith("HEALTHCHECK")]
    joined = " ".join(lines)
    if not health or "deploy.container" not in joined.split("HEALTHCHECK", 1)[-1].split("ENTRYPOINT")[0]:
        check.problems.append("Dockerfile: no HEALTHCHECK running deploy.container health (GET /health)")
    if "pyproject.toml" not in text:
        check.problems.append("Dockerfile: dependencies must come from pyproject.toml")
    return check


# ---- generated files ----

def generated():
    check = Check("generated files up to date: RabbitMQ definitions and Kubernetes manifests")
    check.covered = [str(p.relative_to(ROOT)) for p in list(definitions.rendered()) + list(manifests.rendered())]
    check.problems = [f"{p.relative_to(ROOT)} is out of date (python -m deploy.definitions)" for p in definitions.stale()]
    check.problems += [f"{p.relative_to(ROOT)} is out of date (python -m deploy.manifests)" for p in manifests.stale()]
    for path in (definitions.REGIONAL_FILE, definitions.NATIONAL_FILE):
        document = json.loads(path.read_text())
        for key in ("users", "permissions", "topic_permissions", "parameters"):
            if document.get(key):
                check.problems.append(f"{path.relative_to(ROOT)}: holds {key}; users are made from secrets at run time")
    return check


CHECKS = (compose_schema, compose_rules, kubernetes_schema, kubernetes_rules, dockerfile_rules, generated)


def main():
    failed = 0
    for run in CHECKS:
        check = run()
        status = "FAIL" if check.problems else "ok"
        print(f"[{status}] {check.name}: {len(check.covered)} checked")
        for item in check.covered:
            print(f"       - {item}")
        for problem in check.problems:
            print(f"   !! {problem}")
        failed += bool(check.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
