#!/bin/bash
# stream.sh SECONDS RATE LIST_URL SAVE_URL KEY…: inside the container, one client per KEY for
# SECONDS, each at RATE requests/s (under nginx's 20/s per key), reusing its TLS connection within
# a batch: the first key's client POSTs SAVE_URL (an idempotent save), the others GET LIST_URL.
# Prints one "METHOD STATUS" line per request (000: the connection failed). Bounded: it stops itself.
seconds=$1 rate=$2 list_url=$3 save_url=$4
shift 4
end=$((SECONDS + seconds))
client() {
  local method=$1 url=$2 key=$3 args=() i
  for i in $(seq 1 "$rate"); do args+=(-o /dev/null "$url"); done
  while [ "$SECONDS" -lt "$end" ]; do
    curl -sk --rate "$rate/s" --max-time 30 -X "$method" -H "Authorization: Bearer $key" \
      -w "$method %{http_code}\n" "${args[@]}"
  done
}
first=1
for key in "$@"; do
  if [ "$first" = 1 ]; then client POST "$save_url" "$key" & first=0; else client GET "$list_url" "$key" & fi
done
wait
