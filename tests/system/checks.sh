# shellcheck shell=bash
# Sourced by tests/system/run after the boot: what the booted container must show, step by step.
# Uses in_ct, run_readme, fail, $ROOT, $LOGS, $version from run. Requests go through the
# distribution's nginx over TLS (https://127.0.0.1, Debian's snakeoil certificate: -k).

ADMIN='sudo MUSIC_API_DB="host=localhost dbname=music user=music_owner" music-admin'
track="" stream_keys=()

# call METHOD PATH KEY: prints the status on the first line, the body on the rest.
call() {
  in_ct "curl -sk -X $1 -H 'Authorization: Bearer $3' -w '\n%{http_code}' 'https://127.0.0.1$2'" |
    { body=$(cat); printf '%s\n%s\n' "${body##*$'\n'}" "${body%$'\n'*}"; }
}
# expect_status STATUS METHOD PATH KEY: the body on success.
expect_status() {
  local out status
  out=$(call "$2" "$3" "$4") || fail "curl $2 $3 failed inside the container"
  status=$(head -n 1 <<<"$out")
  [ "$status" = "$1" ] || fail "$2 $3: HTTP $status, expected $1: $(tail -n +2 <<<"$out" | head -c 400)"
  tail -n +2 <<<"$out"
}
json_field() { python3 -c 'import json,sys; v=json.load(sys.stdin); [v:=v[k] for k in sys.argv[1:]]; print(v)' "$@"; }

check_units_active() {
  local unit state
  for unit in music-api.socket music-api.service nginx.service postgresql@15-main.service; do
    state=$(in_ct "systemctl is-active $unit" || true)
    [ "$state" = active ] || { in_ct "systemctl status --no-pager $unit" >&2 || true; fail "$unit is $state"; }
  done
}

# A track with audio (music-admin), saved through the API; the list, the track and its signed audio.
serve_library() {
  local org=$1 user=$2 key=$3 body url i extra_user
  track=$(in_ct "$ADMIN track create $org --engine studio --mode creation --title 'System test' --creator $user --audio /srv/master.mp3") ||
    fail "music-admin track create failed"
  body=$(expect_status 200 POST "/v1/music/$org/tracks/$track/save" "$key")
  [ "$(json_field saved <<<"$body")" = True ] || fail "save answered $body"
  body=$(expect_status 200 GET "/v1/music/$org/tracks" "$key")
  grep -q "\"$track\"" <<<"$body" || fail "the list does not show the saved track: $body"
  body=$(expect_status 200 GET "/v1/music/$org/tracks/$track" "$key")
  url=$(json_field playback_url <<<"$body") || fail "no playback_url in $body"
  check_playback "$url"
  # Two more keys for the request streams (nginx allows 20 requests/s per key).
  stream_keys=("$key")
  for i in 1 2; do
    extra_user=$(in_ct "$ADMIN user create stream$i@example.com") || fail "music-admin user create failed"
    in_ct "$ADMIN member add $org $extra_user --capability USE_MUSIC_GENERATION" >/dev/null || fail "member add failed"
    stream_keys+=("$(in_ct "$ADMIN key create $extra_user")") || fail "key create failed"
  done
  echo "list, save, get-track and its signed audio through the distribution's nginx over TLS: ok ($track)"
}

check_playback() {
  local url=$1 got want
  # media_base_url as the shipped file sets it (https://localhost): never the request's Host (127.0.0.1).
  [[ $url == https://localhost/v1/media/* ]] || fail "unexpected playback URL $url"
  got=$(in_ct "curl -sk --fail '$url' | sha256sum") || fail "GET $url failed"
  want=$(in_ct "sha256sum </srv/master.mp3")
  [ "$got" = "$want" ] || fail "the signed audio differs from the file music-admin stored"
}

# stream_start SECONDS NAME: the bounded request stream (tests/system/stream.sh), in the background.
stream_start() {
  local org=$1 seconds=$2 name=$3
  # Its own session: a SIGHUP that sudo's pty handling sends to our process group must not end it.
  setsid_in_ct "/srv/stream.sh $seconds 12 https://127.0.0.1/v1/music/$org/tracks \
    https://127.0.0.1/v1/music/$org/tracks/$track/save ${stream_keys[*]}" >"$LOGS/stream-$name.log" 2>&1 &
  stream_pid=$!
  sleep 2
}
# stream_check NAME: every request of the stream answered 200; sets stream_total (never call it
# in $(…): only this shell can wait for the stream).
stream_check() {
  local name=$1 total bad
  local rc=0
  wait "$stream_pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "the request stream exited with status $rc (log: $LOGS/stream-$name.log)"
  total=$(grep -c '^[A-Z]* [0-9]*$' "$LOGS/stream-$name.log" || true)
  bad=$(grep -v '^[A-Z]* 200$' "$LOGS/stream-$name.log" | sort | uniq -c | tr '\n' ';' || true)
  [ "$total" -ge 100 ] || fail "the stream sent only $total requests"
  [ -z "$bad" ] || fail "$name: not every request answered 200 ($total sent): $bad"
  stream_total=$total
}

# A point in the journal: the next second (journalctl 252 returns nothing for --after-cursor
# combined with -p or -t, so whole seconds it is).
journal_mark() { local now; now=$(date +%s); sleep 1; echo $((now + 1)); }

main_pid() { in_ct "systemctl show -P MainPID music-api.service"; }
state_digest() { in_ct "sha256sum /etc/music-api/music-api.conf /etc/music-api/key-pepper /etc/music-api/media-keys.json"; }

# An edited conffile, then README's upgrade step under a request stream: the edit, the pepper and
# the media keys kept, the service restarted on the new binary, no request failed.
upgrade_keeps_state() {
  local org=$1 key=$2 before after pid_before pid_after exe
  in_ct "printf '# edited before the upgrade\nmax_requests = 100000\n' >>/etc/music-api/music-api.conf && systemctl reload music-api" ||
    fail "reload after editing the conffile failed"
  before=$(state_digest) pid_before=$(main_pid)
  stream_start "$org" 25 upgrade
  run_readme upgrade /srv/music-api >/dev/null
  stream_check upgrade
  [ "$(in_ct "dpkg-query -W -f '\${Version}' music-api")" = "$version" ] || fail "music-api is not at $version after the upgrade"
  after=$(state_digest) pid_after=$(main_pid)
  [ "$before" = "$after" ] || fail "the upgrade changed the conffile, the pepper or the media keys: $before / $after"
  [ "$pid_before" != "$pid_after" ] || fail "the service was not restarted on the new binary (MainPID $pid_after)"
  exe=$(in_ct "readlink /proc/$pid_after/exe")
  [[ $exe != *deleted* ]] || fail "the service runs a deleted binary after the upgrade: $exe"
  expect_status 200 GET "/v1/music/$org/tracks" "$key" >/dev/null
  echo "upgrade $version~prev -> $version under $stream_total requests: 0 failed; conffile edit, pepper and media keys kept; restarted"
}

# `systemctl reload music-api` 20 times and `systemctl reload nginx` 4 times under a request stream.
reload_under_load() {
  local org=$1 since i reloads
  since=$(journal_mark)
  stream_start "$org" 30 reload
  for i in $(seq 1 20); do
    in_ct "systemctl reload music-api" || fail "systemctl reload music-api failed (reload $i)"
    [ $((i % 5)) -eq 0 ] && { in_ct "systemctl reload nginx" || fail "systemctl reload nginx failed"; }
    sleep 1
  done
  stream_check reload
  for _ in $(seq 1 20); do
    reloads=$(in_ct "journalctl -u music-api --since=@$since -o cat | grep -c 'event=reloaded'" || true)
    [ "$reloads" -ge 20 ] && break
    sleep 0.5
  done
  [ "$reloads" -ge 20 ] || fail "the master logged $reloads reloads, expected 20"
  echo "20 reloads of music-api and 4 of nginx under $stream_total requests: 0 failed"
}

# A broken edit: reload fails, the running pool keeps serving, the journal says why in one line.
bad_reload_keeps_serving() {
  local org=$1 key=$2 since lines
  since=$(journal_mark)
  in_ct "cp /etc/music-api/music-api.conf /srv/good.conf && echo 'workers = lots' >>/etc/music-api/music-api.conf"
  if in_ct "systemctl reload music-api" 2>/dev/null; then fail "systemctl reload accepted workers = lots"; fi
  [ "$(in_ct 'systemctl is-active music-api' || true)" = active ] || fail "the service stopped after a rejected reload"
  expect_status 200 GET "/v1/music/$org/tracks" "$key" >/dev/null
  # journald stores the line a moment after the reload returns.
  for _ in $(seq 1 20); do
    lines=$(in_ct "journalctl -t music-api -p err --since=@$since -o cat")
    [ -n "$lines" ] && break
    sleep 0.5
  done
  [ "$(grep -c . <<<"$lines")" = 1 ] && grep -q 'workers' <<<"$lines" ||
    fail "expected one error line naming workers in the journal, got: $lines"
  in_ct "cp /srv/good.conf /etc/music-api/music-api.conf && systemctl reload music-api" || fail "reload after the fix failed"
  echo "a broken reload fails (\"$lines\"), the old workers keep serving"
}

restart_and_stop() {
  local org=$1 key=$2 errors started elapsed
  in_ct "systemctl restart music-api" || fail "systemctl restart music-api failed"
  expect_status 200 GET "/v1/music/$org/tracks" "$key" >/dev/null
  # Nothing at err since boot but the two lines of the deliberate broken reload.
  errors=$(in_ct "journalctl -u music-api -p err -o cat | grep -v -e 'workers: expected an integer' -e '^Reload failed for music-api'" || true)
  [ -z "$errors" ] || fail "journalctl -u music-api -p err is not empty: $errors"
  started=$(date +%s%N)
  in_ct "systemctl stop music-api.service" || fail "systemctl stop failed"
  elapsed=$((($(date +%s%N) - started) / 1000000))
  [ "$elapsed" -lt 40000 ] || fail "stop took $elapsed ms (TimeoutStopSec=40)"
  [ -z "$(in_ct 'pgrep -u music-api' || true)" ] || fail "music-api processes remain after stop"
  # The socket stays with systemd: the next request starts the service again.
  expect_status 200 GET "/v1/music/$org/tracks" "$key" >/dev/null
  echo "restart ok; journal -p err clean; stop in $elapsed ms; the socket started it again on the next request"
}

# Purge: nothing left running or listening, no enable links, nginx still valid; the reinstall
# (README steps install and start) serves the old key (the pepper was kept) and plays audio.
purge_and_reinstall() {
  local org=$1 key=$2 body url
  in_ct "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq music-api" >"$LOGS/purge.log" 2>&1 || fail "apt-get purge failed"
  [ -z "$(in_ct 'pgrep -u music-api; pgrep -f /usr/bin/music-api' || true)" ] || fail "music-api processes remain after purge"
  [ -z "$(in_ct "ss -xlH | grep fcgi.sock" || true)" ] || fail "something still listens on the FastCGI socket after purge"
  [ -z "$(in_ct "find /etc/systemd/system -name 'music-api*'")" ] || fail "enable links remain after purge: $(in_ct "find /etc/systemd/system -name 'music-api*'")"
  in_ct "nginx -t" >/dev/null 2>&1 || fail "nginx -t fails after the purge: $(in_ct 'nginx -t 2>&1')"
  in_ct "test -s /etc/music-api/key-pepper && test -s /etc/music-api/media-keys.json" || fail "purge removed the pepper or the media keys"
  body=$(expect_status 503 GET "/v1/music/$org/tracks" "$key")
  [ "$(json_field error code <<<"$body")" = SERVICE_UNAVAILABLE ] || fail "with the service purged nginx answered $body"
  run_readme install /srv/music-api >/dev/null
  run_readme start /srv/music-api >/dev/null
  in_ct "systemctl reload nginx"
  check_units_active
  body=$(expect_status 200 GET "/v1/music/$org/tracks/$track" "$key")
  url=$(json_field playback_url <<<"$body")
  check_playback "$url"
  echo "purge left no process, listener or enable link and nginx -t passing; the reinstall serves the old key and its audio"
}

# README's "Backups and restore" step 1 as written, then a full backup and the restore drill through
# their systemd units (as postgres, hardened): both succeed, the drill compared every table. Then
# a write, and step 4 (restore the latest state) as written: the write is back.  ORG KEY
backups_through_units() {
  local metrics
  run_readme backups /srv/music-api >/dev/null
  in_ct "systemctl start music-api-backup@full.service" ||
    { in_ct "journalctl -u music-api-backup@full -o cat | tail -n 20" >&2; fail "music-api-backup@full failed"; }
  in_ct "systemctl start music-api-restore-drill.service" ||
    { in_ct "journalctl -u music-api-restore-drill -o cat | tail -n 20" >&2; fail "the restore drill failed"; }
  metrics=$(in_ct "cat /var/lib/music-api-backup/metrics/music_api_backup.prom") || fail "no backup metrics file"
  grep -q '^music_api_backup_restore_drill_last_success_timestamp_seconds [0-9]' <<<"$metrics" ||
    fail "the drill recorded no success: $metrics"
  # A write acknowledged after the backup, then README step 4 (restore the latest state) as written:
  # the write is back, and the key still works (the pepper is not in the database).
  local created id
  created=$(in_ct "curl -sk -X POST -H 'Authorization: Bearer $2' -H 'Content-Type: application/json' \
    -d '{\"name\":\"after the backup\"}' -w '\n%{http_code}' https://127.0.0.1/v1/music/$1/collections")
  [ "${created##*$'\n'}" = 201 ] || fail "creating a collection after the backup answered: $created"
  id=$(json_field id <<<"${created%$'\n'*}")
  run_readme restore-latest /srv/music-api >/dev/null
  check_units_active
  # PostgreSQL may still be replaying the archive a moment after its unit started: 503 meanwhile.
  local status=""
  for _ in $(seq 1 40); do
    status=$(call GET "/v1/music/$1/collections/$id" "$2")  # the whole answer: a `| head` would SIGPIPE call
    status=${status%%$'\n'*}
    [ "$status" = 503 ] || break
    sleep 0.5
  done
  [ "$status" = 200 ] || fail "the collection made after the backup is not back after the restore (HTTP $status)"
  echo "backups: README steps 1 and 4, music-api-backup@full and the restore drill under systemd: ok ($(in_ct "journalctl -u music-api-restore-drill -o cat | grep -m1 'drill ok'")); the collection made after the backup is back after the restore"
}
