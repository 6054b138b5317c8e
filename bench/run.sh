#!/bin/bash
# `make bench`: the full benchmark suite. Runs cable-bench against mosquitto-cable, against
# Mosquitto's own MQTT-over-WebSockets listener on the same broker, and against Rails
# ActionCable on puma (when installed: bench/deps.sh), then writes docs/benchmarks.md and
# docs/benchmarks-latency.png. Takes about 20-30 minutes on 2 cores.
#
# Environment:
#   BUILD=dir           build directory with mosquitto_cable.so and bench/cable-bench
#   BENCH_QUICK=1       smaller sizes (a few minutes; for trying the suite out)
#   BENCH_QUICK=tiny    a few hundred clients (a check that every phase and the report work)
#   BENCH_EXT=0         skip the extended protocol's phases
#   BENCH_SHARDS="1 2"  the gateway shard counts compared (plugin_opt_threads)
#   BENCH_RAILS=0       skip the Rails peer
#   BENCH_PROFILE=0     skip the perf profile of the gateway threads
#   BENCH_PRIORITY=0    do not raise this session's CPU priority (see below)
#   BENCH_OUT=file      report path (docs/benchmarks.md)
#   BENCH_ONLY=last_values  run only the last-values phase and print its section of the
#                       report on stdout (docs/benchmarks.md is left alone)
#   BENCH_LV_TOPICS=n   retained topics for that phase (100000)
#   BENCH_ONLY=ext      run only the extended protocol's phases and print their report
#                       section (to paste into the report) instead of writing it
#   BENCH_ONLY=syscalls the same for the system calls per delivery (needs perf)
#   BENCH_ONLY=shards   the same for the gateway shards (with the floor they are compared to)
#
# Every broker is started with an explicit plugin_opt_threads (gateway shards): each
# phase below says how many; "the default" is one per CPU, as the plugin's own default.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BENCH=$BUILD/bench/cable-bench
OUT=${BENCH_OUT:-docs/benchmarks.md}
PNG=${OUT%.md}-latency.png
QUICK=${BENCH_QUICK:-0}
[ -x "$BENCH" ] || { echo "bench: $BENCH is not built (cmake --build $BUILD)" >&2; exit 2; }
command -v mosquitto > /dev/null || { echo "bench: mosquitto is not installed" >&2; exit 2; }
# BENCH_RESUME=/tmp/cable-bench.XXXXXX: reuse that run's results and redo only what is missing.
if [ -n "${BENCH_RESUME:-}" ] && [ -f "$BENCH_RESUME/results.txt" ]; then
	WORK=$BENCH_RESUME
else
	WORK=$(mktemp -d /tmp/cable-bench.XXXXXX)
fi
. "$ROOT/bench/lib.sh"
. "$ROOT/bench/shards.sh"
RESULTS=$WORK/results.txt
LOG=$WORK/bench.log
touch "$RESULTS"
trap 'stop_all; [ -n "${OLD_AG:-}" ] && echo "$OLD_AG" > /proc/$$/autogroup 2>/dev/null; echo "bench: raw results and logs in $WORK" >&2' EXIT

RAILS=${BENCH_RAILS:-1}
command -v puma > /dev/null && ruby -e 'require "action_cable"' 2> /dev/null || RAILS=0
PROFILE=${BENCH_PROFILE:-1}
command -v perf > /dev/null || PROFILE=0

# On a shared machine other sessions' work (fuzzers, browsers) runs in other scheduler
# autogroups, and each group gets an equal share of the 2 cores whatever the nice values
# inside it. Raise this group (the broker, puma and cable-bench all start from here) for
# the duration of the suite; it is put back on exit.
if [ "${BENCH_PRIORITY:-1}" = 1 ] && [ -w /proc/$$/autogroup ]; then
	OLD_AG=$(sed -n 's/.* nice //p' /proc/$$/autogroup)
	echo -15 > /proc/$$/autogroup 2> /dev/null || OLD_AG=
fi

# The peers and the plot need Debian packages (bench/deps.sh); go on without what is missing.
[ "${BENCH_ONLY:-}" = ext ] || "$ROOT/bench/deps.sh" >&2 || echo "bench: some peers or the plot will be missing" >&2
prepare_work
HN=$(ulimit -Hn)
MAXC=$((HN - 100)) # both sides are bound by the same hard nofile limit
if [ "$QUICK" = tiny ]; then
	SIZES="200 1000"
	BIG=1000
	STORM=1000
	STEPS=2
	RAILS_SIZES="200"
	RAILS_STEPS=1
	TP_SECS=2
	IDLE_N=500
	SHARD_SIZES="200 1000"
elif [ "$QUICK" = 1 ]; then
	SIZES="500 1000 2000"
	BIG=2000
	STORM=2000
	STEPS=2
	RAILS_SIZES="500 1000"
	RAILS_STEPS=2
	TP_SECS=3
	IDLE_N=2000
	SHARD_SIZES="1000 2000"
else
	SIZES="1000 2000 5000 10000"
	BIG=10000
	STORM=$((MAXC < 19000 ? MAXC : 19000))
	STEPS=10
	RAILS_SIZES=${BENCH_RAILS_SIZES:-"1000 2000 5000"}
	RAILS_STEPS=${BENCH_RAILS_STEPS:-5}
	TP_SECS=6
	IDLE_N=10000
	SHARD_SIZES="1000 5000 10000"
fi
# The plugin's default shard count (plugin_opt_threads 0): one per CPU, at most 64.
DEF_THREADS=$(nproc)
[ "$DEF_THREADS" -gt 64 ] && DEF_THREADS=64

# run_tool LABEL TIMEOUT COMMAND...: RESULT lines go to results.txt, the rest to the log.
run_tool() {
	local label=$1 t=$2
	shift 2
	if grep -q " label=$label " "$RESULTS"; then
		printf '  %-28s kept\n' "$label" >&2
		return
	fi
	# Another session on the machine may have stopped our broker: start a new one.
	if [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
		echo "  (the broker had exited; restarting it)" >&2
		echo "broker exited before $label; restarted" >> "$LOG"
		BROKER_PID=
		start_broker "$BROKER_AUTH" "$BROKER_THREADS" || { phase_failed "$label: the broker did not restart"; return; }
	fi
	echo "== $label: $*" >> "$LOG"
	printf '  %-28s ' "$label" >&2
	timeout "$t" "$@" > "$WORK/out.txt" 2>> "$LOG"
	local rc=$?
	# Each result says how many gateway shards the broker ran with (when one ran).
	grep '^RESULT' "$WORK/out.txt" | sed "s/\$/${BROKER_PID:+ shards=${BROKER_THREADS:-default}}/" >> "$RESULTS"
	cat "$WORK/out.txt" >> "$LOG"
	if grep -q '^RESULT' "$WORK/out.txt"; then
		echo "ok${rc:+ (exit $rc)}" | sed 's/ (exit 0)//' >&2
	else
		echo "no result (exit $rc)" >&2
		echo "$label: no result (exit $rc$([ "$rc" = 124 ] && echo ": timed out after $t s")), $(date -u '+%H:%M:%S UTC')" >> "$WORK/events.txt"
	fi
	# A broker that dies during a run would otherwise go unnoticed: the next section
	# starts a new one. Record it; the report lists these events.
	if [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2> /dev/null; then
		echo "  (the broker exited during $label)" >&2
		echo "the broker (pid $BROKER_PID) exited during $label, $(date -u '+%H:%M:%S UTC')" |
			tee -a "$LOG" >> "$WORK/events.txt"
	fi
	sleep 2 # let the server finish closing the last run's sockets
}

# phase_failed WHAT: a phase (or part) that could not run. The report lists it; the suite
# goes on, so the report is always written.
phase_failed() {
	echo "  (failed: $1)" >&2
	echo "$1, $(date -u '+%H:%M:%S UTC')" | tee -a "$LOG" >> "$WORK/events.txt"
	return 1
}
need_broker() { # anonymous|jwt|state threads phase: start_broker, or phase_failed
	start_broker "$1" "$2" || phase_failed "$3: the broker ($1, plugin_opt_threads $2) did not start"
}

# run LABEL TIMEOUT cable-bench-args...
run() {
	local label=$1 t=$2
	shift 2
	run_tool "$label" "$t" "$BENCH" --label "$label" --quiet "$@"
}

cable=(--proto cable --port "$CABLE_PORT" --mqtt-port "$MQTT_PORT")
mqttws=(--proto mqtt --port "$MQTTWS_PORT" --path /mqtt --mqtt-port "$MQTT_PORT")
rails=(--proto rails --port "$RAILS_PORT" --secret-file "$WORK/jwt-secret")

lat_args() { # clients -> messages/interval that keep the server out of saturation
	if [ "$1" -le 1000 ]; then echo "--messages 50 --interval-ms 50"
	elif [ "$1" -le 2000 ]; then echo "--messages 40 --interval-ms 100"
	else echo "--messages 30 --interval-ms 250"; fi
}
conc() { [ "$1" -ge 5000 ] && echo 500 || echo 200; }

ONLY=${BENCH_ONLY:-}
LV_TOPICS=${BENCH_LV_TOPICS:-100000}
LV=(node "$ROOT/bench/last_values.mjs")

# ---- Last values (plugin_opt_state_listener) -------------------------------------------
# The live path with and without the internal client (saturated fan-out at 1k, alternated
# so drift hits both), the broker's memory for LV_TOPICS retained topics of 100 bytes
# without and with the last-value cache, and subscribe -> retained value latency for
# mosquitto-cable and for Mosquitto's own WebSocket listener on the same broker.
lv_phase() {
	echo "bench: last values" >&2
	local r
	for r in a b; do
		need_broker anonymous "$DEF_THREADS" "last values" || return
		run "tp-lv-message-1000-$r" 300 --mode throughput "${cable[@]}" --clients 1000 \
			--window 32 --duration "$TP_SECS" --pid "$BROKER_PID" --connect-concurrency 200
		need_broker state "$DEF_THREADS" "last values" || return
		run "tp-lv-state-1000-$r" 300 --mode throughput "${cable[@]}" --clients 1000 \
			--window 32 --duration "$TP_SECS" --pid "$BROKER_PID" --connect-concurrency 200
	done
	need_broker anonymous "$DEF_THREADS" "last values" || return
	run_tool lv-fill-message 600 "${LV[@]}" --mode fill --mqtt "mqtt://127.0.0.1:$MQTT_PORT" \
		--pid "$BROKER_PID" --topics "$LV_TOPICS" --payload 100 --label lv-fill-message
	need_broker state "$DEF_THREADS" "last values" || return
	run_tool lv-fill-state 600 "${LV[@]}" --mode fill --mqtt "mqtt://127.0.0.1:$MQTT_PORT" \
		--pid "$BROKER_PID" --topics "$LV_TOPICS" --payload 100 \
		--metrics "http://127.0.0.1:$CABLE_PORT/metrics" --label lv-fill-state
	run_tool lv-lat-cable 180 "${LV[@]}" --mode latency --proto cable \
		--url "ws://127.0.0.1:$CABLE_PORT/cable" --topics "$LV_TOPICS" --samples 1000 --label lv-lat-cable
	run_tool lv-lat-mqtt 180 "${LV[@]}" --mode latency --proto mqtt \
		--url "ws://127.0.0.1:$MQTTWS_PORT/mqtt" --topics "$LV_TOPICS" --samples 1000 --label lv-lat-mqtt
	stop_broker
}

# ---- Reading results (for the report) ----------------------------------------------
get() { # label key [match]: the value of key in the RESULT line with this label
	awk -v l="label=$1" -v k="$2" -v m="${3:-}" '
		{ hit = 0; for (i = 1; i <= NF; i++) if ($i == l) hit = 1 }
		hit && (m == "" || index($0, " " m " ")) {
			for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit }
		}' "$RESULTS"
}
gv() { local v; v=$(get "$@"); echo "${v:-?}"; }
num() { [ -n "$1" ] && [ "$1" != "-1.000" ] && [ "$1" != "-1" ] && [ "$1" != "-1.0" ]; }
# adv A B lower|higher: how many times better A is than B ("2.5x"), or n/a.
adv() {
	num "$1" && num "$2" || { echo "n/a"; return; }
	awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN {
		if (a <= 0 || b <= 0) { print "n/a"; exit }
		r = (d == "lower") ? b / a : a / b
		printf "%.2fx\n", r }'
}
f1() { num "$1" && awk -v v="$1" 'BEGIN { printf "%.1f", v }' || echo "–"; }
# us_per LABEL: server CPU µs per delivery in a throughput run.
us_per() {
	local cpu d
	cpu=$(get "$1" server_cpu_pct) d=$(get "$1" deliveries_per_s)
	num "$cpu" && num "$d" || { echo "–"; return; }
	awk -v c="$cpu" -v d="$d" 'BEGIN { if (d > 0) printf "%.2f", c / 100 * 1e6 / d; else print "–" }'
}
f0() { num "$1" && awk -v v="$1" 'BEGIN { printf "%.0f", v }' || echo "–"; }
kb() { num "$1" && awk -v v="$1" 'BEGIN { printf "%.2f KB", v / 1024 }' || echo "–"; }
# ---- The extended protocol (actioncable-v1-ext-json): fan-out with ext clients beside v1
#      clients on one broker, and the history's memory at its default limits ----------------
EXT_SIZES="1000 5000"
[ "$QUICK" != 0 ] && EXT_SIZES="1000"
ext_phases() {
	[ "${BENCH_EXT:-1}" = 1 ] || return 0
	echo "bench: extended protocol (ext beside v1, history memory)" >&2
	need_broker anonymous "$DEF_THREADS" ext || return
	for n in $EXT_SIZES; do
		w=$((n >= 5000 ? 16 : 32))
		for pct in 0 50 100; do
			run "tp-ext$pct-$n" 300 --mode throughput "${cable[@]}" --clients "$n" --window $w \
				--duration "$TP_SECS" --pid "$BROKER_PID" --connect-concurrency "$(conc "$n")" \
				--ext "$pct"
		done
		run "lat-ext50-$n" 300 --mode latency "${cable[@]}" --clients "$n" $(lat_args "$n") \
			--connect-concurrency "$(conc "$n")" --ext 50
	done
	# 10,000 topics, each streamed by one ext connection, 100 messages each (the default
	# plugin_opt_history_limit), on a fresh broker.
	need_broker anonymous "$DEF_THREADS" ext || return
	if ! grep -q " label=hist-10000 " "$RESULTS"; then
		run "hist-10000" 600 --mode history "${cable[@]}" --clients 10000 --messages 100 \
			--ext 100 --pid "$BROKER_PID" --connect-concurrency 500
		curl -s "http://127.0.0.1:$CABLE_PORT/metrics" | awk '
			$1 == "cable_history_streams" { s = $2 } $1 == "cable_history_messages" { m = $2 }
			$1 == "cable_history_bytes" { b = $2 } $1 == "cable_history_evicted_total" { e = $2 }
			END { printf "RESULT mode=history-metrics label=hist-10000-metrics streams=%s messages=%s bytes=%s evicted=%s\n", s, m, b, e }' >> "$RESULTS"
	fi
	stop_broker
}

# ext_section: the report's section for the phases above (markdown on stdout).
ext_section() {
	cat <<- EOF
		## Extended protocol

		AnyCable's \`actioncable-v1-ext-json\` ([reliable-streams.md](reliable-streams.md)):
		every delivery to an ext connection carries \`stream_id\`, \`epoch\` and \`offset\`, and the
		message is appended to its topic's history. One broker for the fan-out rows: the same
		saturated fan-out (as in (c), one topic) with 0 %, 50 % and 100 % of the connections in
		ext, then per-recipient latency (as in (b)) with half of them in ext. cable-bench checks
		on every ext connection that the offsets go up by one.

		| subscribers | deliveries/s, all v1 | 50 % ext | 100 % ext | 100 % ext ÷ all v1 | server CPU µs per delivery (v1 / 100 % ext) | offset gaps | lost |
		|---|---|---|---|---|---|---|---|
	EOF
	for n in $EXT_SIZES; do
		a=$(get tp-ext0-$n deliveries_per_s) h=$(get tp-ext50-$n deliveries_per_s) e=$(get tp-ext100-$n deliveries_per_s)
		echo "| $n | $(f0 "$a") | $(f0 "$h") | $(f0 "$e") | $(num "$a" && num "$e" && awk -v a="$a" -v e="$e" 'BEGIN { printf "%.2f", e / a }' || echo –) | $(us_per tp-ext0-$n) / $(us_per tp-ext100-$n) | $(gv tp-ext50-$n offset_gaps) / $(gv tp-ext100-$n offset_gaps) | $(gv tp-ext0-$n lost) / $(gv tp-ext50-$n lost) / $(gv tp-ext100-$n lost) |"
	done
	cat <<- EOF

		| clients (half ext) | v1 p50 / p99 ms | ext p50 / p99 ms | last recipient p50 / p99 ms | offset gaps | lost |
		|---|---|---|---|---|---|
	EOF
	for n in $EXT_SIZES; do
		x=lat-ext50-$n-ext
		echo "| $n | $(f1 "$(get $x v1_p50_ms)") / $(f1 "$(get $x v1_p99_ms)") | $(f1 "$(get $x p50_ms)") / $(f1 "$(get $x p99_ms)") | $(f1 "$(get lat-ext50-$n last_p50_ms)") / $(f1 "$(get lat-ext50-$n last_p99_ms)") | $(gv $x offset_gaps) | $(gv lat-ext50-$n lost) |"
	done
	cat <<- EOF

		**History memory at the default limits.** 10,000 topics, each streamed by one ext
		connection, 100 messages of about 40 bytes published to each (1,000,000 in all):
		$(gv hist-10000-metrics streams) topics kept, $(gv hist-10000-metrics messages) messages,
		$(gv hist-10000-metrics bytes) bytes counted by the history (payload + topic + 64 per
		message; the 64 MiB \`plugin_opt_history_total_bytes\` cap applies), $(gv hist-10000-metrics evicted)
		evicted; the broker's RSS grew by $(get hist-10000 rss_growth_bytes | awk '{ printf "%.1f MiB", $1 / 1048576 }')
		while they were published (the 10,000 connections were open before). The figures were
		read 3 s after the last publish, when $(gv hist-10000 delivered) messages had reached the
		browsers.

	EOF
}

if [ "${BENCH_ONLY:-}" = ext ]; then
	ext_phases
	ext_section | tee "$WORK/ext-section.md"
	exit 0
fi

# ---- Syscalls per delivery: perf stat on the gateway thread(s) (syscall tracepoints and
#      task-clock) during a saturated and a single-message run at 1,000 clients ----------
SYS_CALLS="sendto setsockopt epoll_ctl epoll_wait writev poll recvfrom read write"
sys_counter() { # name: a counter of the plugin's /metrics
	curl -s "http://127.0.0.1:$CABLE_PORT/metrics" | awk -v k="cable_$1" '$1 == k { print $2 }'
}
# sys_measure LABEL SECONDS: count the gateway threads' system calls while cable-bench runs.
sys_measure() {
	local label=$1 secs=$2 tids d0 d1 c0 c1 i ev=task-clock,raw_syscalls:sys_enter s
	for s in $SYS_CALLS; do ev=$ev,syscalls:sys_enter_$s; done
	# Every thread but the broker's main one: the gateway thread(s).
	tids=$(ls "/proc/$BROKER_PID/task" | grep -vx "$BROKER_PID" | paste -sd,)
	d0=$(sys_counter deliveries_total)
	for ((i = 0; i < 300; i++)); do # until the run delivers (connecting takes a while)
		sleep 0.1
		[ "$(sys_counter deliveries_total)" -gt $((${d0:-0} + 1000)) ] 2> /dev/null && break
	done
	sleep 1
	# The counters are read inside perf's window (perf itself takes a while to start).
	perf stat -x, -e "$ev" -t "$tids" -o "$WORK/$label.perf" -- sh -c 'for f in 0 1; do
		[ $f = 1 ] && sleep "$1"
		curl -s "$2" > "$3.m$f"; cat "$4" > "$3.c$f"; done' - "$secs" \
		"http://127.0.0.1:$CABLE_PORT/metrics" "$WORK/$label" "/proc/$BROKER_PID/stat" 2> /dev/null
	d0=$(awk '$1 == "cable_deliveries_total" { print $2 }' "$WORK/$label.m0")
	d1=$(awk '$1 == "cable_deliveries_total" { print $2 }' "$WORK/$label.m1")
	c0=$(awk '{ print $14 + $15 }' "$WORK/$label.c0")
	c1=$(awk '{ print $14 + $15 }' "$WORK/$label.c1")
	awk -F, -v l="$label" -v d=$((d1 - d0)) -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
		$3 == "task-clock" { gw = $1 * 1000 } # msec -> µs
		$3 ~ /sys_enter/ { n = $3; sub(/.*sys_enter_?/, "", n); if (n == "") n = "all"; v[n] += $1 }
		END { if (d <= 0) exit
			printf "RESULT mode=syscalls label=%s deliveries=%d gw_cpu_us=%.2f server_cpu_us=%.2f", l, d, gw / d, c / hz * 1e6 / d
			for (n in v) printf " %s=%.3f", n, v[n] / d; print "" }' "$WORK/$label.perf" >> "$RESULTS"
}
sys_phase() {
	command -v perf > /dev/null || return 0
	echo "bench: system calls per delivery (perf stat on the gateway thread)" >&2
	# One gateway thread: /metrics counts per thread, and the figures are one thread's.
	local m
	need_broker anonymous 1 syscalls || return
	for m in tp lat; do
		grep -q " label=sys-$m-1000 " "$RESULTS" && continue
		if [ $m = tp ]; then
			"$BENCH" --mode throughput "${cable[@]}" --clients 1000 --window 32 --duration 8 \
				--pid "$BROKER_PID" --label sys-tp-bench --quiet > "$WORK/out.txt" 2>> "$LOG" &
		else
			"$BENCH" --mode latency "${cable[@]}" --clients 1000 --messages 160 --interval-ms 50 \
				--label sys-lat-bench --quiet > "$WORK/out.txt" 2>> "$LOG" &
		fi
		sys_measure "sys-$m-1000" 4
		wait $!
		grep '^RESULT' "$WORK/out.txt" >> "$RESULTS"
		printf '  %-28s %s\n' "sys-$m-1000" "$(grep -q " label=sys-$m-1000 " "$RESULTS" && echo ok || echo 'no result')" >&2
		sleep 2
	done
	stop_broker
}
# sys_section: the report's table for sys_phase (markdown on stdout).
sys_section() {
	cat <<- EOF
		## System calls per delivery (1,000 subscribers)

		\`perf stat\` on the gateway thread (\`plugin_opt_threads 1\`) for 4 s, its syscall
		tracepoints and its CPU time, while cable-bench runs, divided by the deliveries it
		counted meanwhile (\`cable_deliveries_total\`). Saturated: as (c), 32 messages in
		flight. Single message: as (b), one message every 50 ms, each to all 1,000 (the 3 s
		pings are included). Server CPU is the whole broker process.

		| run | sendto | setsockopt | epoll_ctl | epoll_wait | all system calls | gateway CPU µs | server CPU µs |
		|---|---|---|---|---|---|---|---|
	EOF
	local m x
	for m in tp lat; do
		x=sys-$m-1000
		echo "| $([ $m = tp ] && echo saturated || echo 'single message') | $(gv $x sendto) | $(gv $x setsockopt) | $(gv $x epoll_ctl) | $(gv $x epoll_wait) | $(gv $x all) | $(gv $x gw_cpu_us) | $(gv $x server_cpu_us) |"
	done
	echo
}

if [ "${BENCH_ONLY:-}" = syscalls ]; then
	sys_phase
	sys_section
	exit 0
fi

START=$(date -u '+%Y-%m-%d %H:%M UTC')
T0=$(date +%s)
# A resumed run reports when the measuring started and how long it took in all.
[ -f "$WORK/start" ] && START=$(cat "$WORK/start") || echo "$START" > "$WORK/start"
EARLIER=$(cat "$WORK/elapsed" 2> /dev/null || echo 0)
echo "bench: results in $WORK" >&2

# ---- The one-core floor: one frame to each of N loopback sockets, no server ----------
floor_phase() {
	echo "bench: the one-core floor (cable-floor)" >&2
	local n label
	for n in $SIZES; do
		label="floor-$n"
		if grep -q " label=$label " "$RESULTS"; then
			printf '  %-28s kept\n' "$label" >&2
			continue
		fi
		printf '  %-28s ' "$label" >&2
		if timeout 300 "$BUILD/bench/cable-floor" --clients "$n" --rounds 30 --port "$FLOOR_PORT" \
			--label "$label" 2>> "$LOG" | grep '^RESULT' >> "$RESULTS"; then
			echo ok >&2
		else
			echo "no result" >&2
			phase_failed "$label: no result"
		fi
	done
}

if [ "$ONLY" = last_values ]; then
	lv_phase
elif [ "$ONLY" = shards ]; then
	floor_phase
	shard_phase
else
floor_phase
shard_phase

# ---- mosquitto-cable and the MQTT-over-WebSockets peer, one broker --------------------
echo "bench: broker (anonymous, $DEF_THREADS shards): smoke, latency, throughput, broadcast, perform" >&2
need_broker anonymous "$DEF_THREADS" main
run smoke-cable 60 --smoke "${cable[@]}"
run smoke-mqtt 60 --smoke "${mqttws[@]}"
for n in $SIZES; do
	run "lat-cable-$n" 300 --mode latency "${cable[@]}" --clients "$n" $(lat_args "$n") \
		--connect-concurrency "$(conc "$n")"
	run "lat-mqtt-$n" 300 --mode latency "${mqttws[@]}" --clients "$n" $(lat_args "$n") \
		--connect-concurrency "$(conc "$n")"
done
for n in 1000 $BIG; do
	w=$((n >= 5000 ? 16 : 32))
	run "tp-cable-$n" 300 --mode throughput "${cable[@]}" --clients "$n" --window $w \
		--duration "$TP_SECS" --pid "$BROKER_PID" --connect-concurrency "$(conc "$n")"
	run "tp-mqtt-$n" 300 --mode throughput "${mqttws[@]}" --clients "$n" --window $w \
		--duration "$TP_SECS" --pid "$BROKER_PID" --connect-concurrency "$(conc "$n")"
done
# Where the gateway threads' time goes at saturation.
if [ "$PROFILE" = 1 ] && [ -n "$BROKER_PID" ]; then
	# Every thread but the broker's main one: the gateway shards.
	gwtid=$(ls /proc/$BROKER_PID/task | grep -vx "$BROKER_PID" | paste -sd,)
	(timeout 120 "$BENCH" --mode throughput "${cable[@]}" --clients "$BIG" --window 16 \
		--duration 8 --connect-concurrency 500 --quiet --label profile > /dev/null 2>&1 &)
	sleep $((BIG >= 5000 ? 7 : 3))
	perf record -F 1999 -g -t "$gwtid" -o "$WORK/perf.data" -- sleep 4 > /dev/null 2>&1
	perf report -i "$WORK/perf.data" --stdio --no-children --sort dso 2> /dev/null |
		grep -E '^ +[0-9.]+%' | head -6 > "$WORK/perf-dso.txt"
	perf report -i "$WORK/perf.data" --stdio --children --sort sym 2> /dev/null |
		grep -E '^ +[0-9.]+%' | grep -E '__send|__poll|sys_sendto|sys_poll|napi_poll|setsockopt|epoll_ctl|epoll_wait|ev_run|session_|fanout_|deliver_route|lws_write|lws_service_fd|drain_inbox|cable_' |
		head -18 > "$WORK/perf-sym.txt"
	sleep 6
fi
run bc-cable 1800 --mode broadcast "${cable[@]}" --step-size $((BIG / STEPS)) --steps $STEPS \
	--connect-concurrency 500
run bc-mqtt 1800 --mode broadcast "${mqttws[@]}" --step-size $((BIG / STEPS)) --steps $STEPS \
	--connect-concurrency 500
run perf-cable 60 --mode perform "${cable[@]}" --clients 1 --messages 2000 --interval-ms 2
run perf-mqtt 60 --mode perform "${mqttws[@]}" --clients 1 --messages 2000 --interval-ms 2
stop_broker
sys_phase

# ---- Wildcard decoys: one browser's message rate while the index holds D wildcard
#      streams that no message matches (a second cable-bench holds them, idle) ---------
echo "bench: wildcard decoys ($WILD_THREADS shard)" >&2
subscriptions() {
	curl -s "http://127.0.0.1:$CABLE_PORT/metrics" | awk '$1 == "cable_subscriptions" { print $2 }'
}
for d in 0 5000 20000; do
	grep -q " label=wild-cable-$d " "$RESULTS" && { printf '  %-28s kept\n' "wild-cable-$d" >&2; continue; }
	need_broker anonymous "$WILD_THREADS" wildcard || continue
	dpid=
	if [ "$d" -gt 0 ]; then
		"$BENCH" --mode idle "${cable[@]}" --clients $((d / 50)) --decoy-subs 50 --idle 300 \
			--pid "$BROKER_PID" --quiet --label "decoys-$d" > /dev/null 2>> "$LOG" &
		dpid=$!
		for ((i = 0; i < 600; i++)); do
			[ "$(subscriptions)" -ge "$d" ] 2> /dev/null && break
			sleep 0.1
		done
		echo "decoys-$d: $(subscriptions) subscriptions in the index" >> "$LOG"
	fi
	run "wild-cable-$d" 120 --mode throughput "${cable[@]}" --clients 1 --window 32 \
		--duration "$TP_SECS" --pid "$BROKER_PID"
	[ -n "$dpid" ] && { kill "$dpid" 2> /dev/null; wait "$dpid" 2> /dev/null; }
done
stop_broker

# ---- Idle memory and CPU: a fresh broker for each, so earlier runs' heap does not hide
#      growth ----------------------------------------------------------------------------
echo "bench: idle memory and CPU" >&2
for t in 2 1; do # idle-cable: 2 shards (the target's figure); idle-cable-t1 beside it
	label=idle-cable
	[ "$t" = 2 ] || label=idle-cable-t$t
	need_broker anonymous "$t" idle
	run "$label" 300 --mode idle "${cable[@]}" --clients "$IDLE_N" --pid "$BROKER_PID" \
		--connect-concurrency 500
done
need_broker anonymous "$DEF_THREADS" idle
run "idle-mqtt" 300 --mode idle "${mqttws[@]}" --clients "$IDLE_N" --pid "$BROKER_PID" \
	--connect-concurrency 500

# ---- Connection storms ----------------------------------------------------------------
echo "bench: connection storms" >&2
need_broker jwt "$DEF_THREADS" storm
run_spread "storm-cable-jwt" 200 --mode storm "${cable[@]}" --clients "$STORM" \
	--secret-file "$WORK/jwt-secret"
need_broker anonymous "$DEF_THREADS" storm
run_spread "storm-cable-anon" 200 --mode storm "${cable[@]}" --clients "$STORM"
need_broker anonymous "$DEF_THREADS" storm
run "storm-mqtt" 200 --mode storm "${mqttws[@]}" --clients "$STORM"
stop_broker

ext_phases

# ---- Rails ActionCable ---------------------------------------------------------------
if [ "$RAILS" = 1 ]; then
	echo "bench: Rails ActionCable (puma, async adapter)" >&2
	start_rails || RAILS=0
fi
if [ "$RAILS" = 1 ]; then
	run smoke-rails 60 --smoke "${rails[@]}"
	for n in $RAILS_SIZES; do
		run "lat-rails-$n" 600 --mode latency "${rails[@]}" --clients "$n" $(lat_args "$n")
	done
	run "tp-rails-1000" 300 --mode throughput "${rails[@]}" --clients 1000 --window 32 \
		--duration "$TP_SECS" --pid "$RAILS_PID"
	run bc-rails 1800 --mode broadcast "${rails[@]}" --step-size $((BIG / STEPS)) \
		--steps "$RAILS_STEPS"
	start_rails
	run "idle-rails" 300 --mode idle "${rails[@]}" --clients "$IDLE_N" --pid "$RAILS_PID"
	start_rails
	run "storm-rails" 200 --mode storm "${rails[@]}" --clients "$STORM"
	stop_rails
fi
lv_phase
fi
T1=$(date +%s)
ELAPSED=$((EARLIER + T1 - T0))
echo "$ELAPSED" > "$WORK/elapsed"
echo "bench: measured in $((ELAPSED / 60)) min; writing $OUT" >&2

# ---- The report ----------------------------------------------------------------------
# verdict VALUE TARGET lower|higher
verdict() {
	num "$1" || { echo "not measured"; return; }
	awk -v v="$1" -v t="$2" -v d="$3" 'BEGIN {
		if ((d == "lower" && v <= t) || (d == "higher" && v >= t)) printf "**met** (%.3g vs %.3g)\n", v, t
		else if (d == "lower") printf "**missed** by %.3g (%.2fx the target)\n", v - t, v / t
		else printf "**missed** by %.3g (%.0f%% of the target)\n", t - v, 100 * v / t }'
}
bcp95() { # proto active
	awk -v l="label=bc-$1" -v a="active=$2" '
		{ h = 0; g = 0; for (i = 1; i <= NF; i++) { if ($i == l) h = 1; if ($i == a) g = 1 } }
		h && g { for (i = 1; i <= NF; i++) if (index($i, "p95_ms=") == 1) print substr($i, 8) }' "$RESULTS"
}


mib() { num "$1" && awk -v v="$1" 'BEGIN { printf "%.1f MiB", v / 1048576 }' || echo "–"; }
lv_tp() { # message|state: the mean of the alternated runs' deliveries/s
	local a b
	a=$(get "tp-lv-$1-1000-a" deliveries_per_s)
	b=$(get "tp-lv-$1-1000-b" deliveries_per_s)
	num "$a" && num "$b" && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", (a + b) / 2 }'
}
lv_section() {
	local gm gs m s
	gm=$(get lv-fill-message rss_growth_kb)
	gs=$(get lv-fill-state rss_growth_kb)
	m=$(lv_tp message)
	s=$(lv_tp state)
	cat <<- EOF
		## (g) Last values (\`plugin_opt_state_listener\`)

		\`BENCH_ONLY=last_values bench/run.sh\`. A device publishes $LV_TOPICS retained
		topics (\`actuators/N/state\`) of 100-byte JSON payloads. Memory: broker RSS growth
		(/proc/PID/status) over the publishing, on a fresh broker without and with the
		internal client; the difference is what the last-value cache and its client cost
		(Mosquitto keeps its own retained store either way). Latency: one client subscribes
		to a random one of those topics, waits for its retained value, unsubscribes, 1000
		times in a row (Node clients, \`bench/last_values.mjs\`): an ActionCable
		\`subscribe\` of \`ActuatorChannel\` against mosquitto-cable, an MQTT \`SUBSCRIBE\` over
		Mosquitto's own WebSocket listener on the same broker.

		| broker | RSS growth for $LV_TOPICS retained topics | per topic | cache as counted (\`cable_retained_bytes\`) |
		|---|---|---|---|
		| without the internal client (Mosquitto's store) | $(mib "$((${gm:-0} * 1024))") | $(gv lv-fill-message bytes_per_topic) B | – |
		| with it (store + cache) | $(mib "$((${gs:-0} * 1024))") | $(gv lv-fill-state bytes_per_topic) B | $(mib "$(get lv-fill-state cache_bytes)") ($(gv lv-fill-state cache_entries) entries) |
		| the cache's share (difference) | $(mib "$(((${gs:-0} - ${gm:-0}) * 1024))") | $(num "$gs" && num "$gm" && echo $(((gs - gm) * 1024 / LV_TOPICS)) || echo "?") B | |

		| subscribe → retained value | p50 ms | p99 ms | max ms | × p99 | missing |
		|---|---|---|---|---|---|
		| mosquitto-cable | $(gv lv-lat-cable p50_ms) | $(gv lv-lat-cable p99_ms) | $(gv lv-lat-cable max_ms) | $(adv "$(get lv-lat-cable p99_ms)" "$(get lv-lat-mqtt p99_ms)" lower) | $(gv lv-lat-cable missing) |
		| mosquitto MQTT/WS | $(gv lv-lat-mqtt p50_ms) | $(gv lv-lat-mqtt p99_ms) | $(gv lv-lat-mqtt max_ms) | | $(gv lv-lat-mqtt missing) |

		The live path with the internal client: saturated fan-out to 1000 subscribers
		(as in (c): W messages in flight, so the rate is W over the round trip and an extra
		hop shows), two runs each, alternated, fresh broker per run:
		\`MOSQ_EVT_MESSAGE\` $(f0 "$m")/s, internal client $(f0 "$s")/s: ratio
		$(adv "$s" "$m" higher) (internal ÷ event; runs $(f0 "$(get tp-lv-message-1000-a deliveries_per_s)"), $(f0 "$(get tp-lv-message-1000-b deliveries_per_s)") and $(f0 "$(get tp-lv-state-1000-a deliveries_per_s)"), $(f0 "$(get tp-lv-state-1000-b deliveries_per_s)")).

	EOF
}
if [ "$ONLY" = last_values ]; then
	lv_section
	exit 0
fi
if [ "$ONLY" = shards ]; then
	shards_section | tee "$WORK/shards-section.md"
	exit 0
fi
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
lwsv=$(dpkg-query -W -f='${Version}' libwebsockets17 2> /dev/null)
mosqv=$(dpkg-query -W -f='${Version}' mosquitto 2> /dev/null)
acv=$(dpkg-query -W -f='${Version}' ruby-actioncable 2> /dev/null)
pumav=$(dpkg-query -W -f='${Version}' puma 2> /dev/null)
lost_total=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^lost=/) s += substr($i, 6) } /proto=cable/ { } END { print s + 0 }' <(grep 'proto=cable' "$RESULTS"))

# Plot: latency against clients.
pdat=$WORK/plot.dat
{
	echo "# clients cable_last_p99 mqtt_last_p99 rails_last_p99 cable_p50 mqtt_p50 rails_p50"
	for n in $(echo $SIZES $RAILS_SIZES | tr ' ' '\n' | sort -n | uniq); do
		echo "$n $(gv lat-cable-$n last_p99_ms) $(gv lat-mqtt-$n last_p99_ms) $(gv lat-rails-$n last_p99_ms) $(gv lat-cable-$n p50_ms) $(gv lat-mqtt-$n p50_ms) $(gv lat-rails-$n p50_ms)"
	done
} | awk 'NF == 7 || /^#/' > "$pdat"
bdat=$WORK/bcast.dat
{
	echo "# active cable mqtt rails (websocket-bench p95)"
	for s in $(seq 1 $STEPS); do
		a=$((s * BIG / STEPS))
		c=$(bcp95 cable $a)
		m=$(bcp95 mqtt $a)
		r=$(bcp95 rails $a)
		echo "$a ${c:-?} ${m:-?} ${r:-?}"
	done
} > "$bdat"
if command -v gnuplot > /dev/null; then
	gnuplot <<- EOF 2>> "$LOG"
		set terminal pngcairo size 1000,640 noenhanced font ",11"
		set output "$PNG"
		set datafile missing "?"
		set title "Latency against clients (loopback, 2 cores, $(date -u +%Y-%m-%d))"
		set xlabel "clients"
		set ylabel "ms (log scale)"
		set logscale y
		set grid
		set key left top
		plot "$pdat" using 1:2 with linespoints lw 2 title "mosquitto-cable: last recipient p99 (MQTT publish)", \
		     "$pdat" using 1:3 with linespoints lw 2 title "mosquitto MQTT/WS: last recipient p99", \
		     "$pdat" using 1:4 with linespoints lw 2 title "Rails ActionCable: last recipient p99", \
		     "$bdat" using 1:2 with linespoints dt 2 title "mosquitto-cable: websocket-bench p95", \
		     "$bdat" using 1:3 with linespoints dt 2 title "mosquitto MQTT/WS: websocket-bench p95", \
		     "$bdat" using 1:4 with linespoints dt 2 title "Rails ActionCable: websocket-bench p95"
	EOF
fi

bcline() { # active
	local c m r
	c=$(bcp95 cable "$1")
	m=$(bcp95 mqtt "$1")
	r=$(bcp95 rails "$1")
	echo "| $1 | $(f1 "$c") | $(f1 "$m") | $(adv "$c" "$m" lower) | $(f1 "$r") | $(adv "$c" "$r" lower) |"
}

{
	cat <<- EOF
		# Benchmarks

		Written by \`make bench\` (bench/run.sh) on $START; the suite took $((ELAPSED / 60)) minutes.
		Every figure is printed beside the peers' as a ratio, because absolute times on a
		shared machine drift: **"×" columns say how many times better mosquitto-cable is**
		(peer ÷ cable for times, cable ÷ peer for rates; below 1 means the peer is better).

		## Machine and software

		| | |
		|---|---|
		| CPU | $(nproc) × $model |
		| kernel | $(uname -r) |
		| memory | $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) |
		| nofile (hard, both sides) | $HN |
		| mosquitto | $mosqv (Debian), plugin and its own \`protocol websockets\` listener in one broker |
		| libwebsockets | $lwsv (the plugin's gateway and cable-bench) |
		| Rails peer | $( [ "$RAILS" = 1 ] && echo "ruby-actioncable $acv on puma $pumav, async adapter, 4 workers" || echo "not run" ) |
		| load generator | \`cable-bench\`, one process, one lws thread (+ libmosquitto's thread), on the same 2 cores |

		Both sides run on the same 2 cores over loopback. The suite raises its scheduler
		autogroup's priority (BENCH_PRIORITY) so other work on the machine disturbs it less.

		## Commands

		\`\`\`
		make bench            # = scripts/deps.sh test; build; BUILD=build bench/run.sh
		bench/deps.sh         # gnuplot, ruby-actioncable, puma (Debian packages)
		bench/smoke.sh        # correctness only: 50 clients, no loss (CI)
		\`\`\`

		Each figure below is one run of \`$BUILD/bench/cable-bench --mode MODE --proto cable|mqtt|rails\`;
		the exact command lines and raw \`RESULT\` lines are kept in the run's log
		(printed at the end of \`make bench\`). Load tests use \`plugin_opt_auth anonymous\`;
		the storm also runs with JWT verification. Every connection of a load test is user
		\`anonymous\`, so the broker runs with \`plugin_opt_max_connections 0\` and
		\`plugin_opt_max_connections_per_user 0\` (bench/lib.sh); the soak test keeps the defaults.

	EOF
	shards_section
	cat <<- EOF
		## Targets (issue 5)

		| target | measured (mosquitto-cable) | verdict |
		|---|---|---|
		| ≥ 300k deliveries/s at $BIG subscribers | $(f0 "$(get tp-cable-$BIG deliveries_per_s)")/s | $(verdict "$(get tp-cable-$BIG deliveries_per_s)" 300000 higher) |
		| last of $BIG recipients p99 ≤ 50 ms | $(f1 "$(get lat-cable-$BIG last_p99_ms)") ms | $(verdict "$(get lat-cable-$BIG last_p99_ms)" 50 lower) |
		| websocket-bench p95 ≤ 20 ms at $((BIG / 10)) clients | $(f1 "$(bcp95 cable $((BIG / 10)))") ms | $(verdict "$(bcp95 cable $((BIG / 10)))" 20 lower) |
		| websocket-bench p95 ≤ 100 ms at $((BIG / 2)) clients | $(f1 "$(bcp95 cable $((BIG / 2)))") ms | $(verdict "$(bcp95 cable $((BIG / 2)))" 100 lower) |
		| websocket-bench p95 ≤ 200 ms at $BIG clients | $(f1 "$(bcp95 cable $BIG)") ms | $(verdict "$(bcp95 cable $BIG)" 200 lower) |
		| ≤ 3 KB broker memory per idle connection | $(kb "$(get idle-cable bytes_per_conn)") | $(verdict "$(get idle-cable bytes_per_conn)" 3072 lower) |
		| perform → MQTT subscriber p99 ≤ 1 ms | $(f1 "$(get perf-cable p99_ms)") ms | $(verdict "$(get perf-cable p99_ms)" 1 lower) |
		| $STORM-connection storm p95 ≤ 300 ms (with JWT) | $(f1 "$(get storm-cable-jwt p95_ms)") ms, $(get storm-cable-jwt welcomed) welcomed, $(get storm-cable-jwt failed) failed | $( [ "$(get storm-cable-jwt welcomed)" = "$STORM" ] && verdict "$(get storm-cable-jwt p95_ms)" 300 lower || echo "**missed**: not every connection was welcomed (see below)") |
		| zero lost messages | $lost_total lost (all mosquitto-cable runs) | $( [ "$lost_total" = 0 ] && echo "**met**" || echo "**missed**") |

		## (a) websocket-bench broadcast

		websocket-bench's algorithm: clients join in steps of $((BIG / STEPS)); at each step
		8 broadcasts are kept in flight, each from a random client, until 100
		samples; the payload is websocket-bench's (\`{"action":"broadcast","payload":{"sendTime":"<ns>","padding":"<200 bytes>"}}\`);
		p95 = sorted[95·n/100]; after each step every client must have received every
		broadcast (loss check). **RTT definition:** mosquitto-cable and MQTT have no
		\`broadcastResult\` reply, so for every server the RTT is the time until the sender
		receives *its own broadcast* (it is subscribed too). Rails' BenchmarkChannel also
		sends broadcastResult; it is ignored so all three are timed the same way.

		| clients | cable p95 ms | MQTT/WS p95 ms | × vs MQTT/WS | Rails p95 ms | × vs Rails |
		|---|---|---|---|---|---|
	EOF
	for s in $(seq 1 $STEPS); do bcline $((s * BIG / STEPS)); done
	echo
	echo "Loss: cable $(awk '/label=bc-cable/ { for (i = 1; i <= NF; i++) if ($i ~ /^lost=/) s += substr($i, 6) } END { print s + 0 }' "$RESULTS"), MQTT/WS $(awk '/label=bc-mqtt/ { for (i = 1; i <= NF; i++) if ($i ~ /^lost=/) s += substr($i, 6) } END { print s + 0 }' "$RESULTS"), Rails $(awk '/label=bc-rails/ { for (i = 1; i <= NF; i++) if ($i ~ /^lost=/) s += substr($i, 6) } END { print s + 0 }' "$RESULTS") broadcasts missing over all steps."
	cat <<- EOF

		## (b) Per-recipient latency of a stamped MQTT publish

		A device-side MQTT client (libmosquitto, TCP_NODELAY) publishes \`{"seq":S,"t":T}\`
		to \`bench/all\`; every subscribed browser records now − T (same clock). p50/p99/max
		are over every delivery; "last" is the latency of the last of the N recipients of
		each message, p99 over messages. Rails has no MQTT side: its publish is a
		\`perform("broadcast")\` from one extra connection.

		![latency against clients]($(basename "$PNG"))

		The floor is \`cable-floor\` in the same run: one thread writing one 120-byte frame
		to each of N loopback sockets while another drains them, with no server at all
		(p50 of the time to the last byte over 30 rounds; at 10,000 the descriptor limit
		leaves room for about 9,980 pairs). "÷ floor" is cable's last-recipient p50 over
		that floor: how close a single message gets to what one core can do.

		| clients | cable p50 / p99 / max ms | cable last p50 / p99 ms | floor last p50 ms | ÷ floor | MQTT/WS last p99 ms | × | Rails last p99 ms | × | lost (cable) |
		|---|---|---|---|---|---|---|---|---|---|
	EOF
	for n in $(echo $SIZES $RAILS_SIZES | tr ' ' '\n' | sort -n | uniq); do
		c=lat-cable-$n
		echo "| $n | $(f1 "$(get $c p50_ms)") / $(f1 "$(get $c p99_ms)") / $(f1 "$(get $c max_ms)") | $(f1 "$(get $c last_p50_ms)") / $(f1 "$(get $c last_p99_ms)") | $(f1 "$(get floor-$n last_ms_p50)") | $(adv "$(get $c last_p50_ms)" "$(get floor-$n last_ms_p50)" higher) | $(f1 "$(get lat-mqtt-$n last_p99_ms)") | $(adv "$(get $c last_p99_ms)" "$(get lat-mqtt-$n last_p99_ms)" lower) | $(f1 "$(get lat-rails-$n last_p99_ms)") | $(adv "$(get $c last_p99_ms)" "$(get lat-rails-$n last_p99_ms)" lower) | $(get $c lost) |"
	done
	cat <<- EOF

		## (c) Saturated fan-out

		The publisher keeps W messages in flight (W = 32 at 1k, 16 at 10k subscribers) and
		publishes the next as soon as one has reached every subscriber; deliveries/s over
		$TP_SECS s after a 1 s warm-up. The generator's own CPU is shown so that a
		client-bound run can be told apart (one core = 100 %).

		| subscribers | cable deliveries/s | MQTT/WS deliveries/s | × | Rails deliveries/s | × | server CPU (cable) | server CPU µs per delivery (cable / MQTT/WS) | generator CPU (cable) | lost (cable) |
		|---|---|---|---|---|---|---|---|---|---|
	EOF
	for n in 1000 $BIG; do
		c=tp-cable-$n
		r=$(get tp-rails-$n deliveries_per_s)
		echo "| $n | $(f0 "$(get $c deliveries_per_s)") | $(f0 "$(get tp-mqtt-$n deliveries_per_s)") | $(adv "$(get $c deliveries_per_s)" "$(get tp-mqtt-$n deliveries_per_s)" higher) | $(f0 "$r") | $(adv "$(get $c deliveries_per_s)" "$r" higher) | $(f0 "$(get $c server_cpu_pct)") % | $(us_per "$c") / $(us_per "tp-mqtt-$n") | $(f0 "$(get $c gen_cpu_pct)") % | $(get $c lost) |"
	done
	cat <<- EOF

		### Wildcard streams that do not match

		One browser on \`bench/all\` at saturation (W = 32), on a broker with $WILD_THREADS gateway
		shard (so every decoy is in the browser's index), while a second, idle generator
		holds D subscriptions to SensorChannel, each its own wildcard stream
		\`sites/d<i>-<k>/sensors/#\` that no message matches (50 per connection). Before the
		topic tree the gateway tried every wildcard filter for every message.

		| decoy wildcard streams | messages/s to the one browser | ÷ none | server CPU µs per message |
		|---|---|---|---|
	EOF
	for d in 0 5000 20000; do
		echo "| $d | $(f0 "$(get wild-cable-$d deliveries_per_s)") | $(adv "$(get wild-cable-0 deliveries_per_s)" "$(get wild-cable-$d deliveries_per_s)" higher) | $(us_per "wild-cable-$d") |"
	done
	cat <<- EOF

		## (d) Idle connections ($IDLE_N, subscribed, 3 s ActionCable pings)

		Server RSS growth ÷ N from /proc/PID/status (a fresh server per row); kernel socket
		memory apart: slab growth from /proc/meminfo and socket buffers from /proc/net/sockstat
		(both ends of each loopback connection, and anything else the machine did meanwhile;
		negative means other work freed memory); idle CPU over $(get idle-cable idle_secs) s. The MQTT peer's clients use
		keepalive 0, so it sends nothing while idle.

		| server | RSS per connection | × | kernel slab growth per connection (both ends) | kernel socket buffers per connection | idle CPU (all connections) | CPU µs per connection per s |
		|---|---|---|---|---|---|---|
		| mosquitto-cable (2 shards) | $(kb "$(get idle-cable bytes_per_conn)") | | $(kb "$(get idle-cable slab_bytes_per_conn)") | $(f0 "$(get idle-cable sock_mem_bytes_per_conn)") B | $(get idle-cable server_cpu_pct) % | $(get idle-cable cpu_us_per_conn_per_s) |
		| mosquitto-cable (1 shard) | $(kb "$(get idle-cable-t1 bytes_per_conn)") | | $(kb "$(get idle-cable-t1 slab_bytes_per_conn)") | $(f0 "$(get idle-cable-t1 sock_mem_bytes_per_conn)") B | $(gv idle-cable-t1 server_cpu_pct) % | $(gv idle-cable-t1 cpu_us_per_conn_per_s) |
		| mosquitto MQTT/WS | $(kb "$(get idle-mqtt bytes_per_conn)") | $(adv "$(get idle-cable bytes_per_conn)" "$(get idle-mqtt bytes_per_conn)" lower) | $(kb "$(get idle-mqtt slab_bytes_per_conn)") | $(f0 "$(get idle-mqtt sock_mem_bytes_per_conn)") B | $(get idle-mqtt server_cpu_pct) % | $(get idle-mqtt cpu_us_per_conn_per_s) |
		| Rails ActionCable | $(kb "$(get idle-rails bytes_per_conn)") | $(adv "$(get idle-cable bytes_per_conn)" "$(get idle-rails bytes_per_conn)" lower) | $(kb "$(get idle-rails slab_bytes_per_conn)") | $(f0 "$(get idle-rails sock_mem_bytes_per_conn)") B | $(get idle-rails server_cpu_pct) % | $(get idle-rails cpu_us_per_conn_per_s) |

		## (e) Connection storm ($STORM at once)

		All connections are started together (256 per event-loop turn), against
		$DEF_THREADS gateway shards (their spread: see the shards section); the time is from
		the connect call to the first \`welcome\` (CONNACK for MQTT). The hard nofile limit
		of $HN on each side bounds the size.

		| server | token | welcomed | failed | p50 ms | p95 ms | × p95 | max ms |
		|---|---|---|---|---|---|---|---|
		| mosquitto-cable | JWT (HS256) | $(get storm-cable-jwt welcomed) | $(get storm-cable-jwt failed) | $(f1 "$(get storm-cable-jwt p50_ms)") | $(f1 "$(get storm-cable-jwt p95_ms)") | | $(f1 "$(get storm-cable-jwt max_ms)") |
		| mosquitto-cable | anonymous | $(get storm-cable-anon welcomed) | $(get storm-cable-anon failed) | $(f1 "$(get storm-cable-anon p50_ms)") | $(f1 "$(get storm-cable-anon p95_ms)") | | $(f1 "$(get storm-cable-anon max_ms)") |
		| mosquitto MQTT/WS | none | $(get storm-mqtt welcomed) | $(get storm-mqtt failed) | $(f1 "$(get storm-mqtt p50_ms)") | $(f1 "$(get storm-mqtt p95_ms)") | $(adv "$(get storm-cable-anon p95_ms)" "$(get storm-mqtt p95_ms)" lower) (anon) | $(f1 "$(get storm-mqtt max_ms)") |
		| Rails ActionCable | JWT (HS256, Ruby) | $(get storm-rails welcomed) | $(get storm-rails failed) | $(f1 "$(get storm-rails p50_ms)") | $(f1 "$(get storm-rails p95_ms)") | $(adv "$(get storm-cable-jwt p95_ms)" "$(get storm-rails p95_ms)" lower) | $(f1 "$(get storm-rails max_ms)") |

		## (f) perform → MQTT subscriber

		One browser performs \`broadcast\` with \`{"seq":S,"t":T}\` every 2 ms (2000 times);
		an MQTT subscriber on \`bench/all\` records now − T. The MQTT/WS peer publishes the
		same payload over its WebSocket. (Rails has no MQTT side.)

		| server | p50 ms | p99 ms | max ms | × p99 | lost |
		|---|---|---|---|---|---|
		| mosquitto-cable | $(get perf-cable p50_ms) | $(get perf-cable p99_ms) | $(get perf-cable max_ms) | | $(get perf-cable lost) |
		| mosquitto MQTT/WS | $(get perf-mqtt p50_ms) | $(get perf-mqtt p99_ms) | $(get perf-mqtt max_ms) | $(adv "$(get perf-cable p99_ms)" "$(get perf-mqtt p99_ms)" lower) | $(get perf-mqtt lost) |

	EOF
	lv_section
	ext_section
	if [ -s "$WORK/perf-dso.txt" ]; then
		echo "## Where the gateway threads' time goes (perf, saturated fan-out at $BIG)"
		echo
		echo "\`perf record -g -t <gateway threads>\` ($DEF_THREADS shards) for 4 s during a saturated run. By object:"
		echo
		echo '```'
		cat "$WORK/perf-dso.txt"
		echo '```'
		echo
		echo "Selected call-graph totals (children included):"
		echo
		echo '```'
		cat "$WORK/perf-sym.txt"
		echo '```'
		echo
	fi
	grep -q " label=sys-tp-1000 " "$RESULTS" && sys_section
	if [ -s "$WORK/events.txt" ]; then
		echo "## Failed phases and broker exits"
		echo
		echo "The figures of these runs are missing or not valid: a phase could not run, a run"
		echo "gave no result, or the broker went away while it ran."
		echo
		sed 's/^/* /' "$WORK/events.txt"
		echo
	fi
	if [ -f "$ROOT/bench/analysis.md" ]; then
		cat "$ROOT/bench/analysis.md"
		echo
	fi
	cat <<- EOF
		## Soak test

		Minutes of churn with faults at every plugin default (JWT, 1 MiB outbound bound):
		3,000 browsers subscribing, unsubscribing, speaking, reconnecting, resetting,
		half-writing frames and stalling while devices publish, and 200 healthy browsers
		checking every message. Its method and measured numbers are in [soak.md](soak.md)
		(\`bench/soak.sh\`, not part of \`make bench\`).

	EOF
	# The last recorded soak result, as docs/soak.md states it.
	if [ -f "$ROOT/docs/soak.md" ]; then
		sed -n '/^\*\*Result of the recorded run/,/^## /p' "$ROOT/docs/soak.md" | sed '$d' |
			sed 's|(see \[Findings\](#findings))|(see [soak.md](soak.md#findings))|; s|, below)|, in soak.md)|'
	fi
	echo "## Raw results"
	echo
	echo '```'
	sed 's/^RESULT //' "$RESULTS"
	echo '```'
} > "$OUT"
echo "bench: wrote $OUT and $PNG" >&2
