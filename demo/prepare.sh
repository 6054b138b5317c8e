#!/bin/sh
# Lays out the demo page for the plugin's static file server (plugin_opt_http_dir):
#   demo/prepare.sh [OUTDIR]        default: .run/www in the repository root
# OUTDIR gets index.html, app.js, style.css and vendor/actioncable.esm.js, the ESM build
# of the stock @rails/actioncable client from node_modules (installed by `npm ci` from
# the committed lock file; nothing of it is committed here).
# Everything is made world-readable: mosquitto started as root drops privileges to the
# `mosquitto` user before the plugin serves a single file.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.run/www}
esm=$root/node_modules/@rails/actioncable/app/assets/javascripts/actioncable.esm.js

if [ ! -f "$esm" ]; then
	echo "demo/prepare.sh: $esm is missing; run \`npm ci\` in $root first" >&2
	exit 1
fi

mkdir -p "$out/vendor"
for f in index.html app.js style.css; do
	cp "$root/demo/$f" "$out/$f"
done
cp "$esm" "$out/vendor/actioncable.esm.js"
chmod -R a+rX "$out"

# As root, check that the broker's unprivileged user can actually read the page (a
# private parent directory, e.g. a 0700 home, would make every request a 404/403).
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1; then
	uid=$(id -u mosquitto)
	gid=$(id -g mosquitto)
	if ! setpriv --reuid "$uid" --regid "$gid" --clear-groups test -r "$out/index.html"; then
		echo "demo/prepare.sh: warning: user mosquitto cannot read $out/index.html" \
			"(make its parent directories world-searchable, or use another OUTDIR)" >&2
	fi
fi
