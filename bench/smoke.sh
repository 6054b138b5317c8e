#!/bin/bash
# The correctness smoke run (CI; a few seconds, never timings): a private broker with the
# plugin, 50 ActionCable clients and 50 MQTT-over-WebSockets clients, 40 messages each
# (half MQTT publishes from a device, half browser performs). Exit status 1 if any
# message is lost, duplicated or out of order, 2 if the run could not be set up.
#   bench/smoke.sh [BUILD_DIR]        (default: $BUILD, else build)
# SMOKE_THREADS=N sets plugin_opt_threads (gateway shards); unset, the plugin's default
# (one per CPU) applies, as in ctest's bench.smoke.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build}}
BENCH=$BUILD/bench/cable-bench
[ -x "$BENCH" ] || { echo "smoke: $BENCH not built" >&2; exit 2; }
command -v mosquitto > /dev/null || { echo "smoke: mosquitto not installed" >&2; exit 2; }

# Ports of our own, away from the full suite's, unless given.
base=$((22000 + $$ % 1000 * 4)) # below the ephemeral port range
CABLE_PORT=${CABLE_PORT:-$base}
MQTTWS_PORT=${MQTTWS_PORT:-$((base + 1))}
MQTT_PORT=${MQTT_PORT:-$((base + 2))}
WORK=$(mktemp -d /tmp/cable-smoke.XXXXXX)
. "$ROOT/bench/lib.sh"
trap 'stop_all; rm -rf "$WORK"' EXIT
prepare_work
start_broker anonymous "${SMOKE_THREADS:-}" || exit 2

rc=0
timeout 60 "$BENCH" --smoke --proto cable --port "$CABLE_PORT" --mqtt-port "$MQTT_PORT" || rc=1
timeout 60 "$BENCH" --smoke --proto mqtt --port "$MQTTWS_PORT" --path /mqtt \
	--mqtt-port "$MQTT_PORT" || rc=1
if [ $rc -ne 0 ]; then
	echo "smoke: FAILED; broker log:" >&2
	tail -n 20 "$WORK/broker.log" >&2
	exit 1
fi
echo "smoke: 2 passed, 0 failed (plugin_opt_threads ${SMOKE_THREADS:-default})"
