"""The entrypoint and health check of every Amends container image.

    python -m deploy.container run      # start the service the image was built for
    python -m deploy.container health   # exit 0 when its GET /health answers 200

One Dockerfile builds every image; its build argument SERVICE becomes AMENDS_SERVICE, which
names a service of deploy/stacks.py (or `broker-setup`, the one-shot step that readies a
broker). A service listens on <SERVICE>_HTTP_ADDRESS; inside a container that defaults to
0.0.0.0 on the service's usual port, since 127.0.0.1 would be unreachable from the pod's or
compose network's other members.
"""
import os
import sys
import urllib.request

from deploy.stacks import SERVICES

BROKER_SETUP = "broker-setup"


def service_from(environ):
    name = environ.get("AMENDS_SERVICE", "")
    if name == BROKER_SETUP:
        return None
    if name not in SERVICES:
        raise SystemExit(f"AMENDS_SERVICE must be one of {', '.join(SERVICES)} or {BROKER_SETUP}, not {name!r}")
    return SERVICES[name]


def address(service, environ):
    return environ.get(service.address_variable) or f"0.0.0.0:{service.port}"


def command(environ):
    """The program to exec, and the environment to give it."""
    service = service_from(environ)
    env = dict(environ)
    if service is None:
        return [sys.executable, "-m", "deploy.broker_setup", env.get("AMENDS_BROKER_STACK", "region")], env
    env[service.address_variable] = address(service, environ)
    return ["nameko", "run", "--config", service.config, service.entrypoint], env


def health(environ, timeout=4):
    service = service_from(environ)
    if service is None:  # a one-shot step has no HTTP side
        return 0
    port = address(service, environ).rsplit(":", 1)[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except Exception as error:  # 503 (database or broker down), refused, timed out
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    action = argv[0] if argv else "run"
    if action == "health":
        return health(os.environ)
    if action != "run":
        raise SystemExit("usage: python -m deploy.container [run|health]")
    program, env = command(os.environ)
    os.execvpe(program[0], program, env)


if __name__ == "__main__":
    sys.exit(main())
