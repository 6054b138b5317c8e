/*
 * cable-floor: the one-core floor for a single message to N browsers.
 *
 * One thread writes one WebSocket text frame of --size bytes to each of N loopback TCP
 * sockets, in turn, as a fan-out server does; a reader thread drains the other ends
 * with epoll. Per round it measures the writer's time per send() and the time from the
 * first send to the last byte read at the last socket. Nothing any server does for a
 * single message to N receivers can beat this on one core: it is the kernel's cost of
 * N loopback transmits (and of the receivers' TCP input, which runs on the sending
 * core), with no framing, routing or queueing. `make bench` prints every single-message
 * latency figure also as a ratio to this floor, measured in the same run.
 *
 *   cable-floor --clients 10000 [--rounds 30] [--size 120] [--port P] [--label floor-10000]
 *
 * --port: the listening port on 127.0.0.1 (default: one the kernel picks, which is in the
 * ephemeral range; `make bench` gives one below it, as for every bench port).
 *
 * Prints "RESULT mode=floor label=... clients=N size=B rounds=R send_us_p50=...
 * send_us_p99=... last_ms_p50=... last_ms_p99=...".
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

struct floor {
	unsigned clients, rounds, size, port;
	const char *label;
	int *wr, *rd; /* the writer's and the reader's end of each connection */
	int ep;
	/* The reader's progress in the current round, published to the writer. */
	atomic_uint done;
	atomic_uint_fast64_t last_ns;
	size_t *got; /* bytes read per connection, all rounds (reader thread only) */
	atomic_bool stop;
};

/* A connected pair of loopback TCP sockets, as a browser's would be. */
static void tcp_pair(int lfd, const struct sockaddr_in *addr, int *wr, int *rd)
{
	int one = 1;

	*wr = socket(AF_INET, SOCK_STREAM, 0);
	if (*wr < 0 || connect(*wr, (const struct sockaddr *)addr, sizeof(*addr)) != 0)
		die("connect: %s", strerror(errno));
	*rd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	if (*rd < 0)
		die("accept: %s", strerror(errno));
	/* As a WebSocket server sends: no Nagle delay on the writer's side. */
	if (setsockopt(*wr, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		die("TCP_NODELAY: %s", strerror(errno));
}

/*
 * Both ends of every connection live in this process: 2N descriptors. Raise the soft
 * limit to the hard one and, past that, measure as many as fit (the RESULT says how many).
 */
static unsigned fit_clients(unsigned want)
{
	struct rlimit rl;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	fit = rl.rlim_cur > 64 ? (unsigned)((rl.rlim_cur - 32) / 2) : 1;
	if (want > fit)
		note("%u connections need %u descriptors; measuring %u", want, 2 * want, fit);
	return want < fit ? want : fit;
}

static void *reader(void *arg)
{
	struct floor *F = arg;
	struct epoll_event ev[256];
	char buf[4096];
	int n, i;
	ssize_t r;
	unsigned idx;

	while (!atomic_load(&F->stop)) {
		n = epoll_wait(F->ep, ev, 256, 100);
		for (i = 0; i < n; i++) {
			idx = ev[i].data.u32;
			while ((r = read(F->rd[idx], buf, sizeof(buf))) > 0) {
				F->got[idx] += (size_t)r;
				if (F->got[idx] % F->size == 0) { /* this round's frame is whole */
					atomic_store(&F->last_ns, now_ns());
					atomic_fetch_add(&F->done, 1);
				}
			}
		}
	}
	return NULL;
}

static void parse(struct floor *F, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"clients", required_argument, NULL, 'c'}, {"rounds", required_argument, NULL, 'r'},
	        {"size", required_argument, NULL, 's'},    {"label", required_argument, NULL, 'l'},
	        {"port", required_argument, NULL, 'p'},    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			F->clients = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			F->rounds = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			F->size = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'l':
			F->label = optarg;
			break;
		case 'p':
			F->port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			die("usage: cable-floor --clients N [--rounds R] [--size BYTES] [--port P] "
			    "[--label L]");
		}
	}
	if (F->clients == 0 || F->rounds == 0 || F->size < 4 || F->size > 4096 || F->port > 65535)
		die("--clients and --rounds must be positive, --size 4..4096, --port below 65536");
}

int main(int argc, char **argv)
{
	struct floor F = {.rounds = 30, .size = 120, .label = "floor"};
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	uint64_t *send_ns, *last_ns, t0, t1;
	char *frame;
	pthread_t th;
	unsigned i, k;
	int lfd;

	log_init("cable-floor", "floor: ");
	parse(&F, argc, argv);
	F.clients = fit_clients(F.clients);
	F.wr = xcalloc(F.clients, sizeof(int));
	F.rd = xcalloc(F.clients, sizeof(int));
	F.got = xcalloc(F.clients, sizeof(size_t));
	send_ns = xcalloc(F.rounds, sizeof(uint64_t));
	last_ns = xcalloc(F.rounds, sizeof(uint64_t));

	/* An unmasked server text frame: FIN + opcode 1, the length, then the payload. */
	frame = xmalloc(F.size);
	memset(frame, 'x', F.size);
	frame[0] = (char)0x81;
	if (F.size - 2 < 126) {
		frame[1] = (char)(F.size - 2);
	} else {
		frame[1] = 126;
		frame[2] = (char)((F.size - 4) >> 8);
		frame[3] = (char)(F.size - 4);
	}

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons((uint16_t)F.port);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd >= 0)
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(lfd, 4096) != 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0)
		die("listen: %s", strerror(errno));
	F.ep = epoll_create1(0);
	for (i = 0; i < F.clients; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

		tcp_pair(lfd, &addr, &F.wr[i], &F.rd[i]);
		if (epoll_ctl(F.ep, EPOLL_CTL_ADD, F.rd[i], &ev) != 0)
			die("epoll_ctl: %s (raise the descriptor limit?)", strerror(errno));
	}
	note("%u connections; %u rounds of one %u-byte frame to each", F.clients, F.rounds, F.size);
	if (pthread_create(&th, NULL, reader, &F) != 0)
		die("pthread_create failed");

	for (k = 0; k < F.rounds; k++) {
		atomic_store(&F.done, 0);
		t0 = now_ns();
		for (i = 0; i < F.clients; i++) {
			if (write(F.wr[i], frame, F.size) != (ssize_t)F.size)
				die("write: %s", strerror(errno));
		}
		t1 = now_ns();
		while (atomic_load(&F.done) < F.clients)
			usleep(100);
		send_ns[k] = (t1 - t0) / F.clients;
		last_ns[k] = atomic_load(&F.last_ns) - t0;
		usleep(20000); /* let the kernel settle between rounds */
	}
	atomic_store(&F.stop, true);
	pthread_join(th, NULL);

	qsort(send_ns, F.rounds, sizeof(uint64_t), cmp_u64);
	qsort(last_ns, F.rounds, sizeof(uint64_t), cmp_u64);
	printf("RESULT mode=floor label=%s clients=%u size=%u rounds=%u send_us_p50=%.2f "
	       "send_us_p99=%.2f last_ms_p50=%.2f last_ms_p99=%.2f\n",
	       F.label, F.clients, F.size, F.rounds, send_ns[pct_index(F.rounds, 500)] / 1e3,
	       send_ns[pct_index(F.rounds, 990)] / 1e3, last_ns[pct_index(F.rounds, 500)] / 1e6,
	       last_ns[pct_index(F.rounds, 990)] / 1e6);
	return 0;
}
