"""The Kubernetes manifests of every stack, generated: deploy/k8s/<stack>/*.yaml.

    python -m deploy.manifests          # rewrite deploy/k8s/
    python -m deploy.manifests --check  # exit 1 if the committed manifests are out of date

Plain YAML, one directory per stack (each regional stack and the national one), applied with
`kubectl apply -f deploy/k8s/<stack>/` (the files are numbered in the order they must go in).
They are generated rather than written by hand so that the stacks cannot drift apart and the
queues KEDA scales on are the ones shared/messaging/topology.py declares; a new region is a
line in deploy/stacks.py. No Secret is written here: every secret is referenced by name, and
the operator creates those Secrets (docs/deploy.md lists them).
"""
import sys
from pathlib import Path

import yaml

from deploy import broker_setup as broker_setup_module, generated, stacks

ROOT = Path(__file__).resolve().parent / "k8s"
VERSION = "0.1.0"  # the image tag; pyproject.toml's version
# Images are built from deploy/docker/Dockerfile and pushed by the operator under this name.
IMAGE = "amends-{name}:" + VERSION
BROKER_SERVICE = "rabbitmq"     # the stack's broker, in its namespace (docs/deploy.md)
KEDA_AUTH = "amends-rabbitmq"   # the TriggerAuthentication every ScaledObject uses
KEDA_SECRET = "amends-keda-rabbitmq"
CONFIG = "amends-config"
# How deep a queue may get per replica before KEDA adds one, and the most replicas per service.
MESSAGES_PER_REPLICA = "50"
MAX_REPLICAS = 6


def secret_name(service):
    return f"amends-{service}"


def labels(stack, name):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "amends",
            "amends.example/stack": stack.name}


def metadata(stack, name, **extra):
    return {"name": name, "namespace": stack.namespace, "labels": labels(stack, name), **extra}


def namespace(stack):
    return [(f"The {stack.name} stack: its services, and (run beside them by the operator) its own RabbitMQ "
             "and MongoDB. Nothing in it is shared with another stack.",
             {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": stack.namespace, "labels": labels(stack, stack.namespace)}})]


def config(stack):
    data = {"AMENDS_REGION": stack.name, "AMENDS_DB_PREFIX": "amends", "LOG_LEVEL": "INFO"}
    if not stack.national:
        data["AMENDS_REGIONS"] = ",".join(stack.areas)
    return [("Settings that are not secret, shared by the stack's services. AMENDS_REGIONS: the areas whose "
             "referrals this stack accepts (any other is refused with a 400).",
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(stack, CONFIG), "data": data})]


def keda_auth(stack):
    return [("How KEDA reads queue depths: the management API URL of the stack's broker, as the read-only "
             f"user amends-keda, from the Secret {KEDA_SECRET} (key `host`, e.g. "
             f"http://amends-keda:PASSWORD@{BROKER_SERVICE}.{stack.namespace}.svc:15672/).",
             {"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
              "metadata": metadata(stack, KEDA_AUTH),
              "spec": {"secretTargetRef": [{"parameter": "host", "name": KEDA_SECRET, "key": "host"}]}})]


def broker_setup(stack):
    kind = "national" if stack.national else "region"
    env = [{"name": "AMENDS_BROKER_STACK", "value": kind},
           {"name": "AMENDS_BROKER_MANAGEMENT_URL", "value": f"http://{BROKER_SERVICE}:15672"}]
    if stack.national:
        # a link user on the national broker for every region of deploy/stacks.py
        env.append({"name": broker_setup_module.LINK_REGIONS_VARIABLE,
                    "value": ",".join(region.name for region in stacks.REGIONS)})
    container = {
        "name": "broker-setup", "image": IMAGE.format(name="broker-setup"), "env": env,
        # every broker password of the stack (and, in a region, its link URI): docs/deploy.md
        "envFrom": [{"secretRef": {"name": "amends-broker-setup"}}],
        "securityContext": _container_security(),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
    }
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(stack, "broker-setup"),
           "spec": {"backoffLimit": 10, "ttlSecondsAfterFinished": 86400,
                    "template": {"metadata": {"labels": labels(stack, "broker-setup")},
                                 "spec": {"restartPolicy": "OnFailure", "securityContext": _pod_security(),
                                          "containers": [container]}}}}
    return [("Readies the stack's broker: imports the generated definitions (exchanges, queues, bindings), makes "
             "each service's user from its password, and in a region defines the shovel to the national broker. "
             "Idempotent; a Job cannot be changed, so delete it before applying a new release.", job)]


def _pod_security():
    return {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security():
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def _env(stack, service):
    def secret(variable, key=None, optional=False):
        ref = {"name": secret_name(service.name), "key": key or variable}
        if optional:
            ref["optional"] = True
        return {"name": variable, "valueFrom": {"secretKeyRef": ref}}
    env = [{"name": service.address_variable, "value": f"0.0.0.0:{service.port}"},
           # its own broker user and database user: a Secret of its own per service
           *([secret("AMQP_URI")] if service.bus else []), secret("MONGO_URI")]
    env += [secret(variable) for variable in service.secrets]
    env += [secret(variable, optional=True) for variable in service.optional_secrets]
    env += [{"name": stacks.SERVICES[name].address_variable, "value": f"{name}:{stacks.SERVICES[name].port}"}
            for name in service.calls if name in stacks.SERVICES]
    return env


def deployment(stack, service):
    probe = {"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 5}
    container = {
        "name": service.name, "image": IMAGE.format(name=service.name),
        "ports": [{"name": "http", "containerPort": service.port}],
        "envFrom": [{"configMapRef": {"name": CONFIG}}],
        "env": _env(stack, service),
        # /health answers 503 while the database or the broker is unreachable: the pod leaves the
        # Service at once (readiness) and is restarted only if that lasts (liveness, ~2 minutes)
        "readinessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 20, "failureThreshold": 6},
        "resources": _resources(service),
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    spec = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": service.name}},
        "template": {"metadata": {"labels": labels(stack, service.name)},
                     "spec": {"securityContext": _pod_security(), "terminationGracePeriodSeconds": 30,
                              "containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]}},
    }
    if service.single_writer:
        # One writer and one standby: the ledger queue is single-active-consumer, so the broker
        # delivers to one pod and the other takes over when the first's connection goes. A third
        # pod would only stand by too, so this is never scaled on queue depth. The two pods prefer
        # different nodes, so one node's loss leaves the standby.
        spec["replicas"] = 2
        spec["template"]["spec"]["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": service.name}}}}]}}
        comment = f"{service.name}: the stack's ledger, one writer and a hot standby."
    elif service.queues:
        # no `replicas`: KEDA's ScaledObject owns the count, and an apply must not reset it
        comment = f"{service.name}: scaled by KEDA on its queues' depth (ScaledObject below)."
    elif service.scaling:
        spec["replicas"] = 1
        comment = f"{service.name}: one replica: it {service.scaling}"
    else:
        spec["replicas"] = 1
        comment = (f"{service.name}: consumes no queue that shared/messaging/topology.py names yet, so nothing to "
                   "scale on: one replica until it does (then re-render, and it gets a ScaledObject).")
    if stacks.LEDGER_SIGNING_KEY in service.secrets:
        comment += (f" Its {stacks.LEDGER_SIGNING_KEY} is this region's own, in the Secret {secret_name(service.name)} of "
                    f"{stack.namespace}, and must be named {stack.ledger_origin}, its checkpoints' origin: records "
                    f"does not start with another region's (python -m services.records.keygen {stack.ledger_origin}).")
    return comment, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(stack, service.name),
                     "spec": spec}


def _resources(service):
    memory = "1Gi" if service.single_writer else "512Mi"  # records batches up to 1000 events
    return {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": memory}}


def k8s_service(stack, service):
    return None, {"apiVersion": "v1", "kind": "Service", "metadata": metadata(stack, service.name),
                  "spec": {"selector": {"app.kubernetes.io/name": service.name},
                           "ports": [{"name": "http", "port": service.port, "targetPort": "http"}]}}


def disruption_budget(stack, service):
    if service.single_writer:
        budget, why = {"minAvailable": 1}, "one of the two records pods stays up through a node drain"
    else:
        # maxUnavailable, not minAvailable 1: at one replica, minAvailable 1 would block every drain
        budget, why = {"maxUnavailable": 1}, "a drain takes one pod at a time"
    return why, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata(stack, service.name),
                 "spec": {**budget, "selector": {"matchLabels": {"app.kubernetes.io/name": service.name}}}}


def scaled_object(stack, service):
    triggers = [{"type": "rabbitmq", "authenticationRef": {"name": KEDA_AUTH},
                 "metadata": {"protocol": "http", "queueName": queue, "mode": "QueueLength",
                              "value": MESSAGES_PER_REPLICA, "vhostName": "/"}}
                for queue in service.queues]
    return ("At least one replica always (each serves HTTP and runs timers); more while a queue holds over "
            f"{MESSAGES_PER_REPLICA} messages per replica.",
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": metadata(stack, service.name),
             "spec": {"scaleTargetRef": {"name": service.name}, "minReplicaCount": 1,
                      "maxReplicaCount": MAX_REPLICAS, "pollingInterval": 15, "cooldownPeriod": 300,
                      "triggers": triggers}})


def service_documents(stack, service):
    documents = [deployment(stack, service), k8s_service(stack, service), disruption_budget(stack, service)]
    if service.queues and not service.single_writer:
        documents.append(scaled_object(stack, service))
    return documents


def files(stack):
    """file name -> [(comment, document)] for one stack."""
    out = {"00-namespace.yaml": namespace(stack), "01-config.yaml": config(stack),
           "02-keda-auth.yaml": keda_auth(stack), "03-broker-setup.yaml": broker_setup(stack)}
    for number, service in enumerate(stack.services, start=10):
        out[f"{number}-{service.name}.yaml"] = service_documents(stack, service)
    return out


class _Dumper(yaml.SafeDumper):
    """Writes a repeated value out again rather than as an anchor and alias: easier to read."""

    def ignore_aliases(self, data):
        return True


def _text(documents):
    parts = ["# Generated by `python -m deploy.manifests` from deploy/stacks.py: edit those, not this file.\n"]
    for comment, document in documents:
        block = "---\n"
        if comment:
            block += "".join(f"# {line}\n" for line in _wrap(comment))
        parts.append(block + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120))
    return "".join(parts)


def _wrap(text, width=100):
    line, lines = "", []
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line] if line else lines


def rendered():
    """path -> text, for every stack."""
    return {ROOT / stack.name / name: _text(documents)
            for stack in stacks.STACKS for name, documents in files(stack).items()}


def obsolete(wanted):
    """Committed manifests no stack makes any more (a stack or a service removed)."""
    return sorted(set(ROOT.glob("*/*.yaml")) - set(wanted))


def stale():
    wanted = rendered()
    changed = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    return changed + obsolete(wanted)


def main(argv=None):
    return generated.main(__name__, argv, rendered, stale, obsolete)


if __name__ == "__main__":
    sys.exit(main())
