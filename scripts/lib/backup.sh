# shellcheck shell=bash
# pgBackRest for the local stack (sourced after stack.sh, once stack_paths has set STACK): its
# repository, configuration, logs and drill state all live in the stack's directory. The work
# itself is packaging/backup/music-api-backup, the same script a server runs.

# backup_paths: the stack's backup paths (after stack_paths).
backup_paths() {
  BACKUP_STANZA=music
  BACKUP_CONF=$STACK/pgbackrest.conf
  BACKUP_REPO=$STACK/backup-repo
  BACKUP_STATE=$STACK/backup-state
  BACKUP_METRICS=$STACK/metrics
  BACKUP_TOOL=$MUSIC_API_ROOT/packaging/backup/music-api-backup
}

# pgbackrest_conf REPO LOG_DIR LOCK_DIR STANZA PG_DATA PG_SOCKET_DIR PG_PORT FOR: the pgbackrest.conf of
# one PostgreSQL (a stack's, or a test cluster node's: scripts/lib/cluster.sh), on stdout.
pgbackrest_conf() {
  cat <<CONF
# Written by scripts/lib for $8.
[global]
repo1-path=$1
repo1-retention-full=2
compress-type=zst
start-fast=y
log-path=$2
lock-path=$3
log-level-console=warn
log-level-file=info

[$4]
pg1-path=$5
pg1-socket-path=$6
pg1-port=$7
pg1-user=postgres
CONF
}

# backup_setup: the configuration and the directories pgbackrest (as the server user) writes.
backup_setup() {
  backup_paths
  local d
  for d in "$BACKUP_REPO" "$BACKUP_STATE" "$BACKUP_METRICS" "$STACK/backup-log" "$STACK/backup-lock"; do
    mkdir -p "$d"
    [ "$(id -u)" -eq 0 ] && chown "$(server_user)": "$d"
    chmod 750 "$d"
  done
  # The metrics are read by anyone (node_exporter's textfile collector).
  chmod 755 "$BACKUP_METRICS"
  pgbackrest_conf "$BACKUP_REPO" "$STACK/backup-log" "$STACK/backup-lock" "$BACKUP_STANZA" "$PG_DATA" "$PG_RUN" 5432 \
    "the stack in $STACK" >"$BACKUP_CONF.tmp"
  chmod 644 "$BACKUP_CONF.tmp"
  mv "$BACKUP_CONF.tmp" "$BACKUP_CONF"
}

# backup_pg_options: the PostgreSQL options that archive WAL from the start (pg_up's start line):
# every segment goes to the repository when full, or after archive_timeout when it is not. Until
# the first scripts/backup made the stanza, a segment is let go (no backup could replay it), so
# a stack that is never backed up neither keeps its WAL nor logs a failed archive_command.
backup_pg_options() {
  backup_setup
  printf "%s" "-c archive_mode=on -c archive_timeout=60 -c archive_command='test ! -d $BACKUP_REPO/archive/$BACKUP_STANZA || pgbackrest --config=$BACKUP_CONF --stanza=$BACKUP_STANZA archive-push %p'"
}

# backup_tool ARGS…: packaging/backup/music-api-backup against this stack, as the server user.
backup_tool() {
  backup_paths
  # The stack's own music-admin (env.json), else the release build's, else the test build's.
  local admin=""
  [ -s "$STACK/env.json" ] && admin=$(jq -r '.admin // empty' "$STACK/env.json")
  [ -x "$admin" ] || admin=$MUSIC_API_ROOT/build/release/music-admin
  [ -x "$admin" ] || admin=$MUSIC_API_ROOT/build/test/music-admin
  as_pg_user env MUSIC_API_BACKUP_CONF="$BACKUP_CONF" MUSIC_API_BACKUP_STANZA="$BACKUP_STANZA" \
    MUSIC_API_BACKUP_PGHOST="$PG_RUN" MUSIC_API_BACKUP_PGPORT=5432 MUSIC_API_BACKUP_STATE="$BACKUP_STATE" \
    MUSIC_API_BACKUP_METRICS="$BACKUP_METRICS" MUSIC_API_ADMIN="$admin" \
    MUSIC_API_BACKUP_PG_BIN="$(pg_bin)" "$BACKUP_TOOL" "$@"
}

# backup_pg_start: the stack's PostgreSQL started as pg_up starts it (same options, archiving on).
backup_pg_start() {
  as_pg_user "$(pg_bin)/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 600 \
    -o "-c listen_addresses='' -k $PG_RUN -c max_connections=200 -c fsync=off -c shared_buffers=256MB $(backup_pg_options)" \
    start >/dev/null || { tail -n 20 "$PG_LOG" >&2; die "PostgreSQL did not start (log: $PG_LOG)"; }
  # After a restore, hot standby lets pg_ctl return before recovery ends: wait for the promotion.
  local i
  for i in $(seq 1 6000); do
    [ "$(psql -X -A -t -h "$PG_RUN" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] &&
      return 0
    sleep 0.1
  done
  die "PostgreSQL is still recovering after 10 minutes (log: $PG_LOG)"
}

pg_is_running() { as_pg_user "$(pg_bin)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }
