#!/bin/sh
# Install what mosquitto-cable needs on Debian 12, and nothing it already has.
#   scripts/deps.sh build   compiler, CMake and the -dev packages
#   scripts/deps.sh run     build + the broker and its command-line clients, Node.js
#                           (the demo's simulated device)
#   scripts/deps.sh test    run + what the tests use (clang for libFuzzer, valgrind,
#                           Debian's chromium for the real-browser test, ruby-jwt for
#                           the Ruby token example, haproxy for the scale-out recipe)
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu

what=${1:-run}
build="build-essential cmake pkg-config libmosquitto-dev mosquitto-dev libwebsockets-dev
	libwebsockets-evlib-ev libev-dev libjansson-dev libssl-dev uthash-dev"
run="$build mosquitto mosquitto-clients"
test="$run clang clang-format valgrind chromium fonts-dejavu-core curl python3 ruby ruby-jwt
	haproxy"

case "$what" in
build) want=$build ;;
run) want=$run ;;
test) want=$test ;;
*) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
# Node.js and npm drive the real @rails/actioncable client in the tests; any
# installed node >= 18 will do, Debian's own otherwise.
if [ "$what" != build ] && ! command -v npm >/dev/null 2>&1; then
	missing="$missing nodejs npm"
fi

[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "mosquitto-cable needs:$missing" >&2
	echo "run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The mosquitto package would start a system broker on port 1883; `make run` and the
# tests start their own, so keep the service from starting during the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends $missing
