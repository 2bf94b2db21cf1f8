#!/usr/bin/env bash
# SIP redirect benchmark: sipp against `ringfence serve --sip-udp` and against
# the Kamailio baseline of ../shared/bench/kamailio (a deny-list lookup, a
# counter and a 302), same machine, same scenario (bench/sip/uac.xml), same
# calls, in one run, alternating ringfence, Kamailio, ringfence, Kamailio at
# rising rates. Then a soak run of ringfence alone, and a short overload run
# at twice its sustained rate. See bench/sip/README.md.
#
# Usage: bench/sip/run.sh [seconds per step]        (default 12)
# Environment:
#   RATES="5000 10000 20000 30000 40000"  offered calls/s, one step each
#   SOAK=60 SOAK_RATE=5000                soak run (SOAK=0 skips it)
#   OVERLOAD=1                            overload run (0 skips it)
#   CALLS=100000                          distinct simulated calls cycled
#   RF_SIP=127.0.0.1:5060 RF_HTTP=127.0.0.1:18081 UAC_PORT=15099
# Needs: go, sipp (Debian sip-tester), kamailio (Debian kamailio), curl.
# Everything listens on 127.0.0.1; every sipp run is bounded (-m, -timeout).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-12}
rates=${RATES:-5000 10000 20000 30000 40000}
soak=${SOAK:-60}
soak_rate=${SOAK_RATE:-5000}
overload=${OVERLOAD:-1}
ncalls=${CALLS:-100000}
rf_sip=${RF_SIP:-127.0.0.1:5060}
rf_http=${RF_HTTP:-127.0.0.1:18081}
kam_sip=127.0.0.1:5070 # fixed by the baseline's kamailio.cfg
uac_port=${UAC_PORT:-15099}
baseline=../shared/bench/kamailio/kamailio.cfg

for tool in sipp kamailio curl; do
	if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
		echo "run.sh: $tool not found (Debian packages: sip-tester, kamailio, curl)" >&2
		exit 1
	fi
done
kamailio_bin=$(command -v kamailio || echo /usr/sbin/kamailio)
[ -r "$baseline" ] || { echo "run.sh: baseline $baseline not found" >&2; exit 1; }

work=$(mktemp -d)
rf=
kam=
cleanup() {
	for p in $rf $kam; do kill "$p" 2>/dev/null || true; done
	for p in $rf $kam; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "# building"
go build -o "$work/ringfence" ./cmd/ringfence
go build -o "$work/siptraffic" ./bench/sip/siptraffic
serve_help=$("$work/ringfence" serve -h 2>&1 || true)
if [[ $serve_help != *-sip-udp* ]]; then
	echo "run.sh: this ringfence has no SIP front end yet (serve --sip-udp)" >&2
	exit 1
fi

# ringfence: a tenant with the simulator's routes and published (DNO)
# numbers, the default policy plus a redress URI, every signal on (the engine
# has no switches: all signal families always run).
mkdir "$work/data"
"$work/ringfence" keys generate --out "$work/data/master.key" >/dev/null
key=$("$work/ringfence" tenant create --data "$work/data" bench | tail -1)
"$work/ringfence" serve --data "$work/data" --http "$rf_http" \
	--sip-udp "$rf_sip" --sip-tenant bench 2>"$work/serve.log" &
rf=$!
for _ in $(seq 100); do curl -sf "http://$rf_http/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://$rf_http/readyz" >/dev/null || { echo "ringfence did not start:"; tail "$work/serve.log"; exit 1; }
policy=$(curl -sf -H "Authorization: Bearer $key" "http://$rf_http/v1/policy")
curl -sf -X PUT -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
	"http://$rf_http/v1/policy" -d "${policy%\}},\"redress\":\"https://bank.example/redress\"}" >/dev/null ||
	{ echo "run.sh: could not set the redress URI on $policy" >&2; exit 1; }
"$work/siptraffic" --url "http://$rf_http" --key "$key" --calls "$ncalls" \
	--out "$work/calls.csv" --dno "$work/dno.txt"

# Kamailio: the baseline as it is, plus the same published numbers in its
# deny list (htable "block", looked up by From user), so both systems answer
# 608 to the same spoofed callers.
{
	cat "$baseline"
	echo 'event_route[htable:mod-init] {'
	while read -r n; do
		echo "  \$var(k) = \"$n\"; \$sht(block=>\$var(k)) = 1;"
	done <"$work/dno.txt"
	echo '}'
} >"$work/kamailio.cfg"
"$kamailio_bin" -c -f "$work/kamailio.cfg" >"$work/kamailio-check.log" 2>&1 ||
	{ cat "$work/kamailio-check.log"; exit 1; }
"$kamailio_bin" -f "$work/kamailio.cfg" -DD -E -w "$work" >"$work/kamailio.log" 2>&1 &
kam=$!
sleep 1
kill -0 "$kam" 2>/dev/null || { echo "kamailio did not start:"; tail "$work/kamailio.log"; exit 1; }

rss() { awk '/VmRSS/ {printf "%d MB", $2/1024}' "/proc/$rf/status"; }

# settle: wait (at most 30 s) until ringfence is idle, i.e. its recorder has
# committed the last step's calls, so its background work does not land on
# the next step (Kamailio's in particular).
settle() {
	local i t0 t1
	for i in $(seq 60); do
		t0=$(awk '{print $14 + $15}' "/proc/$rf/stat")
		sleep 0.5
		t1=$(awk '{print $14 + $15}' "/proc/$rf/stat")
		((t1 - t0 <= 5)) && return 0 # at most 10% of a core
	done
}

# stepstat FILE: one line "achieved failed retrans p50 p99" from the last
# row of a sipp -trace_stat file (p50/p99 are the upper edges of the
# ResponseTimeRepartition1 buckets, in ms).
stepstat() {
	awk -F';' '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	NF > 10 { last = $0 }
	END {
		n = split(last, f, ";")
		split(f[col["StartTime"]], s, "\t"); split(f[col["CurrentTime"]], c, "\t")
		el = c[3] - s[3]; ok = f[col["SuccessfulCall(C)"]]
		total = 0; nb = 0
		for (i = 1; i <= n; i++) if (index(hdr[i] = name(i), "ResponseTimeRepartition1_") == 1) { b[++nb] = f[i]; lab[nb] = substr(hdr[i], 26); total += f[i] }
		p50 = "-"; p99 = "-"; cum = 0
		for (i = 1; i <= nb; i++) {
			cum += b[i]
			if (p50 == "-" && cum >= 0.50 * total) p50 = lab[i]
			if (p99 == "-" && cum >= 0.99 * total) p99 = lab[i]
		}
		printf "%d %d %d %s %s\n", (el > 0 ? ok / el : 0), f[col["FailedCall(C)"]], f[col["Retransmissions(C)"]], p50, p99
	}
	function name(i,   k) { for (k in col) if (col[k] == i) return k; return "" }
	' "$1"
}

# run NAME TARGET RATE SECONDS: one sipp run, its stat file is $work/NAME.csv.
run() {
	local name=$1 target=$2 rate=$3 s=$4
	sipp "$target" -sf bench/sip/uac.xml -inf "$work/calls.csv" \
		-i 127.0.0.1 -p "$uac_port" -mp $((uac_port + 10)) \
		-r "$rate" -rp 1000 -m $((rate * s)) -l 8000 \
		-recv_timeout 5000 -timeout $((s + 30)) \
		-trace_stat -stf "$work/$name.csv" -fd 1 -nostdin \
		>"$work/$name.screen" 2>&1 || true
}

echo "# $(nproc) cores shared by sipp and the server; $(($(wc -l <"$work/calls.csv") - 1)) distinct simulated calls cycled; ${secs} s per step"
echo "# warming up both systems (5 s at 5000 calls/s, not reported)"
run warm-ringfence "$rf_sip" 5000 5
settle
run warm-kamailio "$kam_sip" 5000 5

results=$work/results.txt
load() { cut -d' ' -f1 /proc/loadavg; }
printf '%-9s | %-10s %9s %7s %7s %7s %7s | %-10s %9s %7s %7s %7s %7s | %s\n' \
	offered ringfence achieved failed retrans p50 p99 kamailio achieved failed retrans p50 p99 load
for rate in $rates; do
	before=$(load)
	run "ringfence-$rate" "$rf_sip" "$rate" "$secs"
	settle
	run "kamailio-$rate" "$kam_sip" "$rate" "$secs"
	read -r ra rf_fail rr rp50 rp99 < <(stepstat "$work/ringfence-$rate.csv")
	read -r ka ka_fail kr kp50 kp99 < <(stepstat "$work/kamailio-$rate.csv")
	printf '%-9s | %-10s %9s %7s %7s %7s %7s | %-10s %9s %7s %7s %7s %7s | %s\n' \
		"$rate/s" "" "$ra/s" "$rf_fail" "$rr" "${rp50}ms" "${rp99}ms" "" "$ka/s" "$ka_fail" "$kr" "${kp50}ms" "${kp99}ms" "$before-$(load)"
	echo "$rate $ra $rf_fail $ka $ka_fail" >>"$results"
	if ! kill -0 "$rf" 2>/dev/null; then echo "ringfence died:"; tail "$work/serve.log"; exit 1; fi
done
echo "(ms columns: the response-time bucket holding the 50th/99th percentile, INVITE to final answer; <1ms is the"
echo " finest bucket. load: the 1-minute load average before and after the step; above ~$(nproc) something else"
echo " was using the cores and the step says little)"

read -r best_rf best_ka < <(awk '
	$3 == 0 && $2 > r { r = $2 }
	$5 == 0 && $4 > k { k = $4 }
	END { print r + 0, k + 0 }' "$results")
echo
echo "highest sustained rate with 0 failed calls: ringfence $best_rf/s, kamailio $best_ka/s"
awk -v r="$best_rf" -v k="$best_ka" 'BEGIN {
	if (k > 0) printf "ratio ringfence/kamailio: %.2f (target >= 1.0)\n", r / k
	else print "ratio ringfence/kamailio: n/a (kamailio had no step without failures)" }'

if [ "$soak" -gt 0 ]; then
	settle
	echo
	echo "# soak: ringfence alone, ${soak} s at ${soak_rate} calls/s"
	run soak "$rf_sip" "$soak_rate" "$soak" &
	soaker=$!
	sleep 1
	rss_start=$(rss)
	sleep $((soak / 2 - 1))
	rss_mid=$(rss)
	wait "$soaker"
	rss_end=$(rss)
	read -r sa sf sr sp50 sp99 < <(stepstat "$work/soak.csv")
	echo "achieved $sa/s, failed $sf, retransmissions $sr, p50 ${sp50}ms, p99 ${sp99}ms (target <= 5 ms, 0 failed); load $(load)"
	echo "ringfence RSS: start $rss_start, middle $rss_mid, end $rss_end"
fi

if [ "$overload" = 1 ] && [ "$best_rf" -gt 0 ]; then
	over=$((best_rf * 2))
	settle
	echo
	echo "# overload: ringfence at twice its sustained rate, ${over} calls/s offered for 10 s"
	run overload "$rf_sip" "$over" 10
	read -r oa of or op50 op99 < <(stepstat "$work/overload.csv")
	if kill -0 "$rf" 2>/dev/null; then alive=yes; else alive=NO; fi
	echo "achieved $oa/s, failed $of, retransmissions $or, p99 ${op99}ms; ringfence still running: $alive, RSS $(rss 2>/dev/null || echo -)"
	curl -s "http://$rf_http/metrics" | grep -iE '^ringfence_sip' | grep -iE 'overload|unscored|503|in_?flight|outcome' | head -20 || true
fi
