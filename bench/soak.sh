#!/usr/bin/env bash
# Soak test: `ringfence serve` on SQLite with SIP over UDP, driven by sipp at a
# steady rate for a long time, sampled every 10 s: RSS, Go heap in use,
# goroutines, open file descriptors, threads, CPU, recorder queue depth,
# records committed per second, data directory size, and latency (sipp's
# INVITE-to-answer buckets and ringfence's own SIP reply and screening
# histograms), one CSV row per sample, written as it goes. At the end (or
# when stopped early) bench/soakplot turns the CSV into an SVG and a summary
# saying how flat each series was. The simulator's calls, routes and
# published numbers, as in bench/sip/run.sh.
#
# Usage: bench/soak.sh
# Environment:
#   RATE=2000        offered calls/s (sipp -r)
#   DURATION=3600    seconds of traffic
#   SAMPLE=10        seconds between samples (also sipp's -fd)
#   OUT=docs/soak    where soak.csv, soak.svg and summary.txt go (overwritten)
#   CALLS=100000     distinct simulated calls sipp cycles through
#   KEEP=0           1 keeps the work directory (data, logs) for inspection
#   TMPDIR           where the work directory goes (the SQLite database grows
#                    by about 0.8 KB per call: some 6 GB in an hour at
#                    2000 calls/s; see docs/soak/README.md)
#   RF_SIP=127.0.0.1:5260 RF_HTTP=127.0.0.1:18281 UAC_PORT=15299
# Needs: go, sipp (Debian sip-tester), curl.
# Everything listens on 127.0.0.1; sipp is bounded by a call count (-m) and
# a global timeout; the script stops its processes and removes its work
# directory on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${RATE:-2000}
duration=${DURATION:-3600}
sample=${SAMPLE:-10}
out=${OUT:-docs/soak}
ncalls=${CALLS:-100000}
keep=${KEEP:-0}
rf_sip=${RF_SIP:-127.0.0.1:5260}
rf_http=${RF_HTTP:-127.0.0.1:18281}
uac_port=${UAC_PORT:-15299}
cmdline="RATE=$rate DURATION=$duration SAMPLE=$sample CALLS=$ncalls bench/soak.sh"

for tool in go sipp curl; do
	command -v "$tool" >/dev/null || { echo "soak.sh: $tool not found (sipp: Debian package sip-tester)" >&2; exit 1; }
done
for v in rate duration sample ncalls; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
mkdir -p "$out"
sipp_version=$(sipp -v 2>/dev/null | grep -o 'SIPp v[0-9.]*' | head -1 || true)

work=$(mktemp -d)
rf=
sipp_pid=
finished=0
started=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$sipp_pid" ] && kill "$sipp_pid" 2>/dev/null || true
	# report before stopping the server: a run cut short still leaves its
	# plot and summary (marked as such).
	if [ -n "$started" ]; then
		report || echo "soak.sh: the report failed; the CSV is in $out/soak.csv" >&2
	fi
	[ -n "$rf" ] && kill "$rf" 2>/dev/null || true
	for p in $sipp_pid $rf; do wait "$p" 2>/dev/null || true; done
	if [ "$keep" = 1 ]; then echo "soak.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "# building"
go build -o "$work/ringfence" ./cmd/ringfence
go build -o "$work/siptraffic" ./bench/sip/siptraffic
go build -o "$work/soakplot" ./bench/soakplot

# A tenant with the simulator's routes and published (DNO) numbers and the
# default policy plus a redress URI, as in bench/sip/run.sh.
mkdir "$work/data"
"$work/ringfence" keys generate --out "$work/data/master.key" >/dev/null
key=$("$work/ringfence" tenant create --data "$work/data" soak | tail -1)
# Logs are appended (>>) so that truncating them, should they grow past
# their cap, works while the process still writes.
"$work/ringfence" serve --data "$work/data" --http "$rf_http" \
	--sip-udp "$rf_sip" --sip-tenant soak 2>>"$work/serve.log" &
rf=$!
for _ in $(seq 100); do curl -sf -m 2 "http://$rf_http/readyz" >/dev/null && break; sleep 0.1; done
curl -sf -m 2 "http://$rf_http/readyz" >/dev/null || { echo "ringfence did not start:" >&2; tail "$work/serve.log" >&2; exit 1; }
policy=$(curl -sf -m 10 -H "Authorization: Bearer $key" "http://$rf_http/v1/policy")
curl -sf -m 10 -X PUT -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
	"http://$rf_http/v1/policy" -d "${policy%\}},\"redress\":\"https://bank.example/redress\"}" >/dev/null ||
	{ echo "soak.sh: could not set the redress URI" >&2; exit 1; }
"$work/siptraffic" --url "http://$rf_http" --key "$key" --calls "$ncalls" --out "$work/calls.csv"

# sipp for the long haul: a call budget of RATE*DURATION (-m) and a global
# timeout a minute past it; statistics every SAMPLE s with the response-time
# buckets reset each period (-periodic_rtd); the screen refreshed only every
# SAMPLE s; unexpected messages traced into two rotating 10 MB files; the
# watchdog, which by default ends the test after 120 late scheduler loops in
# 10 minutes, made tolerant of a shared, busy machine; socket buffers of
# 4 MB (-buff_size, capped by net.core.rmem_max), as at 2000 calls/s a
# 200 ms scheduling gap overflows the default buffer and each dropped answer
# costs a retransmission; at most 5 s of calls open at once (-l), which a
# healthy server never approaches.
sipp "$rf_sip" -sf bench/sip/uac.xml -inf "$work/calls.csv" \
	-i 127.0.0.1 -p "$uac_port" -mp $((uac_port + 10)) \
	-r "$rate" -rp 1000 -m $((rate * duration)) -l $((rate * 5)) \
	-recv_timeout 5000 -timeout $((duration + 60)) \
	-trace_stat -stf "$work/sipp.csv" -fd "$sample" -periodic_rtd -f "$sample" \
	-trace_err -error_file "$work/sipp-errors.log" -ringbuffer_files 2 -ringbuffer_size 10000000 \
	-watchdog_minor_maxtriggers 1000000 -watchdog_major_maxtriggers 1000 -buff_size 4194304 \
	-nostdin >>"$work/sipp.screen" 2>&1 &
sipp_pid=$!
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$EPOCHREALTIME
echo "# soak: $rate calls/s for $duration s, a sample every $sample s into $out/soak.csv (started $started)"

csv=$out/soak.csv
echo "t_s,rss_mb,heap_mb,goroutines,fds,threads,cpu_pct,queue_depth,committed_per_s,achieved_per_s,failed,retrans,open_calls,sipp_p50_ms,sipp_p99_ms,reply_p50_ms,reply_p99_ms,screen_p50_ms,screen_p99_ms,data_mb,rf_udp_drops,sipp_udp_drops,degraded,records_lost,load1" >"$csv"

# metric NAME FILE: the value of an unlabelled metric in a /metrics dump.
metric() { awk -v n="$1" '$1 == n { print $2; exit }' "$2"; }

# degraded FILE: INVITEs answered without a normal verdict so far (unscored,
# refused as overloaded, or failed), from a /metrics dump.
degraded() {
	awk '$1 ~ /^ringfence_sip_invites_total\{outcome="(unscored|rejected_overload|error)"\}$/ { n += $2 } END { print n + 0 }' "$1"
}

# delta NOW PREV: NOW - PREV, or empty when either is (a metric this build
# does not have).
delta() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { print a - b }' || true; }

# hist NAME NOW PREV: "p50 p99" in ms over the samples a Prometheus histogram
# gained between two /metrics dumps, interpolated inside the bucket as
# Prometheus's histogram_quantile does; "" "" when it gained none.
hist() {
	awk -v n="$1_bucket" '
	FNR == 1 { f++ }
	$1 ~ "^" n "{" {
		le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
		if (f == 1) now[le] = $2; else prev[le] = $2
		if (f == 1) les[++k] = le
	}
	END {
		total = now["+Inf"] - prev["+Inf"]
		if (total <= 0) { print ","; exit }
		printf "%s,%s\n", q(0.50), q(0.99)
	}
	function q(p,   i, c, lo, rank, pc, b) {
		rank = p * total; lo = 0; pc = 0
		for (i = 1; i <= k; i++) {
			c = now[les[i]] - prev[les[i]]
			if (c >= rank) {
				if (les[i] == "+Inf") return sprintf("%.3f", lo * 1000)
				b = c - pc
				return sprintf("%.3f", (lo + (les[i] - lo) * (b > 0 ? (rank - pc) / b : 1)) * 1000)
			}
			pc = c; if (les[i] != "+Inf") lo = les[i]
		}
	}' "$2" "$3"
}

# sippstat FILE ROWS: from the rows of sipp's -trace_stat FILE after the
# first ROWS, one line "rows,achieved_per_s,failed,retrans,open_calls,
# p50_ms,p99_ms": the rows summed (calls, failures, buckets) over their
# periods; p50/p99 are the upper edges of the ResponseTimeRepartition1
# buckets holding them (ms; the last, open bucket is given as twice its
# lower edge). sipp's own mean, ResponseTime1(P), is left out: it reads 0
# while its buckets hold answers of several ms.
sippstat() {
	awk -F';' -v skip="$2" '
	NR == 1 { for (i = 1; i <= NF; i++) { col[$i] = i; if (index($i, "ResponseTimeRepartition1_") == 1) { b[++nb] = i; lab[nb] = substr($i, 26) } } next }
	NF < 10 { next }
	{ rows++ }
	rows <= skip { next }
	{
		new++
		ok += $col["SuccessfulCall(P)"]; failed += $col["FailedCall(P)"]; retr += $col["Retransmissions(P)"]
		split($col["ElapsedTime(P)"], e, ":"); secs += e[1] * 3600 + e[2] * 60 + e[3]
		open = $col["CurrentCall"]
		for (i = 1; i <= nb; i++) cnt[i] += $b[i]
	}
	END {
		if (new == 0) { printf "%d,,,,,,\n", rows; exit }
		total = 0; for (i = 1; i <= nb; i++) total += cnt[i]
		p50 = ""; p99 = ""; c = 0
		for (i = 1; i <= nb && total > 0; i++) {
			c += cnt[i]
			if (p50 == "" && c >= 0.50 * total) p50 = edge(lab[i])
			if (p99 == "" && c >= 0.99 * total) p99 = edge(lab[i])
		}
		printf "%d,%.1f,%d,%d,%d,%s,%s\n", rows, (secs > 0 ? ok / secs : 0), failed, retr, open, p50, p99
	}
	# labels: "<10" style upper edges, ">=500" for the open bucket
	function edge(s) { if (s ~ /^>=/) { sub(/^>=/, "", s); return s * 2 } gsub(/[^0-9.]/, "", s); return s + 0 }
	' "$1"
}

# udpdrops PORT: datagrams the kernel dropped so far on the IPv4 UDP
# sockets bound to PORT (their receive buffer was full): the last column of
# /proc/net/udp. A drop costs sipp a retransmission 500 ms later.
udpdrops() {
	awk -v p="$(printf ':%04X' "$1")" 'substr($2, length($2) - 4) == p { n += $NF } END { print n + 0 }' /proc/net/udp
}

cputicks() { awk '{ print $14 + $15 }' "/proc/$rf/stat"; }
hz=$(getconf CLK_TCK)

report() {
	local status=complete
	[ "$finished" = 1 ] || status="INCOMPLETE: stopped after $(($(date +%s) - ${t0%.*})) s of $duration"
	"$work/soakplot" -in "$csv" -svg "$out/soak.svg" \
		-title "ringfence soak: $rate calls/s offered over SIP/UDP, SQLite, $(nproc) cores shared with sipp" >"$work/summary.body"
	{
		echo "ringfence soak test ($status)"
		echo
		echo "command:   $cmdline"
		echo "commit:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
		echo "started:   $started"
		echo "ended:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "machine:   $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), $sipp_version"
		echo "load avg:  at start $load_start; at end $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; sipp and the server share the cores)"
		echo "offered:   $rate calls/s for $duration s ($((rate * duration)) calls), $ncalls distinct simulated calls cycled"
		if [ -s "$work/sipp.csv" ]; then
			awk -F';' '
			NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
			NF > 10 { last = $0 }
			END {
				split(last, f, ";"); split(f[col["ElapsedTime(C)"]], e, ":")
				secs = e[1] * 3600 + e[2] * 60 + e[3]
				printf "sipp:      %d calls answered in %.0f s (%.1f/s), %d failed, %d retransmitted INVITEs, %d unexpected messages\n",
					f[col["SuccessfulCall(C)"]], secs, (secs > 0 ? f[col["SuccessfulCall(C)"]] / secs : 0),
					f[col["FailedCall(C)"]], f[col["Retransmissions(C)"]], f[col["UnexpectedMessage(C)"]]
			}' "$work/sipp.csv"
		fi
		echo "data dir:  $(du -sm "$work/data" | cut -f1) MB at the end (SQLite, every call recorded)"
		echo
		cat "$work/summary.body"
	} >"$out/summary.txt"
	echo "# wrote $csv, $out/soak.svg, $out/summary.txt"
	cat "$out/summary.txt"
}

# cap FILE MB: empty an appended log that has grown past MB (the process
# keeps appending to it), so a long run cannot fill the disk with logs.
cap() {
	local size
	size=$(stat -c %s "$1" 2>/dev/null || echo 0)
	if ((size > $2 * 1048576)); then
		echo "soak.sh: $1 passed $2 MB; emptied" >&2
		: >"$1"
	fi
}

curl -sf -m 5 "http://$rf_http/metrics" >"$work/metrics.prev" || : >"$work/metrics.prev"
ticks_prev=$(cputicks)
rf_drops_prev=$(udpdrops "${rf_sip##*:}")
sipp_drops_prev=$(udpdrops "$uac_port")
committed_prev=$(metric ringfence_records_committed_total "$work/metrics.prev")
degraded_prev=$(degraded "$work/metrics.prev")
lost_prev=$(metric ringfence_records_lost_total "$work/metrics.prev")
t_prev=$t0
rows=0
i=0
deadline=$((duration + 120))
while :; do
	i=$((i + 1))
	# sleep to 2 s past the next multiple of SAMPLE since the start, so
	# samples do not drift by the time each one takes, and sipp, which
	# writes its statistics at the multiples, has written the period's row.
	now=$EPOCHREALTIME
	wait_s=$(awk -v t0="$t0" -v now="$now" -v i="$i" -v s="$sample" 'BEGIN { w = t0 + i * s + 2 - now; printf "%.3f", (w > 0 ? w : 0) }')
	sleep "$wait_s"
	sipp_alive=1
	kill -0 "$sipp_pid" 2>/dev/null || sipp_alive=0
	if ! kill -0 "$rf" 2>/dev/null; then
		echo "soak.sh: ringfence died after $((i * sample)) s:" >&2
		tail "$work/serve.log" >&2
		exit 1
	fi
	# sipp done: its last period is the tail of the traffic, and the server
	# idle after it is not the soak; the summary takes sipp's totals from
	# its own file.
	[ "$sipp_alive" = 1 ] || break
	t=$EPOCHREALTIME
	curl -sf -m 5 "http://$rf_http/metrics" >"$work/metrics.now" || : >"$work/metrics.now"
	ticks=$(cputicks)
	rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$rf/status")
	threads=$(awk '/^Threads/ { print $2 }' "/proc/$rf/status")
	fds=$(find "/proc/$rf/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	heap=$(metric go_memstats_heap_inuse_bytes "$work/metrics.now")
	gor=$(metric go_goroutines "$work/metrics.now")
	queue=$(metric ringfence_recorder_queue_depth "$work/metrics.now")
	committed=$(metric ringfence_records_committed_total "$work/metrics.now")
	degraded_now=$(degraded "$work/metrics.now")
	lost=$(metric ringfence_records_lost_total "$work/metrics.now")
	reply=$(hist ringfence_sip_reply_seconds "$work/metrics.now" "$work/metrics.prev")
	screen=$(hist ringfence_screen_seconds "$work/metrics.now" "$work/metrics.prev")
	IFS=, read -r rows_now sipp_fields < <(sippstat "$work/sipp.csv" "$rows" 2>/dev/null || echo "$rows,,,,,,")
	rows=${rows_now:-$rows}
	data=$(du -sm "$work/data" | cut -f1)
	rf_drops=$(udpdrops "${rf_sip##*:}")
	sipp_drops=$(udpdrops "$uac_port")
	awk -v t="$t" -v t0="$t0" -v tp="$t_prev" -v rss="$rss" -v heap="$heap" -v gor="$gor" -v fds="$fds" \
		-v thr="$threads" -v dt_ticks="$((ticks - ticks_prev))" -v hz="$hz" -v queue="$queue" \
		-v com="$committed" -v comp="$committed_prev" -v sipp="$sipp_fields" -v reply="$reply" \
		-v screen="$screen" -v data="$data" -v drops="$((rf_drops - rf_drops_prev)),$((sipp_drops - sipp_drops_prev)),$(delta "$degraded_now" "$degraded_prev"),$(delta "$lost" "$lost_prev")" -v ld="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
		dt = t - tp
		printf "%.0f,%s,%s,%s,%s,%s,%.1f,%s,%s,%s,%s,%s,%s,%s,%s\n", t - t0, rss,
			(heap == "" ? "" : sprintf("%.1f", heap / 1048576)), gor, fds, thr,
			100 * dt_ticks / hz / dt, queue,
			(com == "" || comp == "" ? "" : sprintf("%.1f", (com - comp) / dt)),
			sipp, reply, screen, data, drops, ld
	}' >>"$csv"
	mv "$work/metrics.now" "$work/metrics.prev"
	ticks_prev=$ticks
	rf_drops_prev=$rf_drops
	sipp_drops_prev=$sipp_drops
	committed_prev=$committed
	degraded_prev=$degraded_now
	lost_prev=$lost
	t_prev=$t
	cap "$work/sipp.screen" 50
	cap "$work/serve.log" 100
	if ((i % (60 / sample > 0 ? 60 / sample : 1) == 0)); then
		tail -1 "$csv" | awk -F, '{ printf "# %5d s  rss %s MB  heap %s MB  goroutines %s  fds %s  achieved %s/s  failed %s  p99 %s ms (sipp) %s ms (reply)\n", $1, $2, $3, $4, $5, $10, $11, $15, $17 }'
	fi
	if ((i * sample > deadline)); then
		echo "soak.sh: sipp still running $deadline s after the start; stopping it" >&2
		break
	fi
done
wait "$sipp_pid" 2>/dev/null && sipp_rc=0 || sipp_rc=$?
sipp_pid=
# sipp exits 0 when every call succeeded, 1 when some failed; anything else
# is sipp itself failing.
if ((sipp_rc > 1)); then
	echo "soak.sh: sipp exited with status $sipp_rc:" >&2
	tail -20 "$work/sipp.screen" >&2
	exit 1
fi
finished=1
