#!/bin/sh
# What `make bench` needs beyond scripts/deps.sh test, from Debian 12's archive:
#   gnuplot-nox       the latency plot (PNG)
#   ruby-actioncable  Rails ActionCable 6.1, the peer (bench/rails/config.ru)
#   puma              the Rack server it runs on
#   linux-perf        the profile of the gateway thread in the report (optional)
# As root it runs apt-get; otherwise it prints the command and fails.
set -eu
want="gnuplot-nox ruby-actioncable puma linux-perf"
missing=""
for p in $want; do
	case "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "the benchmarks need:$missing" >&2
	echo "run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
