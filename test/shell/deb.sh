#!/bin/bash
# The Debian package: build it with CPack, install it next to Debian's mosquitto
# package, start the broker with the installed plugin (no path into the build tree),
# check a browser-facing listener comes up, then remove the package again.
# Needs root (dpkg -i); skipped with a message otherwise.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "skip: deb.sh needs root"; exit 0; fi
if dpkg-query -W -f='${Status}' mosquitto-cable 2>/dev/null | grep -q "ok installed"; then
	echo "skip: mosquitto-cable is already installed on this machine; not touching it"
	exit 0
fi
. "$repo/test/shell/broker.bash"
broker_dir # $tmp (readable by the mosquitto user) with a secret, $mqtt, $ws
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	dpkg -r mosquitto-cable > /dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

cmake -S "$repo" -B "$tmp/build" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF > /dev/null
cmake --build "$tmp/build" -j "$(nproc)" > /dev/null
(cd "$tmp/build" && cpack -G DEB > /dev/null)
deb=$(ls "$tmp"/build/mosquitto-cable_*.deb)
echo "# built $(basename "$deb")"
dpkg -i "$deb" > "$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; echo "not ok - dpkg -i"; exit 1; }
echo "ok - installs beside the mosquitto package"

lib=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
for f in "$lib/mosquitto_cable.so" "$lib/mosquitto_cable_gateway.so" /usr/bin/mosquitto-cable-token \
	/usr/share/doc/mosquitto-cable/channels.example.json /usr/share/doc/mosquitto-cable/acl.example; do
	[ -e "$f" ] || { echo "not ok - $f missing"; exit 1; }
done
echo "ok - plugin, gateway, token tool and examples in place"

broker_conf "$lib/mosquitto_cable.so" \
	"plugin_opt_channels_file /usr/share/doc/mosquitto-cable/channels.example.json" \
	"plugin_opt_acl_file /usr/share/doc/mosquitto-cable/acl.example"
/usr/sbin/mosquitto -c "$tmp/m.conf" > "$tmp/log" 2>&1 &
pid=$!
wait_listening "$tmp/log" || { cat "$tmp/log"; echo "not ok - broker with the installed plugin"; exit 1; }
grep -q "libwebsockets.so.17 .*isolated" "$tmp/log" || { cat "$tmp/log"; exit 1; }
[ "$(curl -s "http://127.0.0.1:$ws/health")" = ok ] || { echo "not ok - /health"; exit 1; }
token=$(/usr/bin/mosquitto-cable-token --secret-file "$tmp/secret" --user alice --ttl 60)
[ -n "$token" ] || exit 1
echo "ok - mosquitto starts with the installed plugin; /health answers; the tool mints tokens"
kill "$pid"; wait "$pid" || true; pid=
dpkg -r mosquitto-cable > /dev/null
[ ! -e "$lib/mosquitto_cable.so" ] || { echo "not ok - files left after dpkg -r"; exit 1; }
echo "ok - removes cleanly"
