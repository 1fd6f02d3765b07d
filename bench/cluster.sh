# shellcheck shell=bash
# bench/run --cluster: the loopback cluster beside the single-node bench stack. Sourced by bench/run
# (after scripts/lib/cluster.sh), which has set bin, users, tracks, saves and cluster_dir="" and
# whose EXIT trap stops "$cluster_dir" whatever happens.
# shellcheck disable=SC2154 # bin, users, tracks, saves: bench/run's

# bench_cluster_up: a fresh cluster in /tmp (like tests/cluster/run's, its own directory), seeded
# through the primary with the same data size as the single-node stack, behind an nginx whose
# configuration is the bench's TLS server with the cluster upstream file in place of the local
# socket. Sets cluster_dir and cluster_port; leaves cluster_paths' variables set.
bench_cluster_up() {
  local start
  # Set before anything starts, so the EXIT trap stops whatever part of it did start.
  cluster_dir=/tmp/music-api-bench-cluster-$(printf '%s' "$bin" | md5sum | cut -c1-12)
  cluster_down "$cluster_dir"
  rm -rf "$cluster_dir"
  mkdir -p "$cluster_dir"
  cluster_port=$(free_port)
  start=$SECONDS
  log "starting the cluster in $cluster_dir…"
  cluster_up "$cluster_dir" "$bin" "$cluster_port"
  log "cluster up in $((SECONDS - start)) s"

  start=$SECONDS
  log "seeding the cluster through the primary: $users users x $saves saves over $tracks tracks"
  MUSIC_API_DB=$DB_OWNER MUSIC_API_PEPPER_FILE=$CL_PEPPER "$bin/music-admin" seed --users "$users" --tracks "$tracks" \
    --saves-per-user "$saves" --keys-file "$CLUSTER/keys.tsv" >/dev/null
  # Both replicas caught up before any read is measured (a replica past max_replica_lag would
  # send its reads to the primary).
  cluster_wait_healthy 120
  log "cluster seeded in $((SECONDS - start)) s"

  bench_cluster_nginx "$cluster_port"

  local org key _
  read -r org _ key _ < <(grep -v '^#' "$CLUSTER/keys.tsv" | head -n 1)
  for _ in $(seq 1 50); do
    curl -sf -o "$CLUSTER/page.json" --cacert "$NGINX_DIR/cert.pem" -H "X-API-Key: $key" \
      "https://127.0.0.1:$cluster_port/v1/music/$org/tracks?limit=20" && break
    sleep 0.2
  done
  [ -s "$CLUSTER/page.json" ] || die "could not fetch an S1 page through the cluster"
}

# bench_cluster_nginx PORT: the cluster's nginx restarted with the same settings as the single-node
# bench's TLS listener (bench/run): no access log, auto workers, and a music_api zone whose rate
# never limits (the cluster's own nginx.conf includes the production music-api-ratelimit.conf,
# whose 100 r/s per address would answer most of a benchmark with 429). Only the upstream differs.
bench_cluster_nginx() {
  local port=$1 user_line=""
  nginx_down
  [ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
  cat >"$NGINX_DIR/nginx.conf" <<CONF
# Written by bench/cluster.sh: bench/run's TLS server, with the cluster upstream file.
$user_line
worker_processes auto;
pid $NGINX_PID;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $NGINX_DIR/tmp-body;
    fastcgi_temp_path $NGINX_DIR/tmp-fastcgi;
    proxy_temp_path $NGINX_DIR/tmp-proxy;
    uwsgi_temp_path $NGINX_DIR/tmp-uwsgi;
    scgi_temp_path $NGINX_DIR/tmp-scgi;
    include $MUSIC_API_ROOT/nginx/music-api-http.conf;
    limit_req_zone \$binary_remote_addr zone=music_api:10m rate=10000000r/s;
    limit_req_zone \$binary_remote_addr zone=music_api_addr:10m rate=10000000r/s;
    include $MUSIC_API_ROOT/nginx/music-api-upstream-cluster.conf;
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate $NGINX_DIR/cert.pem;
        ssl_certificate_key $NGINX_DIR/key.pem;
        include $MUSIC_API_ROOT/nginx/music-api-tls.conf;
        include $MUSIC_API_ROOT/nginx/music-api-location.conf;
    }
}
CONF
  nginx -t -q -e "$NGINX_DIR/error.log" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf"
  nginx -e "$NGINX_DIR/error.log" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf"
  local _
  for _ in $(seq 1 50); do
    curl -s -o /dev/null --cacert "$NGINX_DIR/cert.pem" "https://127.0.0.1:$port/" && return 0
    sleep 0.1
  done
  die "the cluster's nginx did not answer on 127.0.0.1:$port"
}
