#!/bin/bash
# The soak test (issue 4, item 8): a private broker with the plugin (JWT auth, every limit
# at its default, plugin_opt_max_outbound_bytes included) and cable-soak against it:
# thousands of browsers that subscribe, unsubscribe, resubscribe, speak, reconnect and
# fault at random while MQTT devices publish; healthy browsers check every message.
# What is measured and checked is described at the top of bench/cable_soak.c and in
# docs/soak.md. Takes SOAK_SECONDS plus about a minute.
#
#   bench/soak.sh [BUILD_DIR]                 (default: $BUILD, else build)
#
# Environment:
#   SOAK_SECONDS=300     length of the churn phase
#   SOAK_CLIENTS=3000    churning browsers (plus SOAK_HEALTHY; both within nofile)
#   SOAK_HEALTHY=200     browsers that never fault and check delivery
#   SOAK_RATE=200        device messages per second (all topics)
#   SOAK_FAULT_PCT=10    percent of churning sessions that end in a fault
#   SOAK_IDLE=20         seconds of idle MQTT latency before the browsers come
#   SOAK_SETTLE=15       seconds after the last browser left before memory is read
#   SOAK_SEED=1          random seed (the same seed gives the same choices)
#   SOAK_ARGS="..."      more cable-soak options (cable-soak --help)
#   SOAK_THREADS=n       plugin_opt_threads (default: the plugin's, one per CPU)
#   SOAK_LOG=file        also keep the full output here
#   SOAK_PRIORITY=0      do not raise this session's CPU priority (as bench/run.sh)
#   SOAK_HEAP=0          skip the heap diagnostics (needs gdb): glibc's malloc_stats() in
#                        the broker before and after (bytes in use vs. bytes held), and,
#                        after every measurement, the RSS that malloc_trim(0) gets back
# Exit status: cable-soak's (0 pass, 1 correctness, 3 RSS or latency criterion), or 1 if
# the broker died or its log shows a crash; 2 if the run could not be set up.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build}}
SOAK=$BUILD/bench/cable-soak
[ -x "$SOAK" ] || { echo "soak: $SOAK not built (cmake --build $BUILD)" >&2; exit 2; }
command -v mosquitto > /dev/null || { echo "soak: mosquitto not installed" >&2; exit 2; }

# Ports of our own (below the ephemeral range), away from bench/run.sh and bench/smoke.sh.
base=$((26000 + $$ % 500 * 4))
CABLE_PORT=${CABLE_PORT:-$base}
MQTTWS_PORT=${MQTTWS_PORT:-$((base + 1))}
MQTT_PORT=${MQTT_PORT:-$((base + 2))}
WORK=$(mktemp -d /tmp/cable-soak.XXXXXX)
BENCH_LIFT_LIMITS=0 # every plugin limit at its default
. "$ROOT/bench/lib.sh"
trap 'stop_all; [ -n "${OLD_AG:-}" ] && echo "$OLD_AG" > /proc/$$/autogroup 2>/dev/null; echo "soak: broker log and output in $WORK" >&2' EXIT

if [ "${SOAK_PRIORITY:-1}" = 1 ] && [ -w /proc/$$/autogroup ]; then
	OLD_AG=$(sed -n 's/.* nice //p' /proc/$$/autogroup)
	echo -15 > /proc/$$/autogroup 2> /dev/null || OLD_AG=
fi

SECS=${SOAK_SECONDS:-300}
CLIENTS=${SOAK_CLIENTS:-3000}
HEALTHY=${SOAK_HEALTHY:-200}
HN=$(ulimit -Hn)
if [ $((CLIENTS + HEALTHY + 100)) -gt "$HN" ]; then
	echo "soak: $CLIENTS + $HEALTHY browsers exceed the nofile limit $HN" >&2
	exit 2
fi

# heap_stats LABEL: glibc's per-arena totals, printed by the broker itself (to broker.out).
# gdb stops the broker for a moment, so this runs only before and after the measurements.
HEAP=${SOAK_HEAP:-1}
command -v gdb > /dev/null || HEAP=0
heap_stats() {
	echo "--- heap $1" >> "$WORK/broker.out"
	timeout 30 gdb -p "$BROKER_PID" -batch -ex 'call (void)malloc_stats()' > /dev/null 2>&1
	sleep 0.3
}
heap_total() { # LABEL system|in_use -> KiB over all arenas
	awk -v l="--- heap $1" -v k="$2" '
		$0 == l { on = 1; next } /^--- heap/ { on = 0 }
		on && /^Total \(incl. mmap\):/ { t = 1; next }
		on && t && k == "system" && /system bytes/ { print int($4 / 1024); exit }
		on && t && k == "in_use" && /in use bytes/ { print int($5 / 1024); exit }' "$WORK/broker.out"
}

prepare_work
start_broker jwt ${SOAK_THREADS:-} || exit 2
sleep 1
[ "$HEAP" = 1 ] && heap_stats before
echo "soak: broker pid $BROKER_PID, ws://127.0.0.1:$CABLE_PORT/cable (JWT), MQTT $MQTT_PORT;" \
	"$CLIENTS + $HEALTHY browsers for $SECS s" >&2
START=$(date -u '+%Y-%m-%d %H:%M UTC')
# Bounded: the soak itself, the idle and settle phases, the ramp and the drains.
limit=$((SECS + ${SOAK_IDLE:-20} + ${SOAK_SETTLE:-15} + 300))
# shellcheck disable=SC2086
timeout "$limit" "$SOAK" --port "$CABLE_PORT" --mqtt-port "$MQTT_PORT" \
	--secret-file "$WORK/jwt-secret" --pid "$BROKER_PID" \
	--duration "$SECS" --clients "$CLIENTS" --healthy "$HEALTHY" \
	--rate "${SOAK_RATE:-200}" --fault-pct "${SOAK_FAULT_PCT:-10}" \
	--idle "${SOAK_IDLE:-20}" --settle "${SOAK_SETTLE:-15}" --seed "${SOAK_SEED:-1}" \
	--label "soak-$SECS" ${SOAK_ARGS:-} > "$WORK/result.txt" 2> "$WORK/soak.err" &
spid=$!
# Show progress as it comes.
tail -n +1 -f "$WORK/soak.err" --pid "$spid" >&2 &
wait "$spid"
rc=$?
sleep 0.3
cat "$WORK/result.txt"

# The broker must still be there, and its log must show no crash.
if ! kill -0 "$BROKER_PID" 2> /dev/null; then
	echo "soak: FAILED: the broker (pid $BROKER_PID) is gone" >&2
	rc=1
fi
if grep -qiE 'segmentation|abort|assert|double free|corrupt' "$WORK/broker.out" "$WORK/broker.log"; then
	echo "soak: FAILED: the broker log reports a crash:" >&2
	grep -iE 'segmentation|abort|assert|double free|corrupt' "$WORK/broker.out" "$WORK/broker.log" | head >&2
	rc=1
fi
if [ "$HEAP" = 1 ] && kill -0 "$BROKER_PID" 2> /dev/null; then
	heap_stats after
	rss_pre=$(awk '/^VmRSS/ { print $2 }' "/proc/$BROKER_PID/status")
	timeout 30 gdb -p "$BROKER_PID" -batch -ex 'call (int)malloc_trim(0)' > /dev/null 2>&1
	sleep 0.5
	rss_trim=$(awk '/^VmRSS/ { print $2 }' "/proc/$BROKER_PID/status")
	echo "HEAP in_use_before_kib=$(heap_total before in_use) in_use_after_kib=$(heap_total after in_use)" \
		"held_before_kib=$(heap_total before system) held_after_kib=$(heap_total after system)" \
		"rss_end_kib=$rss_pre rss_after_malloc_trim_kib=$rss_trim" | tee -a "$WORK/result.txt"
fi
slow_log=$(grep -c 'closed: too slow' "$WORK/broker.log")
echo "soak: broker log: $slow_log 'too slow' closes, $(grep -c 'unauthorized' "$WORK/broker.log") unauthorized," \
	"$(grep -ciE 'error' "$WORK/broker.log") error lines" >&2
{
	echo "date=$START"
	echo "cpu=$(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "kernel=$(uname -r)"
	echo "mosquitto=$(dpkg-query -W -f='${Version}' mosquitto 2> /dev/null)"
	echo "libwebsockets=$(dpkg-query -W -f='${Version}' libwebsockets17 2> /dev/null)"
	echo "build=$BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2> /dev/null))"
	echo "broker_log_too_slow=$slow_log"
	echo "rc=$rc"
} > "$WORK/machine.txt"
if [ -n "${SOAK_LOG:-}" ]; then
	cat "$WORK/machine.txt" "$WORK/soak.err" "$WORK/result.txt" > "$SOAK_LOG"
fi
exit $rc
