#!/bin/bash
# The gateway shards' part of `make bench` (issue 13): plugin_opt_threads 1 against 2 on
# the same runs, the connection storm's spread over the shards, and the report's
# "Gateway shards" section with the issue's targets. Sourced by bench/run.sh, not run:
# it uses run.sh's helpers (run, get, gv, f0, f1, num, verdict, us_per, lat_args, conc)
# and lib.sh's (start_broker, stop_broker), and run.sh's sizes (SHARD_SIZES, BIG,
# TP_SECS, DEF_THREADS).

SHARD_COUNTS=${BENCH_SHARDS:-"1 2"}
# The wildcard test runs on one shard: every decoy is then in the one browser's index
# (with two, each shard's index holds about half of them).
WILD_THREADS=1

# shard_broker T: an anonymous broker with T gateway shards; the running one if it is that.
shard_broker() {
	if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2> /dev/null &&
		[ "$BROKER_AUTH" = anonymous ] && [ "$BROKER_THREADS" = "$1" ]; then
		return 0
	fi
	need_broker anonymous "$1" shards
}

# for_shards NAME N TIMEOUT ARGS...: the cable-bench run NAME-tT-N for every shard count T,
# one after the other (so drift hits every count alike), each on a broker with T shards.
for_shards() {
	local name=$1 n=$2 t=$3 k
	shift 3
	for k in $SHARD_COUNTS; do
		shard_broker "$k" || continue
		run "$name-t$k-$n" "$t" "$@" --pid "$BROKER_PID"
	done
}

tp_sizes() { echo 1000 "$BIG" | tr ' ' '\n' | sort -nu; } # saturated fan-out: 1,000 and BIG

# ---- The phase ------------------------------------------------------------------------
# Last of N (a single message to N browsers) at SHARD_SIZES, saturated fan-out at 1,000
# and BIG, then perform -> MQTT with 2 shards.
shard_phase() {
	echo "bench: gateway shards (plugin_opt_threads ${SHARD_COUNTS// / vs })" >&2
	local n
	for n in $SHARD_SIZES; do
		for_shards lat-cable "$n" 300 --mode latency "${cable[@]}" --clients "$n" \
			$(lat_args "$n") --connect-concurrency "$(conc "$n")"
	done
	for n in $(tp_sizes); do
		for_shards tp-cable "$n" 300 --mode throughput "${cable[@]}" --clients "$n" \
			--window $((n >= 5000 ? 16 : 32)) --duration "$TP_SECS" \
			--connect-concurrency "$(conc "$n")"
	done
	shard_broker 2 && run perf-cable-t2 60 --mode perform "${cable[@]}" --clients 1 \
		--messages 2000 --interval-ms 2
	stop_broker
}

# ---- How SO_REUSEPORT spreads a storm over the shards --------------------------------
# spread_read LABEL SECONDS: once the running cable-bench has printed its RESULT (it then
# holds its connections), read cable_shard_connections{shard="i"} from /metrics and add
# a "mode=spread" result: connections per shard, the smallest and largest share.
spread_read() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q '^RESULT' "$WORK/out.txt" 2> /dev/null && break
		sleep 0.1
	done
	curl -s -m 2 "http://127.0.0.1:$CABLE_PORT/metrics" | awk -v l="$1" '
		index($1, "cable_shard_connections{") == 1 { c[n++] = $2; s += $2 }
		END {
			if (!n || s <= 0) exit
			lo = hi = c[0]
			for (i = 1; i < n; i++) { if (c[i] < lo) lo = c[i]; if (c[i] > hi) hi = c[i] }
			printf "RESULT mode=spread label=%s shards=%d connections=%d per_shard=", l, n, s
			for (i = 0; i < n; i++) printf "%s%d", i ? "/" : "", c[i]
			printf " min_share_pct=%.1f max_share_pct=%.1f\n", 100 * lo / s, 100 * hi / s
		}' >> "$RESULTS"
}

# run_spread LABEL TIMEOUT ARGS...: run, with the connections held 3 s after the RESULT
# line while spread_read reads the shards' counts (LABEL-spread).
run_spread() {
	local rpid=
	if ! grep -q " label=$1-spread " "$RESULTS"; then
		rm -f "$WORK/out.txt" # run_tool writes it anew; no earlier RESULT may count
		spread_read "$1-spread" "$2" &
		rpid=$!
	fi
	run "$@" --hold 3
	[ -z "$rpid" ] || { kill "$rpid" 2> /dev/null; wait "$rpid" 2> /dev/null; }
}

# ---- The report section --------------------------------------------------------------
ratio() { # A B: A ÷ B (2 decimals), nothing when either is missing
	num "$1" && num "$2" && awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b }'
}
rx() { # A B: "1.23x", or "–"
	local r
	r=$(ratio "$1" "$2")
	[ -n "$r" ] && echo "${r}x" || echo "–"
}
lat_us_per() { # LABEL: server CPU µs per delivery in a latency run
	local c d
	c=$(get "$1" server_cpu_ms) d=$(get "$1" deliveries)
	num "$c" && num "$d" && awk -v c="$c" -v d="$d" 'BEGIN { if (d > 0) printf "%.2f", c * 1e3 / d }' || echo "–"
}
lost_with() { # T: "LOST RUNS": messages lost over every mosquitto-cable run with T shards
	awk -v t="shards=$1" '/proto=cable/ && $NF == t {
		for (i = 1; i <= NF; i++) if ($i ~ /^lost=/) s += substr($i, 6); n++ }
		END { printf "%d %d\n", s, n }' "$RESULTS"
}
shard_word() { [ "$1" = 1 ] && echo "1 shard" || echo "$1 shards"; }

# lat_limit K N: what bounds the last of N with K shards, from this run's CPU figures: the
# server's and the generator's CPU per delivery (both on this machine's cores) and the
# serial work they imply, as a ratio to the floor.
lat_limit() {
	local l=lat-cable-t$1-$2
	awk -v k="$1" -v n="$2" -v c="$(nproc)" -v s="$(get "$l" server_cpu_ms)" \
		-v d="$(get "$l" deliveries)" -v g="$(get "$l" gen_cpu_pct)" \
		-v m="$(get "$l" messages)" -v i="$(get "$l" interval_ms)" \
		-v f="$(get "floor-$2" last_ms_p50)" -v got="$(get "$l" last_p50_ms)" 'BEGIN {
		if (d <= 0 || f <= 0) exit
		x = s * 1e3 / d; y = g / 100 * m * i * 1e3 / d
		if (k == 1) {
			b = n * x / 1e3
			printf "the gateway thread'"'"'s own work: %.2f µs of server CPU per delivery (the floor: %.2f µs per socket), so %d deliveries in series take %.1f ms, %.2fx the floor, before the generator'"'"'s %.2f µs per delivery, which shares the %d cores (measured %.1f ms)", x, f * 1e3 / n, n, b, b / f, y, c, got
		} else {
			b = n * (x + y) / c / 1e3
			printf "the machine: the server needs %.2f µs and the generator %.2f µs of CPU per delivery, both on these %d cores, so the last of %d arrives after at least %d × %.2f µs ÷ %d = %.1f ms, %.2fx the floor (measured %.1f ms); with the browsers on other machines the bound is %d × %.2f µs ÷ %d = %.1f ms, %.2fx the floor", x, y, c, n, n, x + y, c, b, b / f, got, n, x, k, n * x / k / 1e3, n * x / k / 1e3 / f
		} }'
}

# target TEXT SHOWN VALUE LIMIT lower|higher [WHY]: one row of the targets table; a missed
# or unmeasured one is also remembered for the list below the table, with WHY (what
# limits it) when known.
MISSED=()
UNMEASURED=()
target() {
	local v why=${6:-"see \"Gateway shards: what limits the missed targets\" under \"Reading the figures\" below"}
	v=$(verdict "$3" "$4" "$5")
	echo "| $1 | $2 | $v |"
	case $v in
	"**missed**"*) MISSED+=("$1: $v. What limits it: $why") ;;
	"not measured") UNMEASURED+=("$1") ;;
	esac
}

shards_targets() {
	local n k r lost2
	echo "| target (issue 13) | measured | verdict |"
	echo "|---|---|---|"
	for n in ${SHARD_SIZES#* }; do # every size but the smallest (5,000 and 10,000)
		for k in 1 2; do
			r=$(ratio "$(get lat-cable-t$k-$n last_p50_ms)" "$(get floor-$n last_ms_p50)")
			target "last of $n, $(shard_word $k): p50 ≤ $([ $k = 1 ] && echo 1.2 || echo 0.8) × the one-thread floor" \
				"$(rx "$(get lat-cable-t$k-$n last_p50_ms)" "$(get floor-$n last_ms_p50)") ($(f1 "$(get lat-cable-t$k-$n last_p50_ms)") ms ÷ $(f1 "$(get floor-$n last_ms_p50)") ms)" \
				"$r" "$([ $k = 1 ] && echo 1.2 || echo 0.8)" lower "$(lat_limit "$k" "$n")"
		done
	done
	for n in 5000:1.25 20000:1.5; do
		r=$(ratio "$(get wild-cable-0 deliveries_per_s)" "$(get wild-cable-${n%:*} deliveries_per_s)")
		target "${n%:*} decoy wildcard streams: msgs/s of none ÷ with them ≤ ${n#*:}" \
			"$(rx "$(get wild-cable-0 deliveries_per_s)" "$(get wild-cable-${n%:*} deliveries_per_s)")" "$r" "${n#*:}" lower
	done
	for n in $((BIG / 10)):20 $((BIG / 2)):100 $BIG:200; do
		target "websocket-bench p95 ≤ ${n#*:} ms at ${n%:*} clients ($(shard_word "$DEF_THREADS"))" \
			"$(f1 "$(bcp95 cable "${n%:*}")") ms" "$(bcp95 cable "${n%:*}")" "${n#*:}" lower
	done
	# Today's ratio: the issue-5 report (2026-11-27), 321,567 against 26,904 deliveries/s.
	r=$(ratio "$(get tp-cable-$BIG deliveries_per_s)" "$(get tp-mqtt-$BIG deliveries_per_s)")
	target "saturated fan-out at $BIG: ≥ 11.95 × Mosquitto's WebSocket listener (no regression; $(shard_word "$DEF_THREADS"))" \
		"$(rx "$(get tp-cable-$BIG deliveries_per_s)" "$(get tp-mqtt-$BIG deliveries_per_s)") ($(f0 "$(get tp-cable-$BIG deliveries_per_s)") ÷ $(f0 "$(get tp-mqtt-$BIG deliveries_per_s)") /s)" "$r" 11.95 higher
	target "≤ 3 KB per idle connection (2 shards)" "$(kb "$(get idle-cable bytes_per_conn)")" \
		"$(get idle-cable bytes_per_conn)" 3072 lower
	target "$STORM-connection storm p95 ≤ 300 ms (JWT, $(shard_word "$DEF_THREADS"))" \
		"$(f1 "$(get storm-cable-jwt p95_ms)") ms, $(gv storm-cable-jwt welcomed) welcomed" \
		"$(get storm-cable-jwt p95_ms)" 300 lower
	target "perform → MQTT p99 ≤ 1 ms (2 shards)" "$(gv perf-cable-t2 p99_ms) ms" "$(get perf-cable-t2 p99_ms)" 1 lower
	lost2=$(lost_with 2) # "LOST RUNS"
	target "zero lost (every mosquitto-cable run with 2 shards)" "${lost2% *} lost in ${lost2#* } runs" \
		"$([ "${lost2#* }" -gt 0 ] && echo "${lost2% *}")" 0 lower
	echo
	echo "### What limits the missed targets"
	echo
	[ ${#MISSED[@]} = 0 ] && echo "No target measured in this run was missed."
	for r in "${MISSED[@]}"; do
		echo "* $r."
	done
	for r in "${UNMEASURED[@]}"; do
		echo "* $r: not measured in this run (see \"Failed phases and broker exits\" and the log)."
	done
	echo
}

shards_section() {
	local n k c h
	cat <<- EOF
		## Gateway shards (issue 13)

		\`plugin_opt_threads\` gateway threads, each with its own lws context, sessions and
		subscription index, all accepting on one port (\`SO_REUSEPORT\`). Every broker in
		this run is started with an explicit count: the tables below compare
		$(echo $SHARD_COUNTS | sed 's/ / and /') shards on the same runs, alternated (a fresh
		broker for each); the other sections run with $DEF_THREADS (the default, one per
		CPU), except the wildcard test ($WILD_THREADS shard: every decoy in the one
		browser's index) and idle memory (2 shards, 1 beside it). Ratios to the floor use
		\`cable-floor\` of this run (section (b)). Load generator and server share the
		machine's $(nproc) cores.

	EOF
	shards_targets
	cat <<- EOF
		### Last of N: one message to N browsers, against the one-thread floor

		As (b): a stamped MQTT publish every 50-250 ms (30-50 messages); "last" is the
		latency of the last of the N recipients of each message, p50 / p99 over messages,
		each also as a ratio to the floor's p50 / p99 at the same N. Server CPU is the
		broker's (every thread) from the first publish to the last delivery, per delivery.

	EOF
	h="| clients | floor last p50 / p99 ms |"
	c="|---|---|"
	for k in $SHARD_COUNTS; do
		h="$h $(shard_word $k): last p50 / p99 ms | ÷ floor (p50 / p99) | server CPU µs per delivery | lost |"
		c="$c---|---|---|---|"
	done
	echo "$h"
	echo "$c"
	for n in $SHARD_SIZES; do
		h="| $n | $(f1 "$(get floor-$n last_ms_p50)") / $(f1 "$(get floor-$n last_ms_p99)") |"
		for k in $SHARD_COUNTS; do
			c=lat-cable-t$k-$n
			h="$h $(f1 "$(get $c last_p50_ms)") / $(f1 "$(get $c last_p99_ms)") | $(rx "$(get $c last_p50_ms)" "$(get floor-$n last_ms_p50)") / $(rx "$(get $c last_p99_ms)" "$(get floor-$n last_ms_p99)") | $(lat_us_per $c) | $(gv $c lost) |"
		done
		echo "$h"
	done
	cat <<- EOF

		### Saturated fan-out

		As (c): W messages in flight (32 at 1,000, 16 at 10,000 subscribers), deliveries/s
		over $TP_SECS s. Server CPU is the whole broker (100 % = one core), generator CPU
		is cable-bench's; the MQTT/WS row is Mosquitto's own listener from (c).

		| subscribers | server | deliveries/s | ÷ 1 shard | server CPU | server CPU µs per delivery | generator CPU | lost |
		|---|---|---|---|---|---|---|---|
	EOF
	for n in $(tp_sizes); do
		for k in $SHARD_COUNTS; do
			c=tp-cable-t$k-$n
			echo "| $n | $(shard_word $k) | $(f0 "$(get $c deliveries_per_s)") | $(rx "$(get $c deliveries_per_s)" "$(get tp-cable-t1-$n deliveries_per_s)") | $(f0 "$(get $c server_cpu_pct)") % | $(us_per $c) | $(f0 "$(get $c gen_cpu_pct)") % | $(gv $c lost) |"
		done
		c=tp-mqtt-$n
		echo "| $n | MQTT/WS (peer) | $(f0 "$(get $c deliveries_per_s)") | | $(f0 "$(get $c server_cpu_pct)") % | $(us_per $c) | $(f0 "$(get $c gen_cpu_pct)") % | $(gv $c lost) |"
	done
	cat <<- EOF

		### The storm over the shards

		How \`SO_REUSEPORT\` spread the storms of (e) ($STORM connections, $(shard_word "$DEF_THREADS"))
		over the shards: \`cable_shard_connections{shard="i"}\` from \`/metrics\` while every
		connection was still open. An even spread is $(awk -v k="$DEF_THREADS" 'BEGIN { printf "%.1f", 100 / k }') % each.

		| storm | connections per shard | smallest share | largest share |
		|---|---|---|---|
	EOF
	for c in storm-cable-jwt storm-cable-anon; do
		if [ -n "$(get $c-spread per_shard)" ]; then
			echo "| $c | $(gv $c-spread per_shard) | $(gv $c-spread min_share_pct) % | $(gv $c-spread max_share_pct) % |"
		else
			echo "| $c | n/a | n/a | n/a |"
		fi
	done
	cat <<- EOF

		### Idle memory and perform → MQTT

		| | 1 shard | 2 shards |
		|---|---|---|
		| RSS per idle connection ($IDLE_N, as (d)) | $(kb "$(get idle-cable-t1 bytes_per_conn)") | $(kb "$(get idle-cable bytes_per_conn)") |
		| idle CPU, µs per connection per s | $(gv idle-cable-t1 cpu_us_per_conn_per_s) | $(gv idle-cable cpu_us_per_conn_per_s) |
		| perform → MQTT p50 / p99 / max ms (as (f)) | | $(gv perf-cable-t2 p50_ms) / $(gv perf-cable-t2 p99_ms) / $(gv perf-cable-t2 max_ms), $(gv perf-cable-t2 lost) lost |

	EOF
}
