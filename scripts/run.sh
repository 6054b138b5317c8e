#!/bin/bash
# `make run`: start Debian's mosquitto in the foreground with mosquitto.conf.example and
# the plugin, after printing the WebSocket URL and a working token.
set -eu
cd "$(dirname "$0")/.."
build=${BUILD:-build}

# Only the probe's own "connection refused" is silenced, never the message below.
for port in 1883 8080; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "make run: port $port on 127.0.0.1 is already in use (a system mosquitto?" \
			"'systemctl stop mosquitto'; 'ss -ltnp sport = :$port' shows who holds it)" >&2
		exit 1
	fi
done

mkdir -p .run
if [ ! -s .run/jwt-secret ]; then
	# 64 random bytes, hex: the HS256 secret your web app signs tokens with.
	od -An -tx1 -N64 /dev/urandom | tr -d ' \n' > .run/jwt-secret
	chmod 600 .run/jwt-secret
fi
# The broker reads the secret and creates its unix socket (plugin_opt_state_listener)
# after dropping privileges to the mosquitto user.
mkdir -p .run/state
if [ "$(id -u)" -eq 0 ] && id mosquitto > /dev/null 2>&1; then
	chown mosquitto .run/state
	chown mosquitto .run/jwt-secret
fi
token=$("$build/mosquitto-cable-token" --secret-file .run/jwt-secret --user alice --ttl 86400)

# The demo (demo/README.md): the page, served by the plugin from .run/www
# (plugin_opt_http_dir in mosquitto.conf.example), and a simulated device.
demo/prepare.sh .run/www

cat <<INFO

  mosquitto-cable is starting.
    Demo page (open it):      http://127.0.0.1:8080/?jid=$token
    WebSocket (ActionCable):  ws://127.0.0.1:8080/cable?jid=$token
    MQTT (devices):           mqtt://127.0.0.1:1883

  A token for user "alice", valid 24 hours (mint more with
  $build/mosquitto-cable-token --secret-file .run/jwt-secret --user NAME).

  In a page:
    import { createConsumer } from "@rails/actioncable"
    const cable = createConsumer("ws://127.0.0.1:8080/cable?jid=$token")
    const actuator = cable.subscriptions.create({ channel: "ActuatorChannel", id: 42 },
      { received: (data) => console.log(data) })
    actuator.perform("speak", { message: "on" })
  In Node (the same client, with the two browser globals it needs; examples/):
    node examples/actioncable-node.mjs 'ws://127.0.0.1:8080/cable?jid=$token'

  Then: mosquitto_pub -t actuators/42/state -m '{"on":true}'   (reaches the browser)
        mosquitto_sub -t 'actuators/#' -v                       (shows what browsers speak)

INFO
# The simulated actuators 42 and 43 (MQTT on 1883); they exit with the broker, which
# takes over this shell's pid.
node demo/device.mjs --exit-with-pid $$ &
exec mosquitto -c mosquitto.conf.example
