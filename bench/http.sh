#!/usr/bin/env bash
# HTTP screening load: a real `ringfence serve` on SQLite (every call
# recorded) and wrk on the same machine, at rising connection counts.
# Needs wrk (apt-get install wrk). Usage: bench/http.sh [seconds per step]
# With PG=1 the store is a fresh PostgreSQL database on 127.0.0.1:5432
# (created with createdb, dropped at the end) instead of SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
work=$(mktemp -d)
store="sqlite:$work/data/ringfence.db"
if [ "${PG:-}" = 1 ]; then
	db="rf_bench_$$"
	createdb -h 127.0.0.1 -U postgres "$db"
	store="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
fi
trap 'kill $server 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; [ -n "${db:-}" ] && dropdb -h 127.0.0.1 -U postgres --force "$db"' EXIT
go build -o "$work/ringfence" ./cmd/ringfence
go build -o "$work/httpload" ./bench/httpload
mkdir -p "$work/data"
"$work/ringfence" keys generate --out "$work/data/master.key" >/dev/null
key=$("$work/ringfence" tenant create --data "$work/data" --store "$store" bench | tail -1)
"$work/ringfence" serve --data "$work/data" --store "$store" --http 127.0.0.1:18080 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do curl -sf 127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
"$work/httpload" --url http://127.0.0.1:18080 --key "$key" --dump "$work/bodies.jsonl"
echo "# store ${store%%:*}; $(nproc) cores shared by server and wrk; $(wc -l <"$work/bodies.jsonl") distinct simulated calls cycled"
export BODIES="$work/bodies.jsonl" RINGFENCE_KEY="$key"
wrk -t1 -c8 -d3s -s bench/screen.lua http://127.0.0.1:18080 >/dev/null # warm the caches
for conns in 4 8 16 32 64; do
	echo "## wrk -t1 -c$conns -d${secs}s"
	wrk -t1 -c"$conns" -d"${secs}s" -s bench/screen.lua http://127.0.0.1:18080 | grep -E "Requests/sec|non-2xx|latency p"
	echo "server RSS: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$server/status)"
done
