#!/usr/bin/env bash
# Overload: the real `ringfence serve` (SQLite, every call recorded, SIP over
# UDP and the HTTP API on) driven by bench/overload, an open-loop generator
# (constant arrival rate, whatever the answers), at 1x, 2x and 5x the rate it
# sustains, on SIP then on HTTP. Each step prints the answers by outcome, the
# calls lost, the answers that contradict the ingress route's failure policy
# (three of the simulator's five routes fail closed, about half the calls),
# latency of the scored calls and of the policy answers, the server's largest
# RSS and the CPU the server and the generator used. Then whether the server
# is still up and still scores a normal call. About 5 minutes in all.
#
# Usage: bench/overload.sh [seconds per step]          (default 10)
# Environment:
#   RATE=6000             the sustainable SIP rate (calls/s); unset: searched
#                         first (5 s steps, +25% each from FIND_FROM=2000, up to
#                         the last step with at most 1% of the calls not scored
#                         and a p99 of the scored ones within 200 ms)
#   HTTP_RATE=2500        the same for HTTP (unset: searched from HTTP_FIND_FROM=1000)
#   MULTIPLES="1 2 5"     the steps, as multiples of the sustainable rate
#   ONLY=sip|http         run one front end only
#   MEMORY_LIMIT=1GiB     the server's memory_limit ("" leaves it out of the config)
#   SIP_MAX_IN_FLIGHT= SIP_BUDGET= HTTP_MAX_IN_FLIGHT=   override the server's defaults
#   RINGFENCE=path        use this binary instead of building ./cmd/ringfence
#   CSV=file              also append every step to this CSV file (LABEL=... names the run)
#   RF_SIP=127.0.0.1:5060 RF_HTTP=127.0.0.1:18081
# Needs go and curl. Everything listens on 127.0.0.1; the script stops the
# server and removes its temporary directory on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
multiples=${MULTIPLES:-1 2 5}
rf_sip=${RF_SIP:-127.0.0.1:5060}
rf_http=${RF_HTTP:-127.0.0.1:18081}
memory_limit=${MEMORY_LIMIT-1GiB}
only=${ONLY:-}

work=$(mktemp -d)
rf=
cleanup() {
	if [ -n "$rf" ]; then
		kill "$rf" 2>/dev/null || true
		wait "$rf" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "# building"
bin=${RINGFENCE:-}
if [ -z "$bin" ]; then
	go build -o "$work/ringfence" ./cmd/ringfence
	bin=$work/ringfence
fi
go build -o "$work/overload" ./bench/overload

mkdir "$work/data"
"$bin" keys generate --out "$work/data/master.key" >/dev/null
key=$("$bin" tenant create --data "$work/data" bench | tail -1)

# The configuration: the defaults, plus the listeners, the memory bound and
# any overrides asked for.
{
	echo "{"
	echo "  \"data\": \"$work/data\","
	[ -n "$memory_limit" ] && echo "  \"memory_limit\": \"$memory_limit\","
	echo "  \"http\": {\"addr\": \"$rf_http\"${HTTP_MAX_IN_FLIGHT:+, \"max_in_flight\": $HTTP_MAX_IN_FLIGHT}},"
	echo "  \"sip\": {\"udp\": \"$rf_sip\", \"tenant\": \"bench\"${SIP_MAX_IN_FLIGHT:+, \"max_in_flight\": $SIP_MAX_IN_FLIGHT}${SIP_BUDGET:+, \"budget\": \"$SIP_BUDGET\"}}"
	echo "}"
} >"$work/config.json"
"$bin" serve --config "$work/config.json" 2>"$work/serve.log" &
rf=$!
for _ in $(seq 100); do curl -sf "http://$rf_http/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://$rf_http/readyz" >/dev/null || { echo "ringfence did not start:"; tail "$work/serve.log"; exit 1; }
echo "# config: $(tr -d '\n' <"$work/config.json" | tr -s ' ')"
echo "# $(nproc) cores shared by the generator and the server; load average $(cut -d' ' -f1-3 /proc/loadavg)"

gen() { "$work/overload" -url "http://$rf_http" -key "$key" -sip "$rf_sip" -pid "$rf" ${CSV:+-csv "$CSV"} ${LABEL:+-label "$LABEL"} "$@"; }
# Install the routes (three fail closed) and the DNO list, with one call.
"$work/overload" -url "http://$rf_http" -key "$key" -sip "$rf_sip" -rates 1 -duration 1s -settle=false sip >/dev/null

# healthy: the server is up, ready, and scores a normal call.
healthy() {
	if ! kill -0 "$rf" 2>/dev/null; then
		echo "ringfence DIED:"
		tail "$work/serve.log"
		exit 1
	fi
	local body answer
	body='{"caller":"+447400123456","dialled":"+442079460000","ingress_route":"uk-domestic-1"}'
	answer=$(curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body" "http://$rf_http/v1/screen")
	echo "after the load: readyz $(curl -s -o /dev/null -w '%{http_code}' "http://$rf_http/readyz"), a normal call: $(sed -E 's/.*"action":"([a-z]+)".*/\1/' <<<"$answer"), RSS $(awk '/VmRSS/ {printf "%d MB", $2/1024}' "/proc/$rf/status")"
}

# front NAME RATE FIND_FROM: find (or take) the sustainable rate, then the multiples.
front() {
	local name=$1 rate=$2 from=$3 steps="" m
	echo
	if [ -z "$rate" ]; then
		echo "## $name: searching the sustainable rate (5 s steps)"
		gen -setup=false -find -rates "$from" "$name" | tee "$work/find-$name.txt"
		rate=$(awk '/^sustainable/ {print $2}' "$work/find-$name.txt")
		[ -n "$rate" ] || { echo "no sustainable $name rate found"; exit 1; }
	fi
	for m in $multiples; do steps="$steps${steps:+,}$((rate * m))"; done
	echo "## $name: sustainable rate $rate/s; steps of ${secs} s at ${multiples// /x, }x: $steps"
	gen -setup=false -rates "$steps" -duration "${secs}s" "$name"
	healthy
}

[ "$only" = http ] || front sip "${RATE:-}" "${FIND_FROM:-2000}"
[ "$only" = sip ] || front http "${HTTP_RATE:-}" "${HTTP_FIND_FROM:-1000}"
echo
echo "# SIP outcomes counted by the server:"
curl -s "http://$rf_http/metrics" | grep -E '^ringfence_sip_invites_total' || true
