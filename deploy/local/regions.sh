#!/usr/bin/env bash
# Several regions on one machine (docs/regions.md): a national stack and two region stacks,
# each its own RabbitMQ node, PostgreSQL + FerretDB and services, in var/regions/<stack>.
#
#   deploy/local/regions.sh start    start the three stacks (in parallel), link the regions to the
#                                    national broker, send referrals, compare the counts
#   deploy/local/regions.sh stop     stop every stack under var/regions (regions first)
#
# The stacks' ports and names are scripts/regions.py's; none is the main stack's, which this
# leaves alone. Safe to run twice: bootstrap.sh leaves what is running alone.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY="$ROOT/.venv/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONWARNINGS=ignore
cd "$ROOT"

say() { printf '[regions] %s\n' "$*"; }

# A stack's bootstrap sees its own settings only: nothing of a stack (or servers) the caller's
# environment describes, whose URIs, passwords or addresses would otherwise win over its own.
clean_env() {
  local name
  for name in $(compgen -e); do
    case $name in
      AMQP_URI|MONGO_URI|*_AMQP_URI|*_PASSWORD|*_HTTP_ADDRESS|AMENDS_MASTER_KEY|AMENDS_LEDGER_SIGNING_KEY|\
      AMENDS_STATISTICS_KEY|AMENDS_CONSOLE_KEY|CONSOLE_MANAGEMENT_URL|AMENDS_VAR|AMENDS_REGION|AMENDS_REGIONS|AMENDS_NATIONAL_REGIONS|AMENDS_RABBIT_*|\
      AMENDS_AMQP_PORT|AMENDS_PG_PORT|AMENDS_MONGO_PORT|SMTP_*|SMS_*|REFERRALS_PUBLIC_URL|AMENDS_FERRETDB_POSTGRESQL_URL)
        unset "$name" ;;
    esac
  done
}

start() {
  local stacks name mode t0=$SECONDS failed=() line
  declare -A pids last
  stacks=$("$PY" -m scripts.regions names)
  "$PY" -m scripts.regions ports || { say "not starting: free those ports, or stop what holds them"; exit 1; }
  for name in $stacks; do
    mode=all; [ "$name" = national ] && mode=national
    local var; var=$("$PY" -m scripts.regions var "$name"); mkdir -p "$var"
    (
      clean_env
      eval "$("$PY" -m scripts.regions env "$name")"
      exec "$ROOT/deploy/local/bootstrap.sh" "$mode"
    ) >"$var/bootstrap.log" 2>&1 &
    pids[$name]=$!
    say "bootstrapping $name ($mode; log ${var#"$ROOT"/}/bootstrap.log)"
  done
  # progress: each stack's latest step, as it changes
  while :; do
    local running=0
    for name in $stacks; do
      kill -0 "${pids[$name]}" 2>/dev/null && running=$((running + 1))
      line=$(grep -a '^\[bootstrap\]' "$ROOT/var/regions/$name/bootstrap.log" 2>/dev/null | tail -1 || true)
      if [ -n "$line" ] && [ "$line" != "${last[$name]:-}" ]; then
        last[$name]=$line
        printf '[regions] %4ss %-8s %s\n' "$((SECONDS - t0))" "$name" "${line#\[bootstrap\] }"
      fi
    done
    [ "$running" -eq 0 ] && break
    sleep 2
  done
  for name in $stacks; do
    wait "${pids[$name]}" || failed+=("$name")
  done
  if [ ${#failed[@]} -gt 0 ]; then
    for name in "${failed[@]}"; do
      say "$name did not come up; the end of var/regions/$name/bootstrap.log:"
      tail -20 "$ROOT/var/regions/$name/bootstrap.log" | sed 's/^/    /'
    done
    say "what did start is still running: make regions-stop stops it"
    exit 1
  fi
  say "all three stacks up in $((SECONDS - t0))s"
  "$PY" -m scripts.regions report
}

stop() {
  local dir name
  [ -d "$ROOT/var/regions" ] || return 0
  # the regions first (side by side), then the national stack their shovels deliver to
  for dir in "$ROOT"/var/regions/*/; do
    name=$(basename "$dir")
    [ "$name" = national ] && continue
    [ -d "$dir/run" ] || continue
    AMENDS_VAR="$dir" "$ROOT/deploy/local/stop.sh" | sed "s/^\[stop\]/[stop $name]/" &
  done
  wait
  if [ -d "$ROOT/var/regions/national/run" ]; then
    AMENDS_VAR="$ROOT/var/regions/national" "$ROOT/deploy/local/stop.sh" | sed 's/^\[stop\]/[stop national]/'
  fi
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
