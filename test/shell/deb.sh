#!/bin/bash
# The Debian package, installed and configured exactly as the README's "Using it with
# your broker" section says: its shell blocks and its drop-in are taken from README.md
# and run in order, with /etc/mosquitto moved to a scratch directory, free ports for
# 1883 and 8080, and the broker started by hand instead of `systemctl restart` (no
# system service is touched). Then a real client connects with the tool's token, and
# the package is removed again. Needs root (dpkg -i) and a machine without the
# package: otherwise it says why and exits 77, which ctest reports as "Skipped"
# (SKIP_RETURN_CODE), never as a pass.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIPPED: the Debian package was not tested: $*"; exit 77; }
if [ "$(id -u)" -ne 0 ]; then skip "deb.sh needs root (dpkg -i); run make test as root"; fi
if dpkg-query -W -f='${Status}' mosquitto-cable 2>/dev/null | grep -q "ok installed"; then
	skip "mosquitto-cable is already installed on this machine; not touching it"
fi
. "$repo/test/shell/broker.bash"
broker_dir # $tmp (readable by the mosquitto user), $mqtt, $ws
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	dpkg -r mosquitto-cable > /dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
lib=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
etc=$tmp/etc/mosquitto

# The section's fenced blocks, in order: block N goes to $tmp/block.N.
awk -v out="$tmp/block" '
	/^## Using it with your broker/ { on = 1; next }
	on && /^##/ { exit }
	on && /^```/ { if (inblock) { inblock = 0 } else { inblock = 1; n++ } ; next }
	on && inblock { print > (out "." n) }' "$repo/README.md"
[ -s "$tmp/block.4" ] || { echo "not ok - README's section has not its four blocks"; exit 1; }

# Debian's mosquitto.conf, moved to the scratch dir: it includes conf.d; no pid file,
# persistence or log file of the system broker's.
mkdir -p "$etc/conf.d"
sed -e "s|/etc/mosquitto|$etc|g" -e '/^pid_file/d' -e 's/^persistence true/persistence false/' \
	-e 's|^log_dest file .*|log_dest stderr|' /etc/mosquitto/mosquitto.conf > "$etc/mosquitto.conf"
grep -q "^include_dir $etc/conf.d" "$etc/mosquitto.conf" || { echo "not ok - no include_dir"; exit 1; }

start_broker() {
	/usr/sbin/mosquitto -c "$etc/mosquitto.conf" > "$tmp/log" 2>&1 &
	pid=$!
	wait_listening "$tmp/log" || { cat "$tmp/log"; echo "not ok - broker with the installed plugin"; exit 1; }
}
# What changes between the README and this scratch run, and nothing else.
localize() {
	sed -e 's/^sudo //; s/| sudo /| /' \
		-e "s|/etc/mosquitto|$etc|g" \
		-e "s|\(\./\)\{0,1\}build-deb|$tmp/build-deb|g" \
		-e 's|apt-get install |apt-get install -y -q -o DPkg::Lock::Timeout=120 |' \
		-e "s|/usr/lib/x86_64-linux-gnu/|$lib/|g" \
		-e "s/\b8080\b/$ws/g; s/\b1883\b/$mqtt/g" \
		-e 's|^systemctl restart mosquitto$|start_broker|' \
		-e 's|^curl |health=$(curl |; /^health=/s|$|)|' \
		-e 's|^mosquitto-cable-token |token=$(mosquitto-cable-token |; /^token=/s|$|)|' "$1"
}

echo "# block 1: build and install the package"
(cd "$repo" && eval "$(localize "$tmp/block.1")") > "$tmp/install.log" 2>&1 ||
	{ tail -30 "$tmp/install.log"; echo "not ok - README block 1 (build, install)"; exit 1; }
for f in "$lib/mosquitto_cable.so" "$lib/mosquitto_cable_gateway.so" /usr/bin/mosquitto-cable-token \
	/usr/share/doc/mosquitto-cable/channels.example.json /usr/share/doc/mosquitto-cable/acl.example; do
	[ -e "$f" ] || { echo "not ok - $f missing"; exit 1; }
done
echo "ok - the package installs beside mosquitto; plugin, gateway, token tool and examples in place"

echo "# block 2: the files, owned for the mosquitto user"
eval "$(localize "$tmp/block.2")"
[ "$(stat -c %U:%G:%a "$etc/cable/jwt-secret")" = root:mosquitto:640 ] || { echo "not ok - secret ownership"; exit 1; }
echo "ok - files in place, readable by the mosquitto user only"

echo "# block 3: the drop-in"
localize "$tmp/block.3" > "$etc/conf.d/cable.conf"
grep -q "^listener $mqtt$" "$etc/conf.d/cable.conf" && grep -q "^plugin $lib/mosquitto_cable.so$" "$etc/conf.d/cable.conf"

echo "# block 4: restart and check"
eval "$(localize "$tmp/block.4")"
grep -q "libwebsockets.so.17 .*isolated" "$tmp/log" || { cat "$tmp/log"; exit 1; }
[ "$health" = ok ] || { cat "$tmp/log"; echo "not ok - /health said '$health'"; exit 1; }
[ -n "$token" ] || { echo "not ok - no token"; exit 1; }
echo "ok - the broker starts with the drop-in; /health answers ok; the tool mints a token"

# A real client with that token: the stock ActionCable client (examples/).
first=$(cd "$repo" && timeout 10 node examples/actioncable-node.mjs "ws://127.0.0.1:$ws/cable?jid=$token" | head -1) || true
[ "$first" = '{"connected":true}' ] || { cat "$tmp/log"; echo "not ok - a client with that token: '$first'"; exit 1; }
echo "ok - a browser client connects with the minted token and subscribes"

kill "$pid"; wait "$pid" || true; pid=
dpkg -r mosquitto-cable > /dev/null
[ ! -e "$lib/mosquitto_cable.so" ] || { echo "not ok - files left after dpkg -r"; exit 1; }
echo "ok - removes cleanly"
