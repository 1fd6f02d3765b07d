# shellcheck shell=bash
# The local stack shared by scripts/run, scripts/admin, scripts/test and the ctest fixtures:
# a private PostgreSQL cluster, the music-api worker pool and nginx over TLS, all under one
# directory, all on loopback or unix sockets, each stopped by the PID it wrote.

MUSIC_API_ROOT=${MUSIC_API_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$MUSIC_API_ROOT/scripts/lib/backup.sh"

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Any failing step says which command failed and where, instead of ending the script silently.
set -E
trap 'log "error: \"$BASH_COMMAND\" failed (status $?) at ${BASH_SOURCE[0]##*/}:$LINENO"' ERR

# PostgreSQL's server binaries, looked up when first needed (after need_packages has installed them).
pg_bin() {
  if [ -z "${PG_BIN:-}" ]; then
    PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    [ -n "$PG_BIN" ] || die "no PostgreSQL server under /usr/lib/postgresql (package postgresql)"
  fi
  printf '%s\n' "$PG_BIN"
}

# The OS user the servers run as: PostgreSQL refuses root, so as root it is `postgres`.
server_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }

# Debian packages the build, the stack and the tests need; installs only what is missing.
need_packages() {
  # file: CPack's dpkg-shlibdeps; systemd: systemd-analyze and systemd-socket-activate (ops tests).
  local wanted=(build-essential cmake pkg-config libfcgi-dev libsoci-dev libpq-dev libboost-json1.81-dev
    libboost-test1.81-dev libssl-dev libsystemd-dev postgresql nginx openssl curl python3 ca-certificates
    file systemd clang-format libnginx-mod-http-js sox libsox-fmt-base python3-jsonschema python3-yaml)
  local missing=() p
  for p in "${wanted[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install ${missing[*]} failed"
}

# build DIR TYPE [cmake args…]
build() {
  local dir=$1 type=$2
  shift 2
  cmake -S "$MUSIC_API_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

# stack_home DIR: DIR, or, when the servers' unprivileged users could not reach it (a checkout
# under /root, mode 0700), a directory of its own under /var/tmp named after DIR. Printed.
stack_home() {
  local dir=$1
  if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$(dirname "$dir")" 2>/dev/null; then
    dir=/var/tmp/music-api-$(printf '%s' "$dir" | md5sum | cut -c1-12)
  fi
  printf '%s\n' "$dir"
}

# stack_paths DIR: every path of a stack rooted at DIR.
stack_paths() {
  STACK=$1
  PG_DATA=$STACK/pg/data
  PG_RUN=$STACK/pg/run
  PG_LOG=$STACK/pg/postgresql.log
  API_DIR=$STACK/api
  API_SOCKET=$API_DIR/fcgi.sock
  API_CONF=$API_DIR/music-api.conf
  API_PEPPER=$API_DIR/key-pepper
  API_LOG=$API_DIR/music-api.log
  API_PID=$API_DIR/music-api.pid
  MEDIA_ROOT=$STACK/media
  MEDIA_KEYS=$API_DIR/media-keys.json
  NGINX_DIR=$STACK/nginx
  NGINX_PID=$NGINX_DIR/nginx.pid
  DB_OWNER="host=$PG_RUN port=5432 dbname=music user=music_owner"
  DB_API="host=$PG_RUN port=5432 dbname=music user=music_api"
}

# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` system user.
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Only the server user (and root) can reach the cluster: its socket directory is 0700, and peer
# authentication maps the OS user who runs the stack onto the roles it uses, nothing else.
pg_up() {
  local owner bin
  owner=$(server_user)
  bin=$(pg_bin)
  mkdir -p "$STACK/pg"
  chmod 755 "$STACK" "$STACK/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$STACK/pg"
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    as_pg_user "$bin/initdb" -D "$PG_DATA" -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=reject \
      -U postgres >/dev/null || die "initdb $PG_DATA failed"
  fi
  local me
  me=$(id -un)
  as_pg_user tee "$PG_DATA/pg_hba.conf" >/dev/null <<HBA
# Written by scripts/lib/stack.sh: unix socket only, peer authentication through the map below.
local all all peer map=stack
HBA
  as_pg_user tee "$PG_DATA/pg_ident.conf" >/dev/null <<IDENT
stack $owner postgres
stack $me postgres
stack $me music_owner
stack $me music_api
IDENT
  mkdir -p "$PG_RUN"
  [ "$(id -u)" -eq 0 ] && chown "$owner": "$PG_RUN"
  chmod 700 "$PG_RUN"
  if ! as_pg_user "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    # Unix socket only, in the stack's own directory: nothing listens on the network.
    as_pg_user "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
      -o "-c listen_addresses='' -k $PG_RUN -c max_connections=200 -c fsync=off -c shared_buffers=256MB $(backup_pg_options)" \
      start >/dev/null || { tail -n 20 "$PG_LOG" >&2; die "PostgreSQL did not start (log: $PG_LOG)"; }
  else
    as_pg_user "$bin/pg_ctl" -D "$PG_DATA" reload >/dev/null
  fi
  psql -X -q -h "$PG_RUN" -U postgres -d postgres -v ON_ERROR_STOP=1 -f "$MUSIC_API_ROOT/sql/roles.sql" >/dev/null ||
    die "creating the roles (sql/roles.sql) failed"
}

pg_down() {
  [ -d "$PG_DATA" ] || return 0
  as_pg_user "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
}

# media_keys_init BIN FILE: the playback-URL signing keys, made once by music-admin. A binary from
# before playback (the side-by-side bench's old one) has no such command: then a key file of the
# same form, so nginx's njs still loads one.
media_keys_init() {
  local bin=$1 file=$2
  [ -s "$file" ] && return 0
  if "$bin/music-admin" --help 2>/dev/null | grep -q 'media-key rotate'; then
    "$bin/music-admin" media-key rotate --file "$file" >/dev/null || die "music-admin media-key rotate failed"
  else
    (umask 027 && printf '{"current":"k0","keys":{"k0":"%s"}}\n' "$(openssl rand -hex 24)" >"$file")
  fi
}

# config_key_supported BIN PEPPER KEY VALUE: this music-api accepts KEY = VALUE (`--test`). Newer
# keys than an old binary knows (the side-by-side bench's, the cluster's) are only written when it
# does: a config with an unknown key is refused.
config_key_supported() {
  local bin=$1 pepper=$2 probe rc=0
  probe=$(mktemp)
  printf 'database = dbname=x\n%s = %s\nkey_pepper_file = %s\n' "$3" "$4" "$pepper" >"$probe"
  MUSIC_API_MEDIA_KEYS_FILE=$MEDIA_KEYS env -u MUSIC_API_DB -u MUSIC_API_DB_WRITE -u MUSIC_API_PEPPER_FILE \
    "$bin/music-api" --config "$probe" --test >/dev/null 2>&1 || rc=$?
  rm -f "$probe"
  return "$rc"
}

# api_up BIN_DIR [WORKERS]: migrates, then starts the worker pool in the background. Public URLs
# (playback, share links) point at STACK_PUBLIC_URL, by default this stack's nginx as scripts/run
# starts it (https://127.0.0.1:${MUSIC_API_HTTPS_PORT:-8443}); stack_up sets it to its own port.
api_up() {
  local bin=$1 workers=${2:-4}
  mkdir -p "$API_DIR"
  chmod 755 "$API_DIR"
  [ -s "$API_PEPPER" ] || (umask 077 && openssl rand -base64 32 >"$API_PEPPER")
  # Audio files: written by music-admin, read by nginx (as root it runs as nobody).
  mkdir -p "$MEDIA_ROOT"
  chmod 755 "$MEDIA_ROOT"
  media_keys_init "$bin" "$MEDIA_KEYS"
  # The FastCGI socket is for nginx alone: 0660, in nginx's group (as root nginx runs as nobody).
  local group_line=""
  [ "$(id -u)" -eq 0 ] && group_line="listen_group = nogroup"
  cat >"$API_CONF" <<CONF
# Written by scripts/lib/stack.sh for a local stack.
listen = $API_SOCKET
listen_mode = 0660
$group_line
workers = $workers
database = $DB_API
key_pepper_file = $API_PEPPER
request_timeout = 5
retry_after = 2
CONF
  # Set only when asked (a binary from before playback, run by the side-by-side bench, refuses the key).
  [ -n "${STACK_MEDIA_URL_TTL:-}" ] && echo "media_url_ttl = $STACK_MEDIA_URL_TTL" >>"$API_CONF"
  # Every public URL is built from this alone, never from a request's Host header.
  local public_url=${STACK_PUBLIC_URL:-https://127.0.0.1:${MUSIC_API_HTTPS_PORT:-8443}}
  if config_key_supported "$bin" "$API_PEPPER" media_base_url "$public_url"; then
    echo "media_base_url = $public_url" >>"$API_CONF"
  fi
  MUSIC_API_DB=$DB_OWNER "$bin/music-admin" migrate >/dev/null || die "music-admin migrate failed"
  # The media key file through the environment, which such a binary ignores.
  MUSIC_API_MEDIA_KEYS_FILE=$MEDIA_KEYS env -u MUSIC_API_DB -u MUSIC_API_PEPPER_FILE \
    "$bin/music-api" --config "$API_CONF" >>"$API_LOG" 2>&1 &
  echo $! >"$API_PID"
  local i
  for i in $(seq 1 100); do
    [ -S "$API_SOCKET" ] && return 0
    kill -0 "$(cat "$API_PID")" 2>/dev/null || { tail -n 20 "$API_LOG" >&2; die "music-api did not start"; }
    sleep 0.1
  done
  die "music-api did not open $API_SOCKET"
}

# stop_pid_file FILE NAME: stops the process FILE names, only if it is still NAME (the executable's
# base name): after a reboot a stale PID file may name an unrelated process, never signalled.
stop_pid_file() {
  local file=$1 name=$2 pid i
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  local exe
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  # A binary rebuilt while it runs reads "NAME (deleted)": still ours to stop.
  exe=${exe% (deleted)}
  if [ "${exe##*/}" != "$name" ]; then
    rm -f "$file"
    return 0
  fi
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

api_down() { stop_pid_file "$API_PID" music-api; }

# nginx_media_files: the media files in NGINX_DIR, with this stack's key file and media root in
# place of the packaged paths (/etc/music-api/media-keys.json, /var/lib/music-api/media/).
nginx_media_files() {
  mkdir -p "$NGINX_DIR"
  sed "s#/etc/music-api/media-keys.json#$MEDIA_KEYS#" "$MUSIC_API_ROOT/nginx/music-api-media-http.conf" \
    >"$NGINX_DIR/music-api-media-http.conf"
  sed "s#alias /var/lib/music-api/media/;#alias $MEDIA_ROOT/;#" "$MUSIC_API_ROOT/nginx/music-api-media.conf" \
    >"$NGINX_DIR/music-api-media.conf"
}

# nginx_up PORT: the repo's nginx files, included as they are, behind a generated top-level conf.
# The cluster and the bench reuse it with their own upstream, limits and tuning:
#   NGINX_UPSTREAM  http{}-level upstream lines (default: this stack's unix socket, and the
#                   timeouts nginx/music-api-upstream.conf sets beside its upstream)
#   NGINX_LIMITS    the rate-limit zones (default: nginx/music-api-ratelimit.conf); zones written
#                   out by the caller (no include) without a music_api_conn zone (the concurrency
#                   limit of music-api-location.conf) get one that counts no request
#   NGINX_WORKERS, NGINX_CONNECTIONS, NGINX_ACCESS_LOG   (default 2, 1024, a file)
nginx_up() {
  local port=$1
  local upstream=${NGINX_UPSTREAM:-"upstream music_api_fcgi { server unix:$API_SOCKET; }
    upstream music_api_fcgi_writes { server unix:$API_SOCKET; }
    fastcgi_connect_timeout 2s;
    fastcgi_read_timeout 30s;"}
  local limits=${NGINX_LIMITS:-"include $MUSIC_API_ROOT/nginx/music-api-ratelimit.conf;"}
  if [ -n "${NGINX_LIMITS:-}" ] && [[ $limits != *music_api_conn* && $limits != *include* ]]; then
    # An empty key is never counted: such callers (the bench's unlimited zones) are not throttled.
    limits+="
    map \$request_method \$music_api_conn_never { default \"\"; }
    limit_conn_zone \$music_api_conn_never zone=music_api_conn:1m;"
  fi
  mkdir -p "$NGINX_DIR"
  chmod 755 "$NGINX_DIR"
  if [ ! -s "$NGINX_DIR/cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
      -keyout "$NGINX_DIR/key.pem" -out "$NGINX_DIR/cert.pem" -subj "/CN=localhost" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
  fi
  # Relative includes resolve against nginx's configuration directory, as under /etc/nginx.
  mkdir -p "$NGINX_DIR/snippets"
  ln -sfn "$MUSIC_API_ROOT/nginx" "$NGINX_DIR/snippets/music-api"
  local user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
  nginx_media_files
  cat >"$NGINX_DIR/nginx.conf" <<CONF
# Written by scripts/lib/stack.sh: only the listener, paths, upstream and limits are local;
# everything else is included from $MUSIC_API_ROOT/nginx/.
$user_line
load_module /usr/lib/nginx/modules/ngx_http_js_module.so;
worker_processes ${NGINX_WORKERS:-2};
pid $NGINX_PID;
error_log $NGINX_DIR/error.log warn;
events { worker_connections ${NGINX_CONNECTIONS:-1024}; }
http {
    access_log ${NGINX_ACCESS_LOG:-$NGINX_DIR/access.log};
    client_body_temp_path $NGINX_DIR/tmp-body;
    fastcgi_temp_path $NGINX_DIR/tmp-fastcgi;
    proxy_temp_path $NGINX_DIR/tmp-proxy;
    uwsgi_temp_path $NGINX_DIR/tmp-uwsgi;
    scgi_temp_path $NGINX_DIR/tmp-scgi;
    ${NGINX_EXTRA_HTTP:-}
    include $MUSIC_API_ROOT/nginx/music-api-http.conf;
    include $NGINX_DIR/music-api-media-http.conf;
    $limits
    $upstream
    server {
        listen 127.0.0.1:$port ssl http2;
        server_name localhost;
        ssl_certificate $NGINX_DIR/cert.pem;
        ssl_certificate_key $NGINX_DIR/key.pem;
        include $MUSIC_API_ROOT/nginx/music-api-tls.conf;
        include $MUSIC_API_ROOT/nginx/music-api-errors.conf;
        include $MUSIC_API_ROOT/nginx/music-api-location.conf;
        include $NGINX_DIR/music-api-media.conf;
        # As in nginx/music-api-server.conf: anything else on this server is a JSON 404 too.
        location / {
            return 404;
            error_page 404 = /_music_api/error/404;
        }
    }
}
CONF
  nginx -t -q -e "$NGINX_DIR/error.log" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf"
  nginx -e "$NGINX_DIR/error.log" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf"
  local i
  for i in $(seq 1 50); do
    curl -s -o /dev/null --cacert "$NGINX_DIR/cert.pem" "https://127.0.0.1:$port/" && return 0
    sleep 0.1
  done
  die "nginx did not answer on 127.0.0.1:$port"
}

nginx_down() { stop_pid_file "$NGINX_PID" nginx; }

write_env_json() {
  local port=$1 bin=$2
  cat >"$STACK/env.json" <<JSON
{
  "base_url": "https://127.0.0.1:$port",
  "host": "127.0.0.1",
  "port": $port,
  "ca_file": "$NGINX_DIR/cert.pem",
  "admin": "$bin/music-admin",
  "api": "$bin/music-api",
  "db_owner": "$DB_OWNER",
  "db_api": "$DB_API",
  "psql": "$(command -v psql)",
  "pepper_file": "$API_PEPPER",
  "media_root": "$MEDIA_ROOT",
  "media_keys_file": "$MEDIA_KEYS",
  "api_log": "$API_LOG",
  "api_conf": "$API_CONF",
  "api_pid_file": "$API_PID",
  "api_socket": "$API_SOCKET",
  "pg_data": "$PG_DATA",
  "pg_bin": "$(pg_bin)",
  "nginx_dir": "$NGINX_DIR",
  "root": "$MUSIC_API_ROOT"
}
JSON
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stack_up DIR BIN_DIR PORT [WORKERS]
stack_up() {
  stack_paths "$1"
  pg_up
  STACK_PUBLIC_URL="https://127.0.0.1:$3" api_up "$2" "${4:-4}"
  nginx_up "$3"
  write_env_json "$3" "$2"
}

# stack_down DIR: stops what stack_up started (by PID file), keeps the data.
stack_down() {
  stack_paths "$1"
  nginx_down
  api_down
  pg_down
}
