#!/usr/bin/env bash
# Stop exactly what bootstrap.sh started, by the pids it recorded: the stack whose var
# directory is AMENDS_VAR (default var/; docs/regions.md for several stacks on one machine).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VAR=${AMENDS_VAR:-$ROOT/var}
[ -d "$VAR" ] || exit 0
VAR=$(cd "$VAR" && pwd); RUN="$VAR/run"
# the node the bootstrap started (it records its name; before it did, always amends@localhost)
NODE=$(cat "$RUN/rabbitmq.node" 2>/dev/null || echo amends@localhost)

stop_pid() {  # stop_pid <name>: TERM the process group the bootstrap created, then KILL if need be
  local name=$1 pid
  [ -f "$RUN/$name.pid" ] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
    echo "[stop] stopped $name (pid $pid)"
  fi
  rm -f "$RUN/$name.pid"
}

# the extra processes of a service (SCALE=..., docs/scaling.md) first: <service>.<i>.pid
for file in "$RUN"/{referrals,matching,notifications,records,statistics,subscriptions,reports,console}.[0-9]*.pid; do
  [ -f "$file" ] && stop_pid "$(basename "$file" .pid)"
done
for name in console referrals matching notifications records statistics subscriptions reports national smtp sms ferretdb; do stop_pid "$name"; done
# PostgreSQL: a fast shutdown (it rolls back open transactions and exits), as the postgres user that runs it
if [ -f "$RUN/postgres.pid" ] && kill -0 "$(cat "$RUN/postgres.pid")" 2>/dev/null && [ -f "$RUN/postgres.data" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  setpriv --reuid=postgres --regid=postgres --clear-groups "$bin/pg_ctl" -D "$(cat "$RUN/postgres.data")" stop -m fast -w >/dev/null 2>&1 || true
fi
stop_pid postgres
if [ -f "$RUN/rabbitmq.pid" ] && kill -0 "$(cat "$RUN/rabbitmq.pid")" 2>/dev/null; then
  /usr/lib/rabbitmq/bin/rabbitmqctl -n "$NODE" stop >/dev/null 2>&1 || true
fi
stop_pid rabbitmq
# epmd serves every Erlang node on the machine: the stack that started it ends it, and only once
# no node is registered with it (another stack's broker, say); till then it keeps the marker.
if [ -f "$RUN/epmd.ours" ]; then
  nodes=$(epmd -names 2>/dev/null | awk '/^name /{print $2}' | tr '\n' ' ')
  if [ -z "$nodes" ]; then
    epmd -kill >/dev/null 2>&1 || true; rm -f "$RUN/epmd.ours"; echo "[stop] stopped epmd"
  else
    echo "[stop] epmd left running: nodes still use it (${nodes% })"
  fi
fi
exit 0
