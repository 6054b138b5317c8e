/*
 * What cable-soak's browsers do. Healthy browsers subscribe to their topics and check
 * that every device message arrives once and in order, and that their speaks come back;
 * churning browsers subscribe, unsubscribe, speak and reconnect at random, and a share
 * of their sessions end in a fault (enum fault). Each browser is a small state machine
 * driven by socket events (soak_ws.c) and its timer (bc_timer). Thread: main only.
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soak.h"

struct soak_stats stats;

/* ---- Tokens: HS256 JWT {sub, exp}, minted as cable-bench does (common.c) --------------- */

/* The key from --secret-file, read once in main. */
char secret[512];

size_t secret_len;

const char *const fault_name[F_N] = {
        "none",           "rst",   "fin",   "half_frame", "half_handshake",
        "slow_handshake", "pause", "stall", "stall_hung"};

/*
 * How a faulting session faults, in percent of the faulting sessions (sums to 100).
 * A stall holds a lot of kernel memory on both ends of the loopback connection (see
 * docs/soak.md), so stalls are a smaller share than the cheap faults.
 */
static const unsigned fault_share[F_N] = {0, 20, 15, 20, 10, 5, 15, 10, 5};

struct bc *browsers;

uint32_t nbrowsers;

/* When the plugin's ActionCable pings reached the browsers: the first ping after a quiet
 * second starts a burst (the plugin pings every connection at once). */
uint64_t *bursts, last_ping_rx;

size_t nbursts, burst_cap;

int ep = -1;

bool churning; /* churners reconnect and act only while true */
struct sockaddr_in server_addr;

static size_t cmd_text(char *out, size_t cap, const char *command, uint32_t ch, const char *data)
{
	int n;

	if (data)
		n = snprintf(out, cap, "{\"command\":\"%s\",\"identifier\":\"%s\",\"data\":\"%s\"}",
		             command, id_esc[ch], data);
	else
		n = snprintf(out, cap, "{\"command\":\"%s\",\"identifier\":\"%s\"}", command,
		             id_esc[ch]);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void cmd_subscribe(struct bc *c, uint32_t ch)
{
	char buf[512];
	size_t n = cmd_text(buf, sizeof(buf), "subscribe", ch, NULL);

	if (c->sub[ch] != SUB_PENDING && c->sub[ch] != SUB_OK)
		c->nsubs++;
	c->sub[ch] = SUB_PENDING;
	stats.subscribes++;
	ws_send(c, 1, buf, n);
}

void cmd_unsubscribe(struct bc *c, uint32_t ch)
{
	char buf[512];
	size_t n = cmd_text(buf, sizeof(buf), "unsubscribe", ch, NULL);

	if (c->sub[ch] == SUB_PENDING || c->sub[ch] == SUB_OK)
		c->nsubs--;
	c->sub[ch] = SUB_GONE;
	stats.unsubscribes++;
	ws_send(c, 1, buf, n);
}

void cmd_speak(struct bc *c, uint32_t ch, const char *data)
{
	char buf[512];
	size_t n = cmd_text(buf, sizeof(buf), "message", ch, data);

	stats.speaks++;
	ws_send(c, 1, buf, n);
}

/* The session is over: the socket goes, the browser reconnects later (churners). */
void bc_end(struct bc *c, bool rst)
{
	uint64_t now = now_ns();

	bc_close_fd(c, rst);
	c->rx_len = c->msg_len = c->tx_len = 0;
	c->welcomed = c->stalled = c->resumed = c->saw_too_slow = c->broken = false;
	c->sent_close = false;
	memset(c->sub, 0, nchannels);
	c->nsubs = 0;
	stats.sessions++;
	if (c->kind == K_HEALTHY) {
		c->st = S_DONE;
		c->t_next = UINT64_MAX;
		return;
	}
	c->st = S_DOWN;
	c->t_next = now + rnd_range_ns(100, 3000);
	/* Shrink what a big drain grew. */
	if (c->rx_cap > 65536) {
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
}

static const char upgrade_fmt[] = "GET %s HTTP/1.1\r\n"
                                  "Host: %s:%d\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Protocol: actioncable-v1-json\r\n"
                                  "Origin: http://%s\r\n"
                                  "\r\n";

static void bc_connect(struct bc *c)
{
	struct epoll_event e = {0};
	int one = 1, fd;
	unsigned r;

	c->fault = F_NONE;
	if (c->kind == K_CHURN && rnd_below(100) < opt.fault_pct) {
		unsigned total = 0, k;

		for (k = 1; k < F_N; k++)
			if (opt.fault_mask & (1u << k))
				total += fault_share[k];
		r = rnd_below(total);
		for (k = 1; k < F_N; k++) {
			if (!(opt.fault_mask & (1u << k)))
				continue;
			if (r < fault_share[k]) {
				c->fault = (uint8_t)k;
				break;
			}
			r -= fault_share[k];
		}
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		stats.connect_errors++;
		NOTE_FIRST(stats.connect_errors, "socket: %s", strerror(errno));
		c->t_next = now_ns() + MS(1000);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	stats.connects++;
	stats.open_now++;
	if (stats.open_now > stats.open_peak)
		stats.open_peak = stats.open_now;
	c->fd = fd;
	c->st = S_CONNECTING;
	c->t_next = now_ns() + MS(HS_TIMEOUT);
	if (connect(fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0 &&
	    errno != EINPROGRESS) {
		stats.connect_errors++;
		NOTE_FIRST(stats.connect_errors, "connect: %s", strerror(errno));
		bc_end(c, false);
		return;
	}
	e.events = EPOLLIN | EPOLLOUT;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->ev = e.events;
}

/* Connected: send the upgrade (or, for a handshake fault, part of it). */
void bc_connected(struct bc *c)
{
	char req[4096];
	int n, err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		stats.connect_errors++;
		NOTE_FIRST(stats.connect_errors, "connect: %s", strerror(err ? err : errno));
		bc_end(c, false);
		return;
	}
	n = snprintf(req, sizeof(req), upgrade_fmt, c->path, opt.host, opt.port, opt.host);
	c->st = S_HANDSHAKE;
	if (c->fault == F_HALF_HS || c->fault == F_SLOW_HS) {
		stats.faults[c->fault]++;
		bc_queue(c, req, 1 + rnd_below((uint32_t)n - 5)); /* never the final CRLFCRLF */
		bc_flush(c);
		if (c->fault == F_HALF_HS) {
			bc_end(c, rnd_below(2));
			return;
		}
		c->t_next = now_ns() + MS(SLOWHS_WAIT); /* the server must drop us first */
		bc_update_events(c);
		return;
	}
	bc_queue(c, req, (size_t)n);
	bc_flush(c);
}

static void healthy_subscribe_all(struct bc *c)
{
	uint32_t i, ch;

	for (i = 0; i < nchannels; i++) {
		ch = i;
		if (c->sub[ch] == SUB_NONE) {
			bool mine = false;

			for (uint8_t t = 0; t < c->ntr; t++)
				if (topics[c->tr[t].topic].ch == ch)
					mine = true;
			if (mine)
				cmd_subscribe(c, ch);
		}
	}
}

static void on_welcome(struct bc *c)
{
	uint64_t now = now_ns();
	uint32_t n, i;

	if (c->welcomed) {
		stats.proto_errors++;
		return;
	}
	c->welcomed = true;
	stats.welcomed++;
	if (c->kind == K_HEALTHY) {
		healthy_subscribe_all(c);
		c->t_next = now + rnd_exp_ns(5000);
		return;
	}
	c->t_end = now + rnd_range_ns(opt.life_min_s * 1000, opt.life_max_s * 1000);
	n = 1 + rnd_below(3);
	for (i = 0; i < n; i++) {
		uint32_t ch = rnd_below(nchannels);

		if (c->sub[ch] == SUB_NONE)
			cmd_subscribe(c, ch);
	}
	c->t_next = now + rnd_exp_ns(opt.action_ms);
}

static void on_confirm(struct bc *c, int ch)
{
	uint8_t t;

	if (ch < 0) {
		stats.proto_errors++;
		return;
	}
	stats.confirms++;
	if (c->sub[ch] != SUB_PENDING)
		return; /* unsubscribed meanwhile, or the confirm of an earlier subscribe */
	c->sub[ch] = SUB_OK;
	if (c->kind != K_HEALTHY)
		return;
	for (t = 0; t < c->ntr; t++)
		if (topics[c->tr[t].topic].ch == (uint32_t)ch)
			c->tr[t].must_from = atomic_load(&topics[c->tr[t].topic].started) + 1;
}

static void check_seq(struct track *tr, int64_t seq)
{
	int64_t from;

	if (tr->must_from == INT64_MAX) {
		stats.h_early++; /* a message before its subscription's confirm */
		return;
	}
	if (seq <= tr->last) {
		if (seq == tr->last)
			stats.h_dup++;
		else
			stats.h_reorder++;
		return;
	}
	from = tr->last + 1 > tr->must_from ? tr->last + 1 : tr->must_from;
	if (seq > from)
		stats.h_lost += (uint64_t)(seq - from);
	tr->last = seq;
}

static void on_message(struct bc *c, const char *p, size_t len)
{
	int ch = channel_of(p, len < 160 ? len : 160);
	int64_t dev, seq, h, hs;
	uint8_t t;

	stats.msgs++;
	if (ch < 0) {
		stats.proto_errors++;
		return;
	}
	if (c->sub[ch] == SUB_NONE) {
		stats.foreign++;
		NOTE_FIRST(stats.foreign,
		           "browser %u got a message on a channel it never subscribed "
		           "to: %.*s",
		           c->idx, (int)(len > 200 ? 200 : len), p);
		return;
	}
	if (c->kind != K_HEALTHY)
		return;
	dev = num_after(p, len, "\"dev\":");
	if (dev >= 0) {
		seq = num_after(p, len, "\"seq\":");
		stats.h_msgs++;
		if ((uint64_t)dev >= ntopics || topics[dev].ch != (uint32_t)ch || seq < 0) {
			stats.h_misrouted++;
			return;
		}
		for (t = 0; t < c->ntr; t++)
			if (c->tr[t].topic == (uint32_t)dev) {
				check_seq(&c->tr[t], seq);
				return;
			}
		stats.h_misrouted++;
		return;
	}
	h = num_after(p, len, "\"h\":");
	if (h == (int64_t)c->idx) {
		hs = num_after(p, len, "\"hs\":");
		if (hs == (int64_t)c->hs_next) {
			c->hs_next++;
			stats.h_speak_echo++;
		} else if (hs > (int64_t)c->hs_next) {
			stats.h_speak_lost += (uint64_t)(hs - c->hs_next);
			stats.h_speak_echo++;
			c->hs_next = (uint32_t)hs + 1;
		} else {
			stats.h_speak_dup++;
		}
	}
}

void on_text(struct bc *c, const char *p, size_t len)
{
	static const char confirm[] = "\"type\":\"confirm_subscription\"}";
	static const char reject[] = "\"type\":\"reject_subscription\"}";

	if (len >= 9 && memcmp(p, "{\"type\":\"", 9) == 0) {
		if (len >= 16 && memcmp(p + 9, "welcome", 7) == 0) {
			on_welcome(c);
		} else if (len >= 13 && memcmp(p + 9, "ping", 4) == 0) {
			uint64_t now = now_ns();

			if (now - last_ping_rx > MS(1000) && nbursts < burst_cap &&
			    atomic_load(&mq.phase) == PH_SOAK)
				bursts[nbursts++] = now;
			last_ping_rx = now;
		} else if (len >= 19 && memcmp(p + 9, "disconnect", 10) == 0) {
			if (memmem(p, len, "\"too_slow\"", 10)) {
				c->saw_too_slow = true;
				if (!c->stalled && !c->resumed) {
					stats.too_slow_unexpected++;
					NOTE_FIRST(stats.too_slow_unexpected,
					           "browser %u (%s) called too slow while reading",
					           c->idx,
					           c->kind == K_HEALTHY ? "healthy" : "churn");
				}
			} else {
				stats.disconnect_other++;
				NOTE_FIRST(stats.disconnect_other, "browser %u: %.*s", c->idx,
				           (int)(len > 120 ? 120 : len), p);
			}
		} else {
			stats.proto_errors++;
		}
		return;
	}
	if (len < 14 || memcmp(p, "{\"identifier\":", 14) != 0) {
		stats.proto_errors++;
		return;
	}
	if (len >= sizeof(confirm) - 1 &&
	    memcmp(p + len - (sizeof(confirm) - 1), confirm, sizeof(confirm) - 1) == 0) {
		on_confirm(c, channel_of(p, len));
		return;
	}
	if (len >= sizeof(reject) - 1 &&
	    memcmp(p + len - (sizeof(reject) - 1), reject, sizeof(reject) - 1) == 0) {
		stats.rejects++;
		NOTE_FIRST(stats.rejects, "browser %u: %.*s", c->idx, (int)(len > 160 ? 160 : len),
		           p);
		return;
	}
	on_message(c, p, len);
}

/* The server closed (EOF, reset, or a close frame): account for it and end the session. */
void on_server_close(struct bc *c)
{
	switch (c->st) {
	case S_CONNECTING:
		stats.connect_errors++;
		break;
	case S_HANDSHAKE:
		if (c->fault == F_SLOW_HS)
			stats.slow_hs_closed++;
		else {
			stats.hs_refused++;
			NOTE_FIRST(stats.hs_refused, "browser %u: closed during the handshake",
			           c->idx);
		}
		break;
	case S_OPEN:
		if (c->kind == K_HEALTHY) {
			stats.h_disconnects++;
			NOTE_FIRST(stats.h_disconnects, "healthy browser %u was disconnected",
			           c->idx);
		} else if (c->resumed) {
			if (c->saw_too_slow)
				stats.too_slow_seen++;
			else
				stats.stall_no_too_slow++;
		} else if (c->stalled && c->fault == F_PAUSE) {
			stats.pause_dropped++;
			NOTE_FIRST(stats.pause_dropped, "browser %u: closed during a short pause",
			           c->idx);
		} else if (c->stalled) {
			stats.stall_closed_unread++;
		} else if (!c->saw_too_slow && !c->welcomed) {
			stats.hs_refused++;
		} else if (!c->saw_too_slow) {
			stats.server_dropped++;
			NOTE_FIRST(stats.server_dropped, "browser %u: the server closed it unasked",
			           c->idx);
		}
		break;
	case S_CLOSING:
		stats.clean_closes++;
		break;
	default:
		break;
	}
	bc_end(c, false);
}

/* A half-written frame: part of a subscribe (header only, or header and some payload). */
static void fault_half_frame(struct bc *c)
{
	unsigned char buf[1024];
	char cmd[512];
	size_t n = cmd_text(cmd, sizeof(cmd), "subscribe", rnd_below(nchannels), NULL), f;

	f = ws_frame(buf, 1, cmd, n);
	bc_queue(c, buf, 1 + rnd_below((uint32_t)f - 1));
	bc_flush(c);
	bc_end(c, rnd_below(2));
}

/*
 * A stalled reader subscribes to every channel, then stops reading for --stall seconds,
 * long enough to pass the kernel buffers and plugin_opt_max_outbound_bytes. A pause stops
 * reading for 3-10 s with its own subscriptions: far under the bound, so the server must
 * keep it and deliver everything afterwards.
 */
static void fault_stall(struct bc *c)
{
	uint32_t ch;

	if (c->fault != F_PAUSE)
		for (ch = 0; ch < nchannels; ch++)
			if (c->sub[ch] != SUB_PENDING && c->sub[ch] != SUB_OK)
				cmd_subscribe(c, ch);
	c->stalled = true;
	c->t_next = now_ns() + (c->fault == F_PAUSE ? rnd_range_ns(3000, 10000)
	                                            : MS((uint64_t)opt.stall_s * 1000));
	bc_update_events(c);
}

static void churn_action(struct bc *c)
{
	uint32_t r = rnd_below(100), ch, i, k;
	char data[128];

	if (r < 30) { /* subscribe */
		if (c->nsubs >= MAX_SUBS)
			return;
		ch = rnd_below(nchannels);
		if (c->sub[ch] == SUB_NONE || c->sub[ch] == SUB_GONE) {
			if (c->sub[ch] == SUB_GONE)
				stats.resubscribes++;
			cmd_subscribe(c, ch);
		}
		return;
	}
	/* Pick one of the channels this browser holds (PENDING or OK). */
	if (c->nsubs == 0)
		return;
	k = rnd_below(c->nsubs);
	for (ch = 0, i = 0; ch < nchannels; ch++)
		if (c->sub[ch] == SUB_PENDING || c->sub[ch] == SUB_OK) {
			if (i++ == k)
				break;
		}
	if (ch == nchannels)
		return;
	if (r < 45) {
		cmd_unsubscribe(c, ch);
	} else if (r < 50) { /* unsubscribe and subscribe again, back to back */
		cmd_unsubscribe(c, ch);
		stats.resubscribes++;
		cmd_subscribe(c, ch);
	} else if (r < 50 + opt.speak_share && ch < opt.actuators && c->sub[ch] == SUB_OK) {
		snprintf(data, sizeof(data),
		         "{\\\"action\\\":\\\"speak\\\",\\\"message\\\":\\\"c\\\","
		         "\\\"n\\\":%u}",
		         c->speak_n++);
		cmd_speak(c, ch, data);
	}
}

static void churn_end(struct bc *c)
{
	switch (c->fault) {
	case F_RST:
	case F_FIN:
		stats.faults[c->fault]++;
		bc_end(c, c->fault == F_RST);
		return;
	case F_HALF_FRAME:
		stats.faults[c->fault]++;
		fault_half_frame(c);
		return;
	case F_STALL:
	case F_STALL_HUNG:
	case F_PAUSE:
		stats.faults[c->fault]++;
		fault_stall(c);
		return;
	default: /* a clean close: 1000, and wait for the server's close */
		c->sent_close = true;
		ws_send(c, 0x8, "\x03\xe8", 2);
		c->st = S_CLOSING;
		c->t_next = now_ns() + MS(CLOSE_WAIT);
		return;
	}
}

static void bc_timer(struct bc *c, uint64_t now)
{
	char data[128];

	switch (c->st) {
	case S_DOWN:
		if (churning && c->kind == K_CHURN)
			bc_connect(c);
		else
			c->t_next = UINT64_MAX;
		return;
	case S_CONNECTING:
	case S_HANDSHAKE:
		if (c->fault == F_SLOW_HS && c->st == S_HANDSHAKE) {
			stats.slow_hs_kept++;
			NOTE_FIRST(stats.slow_hs_kept,
			           "browser %u: a half-sent upgrade was kept for %d s", c->idx,
			           SLOWHS_WAIT / 1000);
		} else {
			stats.hs_timeouts++;
			NOTE_FIRST(stats.hs_timeouts, "browser %u: no welcome within %d s", c->idx,
			           HS_TIMEOUT / 1000);
		}
		bc_end(c, true);
		return;
	case S_OPEN:
		if (!c->welcomed) {
			stats.hs_timeouts++;
			NOTE_FIRST(stats.hs_timeouts,
			           "browser %u: upgraded but no welcome within %d s", c->idx,
			           HS_TIMEOUT / 1000);
			bc_end(c, true);
		} else if (c->stalled && c->fault == F_PAUSE) {
			c->stalled = false; /* back to normal; the session then ends cleanly */
			c->fault = F_NONE;
			stats.pauses_ok++;
			c->t_end = now + rnd_range_ns(1000, 10000);
			c->t_next = now + rnd_exp_ns(opt.action_ms);
			bc_update_events(c);
		} else if (c->stalled) {
			if (c->fault == F_STALL_HUNG) {
				bc_end(c, true); /* vanishes without reading */
				return;
			}
			c->stalled = false; /* resume and read what waits */
			c->resumed = true;
			c->t_next = now + MS(DRAIN_WAIT);
			bc_update_events(c);
		} else if (c->resumed) {
			stats.stall_no_too_slow++;
			NOTE_FIRST(stats.stall_no_too_slow,
			           "browser %u: stalled %u s, resumed, %s and still open", c->idx,
			           opt.stall_s,
			           c->saw_too_slow ? "told too_slow" : "not told too_slow");
			bc_end(c, true);
		} else if (c->kind == K_HEALTHY) {
			snprintf(data, sizeof(data),
			         "{\\\"action\\\":\\\"speak\\\",\\\"message\\\":\\\"h\\\","
			         "\\\"h\\\":%u,"
			         "\\\"hs\\\":%u}",
			         c->idx, c->hs_sent++);
			stats.h_speak_sent++;
			cmd_speak(c, topics[c->tr[0].topic].ch, data);
			c->t_next = now + rnd_exp_ns(5000);
		} else if (now >= c->t_end) {
			churn_end(c);
		} else {
			churn_action(c);
			c->t_next = now + rnd_exp_ns(opt.action_ms);
			if (c->t_next > c->t_end)
				c->t_next = c->t_end;
		}
		if (c->fd >= 0 && c->broken)
			on_server_close(c);
		return;
	case S_CLOSING:
		stats.clean_close_timeouts++;
		NOTE_FIRST(stats.clean_close_timeouts,
		           "browser %u: no close from the server in %d ms", c->idx, CLOSE_WAIT);
		bc_end(c, true);
		return;
	default:
		c->t_next = UINT64_MAX;
		return;
	}
}

uint64_t fault_total(void)
{
	uint64_t n = 0;
	unsigned k;

	for (k = 1; k < F_N; k++)
		n += stats.faults[k];
	return n;
}

static uint64_t last_scan;

void engine_timers(void)
{
	uint64_t now = now_ns();
	uint32_t i;

	if (now - last_scan < MS(5))
		return;
	last_scan = now;
	for (i = 0; i < nbrowsers; i++)
		if (browsers[i].t_next <= now)
			bc_timer(&browsers[i], now);
}

void browsers_init(long long exp)
{
	uint32_t i, j, s;
	char *tok;

	nbrowsers = opt.healthy + opt.clients;
	browsers = xcalloc(nbrowsers, sizeof(*browsers));
	server_addr.sin_family = AF_INET;
	server_addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1)
		die("--host must be an IPv4 address: %s", opt.host);
	for (i = 0; i < nbrowsers; i++) {
		struct bc *c = &browsers[i];

		c->fd = -1;
		c->idx = i;
		c->kind = i < opt.healthy ? K_HEALTHY : K_CHURN;
		c->sub = xcalloc(nchannels, 1);
		c->st = S_DOWN;
		c->t_next = UINT64_MAX;
		/* User soak<i>, valid for the run plus an hour (main sets exp). */
		tok = mint_token(secret, secret_len, "soak", i, exp);
		c->path = token_path(opt.path, tok);
		free(tok);
		if (c->kind != K_HEALTHY)
			continue;
		/* Two actuators and one site each; together the healthy set covers every topic. */
		for (j = 0; j < 2 && opt.actuators; j++) {
			c->tr[c->ntr].topic = (2 * i + j) % opt.actuators;
			c->tr[c->ntr].must_from = INT64_MAX;
			c->tr[c->ntr++].last = -1;
		}
		s = opt.sites ? i % opt.sites : 0;
		for (j = 0; j < opt.sensors && opt.sites && c->ntr < MAX_TRACK; j++) {
			c->tr[c->ntr].topic = opt.actuators + s * opt.sensors + j;
			c->tr[c->ntr].must_from = INT64_MAX;
			c->tr[c->ntr++].last = -1;
		}
	}
}

/* Connect every browser, at most --connect-concurrency handshakes at a time. */
void browsers_ramp(void)
{
	uint64_t t0 = now_ns(), deadline = t0 + MS(120000);
	uint32_t next = 0, i, busy;

	while (now_ns() < deadline) {
		busy = 0;
		for (i = 0; i < next; i++)
			if ((browsers[i].st == S_CONNECTING || browsers[i].st == S_HANDSHAKE ||
			     (browsers[i].st == S_OPEN && !browsers[i].welcomed)) &&
			    browsers[i].fault != F_SLOW_HS && browsers[i].fault != F_HALF_HS)
				busy++;
		while (busy < opt.connect_conc && next < nbrowsers) {
			bc_connect(&browsers[next++]);
			busy++;
		}
		engine_events(2);
		engine_timers();
		if (next == nbrowsers && busy == 0)
			break;
	}
	note("ramp: %u browsers connecting/connected in %.1f s (%" PRIu64 " welcomed, %" PRIu64
	     " refused, %" PRIu64 " connect errors)",
	     nbrowsers, (double)(now_ns() - t0) / 1e9, stats.welcomed, stats.hs_refused,
	     stats.connect_errors);
}

bool healthy_caught_up(const long long *fin)
{
	uint32_t i;
	uint8_t t;

	for (i = 0; i < opt.healthy; i++) {
		if (browsers[i].st != S_OPEN)
			continue;
		if (browsers[i].hs_next < browsers[i].hs_sent)
			return false;
		for (t = 0; t < browsers[i].ntr; t++)
			if (browsers[i].tr[t].last < fin[browsers[i].tr[t].topic])
				return false;
	}
	return true;
}
