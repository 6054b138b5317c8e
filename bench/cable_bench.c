/*
 * cable-bench: a load generator for mosquitto-cable and its peers.
 *
 * One process, one libwebsockets client context on one thread, holding up to the
 * descriptor limit of WebSocket connections (hard nofile is 20,000 on these machines,
 * so about 19,900). libmosquitto (its own network thread) publishes stamped MQTT
 * messages and subscribes where a mode needs an MQTT end.
 *
 * Targets (--proto):
 *   cable  mosquitto-cable's ActionCable listener (subscribe BenchmarkChannel; perform
 *          "broadcast" publishes the data object to bench/all)
 *   mqtt   Mosquitto's own MQTT-over-WebSockets listener ("mqtt" subprotocol; the
 *          CONNECT/SUBSCRIBE/PUBLISH packets are encoded here, lws does the framing)
 *   rails  Rails ActionCable (bench/rails/config.ru on puma), which has no MQTT side:
 *          its "publisher" is one extra connection that performs broadcast
 *
 * Modes (--mode), one measurement per run; the last line is "RESULT key=value ...":
 *   smoke       ~50 clients, MQTT publishes + performs, checks every client got every
 *               message in order; exit status 1 on any loss
 *   broadcast   websocket-bench's algorithm (clients in steps, random sender, percentile
 *               = sorted[p*n/100], loss check). No broadcastResult in mosquitto-cable or
 *               MQTT: the RTT is until the sender receives its own broadcast
 *   latency     stamped publishes, latency at every recipient, and of the last one
 *   throughput  publishes kept W in flight; deliveries/s and the generator's own CPU
 *   idle        server RSS and kernel socket memory per idle connection, idle CPU
 *   storm       all connections at once (with tokens), connect-to-welcome
 *   perform     perform / WS publish -> MQTT subscriber latency
 *
 * Clock: every stamp is CLOCK_MONOTONIC in this process, except websocket-bench's
 * sendTime, which is wall-clock nanoseconds as in the original tool.
 *
 * The parts: bench.h.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bench.h"
#include "cable.h"
#include "opts.h"

struct bench bench = {
        .mode = M_LATENCY,
        .proto = P_CABLE,
        .host = "127.0.0.1",
        .port = 8080,
        .mqtt_port = 1883,
        .path = "/cable",
        .clients = 1000,
        .messages = 50,
        .interval_ms = 100,
        .duration_s = 5,
        .window = 32,
        .connect_conc = 200,
        .idle_s = 15,
        .server_pid = 0,
        .label = "",
        .step_size = 1000,
        .steps = 10,
        .concurrent = 8,
        .sample_size = 100,
        .padding = 200,
};

const char *const proto_name[] = {"cable", "mqtt", "rails"};

const char *const mode_name[] = {"smoke", "broadcast", "latency", "throughput",
                                 "idle",  "storm",     "perform", "history"};

/* ---- Options ------------------------------------------------------------------------- */

/*
 * --smoke and --mode smoke bring the smoke run's defaults (50 clients, 40 messages 20 ms
 * apart) unless --clients comes after them, as the options always did.
 */
static bool smoke_defaults;

static void opt_smoke(const char *arg, void *dest)
{
	(void)arg;
	(void)dest;
	bench.mode = M_SMOKE;
	smoke_defaults = true;
}

static void opt_mode(const char *arg, void *dest)
{
	(void)dest;
	bench.mode = (enum mode)opts_pick(arg, mode_name, CABLE_ARRAY_LEN(mode_name), "mode");
	smoke_defaults = bench.mode == M_SMOKE;
}

static void opt_proto(const char *arg, void *dest)
{
	(void)dest;
	bench.proto = (enum proto)opts_pick(arg, proto_name, CABLE_ARRAY_LEN(proto_name), "proto");
}

static void opt_clients_set(const char *arg, void *dest)
{
	(void)arg;
	(void)dest;
	smoke_defaults = false;
}

static void opt_ext_set(const char *arg, void *dest)
{
	(void)arg;
	(void)dest;
	if (bench.ext_pct > 100)
		die("--ext is a percentage (0-100)");
}

static const struct opt bench_opts[] = {
        {"smoke", OPT_FLAG, NULL, opt_smoke, NULL, "the correctness smoke run (--mode smoke)"},
        {"mode", OPT_FN, NULL, opt_mode, "MODE",
         "smoke broadcast latency throughput idle storm perform history (latency)"},
        {"proto", OPT_FN, NULL, opt_proto, "P", "cable, mqtt or rails (cable)"},
        {"host", OPT_STR, &bench.host, NULL, "H", "WebSocket endpoint host (127.0.0.1)"},
        {"port", OPT_INT, &bench.port, NULL, "P", "WebSocket endpoint port (8080)"},
        {"path", OPT_STR, &bench.path, NULL, "PATH", "WebSocket endpoint path (/cable)"},
        {"mqtt-port", OPT_INT, &bench.mqtt_port, NULL, "P",
         "broker's MQTT port for publish/subscribe (1883)"},
        {"clients", OPT_U32, &bench.clients, opt_clients_set, "N", "connections (1000)"},
        {"messages", OPT_U32, &bench.messages, NULL, "M", "latency/perform/smoke: messages (50)"},
        {"interval-ms", OPT_U32, &bench.interval_ms, NULL, "I",
         "latency/perform/smoke: ms between messages (100)"},
        {"duration", OPT_U32, &bench.duration_s, NULL, "S", "throughput: seconds (5)"},
        {"window", OPT_U32, &bench.window, NULL, "W", "throughput: messages in flight (32)"},
        {"idle", OPT_U32, &bench.idle_s, NULL, "S", "idle: seconds of idle CPU measurement (15)"},
        {"decoy-subs", OPT_U32, &bench.decoy_subs, NULL, "K",
         "idle: K wildcard streams per connection that no message matches (0)"},
        {"ext", OPT_U32, &bench.ext_pct, opt_ext_set, "PCT",
         "cable: PCT % of the connections in actioncable-v1-ext-json (offsets checked)"},
        {"hold", OPT_U32, &bench.hold_s, NULL, "S",
         "keep the connections open S s after the RESULT line, e.g. to read /metrics (0)"},
        {"pid", OPT_INT, &bench.server_pid, NULL, "PID", "server process for RSS / CPU"},
        {"secret-file", OPT_STR, &bench.secret_file, NULL, "F",
         "sign a JWT per connection (?jid=)"},
        {"connect-concurrency", OPT_U32, &bench.connect_conc, NULL, "C",
         "handshakes in flight while connecting (200)"},
        {"step-size", OPT_U32, &bench.step_size, NULL, "N", "broadcast: clients per step (1000)"},
        {"steps", OPT_U32, &bench.steps, NULL, "K", "broadcast: steps (10)"},
        {"concurrent", OPT_U32, &bench.concurrent, NULL, "C",
         "broadcast: broadcasts in flight (8)"},
        {"sample-size", OPT_U32, &bench.sample_size, NULL, "S",
         "broadcast: round trips per step (100)"},
        {"payload-padding", OPT_U32, &bench.padding, NULL, "B",
         "broadcast: padding bytes per broadcast (200)"},
        {"label", OPT_STR, &bench.label, NULL, "L", "label of the RESULT line"},
};

static const char bench_synopsis[] =
        "usage: cable-bench [--smoke] [--mode MODE] [--proto cable|mqtt|rails] [options]\n";

/* What the options cannot say one at a time: defaults that depend on the mode, ranges. */
static void check_options(void)
{
	if (smoke_defaults && bench.mode == M_SMOKE) {
		bench.clients = 50;
	}
	if (bench.mode == M_SMOKE && bench.messages == 50)
		bench.messages = 40;
	if (bench.mode == M_SMOKE && bench.interval_ms == 100)
		bench.interval_ms = 20;
	if (bench.decoy_subs && (bench.mode != M_IDLE || bench.proto != P_CABLE))
		die("--decoy-subs goes with --mode idle --proto cable");
	if (bench.clients == 0 || bench.messages == 0 || bench.window == 0 ||
	    bench.concurrent == 0 || bench.sample_size == 0 || bench.step_size == 0 ||
	    bench.steps == 0)
		die("counts must be positive");
	if (bench.window >= SEQ_RING / 2)
		die("--window must be below %d", SEQ_RING / 2);
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	unsigned long long nofile;
	int rc;

	log_init("cable-bench", "  ");
	opts_parse(bench_opts, CABLE_ARRAY_LEN(bench_opts), argc, argv, bench_synopsis);
	check_options();
	/* Every descriptor the hard limit allows (20,000 here): one per connection. */
	nofile = raise_nofile();
	if ((uint64_t)bench.clients + 64 > nofile && bench.mode != M_BROADCAST)
		die("%u connections need more descriptors than nofile %llu allows", bench.clients,
		    nofile);
	if (bench.secret_file)
		bench.secret_len =
		        read_secret(bench.secret_file, bench.secret, sizeof(bench.secret));
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	bench.spread_sources = getenv("BENCH_NO_SPREAD") == NULL;
	make_context();
	note("%s / %s: %u clients -> ws://%s:%d%s", mode_name[bench.mode], proto_name[bench.proto],
	     bench.clients, bench.host, bench.port, bench.path);

	rc = run_mode(bench.mode);
	fflush(stdout);
	if (bench.hold_s)
		pump_for_ms((uint64_t)bench.hold_s * 1000);
	if (bench.mosq_pub) {
		mosquitto_disconnect(bench.mosq_pub);
		mosquitto_loop_stop(bench.mosq_pub, true);
		mosquitto_destroy(bench.mosq_pub);
	}
	/* Closing thousands of sockets one by one through lws is slow and measures nothing. */
	_exit(rc);
}
