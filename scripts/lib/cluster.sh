# shellcheck shell=bash
# The loopback cluster shared by scripts/cluster and the ctest `cluster` tier: three "nodes", each
# an etcd member and a Patroni-managed PostgreSQL on its own address (127.0.1.N), three music-api
# "app hosts" on TCP (127.0.2.N:9000) and one nginx over TLS in front of them, with the repo's nginx
# files and nginx/music-api-upstream-cluster.conf. Everything lives under one directory, listens on
# loopback only, and is stopped by the PID it wrote (checked to still be that program).
#
# Only packaged engines: etcd 3.4 (etcd-server), Patroni 3.0 (patroni) on PostgreSQL 15. Patroni
# owns bootstrap, replication, slots, leader election and failover; nothing here decides a role.

# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"

# The topology. The app hosts' addresses are the ones nginx/music-api-upstream-cluster.conf names.
CLUSTER_NODES=(1 2 3)
CLUSTER_HOSTS=(1 2 3)
node_addr() { printf '127.0.1.%s\n' "$1"; }
app_addr() { printf '127.0.2.%s\n' "$1"; }
CLUSTER_PG_PORT=5432
CLUSTER_REST_PORT=8008
CLUSTER_APP_PORT=9000
# pgBackRest's stanza for the cluster, and the longest a quiet primary keeps a written WAL segment
# before archiving it (the recovery point if every node is lost; production: 60 s).
CLUSTER_STANZA=music
CLUSTER_ARCHIVE_TIMEOUT=30
# Workers per app host: 3 hosts × 2 on a 2-core machine already oversubscribes it.
CLUSTER_WORKERS=${CLUSTER_WORKERS:-2}

need_cluster_packages() {
  need_packages patroni python3-psycopg2 etcd-server etcd-client nftables
}

# ------------------------------------------------------------------------------ network cuts (F6)
# Every node's Patroni (and so its PostgreSQL) and every app host runs in a cgroup (v2) of its own,
# so a fault case can cut one of them off from one address with nftables: `socket cgroupv2`
# matches the cgroup of the process that made a socket, whatever source address the kernel picks
# on loopback (127.0.0.1 for every 127.x destination). nft names cgroups by their path under
# /sys/fs/cgroup: on a hybrid hierarchy (v2 at /sys/fs/cgroup/unified) a link there makes it find
# ours. Without a writable cgroup v2 hierarchy the processes run where they are and F6 says so.

# cl_cgroup_base: the v2 directory of this cluster's cgroups (printed), made if need be.
cl_cgroup_base() {
  local root name
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then root=/sys/fs/cgroup
  elif [ -f /sys/fs/cgroup/unified/cgroup.procs ]; then root=/sys/fs/cgroup/unified
  else return 1; fi
  name=music-api-$(basename "$CLUSTER")
  mkdir -p "$root/$name" 2>/dev/null || return 1
  if [ "$root" != /sys/fs/cgroup ] && [ ! -e "/sys/fs/cgroup/$name" ]; then
    ln -s "unified/$name" "/sys/fs/cgroup/$name" 2>/dev/null || return 1
  fi
  printf '%s\n' "$root/$name"
}

# cl_cgroup_join NAME: moves the calling (sub)shell into this cluster's cgroup NAME, when it can.
cl_cgroup_join() {
  local base
  base=$(cl_cgroup_base) || return 0
  mkdir -p "$base/$1" 2>/dev/null && echo "$BASHPID" >"$base/$1/cgroup.procs" 2>/dev/null || true
}

# cluster_cut ADDRESS NAME…: every packet that the processes of cgroups NAME… (pg1…, app1…) send
# to ADDRESS is dropped (a cut, not a refusal: connections hang until their timeouts).
cluster_cut() {
  local addr=$1 name base table
  shift
  base=$(cl_cgroup_base) || die "no writable cgroup v2 hierarchy: cannot cut the network"
  table=music_api_cut_$(basename "$CLUSTER" | tr -c 'a-zA-Z0-9\n' _)
  nft add table inet "$table"
  nft add chain inet "$table" out '{ type filter hook output priority 0; }'
  for name; do
    [ -n "$(cat "$base/$name/cgroup.procs" 2>/dev/null)" ] || die "cgroup $name holds no process"
    nft add rule inet "$table" out socket cgroupv2 level 2 "\"$(basename "$base")/$name\"" ip daddr "$addr" drop
  done
}

# cluster_heal: removes every cut of this cluster.
cluster_heal() {
  nft delete table inet "music_api_cut_$(basename "$CLUSTER" | tr -c 'a-zA-Z0-9\n' _)" 2>/dev/null || true
}

# cl_cgroups_remove: this cluster's cgroups, once their processes are gone (empty, deepest first).
cl_cgroups_remove() {
  local base d
  base=$(cl_cgroup_base) || return 0
  for d in "$base"/*/; do rmdir "$d" 2>/dev/null || true; done
  rmdir "$base" 2>/dev/null || true
  [ -L "/sys/fs/cgroup/$(basename "$base")" ] && [ ! -d "$base" ] && rm -f "/sys/fs/cgroup/$(basename "$base")"
  return 0
}

# cluster_paths DIR: every path of a cluster rooted at DIR, and its connection strings.
cluster_paths() {
  CLUSTER=$1
  CL_SECRETS=$CLUSTER/secrets
  CL_PGPASS=$CL_SECRETS/pgpass
  CL_PEPPER=$CLUSTER/api/key-pepper
  # One media root and key file for every app host and the cluster's nginx (on real hosts: the
  # same file on each, and the media on shared storage or synced to each nginx host).
  MEDIA_KEYS=$CLUSTER/api/media-keys.json
  MEDIA_ROOT=$CLUSTER/media
  CL_DEMO=$CLUSTER/demo.env
  NGINX_DIR=$CLUSTER/nginx
  NGINX_PID=$NGINX_DIR/nginx.pid
  # pgBackRest: one repository every node reaches (here a directory of this machine; on real
  # hosts a repository host over SSH or a shared path), one stanza for the cluster.
  CL_REPO=$CLUSTER/backup-repo
  local n hosts=() ports=()
  for n in "${CLUSTER_NODES[@]}"; do
    hosts+=("$(node_addr "$n")")
    ports+=("$CLUSTER_PG_PORT")
  done
  CL_HOSTS=$(IFS=,; echo "${hosts[*]}")
  CL_PORTS=$(IFS=,; echo "${ports[*]}")
  # The owner's (music-admin, migrations) string: the primary, whichever node it is now. The
  # password comes from a 0600 pgpass file, so this string (and env.json) holds no secret.
  DB_OWNER="host=$CL_HOSTS port=$CL_PORTS dbname=music user=music_owner passfile=$CL_PGPASS target_session_attrs=read-write connect_timeout=2"
  # Used by the tests (pg_wal_replay_pause needs a superuser); also a pgpass entry.
  DB_SUPER_PRIMARY="host=$CL_HOSTS port=$CL_PORTS dbname=postgres user=postgres passfile=$CL_PGPASS target_session_attrs=read-write connect_timeout=2"
}

node_dir() { printf '%s/pg/%s\n' "$CLUSTER" "$1"; }
etcd_dir() { printf '%s/etcd/%s\n' "$CLUSTER" "$1"; }
app_dir() { printf '%s/api/%s\n' "$CLUSTER" "$1"; }
node_super() {
  printf 'host=%s port=%s dbname=postgres user=postgres passfile=%s connect_timeout=2\n' \
    "$(node_addr "$1")" "$CLUSTER_PG_PORT" "$CL_PGPASS"
}
secret() { cat "$CL_SECRETS/$1"; }

# Secrets, made once: each password in its own 0600 file, plus the pgpass file libpq reads for the
# invoking user (psql, music-admin). Hex, so they need no quoting in YAML or connection strings.
cluster_secrets() {
  mkdir -p "$CL_SECRETS"
  chmod 700 "$CL_SECRETS"
  local role
  for role in postgres replicator music_owner music_api; do
    [ -s "$CL_SECRETS/$role" ] || (umask 077 && openssl rand -hex 24 >"$CL_SECRETS/$role")
  done
  (umask 077 && printf '*:*:*:%s:%s\n' postgres "$(secret postgres)" music_owner "$(secret music_owner)" \
    music_api "$(secret music_api)" >"$CL_PGPASS")
  mkdir -p "$CLUSTER/api"
  chmod 755 "$CLUSTER/api"
  [ -s "$CL_PEPPER" ] || (umask 077 && openssl rand -base64 32 >"$CL_PEPPER")
}

# is_listening ADDR PORT: something accepts TCP there (a refused loopback connect fails at once).
is_listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Another cluster (scripts/cluster, or a tier run) on the same addresses would mix with this one.
cluster_check_free() {
  local n
  for n in "${CLUSTER_NODES[@]}"; do
    local a
    a=$(node_addr "$n")
    for p in 2379 2380 "$CLUSTER_PG_PORT" "$CLUSTER_REST_PORT"; do
      is_listening "$a" "$p" && die "$a:$p is in use (another scripts/cluster or cluster test running?)"
    done
  done
  for n in "${CLUSTER_HOSTS[@]}"; do
    is_listening "$(app_addr "$n")" "$CLUSTER_APP_PORT" &&
      die "$(app_addr "$n"):$CLUSTER_APP_PORT is in use (another scripts/cluster or cluster test running?)"
  done
  return 0
}

# stop_pid_cmdline FILE TEXT: like stop_pid_file, for interpreters (Patroni is python3): the process
# is signalled only if its command line still contains TEXT (e.g. the node's own patroni.yml).
stop_pid_cmdline() {
  local file=$1 text=$2 pid i
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if ! tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$text"; then
    rm -f "$file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  # Patroni stops its PostgreSQL (fast shutdown) before it exits.
  for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$file"
}

# postmaster_pid N: the node's running postmaster, or nothing. postmaster.pid may be stale after a
# kill -9, so the PID counts only if it is a postgres whose working directory is this data dir.
postmaster_pid() {
  local data pid
  data=$(node_dir "$1")/data
  [ -s "$data/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$data/postmaster.pid")
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" != "" ] || return 0
  [ "$(basename "$(readlink "/proc/$pid/exe")")" = postgres ] || return 0
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(cd "$data" && pwd -P)" ] || return 0
  printf '%s\n' "$pid"
}

# ---------------------------------------------------------------------------------------- etcd

etcd_up() {
  local n=$1 dir a initial="" m
  dir=$(etcd_dir "$n")
  a=$(node_addr "$n")
  for m in "${CLUSTER_NODES[@]}"; do
    initial+="${initial:+,}e$m=http://$(node_addr "$m"):2380"
  done
  mkdir -p "$dir"
  # --initial-* only matter on the first start; a restart rejoins from its data directory.
  etcd --name "e$n" --data-dir "$dir/data" \
    --listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
    --listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "music-api-$(basename "$CLUSTER")" \
    --logger zap --log-level warn </dev/null >>"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  # Stopped by PID file, never waited for: no job-control notice when a fault test kills one.
  disown $!
}

etcd_endpoints() {
  local n out=""
  for n in "${CLUSTER_NODES[@]}"; do out+="${out:+,}http://$(node_addr "$n"):2379"; done
  printf '%s\n' "$out"
}

etcd_wait() {
  local i
  for i in $(seq 1 100); do
    ETCDCTL_API=3 etcdctl --endpoints="$(etcd_endpoints)" --dial-timeout=1s endpoint health >/dev/null 2>&1 && return 0
    sleep 0.3
  done
  tail -n 5 "$CLUSTER"/etcd/*/etcd.log >&2
  die "etcd did not become healthy"
}

etcd_down() { stop_pid_file "$(etcd_dir "$1")/etcd.pid" etcd; }

# ---------------------------------------------------------------------------------------- Patroni

# A connection budget per node: every app host's workers, twice (a reload starts the new workers
# before the old ones leave), one key-change listener per host, and 10 for music-admin, psql and
# Patroni itself. (Replication connections are counted apart by PostgreSQL 12+: max_wal_senders.)
cluster_max_connections() {
  echo $(( ${#CLUSTER_HOSTS[@]} * CLUSTER_WORKERS * 2 + ${#CLUSTER_HOSTS[@]} + 10 ))
}

patroni_yml() {
  local n=$1 dir a m etcd_hosts=""
  dir=$(node_dir "$n")
  a=$(node_addr "$n")
  for m in "${CLUSTER_NODES[@]}"; do etcd_hosts+="${etcd_hosts:+,}$(node_addr "$m"):2379"; done
  cat <<YML
# Written by scripts/lib/cluster.sh for node $n of a loopback test cluster. Holds passwords: 0600.
scope: music-api
namespace: /music-api-$(basename "$CLUSTER")/
name: pg$n
restapi:
  listen: $a:$CLUSTER_REST_PORT
  connect_address: $a:$CLUSTER_REST_PORT
etcd3:
  hosts: $etcd_hosts
bootstrap:
  dcs:
    # Test timings: a dead leader is replaced about ttl seconds after it stops renewing its key.
    # Production (Patroni's defaults): ttl 30, loop_wait 10, retry_timeout 10.
    ttl: 10
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    # Read-your-writes: every replica is synchronous, and the API's writes commit with
    # synchronous_commit = remote_apply, so a save is visible on every streaming replica before
    # the API answers it (docs/scaling.md). Patroni drops a dead replica from the set; strict:
    # never the last one, so no write is ever acknowledged while it exists on one server only
    # (with no replica left, writes wait and are answered 503; reads go on).
    synchronous_mode: true
    synchronous_mode_strict: true
    synchronous_node_count: $(( ${#CLUSTER_NODES[@]} - 1 ))
    postgresql:
      # A failed primary rejoins as a replica by rewinding, instead of needing a new base backup.
      use_pg_rewind: true
      # Patroni creates and drops a physical replication slot per member.
      use_slots: true
      parameters:
        max_connections: $(cluster_max_connections)
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        hot_standby: "on"
        # Queries on a replica are not cancelled because of vacuum on the primary.
        hot_standby_feedback: "on"
        # A replica that stops answering (frozen, cut off) is let go after this, so Patroni can
        # drop it from the synchronous set and the commits waiting for it go on (default 60 s).
        wal_sender_timeout: 5s
        # WAL archiving on whichever node is the primary (the command is per node, below).
        archive_mode: "on"
        archive_timeout: $CLUSTER_ARCHIVE_TIMEOUT
$(cl_bootstrap_method "$n")
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
postgresql:
  listen: $a:$CLUSTER_PG_PORT
  connect_address: $a:$CLUSTER_PG_PORT
  data_dir: $dir/data
  bin_dir: $(pg_bin)
$(cl_restore_socket)
  # Each node its own: Patroni's default (/tmp/pgpass0) would be shared by the three.
  pgpass: $dir/pgpass
  authentication:
    superuser:
      username: postgres
      password: $(secret postgres)
    replication:
      username: replicator
      password: $(secret replicator)
  parameters:
    # All three listen on port $CLUSTER_PG_PORT, so each needs its own socket directory.
    unix_socket_directories: $dir/run
    password_encryption: scram-sha-256
    shared_buffers: 32MB
    # A loopback test cluster has no power loss to survive; production keeps fsync on.
    fsync: "off"
    synchronous_commit: "off"
    log_min_messages: warning
    # Until the first cluster_backup made the stanza, a segment is let go (no backup could replay
    # it): a cluster that is never backed up neither keeps its WAL nor logs a failed command.
    # One sh -c, because Patroni also runs this command itself, without a shell (the .ready
    # segments of an old primary, before pg_rewind).
    archive_command: "sh -c 'test ! -d $CL_REPO/archive/$CLUSTER_STANZA || exec pgbackrest --config=$dir/pgbackrest.conf --stanza=$CLUSTER_STANZA archive-push \$1' sh %p"
  # A replica (and pg_rewind) takes from the repository the WAL its primary no longer has.
  recovery_conf:
    restore_command: 'test -d $CL_REPO/archive/$CLUSTER_STANZA && pgbackrest --config=$dir/pgbackrest.conf --stanza=$CLUSTER_STANZA archive-get %f "%p"'
  # A new or wiped replica is restored from the repository's latest backup and then streams only
  # what came after it (the primary serves no base backup); pg_basebackup from the primary when
  # there is no backup yet (the wrapper exits 1 at once: the cluster's first start costs nothing).
  create_replica_methods:
  - pgbackrest
  - basebackup
  pgbackrest:
    command: "sh -c 'test -e $CL_REPO/backup/$CLUSTER_STANZA/latest || exit 1; mkdir -p -m 0700 $dir/data && exec pgbackrest --config=$dir/pgbackrest.conf --stanza=$CLUSTER_STANZA --delta restore'"
    keep_data: true
    no_params: true
  pg_hba:
  - local all postgres peer
  - host replication replicator 127.0.0.0/8 scram-sha-256
  - host all all 127.0.0.0/8 scram-sha-256
YML
}

# patroni_up N: writes the node's configuration and starts its Patroni (which starts PostgreSQL).
patroni_up() {
  local n=$1 dir owner
  dir=$(node_dir "$n")
  owner=$(server_user)
  mkdir -p "$dir/run"
  chmod 700 "$dir" "$dir/run"
  (umask 077 && patroni_yml "$n" >"$dir/patroni.yml")
  cl_pgbackrest_conf "$n"
  [ "$(id -u)" -eq 0 ] && chown -R "$owner": "$dir"
  # setpriv execs (runuser forks and stays the parent): the PID written is Patroni's own, so
  # stopping and the fault tests' kill -9 reach Patroni itself.
  local run=()
  [ "$(id -u)" -eq 0 ] && run=(setpriv --reuid="$owner" --regid="$owner" --init-groups --)
  # Started in its own directory: Python's multiprocessing (Patroni's bootstrap) changes into the
  # parent's working directory, which the server user cannot reach when the checkout is in /root.
  (cd "$dir" && cl_cgroup_join "pg$n" && exec env HOME="$dir" "${run[@]}" patroni "$dir/patroni.yml" </dev/null >>"$dir/patroni.log" 2>&1) &
  echo $! >"$dir/patroni.pid"
  disown $!
}

# patroni_down N: Patroni (which stops its PostgreSQL), then any postmaster it left behind.
patroni_down() {
  local n=$1 dir pid i
  dir=$(node_dir "$n")
  stop_pid_cmdline "$dir/patroni.pid" "$dir/patroni.yml"
  pid=$(postmaster_pid "$n")
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null || true   # fast shutdown
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -QUIT "$pid" 2>/dev/null || true  # immediate shutdown
}

# cluster_state: Patroni's view (GET /cluster from any node that answers), as JSON.
cluster_state() {
  local n
  for n in "${CLUSTER_NODES[@]}"; do
    curl -s -m 2 "http://$(node_addr "$n"):$CLUSTER_REST_PORT/cluster" && return 0
  done
  return 1
}

# cluster_healthy: one leader and every other node a streaming replica with little lag, and each
# node's own Patroni says its PostgreSQL runs (GET /health). The DCS view alone is not enough: a
# member killed a moment ago keeps its key, and looks "running", until its TTL ends.
cluster_healthy() {
  local state n
  for n in "${CLUSTER_NODES[@]}"; do
    curl -sf -o /dev/null -m 2 "http://$(node_addr "$n"):$CLUSTER_REST_PORT/health" || return 1
  done
  state=$(cluster_state) || return 1
  python3 -c '
import json, sys
members = json.loads(sys.argv[1]).get("members", [])
want = int(sys.argv[2])
leaders = [m for m in members if m.get("role") in ("leader", "master") and m.get("state") == "running"]
# synchronous_mode: healthy means every replica is back in the synchronous set (read-your-writes).
replicas = [m for m in members if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming")
            and isinstance(m.get("lag"), int) and m["lag"] < 1048576]
sys.exit(0 if len(members) == want and len(leaders) == 1 and len(replicas) == want - 1 else 1)
' "$state" "${#CLUSTER_NODES[@]}"
}

# cluster_wait_healthy [SECONDS]
cluster_wait_healthy() {
  local limit=${1:-120} start=$SECONDS
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    cluster_healthy && return 0
    sleep 0.5
  done
  cluster_state >&2 || true
  # The logs may not outlive this run (a CI workspace, a throw-away root): their ends, here.
  local n
  for n in "${CLUSTER_NODES[@]}"; do
    log "--- the last lines of $(node_dir "$n")/patroni.log"
    tail -n 15 "$(node_dir "$n")/patroni.log" >&2 2>/dev/null || true
  done
  die "the PostgreSQL cluster was not healthy within ${limit}s (logs: $CLUSTER/pg/*/patroni.log)"
}

# The leader's address, from Patroni.
cluster_leader_addr() {
  cluster_state | python3 -c '
import json, sys
for m in json.load(sys.stdin).get("members", []):
    if m.get("role") in ("leader", "master"):
        print(m["host"])
'
}

# Roles and passwords, through the primary. roles.sql is idempotent; passwords are set each start
# from the secret files (psql variables, so they never appear on a command line).
cluster_roles() {
  psql -X -q -d "$DB_SUPER_PRIMARY" -v ON_ERROR_STOP=1 -f "$MUSIC_API_ROOT/sql/roles.sql" >/dev/null ||
    die "creating the roles (sql/roles.sql) failed"
  psql -X -q -d "$DB_SUPER_PRIMARY" -v ON_ERROR_STOP=1 -v owner_pw="$(secret music_owner)" \
    -v api_pw="$(secret music_api)" >/dev/null <<'SQL' || die "setting the role passwords failed"
ALTER ROLE music_owner PASSWORD :'owner_pw';
ALTER ROLE music_api PASSWORD :'api_pw';
SQL
}

# Migrations through the primary. Right after an election the new leader may take a moment to
# accept writes, so a few attempts; the last failure shows libpq's own reason.
cluster_migrate() {
  local bin=$1 i
  for i in 1 2 3 4 5; do
    MUSIC_API_DB=$DB_OWNER "$bin/music-admin" migrate >/dev/null 2>&1 && return 0
    log "music-admin migrate failed (attempt $i): $(psql -X -q -d "$DB_OWNER" -c 'SELECT 1' 2>&1 >/dev/null | head -n 2 | tr '\n' ' ')"
    sleep 2
  done
  die "music-admin migrate failed"
}

# ---------------------------------------------------------------------------------------- backups
# pgBackRest with one repository for the cluster (packaging/backup/pgbackrest-cluster.conf is the
# same on real hosts). Every node archives once it is the primary (archive_command above), a new
# replica is restored from the repository (create_replica_methods), backups run against the
# primary, and the whole cluster is restored through Patroni's custom bootstrap (below).

# cl_pgbackrest_conf N: node N's pgbackrest.conf (its own data directory, socket, log and lock
# paths; the shared repository). Called by patroni_up, before the node's directory is chowned.
cl_pgbackrest_conf() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$CL_REPO" "$dir/pgbackrest-log" "$dir/pgbackrest-lock"
  chmod 750 "$CL_REPO"
  [ "$(id -u)" -eq 0 ] && chown "$(server_user)": "$CL_REPO"
  pgbackrest_conf "$CL_REPO" "$dir/pgbackrest-log" "$dir/pgbackrest-lock" "$CLUSTER_STANZA" "$dir/data" "$dir/run" \
    "$CLUSTER_PG_PORT" "node $n of a loopback test cluster" >"$dir/pgbackrest.conf"
  chmod 644 "$dir/pgbackrest.conf"
}

# cl_bootstrap_method N: with CL_RESTORE_TARGET set (latest, or a time as recovery_target_time
# takes it), the bootstrap.method that makes a new cluster from the repository instead of initdb:
# Patroni runs `pgbackrest restore` into the empty data directory, keeps the recovery settings
# pgBackRest wrote (restore_command, the target, recovery.signal), starts PostgreSQL, waits for
# the end of recovery (the promotion) and only then takes the leader key.
cl_bootstrap_method() {
  local n=$1 dir target=${CL_RESTORE_TARGET:-} opts=""
  [ -n "$target" ] || return 0
  dir=$(node_dir "$n")
  [ "$target" = latest ] || opts="--type=time '--target=$target' --target-action=promote "
  cat <<YML
  method: pgbackrest_restore
  pgbackrest_restore:
    command: "pgbackrest --config=$dir/pgbackrest.conf --stanza=$CLUSTER_STANZA --delta ${opts}restore"
    keep_existing_recovery_conf: true
    no_params: true
YML
}

# cl_restore_socket: during a custom bootstrap Patroni trusts only the local socket and the
# listen address (127.0.1.N/32), but a loopback connection to 127.0.1.N comes from 127.0.0.1: so
# Patroni connects through the socket while the restore runs (the next start drops it again).
cl_restore_socket() {
  [ -z "${CL_RESTORE_TARGET:-}" ] || echo "  use_unix_socket: true"
}

# cl_leader_node: the number of the node Patroni names leader (nothing if none).
cl_leader_node() {
  cluster_state 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin).get("members", []):
    if m.get("role") in ("leader", "master") and m.get("state") == "running":
        print(m["name"].removeprefix("pg"))
' 2>/dev/null || true
}

# cl_pgbackrest N ARGS…: pgbackrest with node N's configuration, as the server user.
cl_pgbackrest() {
  local n=$1
  shift
  as_pg_user pgbackrest --config="$(node_dir "$n")/pgbackrest.conf" --stanza="$CLUSTER_STANZA" "$@"
}

# cluster_backup: a full backup from the primary (the stanza made first if need be); prints its
# label. From then on the primary archives its WAL.
cluster_backup() {
  local n
  n=$(cl_leader_node)
  [ -n "$n" ] || die "no running leader to back up"
  if [ ! -d "$CL_REPO/archive/$CLUSTER_STANZA" ]; then
    cl_pgbackrest "$n" stanza-create >&2 || die "pgbackrest stanza-create on pg$n failed"
  fi
  cl_pgbackrest "$n" --type=full backup >&2 || die "pgbackrest backup on pg$n failed (log: $(node_dir "$n")/pgbackrest-log)"
  cl_pgbackrest "$n" --output=json info | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["backup"][-1]["label"])'
}

# cluster_restore_all [TIME]: the whole cluster from the repository, the latest state archived
# (or TIME, e.g. "2026-12-07 17:30:05+00"). Every Patroni stopped, every data directory wiped,
# the cluster's keys removed from etcd (patronictl remove), node 1 bootstrapped from the latest
# backup and the archived WAL (Patroni's custom bootstrap, cl_bootstrap_method), then the other
# nodes started empty: each restores the same backup (create_replica_methods: pgbackrest), replays
# the archive and streams the rest from node 1. The app hosts and nginx stay up (503 meanwhile).
cluster_restore_all() {
  local target=${1:-latest} n i stopping=() leader_key leader_name start=$SECONDS
  [[ $target =~ ^(latest|[0-9][0-9:.+\ -]*)$ ]] || die "restore target must be latest or a time: $target"
  [ -e "$CL_REPO/backup/$CLUSTER_STANZA/latest" ] || die "no backup in $CL_REPO"
  for n in "${CLUSTER_NODES[@]}"; do
    patroni_down "$n" &
    stopping+=($!)
  done
  wait "${stopping[@]}"
  for n in "${CLUSTER_NODES[@]}"; do
    [ -z "$(postmaster_pid "$n")" ] || die "pg$n's PostgreSQL is still running"
    rm -rf "$(node_dir "$n")/data"
  done
  # A leader that died without a clean stop keeps its key until the TTL ends: patronictl then
  # also asks for its name.
  leader_key="/music-api-$(basename "$CLUSTER")/music-api/leader"
  leader_name=$(ETCDCTL_API=3 etcdctl --endpoints="$(etcd_endpoints)" get "$leader_key" --print-value-only 2>/dev/null || true)
  printf 'music-api\nYes I am aware\n%s\n' "$leader_name" |
    patronictl -c "$(node_dir 1)/patroni.yml" remove music-api >/dev/null ||
    die "patronictl remove music-api failed"
  # Node 1 from the repository. An empty data directory, made here so pgbackrest restores into it.
  install -d -m 0700 -o "$(server_user)" -g "$(id -gn "$(server_user)")" "$(node_dir 1)/data"
  CL_RESTORE_TARGET=$target patroni_up 1
  for i in $(seq 1 480); do
    curl -sf -o /dev/null -m 2 "http://$(node_addr 1):$CLUSTER_REST_PORT/primary" && break
    kill -0 "$(cat "$(node_dir 1)/patroni.pid")" 2>/dev/null || { tail -n 20 "$(node_dir 1)/patroni.log" >&2; die "pg1's Patroni exited during the restore"; }
    sleep 0.5
  done
  curl -sf -o /dev/null -m 2 "http://$(node_addr 1):$CLUSTER_REST_PORT/primary" ||
    { tail -n 20 "$(node_dir 1)/patroni.log" >&2; die "pg1 was not the leader within 240 s of the restore"; }
  log "cluster_restore_all: pg1 restored ($target) and leader after $((SECONDS - start)) s"
  # Its next start writes the configuration without the restore (a bootstrap only ever runs once).
  (umask 077 && patroni_yml 1 >"$(node_dir 1)/patroni.yml")
  for n in "${CLUSTER_NODES[@]}"; do [ "$n" -eq 1 ] || patroni_up "$n"; done
  cluster_wait_healthy 240
  log "cluster_restore_all: cluster healthy after $((SECONDS - start)) s"
}

# ---------------------------------------------------------------------------------------- music-api

# supports_key BIN KEY VALUE: this music-api accepts KEY (the cluster keys are newer than some
# binaries; a config with an unknown key is refused by --test).
supports_key() { config_key_supported "$1" "$CL_PEPPER" "$2" "$3"; }

# api_conf N BIN: one app host's configuration (holds the API role's password: 0600).
api_conf() {
  local n=$1 bin=$2 base
  base="host=$CL_HOSTS port=$CL_PORTS dbname=music user=music_api password=$(secret music_api)"
  printf '# Written by scripts/lib/cluster.sh for app host %s of a loopback cluster.\n' "$n"
  printf 'listen = %s:%s\nworkers = %s\n' "$(app_addr "$n")" "$CLUSTER_APP_PORT" "$CLUSTER_WORKERS"
  printf 'key_pepper_file = %s\nrequest_timeout = 2\nretry_after = 1\n' "$CL_PEPPER"
  if supports_key "$bin" database_write "dbname=x"; then
    # Reads on a replica if one answers; the key-change listener (LISTEN, refused on a standby)
    # and the heartbeat on the primary.
    printf 'database = %s target_session_attrs=prefer-standby\n' "$base"
    printf 'database_write = %s target_session_attrs=read-write\n' "$base"
  else
    # A binary without database_write LISTENs on its only session, which a standby refuses:
    # it can only read from the primary.
    printf 'database = %s target_session_attrs=read-write\n' "$base"
  fi
  # Notice a dead or frozen node in seconds (each only if this binary knows the key).
  local kv
  for kv in database_connect_timeout=2 database_keepalives_idle=2 database_keepalives_interval=1 \
    database_keepalives_count=2 database_tcp_user_timeout=3000 max_replica_lag=12 listen_allow=127.0.0.1; do
    supports_key "$bin" "${kv%%=*}" "${kv#*=}" && printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"
  done
  # Public URLs point at the cluster's nginx (cluster_up wrote its address), never at a Host header.
  local public_url
  public_url=$(cat "$CLUSTER/public-url" 2>/dev/null || true)
  if [ -n "$public_url" ] && supports_key "$bin" media_base_url "$public_url"; then
    printf 'media_base_url = %s\n' "$public_url"
  fi
  return 0
}

# app_up N BIN: starts app host N in the background and waits for its TCP listener.
app_up() {
  local n=$1 bin=$2 dir
  dir=$(app_dir "$n")
  mkdir -p "$dir"
  (umask 077 && api_conf "$n" "$bin" >"$dir/music-api.conf")
  # The media key file through the environment (a binary from before playback ignores it).
  (cl_cgroup_join "app$n" && MUSIC_API_MEDIA_KEYS_FILE=$MEDIA_KEYS exec env -u MUSIC_API_DB -u MUSIC_API_DB_WRITE \
    -u MUSIC_API_PEPPER_FILE "$bin/music-api" --config "$dir/music-api.conf" </dev/null >>"$dir/music-api.log" 2>&1) &
  echo $! >"$dir/music-api.pid"
  disown $!
  local i
  for i in $(seq 1 100); do
    is_listening "$(app_addr "$n")" "$CLUSTER_APP_PORT" && return 0
    kill -0 "$(cat "$dir/music-api.pid")" 2>/dev/null || { tail -n 20 "$dir/music-api.log" >&2; die "music-api host $n did not start"; }
    sleep 0.1
  done
  die "music-api host $n did not listen on $(app_addr "$n"):$CLUSTER_APP_PORT"
}

app_down() { stop_pid_file "$(app_dir "$1")/music-api.pid" music-api; }

# ---------------------------------------------------------------------------------------- nginx

# cluster_nginx_up PORT: like stack.sh's nginx_up, with the cluster upstream file in place of the
# single-host `upstream music_api_fcgi { server unix:… }`, and the production limits with one
# change: loopback is not counted by the per-address concurrency limit (limit_conn), through the
# exemption list the file has for that. Every client of this cluster (the tests' readers, writers
# and pollers, the bench) is 127.0.0.1, and its fault cases hold requests for seconds on purpose:
# what they measure is failover, not one address's share of the pool.
cluster_nginx_up() {
  mkdir -p "$NGINX_DIR"
  sed '/^geo \$music_api_conn_uncounted {$/a\    127.0.0.0/8 1;' "$MUSIC_API_ROOT/nginx/music-api-ratelimit.conf" \
    >"$NGINX_DIR/music-api-ratelimit.conf"
  grep -q '^    127\.0\.0\.0/8 1;$' "$NGINX_DIR/music-api-ratelimit.conf" ||
    die "nginx/music-api-ratelimit.conf has no geo \$music_api_conn_uncounted block to exempt loopback in"
  NGINX_UPSTREAM="include $MUSIC_API_ROOT/nginx/music-api-upstream-cluster.conf;" \
    NGINX_LIMITS="include $NGINX_DIR/music-api-ratelimit.conf;" nginx_up "$1"
}

# ---------------------------------------------------------------------------------------- all

cluster_env_json() {
  local port=$1 bin=$2 n nodes="" apps=""
  for n in "${CLUSTER_NODES[@]}"; do
    nodes+="${nodes:+,}
    {\"name\": \"pg$n\", \"addr\": \"$(node_addr "$n")\", \"dir\": \"$(node_dir "$n")\", \"super\": \"$(node_super "$n")\"}"
  done
  for n in "${CLUSTER_HOSTS[@]}"; do
    apps+="${apps:+,}
    {\"n\": $n, \"addr\": \"$(app_addr "$n")\", \"dir\": \"$(app_dir "$n")\"}"
  done
  # The fields tests/support/musicapi.py reads, plus the cluster's own. No secret: passfile only.
  cat >"$CLUSTER/env.json" <<JSON
{
  "base_url": "https://127.0.0.1:$port",
  "host": "127.0.0.1",
  "port": $port,
  "ca_file": "$NGINX_DIR/cert.pem",
  "admin": "$bin/music-admin",
  "api": "$bin/music-api",
  "bin": "$bin",
  "db_owner": "$DB_OWNER",
  "db_super_primary": "$DB_SUPER_PRIMARY",
  "psql": "$(command -v psql)",
  "pepper_file": "$CL_PEPPER",
  "media_root": "$MEDIA_ROOT",
  "media_keys_file": "$MEDIA_KEYS",
  "api_conf": "$(app_dir 1)/music-api.conf",
  "api_log": "$(app_dir 1)/music-api.log",
  "nginx_dir": "$NGINX_DIR",
  "root": "$MUSIC_API_ROOT",
  "cluster": "$CLUSTER",
  "rest_port": $CLUSTER_REST_PORT,
  "nodes": [$nodes
  ],
  "hosts": [$apps
  ]
}
JSON
}

# cluster_up DIR BIN_DIR PORT: etcd, Patroni ×3 (waits for a leader and two streaming replicas),
# roles and migrations through the primary, the app hosts, nginx. Reuses DIR's data if any.
cluster_up() {
  cluster_paths "$1"
  local bin=$2 port=$3 n
  mkdir -p "$CLUSTER/pg" "$CLUSTER/etcd"
  chmod 755 "$CLUSTER" "$CLUSTER/pg"
  chmod 700 "$CLUSTER/etcd"
  # A previous run that was killed may have left its processes: stop them by their PID files.
  cluster_down "$CLUSTER"
  cluster_check_free
  cluster_secrets
  for n in "${CLUSTER_NODES[@]}"; do etcd_up "$n"; done
  etcd_wait
  for n in "${CLUSTER_NODES[@]}"; do patroni_up "$n"; done
  log "waiting for Patroni to elect a leader and stream to the replicas…"
  cluster_wait_healthy 180
  cluster_roles
  cluster_migrate "$bin"
  mkdir -p "$MEDIA_ROOT"
  chmod 755 "$MEDIA_ROOT"
  media_keys_init "$bin" "$MEDIA_KEYS"
  # The app hosts' media_base_url (api_conf), read again when a test restarts one.
  echo "https://127.0.0.1:$port" >"$CLUSTER/public-url"
  for n in "${CLUSTER_HOSTS[@]}"; do app_up "$n" "$bin"; done
  cluster_nginx_up "$port"
  cluster_env_json "$port" "$bin"
}

# cluster_continue: SIGCONT to every app host and postmaster (and their children), so a fault
# test that froze one and then failed cannot leave it unable to act on the stop that follows.
cluster_continue() {
  local n pid
  for n in "${CLUSTER_HOSTS[@]}"; do
    pid=$(cat "$(app_dir "$n")/music-api.pid" 2>/dev/null || true)
    # shellcheck disable=SC2046 # one PID per word
    [ -n "$pid" ] && [ "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)")" = music-api ] &&
      kill -CONT "$pid" $(ps -o pid= --ppid "$pid") 2>/dev/null
  done
  for n in "${CLUSTER_NODES[@]}"; do
    pid=$(postmaster_pid "$n")
    # shellcheck disable=SC2046 # one PID per word
    [ -n "$pid" ] && kill -CONT "$pid" $(ps -o pid= --ppid "$pid") 2>/dev/null
  done
  return 0
}

# cluster_down DIR: stops everything cluster_up started (by PID file), keeps the data.
cluster_down() {
  cluster_paths "$1"
  local n stopping=()
  cluster_continue
  nginx_down
  for n in "${CLUSTER_HOSTS[@]}"; do app_down "$n"; done
  # The three at once: one after the other, each stop would be a failover for the others to run.
  # (Waited for by PID: a bare `wait` would also wait for any other child of this shell.)
  for n in "${CLUSTER_NODES[@]}"; do
    patroni_down "$n" &
    stopping+=($!)
  done
  wait "${stopping[@]}"
  for n in "${CLUSTER_NODES[@]}"; do etcd_down "$n"; done
  cluster_heal
  cl_cgroups_remove
}

# cluster_demo BIN: the demo organization, user, key and tracks, made once through the primary
# (like scripts/run's); DIR/demo.env (0600) remembers them.
cluster_demo() {
  local bin=$1
  [ -s "$CL_DEMO" ] && return 0
  admin() { MUSIC_API_DB=$DB_OWNER MUSIC_API_PEPPER_FILE=$CL_PEPPER "$bin/music-admin" "$@"; }
  local org user key collection i mode engine track modes=(creation focus) engines=(studio lyra aria pulse)
  org=$(admin org create "Demo Records")
  user=$(admin user create "demo-$(date +%s)@example.com")
  admin member add "$org" "$user" --capability USE_MUSIC_GENERATION
  key=$(admin key create "$user")
  collection=$(admin collection create "$org" "$user" "Focus favourites")
  for i in $(seq 1 36); do
    mode=${modes[$((i % 2))]} engine=${engines[$((i % 4))]}
    local args=(track create "$org" --engine "$engine" --mode "$mode" --title "Demo track $i"
      --licence-class unclear --created-at "2026-06-$(printf %02d $(( (i % 28) + 1 )))T10:00:00Z")
    [ $((i % 7)) -ne 0 ] && args+=(--duration "$((90 + i)).5")
    [ $((i % 3)) -eq 0 ] && args+=(--instrumental)
    track=$(admin "${args[@]}")
    admin library save "$org" "$user" "$track" --saved-at "2026-07-01T00:$(printf %02d $((i % 60))):00Z"
    [ "$mode" = focus ] && admin collection add "$collection" "$track"
  done
  (umask 077 && printf 'DEMO_ORG=%s\nDEMO_USER=%s\nDEMO_KEY=%s\nDEMO_COLLECTION=%s\n' \
    "$org" "$user" "$key" "$collection" >"$CL_DEMO")
}
