#!/bin/bash
# The real broker with the plugin under valgrind (memcheck), through a complete client
# session (test/deep/client.mjs) and a SIGTERM shutdown with browsers still connected.
# Fails on any invalid access or uninitialised use, and on any leak whose stack goes
# through the plugin or its gateway. (Mosquitto's own allocations are not judged.)
# `valgrind.sh state`: the same with last values on (plugin_opt_state_listener), so the
# messages reach browsers through the gateway's internal MQTT client.
set -euo pipefail
build=${CABLE_BUILD_DIR:?}
repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$repo/test/shell/broker.bash"
broker_dir
pid=
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
extra=()
if [ "${1:-}" = state ]; then
	chmod 777 "$tmp" # the broker, as the mosquitto user, creates its socket here
	extra=("plugin_opt_state_listener $tmp/state.sock" "listener 0 $tmp/state.sock")
fi
# The example map plus a channel with presence (TTL 1 s, a watcher count) and whisper.
node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1]));
m.channels.DeskChannel = { params: { id: { type: "integer" } }, streams: ["desks/{id}/state"],
  presence: { ttl: 1, info_max_bytes: 32, watchers_topic: "desks/{id}/watchers" }, whisper: { burst: 3 } };
require("fs").writeFileSync(process.argv[2], JSON.stringify(m));' "$repo/config/channels.example.json" "$tmp/channels.json"
broker_conf "$build/mosquitto_cable.so" "plugin_opt_channels_file $tmp/channels.json" "${extra[@]}"

valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=none --track-origins=yes --num-callers=30 --fullpath-after= --keep-debuginfo=yes \
	--log-file="$tmp/vg" /usr/sbin/mosquitto -c "$tmp/m.conf" > "$tmp/log" 2>&1 &
pid=$!
wait_listening "$tmp/log" || wait_listening "$tmp/log" || wait_listening "$tmp/log" ||
	{ cat "$tmp/log" "$tmp/vg"; exit 1; } # valgrind starts slowly: up to 30 s

(cd "$repo" && node test/deep/client.mjs "ws://127.0.0.1:$ws/cable" "$mqtt" "$tmp/secret")
kill -TERM $pid
rc=0; wait $pid || rc=$?

fail=0
errors=$(grep -E "^==[0-9]+== ERROR SUMMARY" "$tmp/vg" | sed 's/.*ERROR SUMMARY: \([0-9]*\).*/\1/')
echo "# valgrind: $errors errors (invalid accesses, uninitialised values)"
[ "$errors" = 0 ] || fail=1
# Leak records whose stack passes through our code.
ours=$(awk -v repo="$repo" '/^==[0-9]+== [0-9,]+ (\(.*\) )?bytes in [0-9,]+ blocks are (definitely|indirectly) lost/ {rec=$0; keep=0; next}
	rec && index($0, repo "/plugin/") {keep=1}
	rec && /^==[0-9]+== $/ {if (keep) print rec; rec=""; keep=0}' "$tmp/vg")
if [ -n "$ours" ]; then
	echo "not ok - leaks through the plugin:"; echo "$ours"; fail=1
else
	echo "ok - no leak through the plugin or its gateway"
fi
grep -q "mosquitto-cable" "$tmp/log" || fail=1
if [ $fail -ne 0 ] || [ $rc -ne 0 ]; then
	echo "broker exit status $rc"; cat "$tmp/log"; cat "$tmp/vg"; exit 1
fi
echo "ok - clean shutdown under valgrind (exit $rc)"
