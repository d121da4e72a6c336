"""Create the broker users of shared.messaging.permissions on a RabbitMQ node we run.

    python -m shared.messaging.accounts setup --node amends@localhost [--vhost /]
    python -m shared.messaging.accounts admin --node amends-national@localhost

Passwords come from the environment (AMENDS_BUS_ADMIN_PASSWORD, AMENDS_BUS_OPERATOR_PASSWORD
and <SERVICE>_BUS_PASSWORD, e.g. REFERRALS_BUS_PASSWORD: the bootstrap generates them into
var/secrets.env). It creates or updates each service's user, the operator's and the admin, sets
their permissions and topic permissions (clearing any others), and deletes `guest`,
which would otherwise let anyone on the machine in as anybody. Safe to run again.

`admin` makes the admin user alone (and deletes `guest`): for a broker that carries none
of the services' traffic, as the national stack's (docs/regions.md), whose other users are
shared.messaging.national's to make.

Only for a node the bootstrap (or a test) started itself: on a broker someone else
runs, users are theirs to manage; `print` shows the commands to hand them.
"""
import argparse
import os
import shlex
import subprocess
import sys

from shared.messaging import topology
from shared.messaging.permissions import ADMIN_USER, GRANTS, OPERATOR_GRANT, OPERATOR_USER, user_for

RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def password_variable(service):
    return f"{service.upper()}_BUS_PASSWORD"


ADMIN_PASSWORD_VARIABLE = "AMENDS_BUS_ADMIN_PASSWORD"
OPERATOR_PASSWORD_VARIABLE = "AMENDS_BUS_OPERATOR_PASSWORD"
# users beside the services' own: the operator's narrower user sees queues in the management API
TAGS = {ADMIN_USER: "administrator", OPERATOR_USER: "monitoring"}


def passwords_from(environ):
    """user -> password, for the admin, the operator and every service; a missing one is an error."""
    wanted = {ADMIN_USER: ADMIN_PASSWORD_VARIABLE, OPERATOR_USER: OPERATOR_PASSWORD_VARIABLE,
              **{user_for(s): password_variable(s) for s in topology.SERVICES}}
    missing = [variable for variable in wanted.values() if not environ.get(variable)]
    if missing:
        raise SystemExit(f"no password in the environment for: {', '.join(missing)}")
    return {user: environ[variable] for user, variable in wanted.items()}


def commands(users, vhost="/", grants=None):
    """The rabbitmqctl steps that make `users`, as (arguments, must succeed), with `grants`
    (user -> Grant; default: every service's of GRANTS, and the operator's). An `add_user` step
    gets its password on stdin, never on the command line (`ps` shows those)."""
    if grants is None:
        grants = {OPERATOR_USER: OPERATOR_GRANT, **{user_for(service): grant for service, grant in GRANTS.items()}}
    steps = []
    for user in users:
        steps.append((["add_user", user], True))
        # set_permissions below replaces a user's permissions; topic permissions are per
        # exchange, so an exchange no longer in the table would keep its old ones without this
        steps.append((["clear_topic_permissions", "-p", vhost, user], False))
    steps.append((["set_user_tags", ADMIN_USER, TAGS[ADMIN_USER]], True))
    if OPERATOR_USER in users:
        steps.append((["set_user_tags", OPERATOR_USER, TAGS[OPERATOR_USER]], True))
    steps.append((["set_permissions", "-p", vhost, ADMIN_USER, ".*", ".*", ".*"], True))
    for user, grant in grants.items():
        steps.append((["set_permissions", "-p", vhost, user, grant.configure, grant.write, grant.read], True))
        for exchange, (write, read) in sorted(grant.topics.items()):
            steps.append((["set_topic_permissions", "-p", vhost, user, exchange, write, read], True))
    steps.append((["delete_user", "guest"], False))
    return steps


def setup(node, passwords, vhost="/", env=None, ctl=RABBITMQCTL, grants=None):
    def run(args, stdin=None, check=True):
        result = subprocess.run([ctl, "-n", node, "--quiet", *args], env=env, input=stdin, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if check and result.returncode != 0:
            # the command's name and subject, never a password: those go on stdin only
            raise RuntimeError(f"rabbitmqctl {args[0]} {args[1] if len(args) > 1 else ''} failed: "
                               f"{result.stderr.strip()[:300]}")
        return result.returncode

    for args, must_succeed in commands(passwords, vhost, grants):
        if args[0] == "add_user":
            user = args[1]
            # an existing user gets the (possibly rotated) password instead
            if run(args, stdin=passwords[user] + "\n", check=False) != 0:
                run(["change_password", user], stdin=passwords[user] + "\n")
            continue
        run(args, check=must_succeed)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shared.messaging.accounts", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("setup", "admin", "print"))
    parser.add_argument("--node", default="amends@localhost")
    parser.add_argument("--vhost", default="/")
    args = parser.parse_args(argv)
    if args.action == "print":
        for step, _ in commands([ADMIN_USER, OPERATOR_USER, *map(user_for, topology.SERVICES)], args.vhost):
            note = "   # its password on stdin" if step[0] == "add_user" else ""
            print("rabbitmqctl " + " ".join(shlex.quote(part) for part in step) + note)
        return 0
    if args.action == "admin":
        password = os.environ.get(ADMIN_PASSWORD_VARIABLE)
        if not password:
            raise SystemExit(f"no password in the environment for: {ADMIN_PASSWORD_VARIABLE}")
        setup(args.node, {ADMIN_USER: password}, args.vhost, grants={})
        print(f"broker admin ready on {args.node} (vhost {args.vhost}): {ADMIN_USER}; guest deleted")
        return 0
    setup(args.node, passwords_from(os.environ), args.vhost)
    print(f"broker users ready on {args.node} (vhost {args.vhost}): {ADMIN_USER}, {OPERATOR_USER}, "
          + ", ".join(user_for(s) for s in topology.SERVICES) + "; guest deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
