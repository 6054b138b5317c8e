#!/bin/bash
# `make run`: start Debian's mosquitto in the foreground with mosquitto.conf.example and
# the plugin, after printing the WebSocket URL and a working token.
set -eu
cd "$(dirname "$0")/.."
build=${BUILD:-build}

for port in 1883 8080; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "port $port on 127.0.0.1 is already in use (a system mosquitto? 'systemctl stop mosquitto')" >&2
		exit 1
	fi
done 2>/dev/null || true

mkdir -p .run
if [ ! -s .run/jwt-secret ]; then
	# 64 random bytes, hex: the HS256 secret your web app signs tokens with.
	od -An -tx1 -N64 /dev/urandom | tr -d ' \n' > .run/jwt-secret
	chmod 600 .run/jwt-secret
fi
token=$("$build/mosquitto-cable-token" --secret-file .run/jwt-secret --user alice --ttl 86400)

cat <<INFO

  mosquitto-cable is starting.
    WebSocket (ActionCable):  ws://127.0.0.1:8080/cable?jid=$token
    MQTT (devices):           mqtt://127.0.0.1:1883

  A token for user "alice", valid 24 hours (mint more with
  $build/mosquitto-cable-token --secret-file .run/jwt-secret --user NAME).

  In a browser or Node:
    import { createConsumer } from "@rails/actioncable"
    const cable = createConsumer("ws://127.0.0.1:8080/cable?jid=$token")
    const actuator = cable.subscriptions.create({ channel: "ActuatorChannel", id: 42 },
      { received: (data) => console.log(data) })
    actuator.perform("speak", { message: "on" })

  Then: mosquitto_pub -t actuators/42/state -m '{"on":true}'   (reaches the browser)
        mosquitto_sub -t 'actuators/#' -v                       (shows what browsers speak)

INFO
exec mosquitto -c mosquitto.conf.example
