#!/bin/bash
# `make run` as a new user meets it: a busy port is named with its likely cause (the
# probe must not swallow the message), and npm ci runs before CMake configures, so
# CMake never says "node_modules missing" during a command that installs them itself.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${CABLE_BUILD_DIR:-$repo/build}
tmp=$(mktemp -d)
holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# Hold 8080 (if something else already does, it is busy all the same).
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", 8080)); s.listen(8)
except OSError:
    pass
print("ready", flush=True); time.sleep(120)' > "$tmp/holder" &
holder=$!
for _ in $(seq 50); do grep -q ready "$tmp/holder" && break; sleep 0.1; done

rc=0
(cd "$repo" && BUILD="$build" timeout 20 scripts/run.sh) > "$tmp/out" 2> "$tmp/err" || rc=$?
if [ "$rc" -ne 1 ]; then
	cat "$tmp/out" "$tmp/err"; echo "not ok - run.sh with a busy port exits 1 (got $rc)"; exit 1
fi
grep -Eq "^make run: port (1883|8080) on 127.0.0.1 is already in use \(a system mosquitto\?" "$tmp/err" || {
	cat "$tmp/err"; echo "not ok - the busy port is named on stderr"; exit 1
}
echo "ok - a busy port is named: $(head -c 80 "$tmp/err")..."

for target in run test; do
	line=$(awk -v t="$target:" '$1 == t {on=1; next} on && /^\t/ && /MAKE/ {print; exit}' "$repo/Makefile")
	case "$line" in
	*"node_modules/.package-lock.json build"*) ;;
	*) echo "not ok - make $target must install node_modules before the build: $line"; exit 1 ;;
	esac
done
echo "ok - make run and make test install node_modules before CMake configures"
