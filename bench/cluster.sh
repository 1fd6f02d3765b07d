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
  nginx_down
  NGINX_UPSTREAM="include $MUSIC_API_ROOT/nginx/music-api-upstream-cluster.conf;" \
    NGINX_LIMITS="limit_req_zone \$binary_remote_addr zone=music_api:10m rate=10000000r/s;
    limit_req_zone \$binary_remote_addr zone=music_api_addr:10m rate=10000000r/s;
    limit_req_zone \$binary_remote_addr zone=music_api_share:10m rate=10000000r/s;" \
    NGINX_WORKERS=auto NGINX_CONNECTIONS=4096 NGINX_ACCESS_LOG=off nginx_up "$1"
}
