#!/usr/bin/env bash
# Bootstrap Amends on this machine: install what is missing, start what is not running.
#
#   deploy/local/bootstrap.sh infra   RabbitMQ, FerretDB, SMTP, topology, keys, seed data
#   deploy/local/bootstrap.sh all     the same, plus the services (the pipeline's four, subscriptions and reports; and statistics where AMENDS_NATIONAL_LINK=1)
#   deploy/local/bootstrap.sh national  the national stack: RabbitMQ, FerretDB and the national service
#
# One machine may run several stacks (docs/regions.md): each keeps all it has in AMENDS_VAR
# (default var/) and listens where these say (defaults in brackets): AMENDS_AMQP_PORT (5672),
# AMENDS_RABBIT_MGMT_PORT (15672), AMENDS_RABBIT_DIST_PORT (AMQP port + 20000),
# AMENDS_RABBIT_NODE (amends@localhost), AMENDS_PG_PORT (5432), AMENDS_MONGO_PORT (27017),
# SMTP_PORT (1025), SMS_SINK_PORT (8025) and <SERVICE>_HTTP_ADDRESS. AMENDS_REGION (local)
# goes to every service, AMENDS_REGIONS (the referral areas a region serves) too when set;
# the national stack makes a link user for each region in AMENDS_NATIONAL_REGIONS (a,b).
#
# Safe to run twice: anything already running (by its pid file) is left alone.
# With AMQP_URI and MONGO_URI set, those servers are used and neither is started.
#
# Each service connects to the broker as its own user (shared/messaging/permissions.py,
# docs/security.md), to the FerretDB started here as its own PostgreSQL role
# (shared/storage/roles.py, docs/storage.md), and starts with its own secrets only. On the
# broker started here the users are made here (and guest deleted); on a broker at AMQP_URI
# they are the operator's to make, and each service's URI is <SERVICE>_AMQP_URI (e.g.
# REFERRALS_AMQP_URI). The PostgreSQL roles are made, or brought up to date, on every run.
set -euo pipefail

MODE=${1:-all}
case $MODE in infra|all|national) ;; *) echo "usage: $0 [infra|all|national]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# Everything this stack keeps; the national stack's own by default. The FerretDB binary (and
# its build) is the checkout's, in var/bin, shared by every stack.
if [ "$MODE" = national ]; then VAR=${AMENDS_VAR:-$ROOT/var/national}; else VAR=${AMENDS_VAR:-$ROOT/var}; fi
mkdir -p "$VAR"; VAR=$(cd "$VAR" && pwd); RUN="$VAR/run"; LOGS="$VAR/log"; BIN="$ROOT/var/bin"
VENV="$ROOT/.venv"; PY="$VENV/bin/python"
FERRETDB_VERSION=v1.24.2
RABBIT_NODE=${AMENDS_RABBIT_NODE:-amends@localhost}
AMQP_PORT=${AMENDS_AMQP_PORT:-5672}
MGMT_PORT=${AMENDS_RABBIT_MGMT_PORT:-15672}
# RabbitMQ's inter-node port: its default is the AMQP port + 20000, set here so that two nodes never share one
DIST_PORT=${AMENDS_RABBIT_DIST_PORT:-$((AMQP_PORT + 20000))}
MONGO_PORT=${AMENDS_MONGO_PORT:-27017}
SMTP_PORT=${SMTP_PORT:-1025}
SMS_SINK_PORT=${SMS_SINK_PORT:-8025}
RABBITMQCTL=/usr/lib/rabbitmq/bin/rabbitmqctl
mkdir -p "$RUN" "$LOGS" "$BIN"
export DEBIAN_FRONTEND=noninteractive

say() { printf '[bootstrap] %s\n' "$*"; }

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# Start a command in its own session so that stop.sh can end it, and all it spawns, by pid.
start_bg() {
  local name=$1; shift
  if alive "$name"; then say "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  say "started $name (pid $!, log ${LOGS#"$ROOT"/}/$name.log)"
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]} from Debian's packages"
  if [ ! -f "$ROOT/var/.apt-updated" ]; then apt-get update -qq && touch "$ROOT/var/.apt-updated"; fi
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

wait_for() {  # wait_for <what> <seconds> <command...>
  local what=$1 limit=$2; shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  say "$what did not come up within ${limit}s"; return 1
}

python_env() {
  local stamp="$VENV/.amends-installed" want
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
  fi
  [ -x "$PY" ] || python3 -m venv "$VENV"
  say "installing the pinned Python dependencies into .venv"
  "$PY" -m pip install -q --upgrade pip >/dev/null
  "$PY" -m pip install -q -e "$ROOT[test]"
  echo "$want" >"$stamp"
}

rabbitmq() {
  apt_install rabbitmq-server
  # Debian starts its own broker, on every interface, on machines with systemd; ours listens on 127.0.0.1 only.
  if command -v systemctl >/dev/null && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
    say "stopping and disabling the system rabbitmq-server service so that ours can bind 127.0.0.1:${AMQP_PORT}"
    systemctl stop rabbitmq-server; systemctl disable rabbitmq-server >/dev/null 2>&1 || true
  fi
  local dir="$VAR/rabbitmq"
  mkdir -p "$dir/mnesia" "$dir/log"
  # deploy/rabbitmq/rabbitmq.conf, with this stack's ports
  sed -e "s/^listeners\.tcp\.default = .*/listeners.tcp.default = 127.0.0.1:${AMQP_PORT}/" \
      -e "s/^management\.tcp\.port = .*/management.tcp.port = ${MGMT_PORT}/" \
      "$ROOT/deploy/rabbitmq/rabbitmq.conf" >"$dir/rabbitmq.conf"
  cp "$ROOT/deploy/rabbitmq/enabled_plugins" "$dir/enabled_plugins"
  echo "$RABBIT_NODE" >"$RUN/rabbitmq.node"  # for stop.sh
  export RABBITMQ_NODENAME=$RABBIT_NODE RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT=$DIST_PORT \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_PID_FILE="$dir/beam.pid" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  # one epmd per machine, for every node on it: started here only if none runs; stop.sh ends it
  # only when no node still uses it
  if ! pgrep -x epmd >/dev/null; then
    epmd -address 127.0.0.1 -daemon && touch "$RUN/epmd.ours"
  fi
  start_bg rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
  wait_for "RabbitMQ" 90 "$RABBITMQCTL" -n "$RABBIT_NODE" status
  "$RABBITMQCTL" -n "$RABBIT_NODE" await_startup --timeout 120 >/dev/null
  say "RabbitMQ $RABBIT_NODE ready on 127.0.0.1:${AMQP_PORT} (management on 127.0.0.1:${MGMT_PORT}, distribution ${DIST_PORT})"
}

ferretdb_binary() {
  local bin="$BIN/ferretdb"
  # Read the version whole before matching it: a pipe into `grep -q` or `head` can close early,
  # and under pipefail the writer's SIGPIPE would fail the bootstrap.
  if [ -x "$bin" ] && [[ "$("$bin" --version 2>/dev/null)" == *"$FERRETDB_VERSION"* ]]; then return; fi
  command -v go >/dev/null || apt_install golang-go
  say "building FerretDB $FERRETDB_VERSION with go install (a few minutes the first time)"
  GOBIN="$BIN" go install "github.com/FerretDB/FerretDB/cmd/ferretdb@$FERRETDB_VERSION"
  if ! "$bin" --version >/dev/null 2>&1; then
    # A binary from `go install pkg@version` panics at start: the module omits the generated
    # build/version/version.txt. FerretDB documents writing that file by hand and rebuilding.
    say "go install's binary lacks version.txt; rebuilding the same module source with it"
    local src build="$ROOT/var/build/ferretdb"
    src=$(go list -m -f '{{.Dir}}' "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" 2>/dev/null || true)
    [ -n "$src" ] || src=$(cd "$(mktemp -d)" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    rm -rf "$build"; mkdir -p "$(dirname "$build")"; cp -r "$src" "$build"; chmod -R u+w "$build"
    echo "$FERRETDB_VERSION" >"$build/build/version/version.txt"
    (cd "$build" && go build -o "$bin" ./cmd/ferretdb)
  fi
  local version; version=$("$bin" --version); echo "${version%%$'\n'*}"
}

postgres_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# PostgreSQL, under FerretDB. It refuses to run as root, so its data directory belongs to
# the postgres user: $VAR/postgres, or, where postgres cannot reach into this checkout (a
# private temporary directory, say), a directory of its own under its home named after it
# (after the checkout for the default var/, as ever; after the var directory for any other,
# so that two stacks never share one).
postgres_data() {
  local key=$ROOT
  [ "$VAR" = "$ROOT/var" ] || key=$VAR
  if setpriv --reuid=postgres --regid=postgres --clear-groups test -x "$VAR" 2>/dev/null; then
    echo "$VAR/postgres"
  else
    echo "$(getent passwd postgres | cut -d: -f6)/amends-$(printf %s "$key" | sha256sum | cut -c1-12)"
  fi
}

postgres() {
  apt_install postgresql
  local bin data pwfile
  bin=$(postgres_bin); data=$(postgres_data)
  # Debian's package starts a cluster of its own on port 5432 where systemd runs; ours takes that port, on 127.0.0.1.
  if command -v systemctl >/dev/null && systemctl is-active --quiet postgresql 2>/dev/null; then
    say "stopping and disabling the system postgresql service so that ours can bind 127.0.0.1:${PG_PORT}"
    systemctl stop postgresql; systemctl disable postgresql >/dev/null 2>&1 || true
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initdb into $data (as the postgres user; the amends role's password is in $VAR/secrets.env)"
    mkdir -p "$data"; chown postgres:postgres "$data"; chmod 700 "$data"
    pwfile=$(mktemp); chown postgres "$pwfile"; chmod 600 "$pwfile"
    printf '%s\n' "$AMENDS_PG_PASSWORD" >"$pwfile"
    setpriv --reuid=postgres --regid=postgres --clear-groups "$bin/initdb" -D "$data" -U amends --pwfile="$pwfile" \
      --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1
    rm -f "$pwfile"
  fi
  echo "$data" >"$RUN/postgres.data"
  # TCP on 127.0.0.1 only, no Unix socket (so no directory under /run is needed).
  # plan_cache_mode: FerretDB's driver prepares its statements, with the field name a parameter
  # (_jsonb->$1 @> $2); a generic plan cannot match that to a GIN twin on _jsonb->'field' and
  # scans, so every execution is planned with its values (docs/storage.md).
  start_bg postgres setpriv --reuid=postgres --regid=postgres --clear-groups "$bin/postgres" -D "$data" \
    -c listen_addresses=127.0.0.1 -c port="$PG_PORT" -c unix_socket_directories= \
    -c max_connections=300 -c shared_buffers=256MB -c synchronous_commit=off \
    -c shared_preload_libraries=pg_stat_statements -c plan_cache_mode=force_custom_plan
  export PGPASSWORD="$AMENDS_PG_PASSWORD"
  wait_for "PostgreSQL" 60 "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -U amends -d postgres
  if ! "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U amends -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='ferretdb'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U amends ferretdb
  fi
  # which statements cost most (the pipeline benchmark's --profile reads it)
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U amends -d ferretdb -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
  export -n PGPASSWORD; unset PGPASSWORD
  say "PostgreSQL ready on 127.0.0.1:${PG_PORT} (data in $data)"
  database_roles
}

database_roles() {
  # A role per service and one for the identity store, each owning its schema in the database
  # ferretdb (shared/storage/roles.py); made, or brought up to date, on every run. The admin URL
  # and the passwords through the environment of this one command, never its command line.
  (
    export "${PG_PASSWORDS[@]}"
    export AMENDS_PG_ADMIN_URL="$FERRETDB_PG_URL"
    "$PY" -m shared.storage.roles setup --db-prefix "${AMENDS_DB_PREFIX:-amends}" --accounts "$(IFS=,; echo "${DB_ACCOUNTS[*]}")"
  )
}

# Export, in the calling (sub)shell, an account's own database credentials: on the FerretDB
# started here, its PostgreSQL role, given as PLAIN credentials that FerretDB passes through to
# PostgreSQL, and the same role for the GIN twins; with MONGO_URI set, nothing (that server's).
database_account() {
  local account=$1 password
  [ -n "${MONGO_URI:-}" ] && return 0
  password="${account^^}_PG_PASSWORD"
  export MONGO_URI="mongodb://amends_${account}:${!password}@127.0.0.1:${MONGO_PORT}/?authMechanism=PLAIN&authSource=\$external"
  export AMENDS_FERRETDB_POSTGRESQL_URL="postgres://amends_${account}:${!password}@127.0.0.1:${PG_PORT}/ferretdb"
}

ferretdb() {
  ferretdb_binary
  postgres
  mkdir -p "$VAR/ferretdb"
  # The PostgreSQL URL, with its password, goes through the environment: a command line is public.
  (
    export FERRETDB_POSTGRESQL_URL="$FERRETDB_PG_URL"
    start_bg ferretdb "$BIN/ferretdb" --handler=postgresql \
      --listen-addr="127.0.0.1:${MONGO_PORT}" --telemetry=disable --debug-addr=- --log-level=warn --state-dir="$VAR/ferretdb"
  )
  # The first query after FerretDB starts loads its catalogue of databases, as whoever sent it
  # sees them: this one, without credentials, is the admin role's and sees them all (docs/storage.md).
  wait_for "FerretDB" 60 "$PY" -c 'import sys, pymongo; pymongo.MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/", serverSelectionTimeoutMS=1000).admin.command("ping")' "$MONGO_PORT"
  say "FerretDB ready on 127.0.0.1:${MONGO_PORT} (on PostgreSQL, database ferretdb)"
}

# The services this stack runs, the one list: a region's, or the national stack's one. Each has a broker user, a PostgreSQL role and an HTTP address.
if [ "$MODE" = national ]; then
  SERVICES=(national)
else
  SERVICES=(referrals matching notifications records statistics subscriptions reports console)
fi
declare -A HTTP_PORTS=([referrals]=8001 [matching]=8002 [notifications]=8003 [records]=8004 [subscriptions]=8005 [statistics]=8007 [national]=8008 [reports]=8009 [console]=8006)
# The console is on no bus: it has no broker user of its own (its operator pages use the admin's, below).
on_bus() { [ "$1" != console ]; }
http_address() { local var="${1^^}_HTTP_ADDRESS"; echo "${!var:-127.0.0.1:${HTTP_PORTS[$1]}}"; }
# The region this stack serves (every service's AMENDS_REGION); AMENDS_REGIONS, the referral
# areas it accepts, reaches the services from the environment as it is.
if [ "$MODE" = national ]; then export AMENDS_REGION=${AMENDS_REGION:-national}; else export AMENDS_REGION=${AMENDS_REGION:-local}; fi
# PostgreSQL accounts: one per service, and a region's identity store (shared/storage/roles.py)
DB_ACCOUNTS=("${SERVICES[@]}")
[ "$MODE" = national ] || DB_ACCOUNTS+=(identity)
BUS_PASSWORDS=(AMENDS_BUS_ADMIN_PASSWORD) PG_PASSWORDS=() BUS_URIS=() LINK_PASSWORDS=()
# a region's broker also has the operators' narrower user, for the console's operator pages
[ "$MODE" = national ] || BUS_PASSWORDS+=(AMENDS_BUS_OPERATOR_PASSWORD)
for service in "${SERVICES[@]}"; do on_bus "$service" || continue; BUS_PASSWORDS+=("${service^^}_BUS_PASSWORD"); BUS_URIS+=("${service^^}_AMQP_URI"); done
for account in "${DB_ACCOUNTS[@]}"; do PG_PASSWORDS+=("${account^^}_PG_PASSWORD"); done
# the national broker's link users, one per region it hears from: amends-link-<region>
if [ "$MODE" = national ]; then
  AMENDS_NATIONAL_REGIONS=${AMENDS_NATIONAL_REGIONS:-}
  for region in ${AMENDS_NATIONAL_REGIONS//,/ }; do
    region=${region^^}; LINK_PASSWORDS+=("NATIONAL_LINK_${region//-/_}_PASSWORD")
  done
fi
PG_PORT=${AMENDS_PG_PORT:-5432}
# Every secret any process here may hold: none is passed on to a child that is not told it by name.
SECRETS=(AMENDS_MASTER_KEY AMENDS_LEDGER_SIGNING_KEY AMENDS_STATISTICS_KEY AMENDS_SUBSCRIPTIONS_KEY SUBSCRIPTIONS_BROKER_ADMIN_URL AMENDS_CONSOLE_KEY CONSOLE_MANAGEMENT_URL SMS_API_KEY AMENDS_PG_PASSWORD "${PG_PASSWORDS[@]}"
         "${BUS_PASSWORDS[@]}" "${BUS_URIS[@]}" "${LINK_PASSWORDS[@]}")

secrets() {
  # Development secrets, made once and kept out of git (var/ is ignored); production supplies its own
  # through the environment, which always wins over the file.
  local file="$VAR/secrets.env" line name
  (umask 077; touch "$file")
  if [ -z "${AMENDS_MASTER_KEY:-}" ] && ! grep -q '^AMENDS_MASTER_KEY=' "$file"; then
    echo "AMENDS_MASTER_KEY=$("$PY" -c 'from services.referrals.protection import new_master_key; print(new_master_key())')" >>"$file"
  fi
  # An Ed25519 key for the ledger's signed tree heads.
  if [ -z "${AMENDS_LEDGER_SIGNING_KEY:-}" ] && ! grep -q '^AMENDS_LEDGER_SIGNING_KEY=' "$file"; then
    "$PY" -m services.records.keygen "amends.${AMENDS_REGION:-local}/ledger" >>"$file" 2>/dev/null
  fi
  # Broker passwords: the admin's (operators, the tests), the operator user's (the console) and one
  # per service; and PostgreSQL's:
  # the admin role's (FerretDB's own, for clients without credentials) and each role's.
  for name in "${BUS_PASSWORDS[@]}" AMENDS_PG_PASSWORD "${PG_PASSWORDS[@]}" "${LINK_PASSWORDS[@]}"; do
    if [ -z "${!name:-}" ] && ! grep -q "^$name=" "$file"; then
      echo "$name=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')" >>"$file"
    fi
  done
  # statistics' own key (32 random bytes, urlsafe base64), for a region's statistics service alone
  if [ "$MODE" != national ] && [ -z "${AMENDS_STATISTICS_KEY:-}" ] && ! grep -q '^AMENDS_STATISTICS_KEY=' "$file"; then
    echo "AMENDS_STATISTICS_KEY=$("$PY" -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')" >>"$file"
  fi
  # subscriptions' own key (the same kind), for the ids of the statistics profile's events, for it alone
  if [ "$MODE" != national ] && [ -z "${AMENDS_SUBSCRIPTIONS_KEY:-}" ] && ! grep -q '^AMENDS_SUBSCRIPTIONS_KEY=' "$file"; then
    echo "AMENDS_SUBSCRIPTIONS_KEY=$("$PY" -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')" >>"$file"
  fi
  # the console's key, which seals each console account's API key (a Fernet key), for the console alone
  if [ "$MODE" != national ] && [ -z "${AMENDS_CONSOLE_KEY:-}" ] && ! grep -q '^AMENDS_CONSOLE_KEY=' "$file"; then
    echo "AMENDS_CONSOLE_KEY=$("$PY" -c 'from services.console.key_vault import new_key; print(new_key())')" >>"$file"
  fi
  # Read the file into shell variables (the environment's own values win), then un-export every
  # secret: a process started from here gets only the ones it is given by name.
  while IFS= read -r line; do
    name=${line%%=*}
    [[ "$name" =~ ^[A-Z][A-Z0-9_]*$ ]] || continue
    [ -n "${!name:-}" ] || printf -v "$name" '%s' "${line#*=}"
  done <"$file"
  export -n "${SECRETS[@]}" 2>/dev/null || true
  FERRETDB_PG_URL="postgres://amends:${AMENDS_PG_PASSWORD}@127.0.0.1:${PG_PORT}/ferretdb"
}

bus_accounts() {
  # Only on the broker this script started: a broker at AMQP_URI is someone else's to manage.
  # the passwords through the environment of this one command (exported in a subshell),
  # never on a command line, which `ps` shows to anyone on the machine
  (
    export "${BUS_PASSWORDS[@]}"
    "$PY" -m shared.messaging.accounts setup --node "$RABBIT_NODE"
  )
}

national_bus_accounts() {
  # The national broker: its admin, and (shared/messaging/national.py) the national service's
  # user and a link user per region, passwords as above through the environment only.
  (
    export "${BUS_PASSWORDS[@]}" "${LINK_PASSWORDS[@]}"
    "$PY" -m shared.messaging.accounts admin --node "$RABBIT_NODE"
    "$PY" -m shared.messaging.national accounts --node "$RABBIT_NODE" --regions "${AMENDS_NATIONAL_REGIONS:-}"
  )
}

bus_uris() {
  # Each service's broker URI: <SERVICE>_AMQP_URI if set; else, on our broker, its own user's;
  # on a broker at AMQP_URI there is no else: one user for all would make every event unattributable.
  local service var password missing=()
  for service in "${SERVICES[@]}"; do
    on_bus "$service" || continue
    var="${service^^}_AMQP_URI"
    [ -n "${!var:-}" ] && continue
    if [ -z "${AMQP_URI:-}" ]; then
      password="${service^^}_BUS_PASSWORD"
      printf -v "$var" 'amqp://amends-%s:%s@127.0.0.1:%s/' "$service" "${!password}" "$AMQP_PORT"
    elif [ "${AMENDS_DEV_UNCHECKED_BUS:-}" = 1 ]; then
      printf -v "$var" '%s' "$AMQP_URI"
    else
      missing+=("$var")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "with AMQP_URI set, give each service its own broker user: set ${missing[*]}"
    say "(the users and permissions to make there: $PY -m shared.messaging.accounts print; see docs/security.md)"
    exit 1
  fi
  ADMIN_AMQP_URI="${AMQP_URI:-amqp://amends-admin:${AMENDS_BUS_ADMIN_PASSWORD}@127.0.0.1:${AMQP_PORT}/}"
  # subscriptions makes agencies' AMQP feeds (users, permissions, queues) through the management API
  # as the admin: on our broker, ours; on a broker at AMQP_URI, only if the operator gives it
  if [ -z "${SUBSCRIPTIONS_BROKER_ADMIN_URL:-}" ] && [ -z "${AMQP_URI:-}" ]; then
    SUBSCRIPTIONS_BROKER_ADMIN_URL="http://amends-admin:${AMENDS_BUS_ADMIN_PASSWORD}@127.0.0.1:${MGMT_PORT}"
  fi
}

# A region's statistics service runs only where the region is linked to a national broker
# (AMENDS_NATIONAL_LINK=1, as `make regions` sets): unlinked, its statistics would pile up in
# national.outbound with nobody to take them. Its broker user and role are made either way.
runs() { [ "$1" != statistics ] || [ "${AMENDS_NATIONAL_LINK:-}" = 1 ]; }

# SCALE="matching=2,notifications=3": how many processes of each service to run (1 each
# unless named; at most 9). The extra ones are competing consumers of the same queues
# (docs/scaling.md); records' extra ones stand by, its ledger queue having one active
# consumer. Process i (2, 3, ...) of a service answers HTTP on its first one's port plus
# 100*(i-1) (matching: 8002, 8102, 8202, ...), its pid file is var/run/<service>.<i>.pid
# and its log var/log/<service>.<i>.log. Prints "<service> <count>" per line, or fails.
scale_counts() {
  local item name count items=()
  declare -A counts=() named=()
  for name in "${SERVICES[@]}"; do counts[$name]=1; done
  IFS=',' read -ra items <<<"${SCALE:-}"
  for item in "${items[@]}"; do
    item=${item//[[:space:]]/}
    [ -z "$item" ] && continue
    name=${item%%=*}; count=${item#*=}
    if [ "$item" = "$name" ] || ! [[ "$name" =~ ^[a-z]+$ ]] || [ -z "${counts[$name]+set}" ] \
       || ! [[ "$count" =~ ^[1-9]$ ]]; then
      say "SCALE=\"${SCALE}\": \"$item\" is not <service>=<1..9> (services: ${SERVICES[*]})" >&2
      return 1
    fi
    if [ -n "${named[$name]+set}" ]; then
      say "SCALE=\"${SCALE}\": $name is named twice" >&2
      return 1
    fi
    named[$name]=1; counts[$name]=$count
  done
  for name in "${SERVICES[@]}"; do echo "$name ${counts[$name]}"; done
}

services() {
  local var address host port i count scale pair
  declare -A counts=() addresses=()
  scale=$(scale_counts) || exit 2
  while read -r pair count; do counts[$pair]=$count; done <<<"$scale"
  for service in "${SERVICES[@]}"; do
    runs "$service" || continue
    local cls
    cls="$(tr '[:lower:]' '[:upper:]' <<<"${service:0:1}")${service:1}Service"
    var="${service^^}_AMQP_URI"
    address=$(http_address "$service")
    host=${address%:*}; port=${address##*:}
    for ((i = 1; i <= counts[$service]; i++)); do
      local name=$service
      [ "$i" -gt 1 ] && name="$service.$i"
      addresses[$name]="$host:$((port + 100 * (i - 1)))"
      # In a subshell, exported there only: its own broker user, its own database role (on our
      # FerretDB, which its stores also give their GIN twins through; docs/storage.md), and the one
      # secret that is its own. matching runs the shipped policy's local switches (all off) unless
      # MATCHING_LOCAL_SWITCHES comes from the environment: nothing here turns one on for the demo.
      (
        export AMQP_URI="${!var:-}"
        export "${service^^}_HTTP_ADDRESS=${addresses[$name]}"
        database_account "$service"
        case $service in
          referrals) export AMENDS_MASTER_KEY ;;
          records) export AMENDS_LEDGER_SIGNING_KEY ;;
          notifications) [ -n "${SMS_API_KEY:-}" ] && export SMS_API_KEY ;;
          statistics) export AMENDS_STATISTICS_KEY ;;
          # on this machine only: webhooks may go over plain http to 127.0.0.1 (docs/subscriptions.md)
          subscriptions) export AMENDS_SUBSCRIPTIONS_KEY SUBSCRIPTIONS_ALLOW_LOCAL_HTTP="${SUBSCRIPTIONS_ALLOW_LOCAL_HTTP:-1}"
                         export SUBSCRIPTIONS_BROKER_ADMIN_URL ;;
          # its key for the accounts' API keys; the services it calls; the operator pages' broker
          # credentials (on our broker the operators' own user, amends-operator: dead letters and
          # queue depths, nothing else); served over plain http on this machine, so its cookies go
          # without Secure (docs/console.md)
          console)
            export AMENDS_CONSOLE_KEY CONSOLE_DEVELOPMENT="${CONSOLE_DEVELOPMENT:-1}"
            for other in referrals matching notifications records subscriptions reports; do export "${other^^}_HTTP_ADDRESS=$(http_address "$other")"; done
            if [ -z "${AMQP_URI_GIVEN:-}" ]; then
              export CONSOLE_OPERATOR_AMQP_URI="amqp://amends-operator:${AMENDS_BUS_OPERATOR_PASSWORD}@127.0.0.1:${AMQP_PORT}/"
              export CONSOLE_MANAGEMENT_URL="http://amends-operator:${AMENDS_BUS_OPERATOR_PASSWORD}@127.0.0.1:${MGMT_PORT}"
            else
              export CONSOLE_OPERATOR_AMQP_URI="${CONSOLE_OPERATOR_AMQP_URI:-$ADMIN_AMQP_URI}"
              [ -z "${CONSOLE_MANAGEMENT_URL:-}" ] || export CONSOLE_MANAGEMENT_URL
            fi ;;
        esac
        start_bg "$name" "$VENV/bin/nameko" run --config "$ROOT/services/$service/config.yaml" "services.$service.service:$cls"
      )
    done
    # a process beyond the count asked for, left by an earlier run with a larger SCALE
    for ((i = counts[$service] + 1; i <= 9; i++)); do
      alive "$service.$i" && say "note: $service.$i (pid $(cat "$RUN/$service.$i.pid")) from an earlier run keeps running; deploy/local/stop.sh stops it"
    done
  done
  for name in "${!addresses[@]}"; do
    wait_for "$name health" 60 curl -sf "http://${addresses[$name]}/health"
  done
  say "all services healthy; running:"
  for service in "${SERVICES[@]}"; do
    runs "$service" || continue
    for ((i = 1; i <= counts[$service]; i++)); do
      local name=$service role=""
      [ "$i" -gt 1 ] && name="$service.$i"
      [ "$service" = records ] && [ "$i" -gt 1 ] && role=" (standby: the ledger queue has one active consumer)"
      say "  $(printf '%-16s' "$name") pid $(cat "$RUN/$name.pid")  http://${addresses[$name]}  log var/log/$name.log$role"
    done
  done
}

cd "$ROOT"
AMQP_URI_GIVEN=${AMQP_URI:-}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONWARNINGS=ignore
export AMENDS_REGIONS="${AMENDS_REGIONS:-south-wales,gwent,north-wales,dyfed-powys}"  # referral regions served (dev: the demo's)
command -v curl >/dev/null || apt_install curl
# the console's browser tests (tests/e2e/test_console.py) drive Debian's chromium through its chromium-driver
if [ "$MODE" = infra ]; then apt_install chromium chromium-driver; fi
python_env
secrets
bus_uris
if [ "$MODE" = national ]; then
  # The national stack: a broker that hears only the regions' de-identified statistics (through
  # their shovels), a database of its own, and the national service (docs/regions.md).
  if [ -z "${AMQP_URI:-}" ]; then rabbitmq; national_bus_accounts; else say "using the broker at AMQP_URI (its users are not managed here)"; fi
  if [ -z "${MONGO_URI:-}" ]; then ferretdb; else say "using the database at MONGO_URI"; fi
  AMQP_URI="$ADMIN_AMQP_URI" "$PY" -m shared.messaging.national declare
  services
  say "ready"
  exit 0
fi
if [ -z "${AMQP_URI:-}" ]; then rabbitmq; bus_accounts; else say "using the broker at AMQP_URI (its users are not managed here)"; fi
if [ -z "${MONGO_URI:-}" ]; then ferretdb; else say "using the database at MONGO_URI"; fi
start_bg smtp "$PY" -m aiosmtpd -n -l "127.0.0.1:${SMTP_PORT:-1025}" -c aiosmtpd.handlers.Mailbox "$VAR/mail"
# A local SMS provider that keeps what it is sent in $VAR/sms/messages.jsonl; set SMS_GATEWAY_URL to use a real one.
if [ -z "${SMS_GATEWAY_URL:-}" ]; then
  start_bg sms "$PY" deploy/local/sms_sink.py --port "${SMS_SINK_PORT:-8025}" --out "$VAR/sms/messages.jsonl"
  export SMS_GATEWAY_URL="http://127.0.0.1:${SMS_SINK_PORT:-8025}"
fi
AMQP_URI="$ADMIN_AMQP_URI" "$PY" deploy/local/declare_topology.py
# keys are issued as the operator: their key.issued events are the admin user's to publish, and
# the identity store (its indexes too) is written as its own role, which every service may only read
( database_account identity; AMQP_URI="$ADMIN_AMQP_URI" "$PY" -m shared.security.provision --out "$VAR/dev-keys.json" )
( database_account matching; "$PY" -m services.matching.seed deploy/local/facilitators.yaml )
# a development console account per role, acting with the development keys; their sign-ins in var/
( database_account console; export AMENDS_CONSOLE_KEY
  "$PY" -m services.console.admin dev --keys "$VAR/dev-keys.json" --out "$VAR/console-accounts.json" )
[ "$MODE" = all ] && services
say "ready"
