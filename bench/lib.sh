#!/bin/bash
# Shared helpers for bench/run.sh and bench/smoke.sh: a private broker (the plugin plus
# Mosquitto's own MQTT-over-WebSockets listener) and the Rails peer, in a temp dir.
# Sourced, not run. Expects: ROOT (project root), BUILD (build dir), WORK (temp dir).

# Ports; override with the environment if they clash. Keep them below the ephemeral
# range (32768+): tens of thousands of client sockets would otherwise sit on them.
CABLE_PORT=${CABLE_PORT:-28080}   # mosquitto-cable (ActionCable)
MQTTWS_PORT=${MQTTWS_PORT:-28081} # mosquitto's own websockets listener (peer)
MQTT_PORT=${MQTT_PORT:-28830}     # plain MQTT (publisher / subscriber)
RAILS_PORT=${RAILS_PORT:-28090}   # puma + ActionCable (peer)
FLOOR_PORT=${FLOOR_PORT:-28070}   # cable-floor's listener (no server)

# Refuse a port (from the environment) in the ephemeral range: client sockets would take it.
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2> /dev/null)
for p in "$CABLE_PORT" "$MQTTWS_PORT" "$MQTT_PORT" "$RAILS_PORT" "$FLOOR_PORT"; do
	if [ "$p" -ge "${EPHEMERAL_LOW:-32768}" ]; then
		echo "bench: port $p is in the ephemeral range (from ${EPHEMERAL_LOW:-32768}); choose one below" >&2
		exit 2
	fi
done

# The load tests open up to 19,000 connections, all as user "anonymous" without tokens,
# from the 64 loopback addresses 127.0.1.1-64: lift plugin_opt_max_connections (10,000)
# and plugin_opt_max_connections_per_user (100), which would refuse them,
# plugin_opt_max_descriptors (three quarters of nofile: 15,000 of 20,000, which would
# leave the rest of a storm waiting) and plugin_opt_max_handshakes_per_ip (64, which a
# storm of 300 browsers per address would pass). bench/soak.sh sets BENCH_LIFT_LIMITS=0:
# it runs at the defaults.
BENCH_LIFT_LIMITS=${BENCH_LIFT_LIMITS:-1}

BROKER_PID=
BROKER_AUTH=
BROKER_THREADS= # plugin_opt_threads of the running broker; empty: the plugin's default
RAILS_PID=

port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() { # port seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		port_busy "$1" && return 0
		sleep 0.1
	done
	return 1
}

wait_port_free() { # port seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		port_busy "$1" || return 0
		sleep 0.1
	done
	return 1
}

# The broker drops privileges to `mosquitto` when started as root; `user root` keeps
# it as root so the plugin and files in the build tree need no special permissions.
# The plugin and channel map come from the build and the example configuration.
# threads: plugin_opt_threads (gateway shards); empty leaves the plugin's default (one per CPU).
write_broker_conf() { # file auth(anonymous|jwt|state) [threads]: state = anonymous + last values
	local file=$1 auth=$2 threads=${3:-}
	{
		echo "per_listener_settings false"
		[ "$(id -u)" = 0 ] && echo "user root"
		echo "listener $MQTT_PORT 127.0.0.1"
		echo "set_tcp_nodelay true"
		echo "allow_anonymous true"
		echo "listener $MQTTWS_PORT 127.0.0.1"
		echo "protocol websockets"
		echo "log_dest file $WORK/broker.log"
		echo "log_type error"
		echo "log_type warning"
		echo "log_type notice"
		echo "connection_messages false"
		[ "$auth" = state ] && echo "listener 0 $WORK/state.sock"
		echo "plugin $(realpath "$BUILD")/mosquitto_cable.so"
		echo "plugin_opt_address 127.0.0.1"
		echo "plugin_opt_port $CABLE_PORT"
		echo "plugin_opt_path /cable"
		echo "plugin_opt_channels_file $WORK/channels.json"
		[ -n "$threads" ] && echo "plugin_opt_threads $threads"
		if [ "$BENCH_LIFT_LIMITS" = 1 ]; then
			echo "plugin_opt_max_connections 0"
			echo "plugin_opt_max_connections_per_user 0"
			echo "plugin_opt_max_descriptors $(($(ulimit -Hn) - 64))"
			echo "plugin_opt_max_handshakes_per_ip 0"
		fi
		if [ "$auth" = jwt ]; then
			echo "plugin_opt_jwt_secret_file $WORK/jwt-secret"
		else
			echo "plugin_opt_auth anonymous"
		fi
		[ "$auth" = state ] && echo "plugin_opt_state_listener $WORK/state.sock"
		true
	} > "$file"
}

prepare_work() {
	cp "$ROOT/config/channels.example.json" "$WORK/channels.json"
	od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$WORK/jwt-secret"
	chmod 755 "$WORK"
	chmod 644 "$WORK/channels.json" "$WORK/jwt-secret"
}

start_broker() { # anonymous|jwt|state [threads]
	stop_broker
	BROKER_AUTH=$1
	BROKER_THREADS=${2:-}
	wait_port_free "$CABLE_PORT" 20 || { echo "port $CABLE_PORT busy" >&2; return 1; }
	wait_port_free "$MQTT_PORT" 20 || { echo "port $MQTT_PORT busy" >&2; return 1; }
	local conf=$WORK/broker-$1${2:+-t$2}.conf
	write_broker_conf "$conf" "$1" "${2:-}"
	local from
	from=$(cat "$WORK/broker.log" 2> /dev/null | wc -l)
	# The hard nofile limit (20,000 here) is the ceiling for connections on either side.
	(ulimit -n "$(ulimit -Hn)" && exec mosquitto -c "$conf") >> "$WORK/broker.out" 2>&1 &
	BROKER_PID=$!
	if ! wait_port "$CABLE_PORT" 10 || ! wait_port "$MQTT_PORT" 10; then
		echo "the broker did not start; its log:" >&2
		tail -n 20 "$WORK/broker.log" "$WORK/broker.out" >&2
		return 1
	fi
	# With last values, the internal client synchronises after the listeners open.
	if [ "$1" = state ]; then
		local i
		for ((i = 0; i < 100; i++)); do
			tail -n +$((from + 1)) "$WORK/broker.log" 2> /dev/null |
				grep -q 'last values: connected' && return 0
			sleep 0.1
		done
		echo "the internal client did not connect; the broker log:" >&2
		tail -n 20 "$WORK/broker.log" >&2
		return 1
	fi
}

stop_broker() {
	if [ -n "$BROKER_PID" ]; then
		kill "$BROKER_PID" 2>/dev/null
		wait "$BROKER_PID" 2>/dev/null
		BROKER_PID=
	fi
}

start_rails() {
	stop_rails
	command -v puma > /dev/null || return 1
	wait_port_free "$RAILS_PORT" 20 || return 1
	(ulimit -n "$(ulimit -Hn)" && JWT_SECRET_FILE=$WORK/jwt-secret exec puma -t 4:4 \
		-b "tcp://127.0.0.1:$RAILS_PORT" "$ROOT/bench/rails/config.ru") > "$WORK/puma.log" 2>&1 &
	RAILS_PID=$!
	wait_port "$RAILS_PORT" 30 || { tail -n 20 "$WORK/puma.log" >&2; return 1; }
}

stop_rails() {
	if [ -n "$RAILS_PID" ]; then
		kill "$RAILS_PID" 2>/dev/null
		wait "$RAILS_PID" 2>/dev/null
		RAILS_PID=
	fi
}

stop_all() {
	stop_broker
	stop_rails
}
