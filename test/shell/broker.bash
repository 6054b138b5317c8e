# Shared by the shell tests that start the real broker (sourced, not run).
#   broker_dir            a temp dir the broker (which drops to the mosquitto user) can read,
#                         with a random HS256 secret in $tmp/secret; sets $tmp, $mqtt, $ws
#   broker_conf PLUGIN [extra plugin_opt lines...]   writes $tmp/m.conf
#   wait_listening LOG    waits (10 s at most) for the plugin's ready line; false if absent

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

broker_dir() {
	tmp=$(mktemp -d)
	chmod 755 "$tmp"
	head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/secret"
	chmod 644 "$tmp/secret"
	mqtt=$(free_port)
	ws=$(free_port)
}

broker_conf() {
	local plugin=$1
	shift
	{
		echo "per_listener_settings false"
		echo "listener $mqtt 127.0.0.1"
		echo "allow_anonymous true"
		echo "log_dest stderr"
		echo "log_type all"
		echo "plugin $plugin"
		echo "plugin_opt_port $ws"
		echo "plugin_opt_jwt_secret_file $tmp/secret"
		for line in "$@"; do echo "$line"; done
	} > "$tmp/m.conf"
}

wait_listening() {
	for _ in $(seq 100); do
		grep -q "mosquitto-cable: listening on" "$1" && return 0
		sleep 0.1
	done
	return 1
}
