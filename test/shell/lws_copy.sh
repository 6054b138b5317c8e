#!/bin/bash
# Which libwebsockets does the plugin use? Start Debian's broker with the plugin under
# LD_DEBUG=bindings and check, from the dynamic linker's own record, that:
#   - every lws_* call made by the gateway binds to libwebsockets.so.17;
#   - so does lws' libev glue, libwebsockets-evlib_ev.so (the default event loop);
#   - libwebsockets.so.17 binds its own lws_* references to itself, never to the copy
#     that /usr/sbin/mosquitto embeds and exports;
#   - the plugin's start-up line names that one copy.
# Also shows that the broker really does export its own lws (the reason for all this).
set -euo pipefail
build=${CABLE_BUILD_DIR:?}
repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$repo/test/shell/broker.bash"
broker_dir
pid=
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
broker_conf "$build/mosquitto_cable.so" "plugin_opt_channels_file $repo/config/channels.example.json"

LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/ld" /usr/sbin/mosquitto -c "$tmp/m.conf" > "$tmp/log" 2>&1 &
pid=$!
wait_listening "$tmp/log" || { cat "$tmp/log"; echo "FAIL: broker did not start"; exit 1; }
kill -TERM $pid; wait $pid || true
cat "$tmp"/ld.* > "$tmp/bindings"

fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

exported=$(nm -D --defined-only /usr/sbin/mosquitto | grep -c ' T lws_' || true)
echo "# /usr/sbin/mosquitto exports $exported lws_* functions"

gw_lws=$(grep "binding file $build/mosquitto_cable_gateway.so" "$tmp/bindings" | grep "symbol \`lws_" || true)
check "the gateway makes lws calls" '[ -n "$gw_lws" ]'
check "every gateway lws call binds to libwebsockets.so.17" \
	'! grep -v "to /lib/x86_64-linux-gnu/libwebsockets.so.17\|to /usr/lib/x86_64-linux-gnu/libwebsockets.so.17" <<<"$gw_lws" | grep -q .'
check "libwebsockets.so.17 never binds an lws symbol to the broker's copy" \
	'! grep "binding file [^ ]*libwebsockets.so.17" "$tmp/bindings" | grep "to /usr/sbin/mosquitto" | grep -q "symbol \`lws_"'
# lws loads its libev glue (plugin_opt_event_loop epoll, the default) with a plain
# dlopen(); the gateway loads it first with RTLD_DEEPBIND so its lws calls bind here too.
ev_lws=$(grep "binding file [^ ]*libwebsockets-evlib_ev.so" "$tmp/bindings" | grep "symbol \`lws_" || true)
check "the libev glue makes lws calls" '[ -n "$ev_lws" ]'
check "every lws call of the libev glue binds to libwebsockets.so.17" \
	'! grep -v "to /lib/x86_64-linux-gnu/libwebsockets.so.17\|to /usr/lib/x86_64-linux-gnu/libwebsockets.so.17" <<<"$ev_lws" | grep -q .'
check "the libev glue binds nothing to the broker's copy" \
	'! grep "binding file [^ ]*libwebsockets-evlib_ev.so" "$tmp/bindings" | grep -q "to /usr/sbin/mosquitto"'
check "the plugin itself links no lws" \
	'! grep "binding file $build/mosquitto_cable.so " "$tmp/bindings" | grep -q "symbol \`lws_"'
check "the start-up line names the isolated copy" \
	'grep -q "mosquitto-cable: libwebsockets 4.1.6.* from /.*libwebsockets.so.17 .*isolated" "$tmp/log"'
grep "mosquitto-cable: libwebsockets" "$tmp/log" | sed 's/^/# /'
grep "binding file $build/mosquitto_cable_gateway.so" "$tmp/bindings" | grep "lws_create_context" | sed 's/^ *[0-9]*: */# /'

# The start-up check is real: load the gateway without RTLD_DEEPBIND (a test hook) and
# its lws calls bind to the broker's copy, which the plugin must refuse.
CABLE_NO_DEEPBIND=1 timeout 10 /usr/sbin/mosquitto -c "$tmp/m.conf" > "$tmp/log2" 2>&1 && rc=0 || rc=$?
check "without DEEPBIND the broker refuses to start" '[ $rc -ne 0 ] && [ $rc -ne 124 ]'
check "and says why" 'grep -q "lws_create_context resolves to .*mosquitto, not to libwebsockets.so.*refusing to start" "$tmp/log2"'

if [ $fail -ne 0 ]; then cat "$tmp/log" "$tmp/log2"; exit 1; fi
