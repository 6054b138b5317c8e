/*
 * The browsers' WebSocket client: non-blocking TCP sockets on one epoll, the HTTP
 * upgrade's answer, masked client frames (RFC 6455 5.3), a bounded send buffer and a
 * bounded frame parser. It is cable-soak's own and not libwebsockets because the faults
 * need control of the socket that lws does not give (half a frame, reads stopped on one
 * connection). Complete messages go to on_text (soak_browsers.c). Thread: main only.
 */
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

void bc_update_events(struct bc *c)
{
	struct epoll_event e = {0};
	uint32_t want = 0;

	if (c->fd < 0)
		return;
	if (!c->stalled)
		want |= EPOLLIN;
	if (c->st == S_CONNECTING || c->tx_len)
		want |= EPOLLOUT;
	if (want == c->ev)
		return;
	e.events = want;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->ev = want;
}

void bc_flush(struct bc *c)
{
	ssize_t n;
	size_t off = 0;

	while (off < c->tx_len) {
		n = send(c->fd, c->tx + off, c->tx_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		c->broken = true; /* handled by the caller's loop */
		c->tx_len = 0;
		return;
	}
	if (off) {
		memmove(c->tx, c->tx + off, c->tx_len - off);
		c->tx_len -= off;
	}
	bc_update_events(c);
}

void bc_queue(struct bc *c, const void *data, size_t len)
{
	if (c->fd < 0 || c->broken)
		return;
	if (c->tx_len + len > TX_MAX) {
		stats.proto_errors++;
		NOTE_FIRST(stats.proto_errors,
		           "browser %u: %zu bytes unsent (the server stopped reading)", c->idx,
		           c->tx_len);
		c->broken = true;
		return;
	}
	if (c->tx_len + len > c->tx_cap) {
		c->tx_cap = c->tx_len + len + 1024;
		c->tx = xrealloc(c->tx, c->tx_cap);
	}
	memcpy(c->tx + c->tx_len, data, len);
	c->tx_len += len;
}

/* A masked client frame (RFC 6455 5.3) into buf; returns its length. */
size_t ws_frame(unsigned char *buf, int op, const void *data, size_t len)
{
	const unsigned char *d = data;
	uint32_t mk = (uint32_t)rnd();
	unsigned char *m;
	size_t h = 0, i;

	buf[h++] = (unsigned char)(0x80 | op);
	if (len < 126) {
		buf[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		buf[h++] = 0x80 | 126;
		buf[h++] = (unsigned char)(len >> 8);
		buf[h++] = (unsigned char)len;
	} else {
		buf[h++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			buf[h++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	m = buf + h;
	memcpy(m, &mk, 4);
	h += 4;
	for (i = 0; i < len; i++)
		buf[h + i] = d[i] ^ m[i & 3];
	return h + len;
}

void ws_send(struct bc *c, int op, const void *data, size_t len)
{
	unsigned char buf[1024];
	size_t n;

	if (len > sizeof(buf) - 16)
		return;
	n = ws_frame(buf, op, data, len);
	bc_queue(c, buf, n);
	bc_flush(c);
}

void bc_close_fd(struct bc *c, bool rst)
{
	struct linger l = {1, 0};

	if (c->fd < 0)
		return;
	if (rst)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(c->fd);
	c->fd = -1;
	c->ev = 0;
	stats.open_now--;
}

/* Frames in c->rx after the upgrade. Returns false once the session has ended. */
static bool parse_frames(struct bc *c)
{
	size_t off = 0, avail, hdr, i;
	uint64_t plen;
	unsigned char *p;
	bool fin;
	int op;

	while (c->fd >= 0) {
		p = (unsigned char *)c->rx + off;
		avail = c->rx_len - off;
		if (avail < 2)
			break;
		fin = p[0] & 0x80;
		op = p[0] & 0x0f;
		plen = p[1] & 0x7f;
		hdr = 2;
		if (p[1] & 0x80) {
			stats.proto_errors++; /* a server must not mask */
			bc_end(c, true);
			return false;
		}
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (uint64_t)p[2] << 8 | p[3];
			hdr = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			for (plen = 0, i = 0; i < 8; i++)
				plen = plen << 8 | p[2 + i];
			hdr = 10;
		}
		if (plen > RX_MAX) {
			stats.proto_errors++;
			bc_end(c, true);
			return false;
		}
		if (avail < hdr + plen)
			break;
		off += hdr + plen;
		stats.frames++;
		p += hdr;
		switch (op) {
		case 0x0:
		case 0x1:
			if (fin && c->msg_len == 0 && op == 1) {
				on_text(c, (const char *)p, plen);
				break;
			}
			if (c->msg_len + plen > RX_MAX) {
				stats.proto_errors++;
				bc_end(c, true);
				return false;
			}
			if (c->msg_len + plen > c->msg_cap) {
				c->msg_cap = c->msg_len + plen + 1024;
				c->msg = xrealloc(c->msg, c->msg_cap);
			}
			memcpy(c->msg + c->msg_len, p, plen);
			c->msg_len += plen;
			if (fin) {
				on_text(c, c->msg, c->msg_len);
				c->msg_len = 0;
			}
			break;
		case 0x8: /* close: answer it, then end */
			if (!c->sent_close) {
				c->sent_close = true;
				ws_send(c, 0x8, p, plen >= 2 ? 2 : 0);
			}
			on_server_close(c);
			return false;
		case 0x9:
			ws_send(c, 0xA, p, plen);
			break;
		case 0xA:
			break;
		default:
			stats.proto_errors++;
			break;
		}
		if (c->broken) {
			on_server_close(c);
			return false;
		}
	}
	if (c->fd >= 0 && off) {
		memmove(c->rx, c->rx + off, c->rx_len - off);
		c->rx_len -= off;
	}
	return c->fd >= 0;
}

static bool parse_handshake(struct bc *c)
{
	char *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);
	size_t hl;

	if (end == NULL) {
		if (c->rx_len > 16384) {
			stats.proto_errors++;
			bc_end(c, true);
			return false;
		}
		return true;
	}
	hl = (size_t)(end - c->rx) + 4;
	if (c->rx_len < 12 || memcmp(c->rx, "HTTP/1.1 101", 12) != 0) {
		stats.hs_refused++;
		NOTE_FIRST(stats.hs_refused, "browser %u: upgrade refused: %.*s", c->idx,
		           (int)(strcspn(c->rx, "\r\n") < 80 ? strcspn(c->rx, "\r\n") : 80), c->rx);
		bc_end(c, false);
		return false;
	}
	memmove(c->rx, c->rx + hl, c->rx_len - hl);
	c->rx_len -= hl;
	c->st = S_OPEN;
	return true;
}

void bc_read(struct bc *c)
{
	ssize_t n;
	int rounds;

	for (rounds = 0; rounds < 8 && c->fd >= 0 && !c->stalled; rounds++) {
		if (c->rx_cap - c->rx_len < 16384) {
			if (c->rx_cap >= RX_MAX) {
				stats.proto_errors++;
				bc_end(c, true);
				return;
			}
			c->rx_cap = c->rx_cap ? c->rx_cap * 2 : 32768;
			c->rx = xrealloc(c->rx, c->rx_cap + 1);
		}
		n = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, MSG_DONTWAIT);
		if (n == 0 ||
		    (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			on_server_close(c);
			return;
		}
		if (n < 0)
			return;
		c->rx_len += (size_t)n;
		stats.bytes += (uint64_t)n;
		if (c->st == S_HANDSHAKE) {
			if (c->fault == F_SLOW_HS) {
				c->rx_len = 0; /* whatever it says, the server answered: fine */
				continue;
			}
			c->rx[c->rx_len] = '\0';
			if (!parse_handshake(c))
				return;
		}
		if (c->st == S_OPEN || c->st == S_CLOSING)
			if (!parse_frames(c))
				return;
		if ((size_t)n < 16384)
			return;
	}
}

void engine_events(int timeout_ms)
{
	struct epoll_event ev[512];
	struct bc *c;
	int n, i;

	n = epoll_wait(ep, ev, 512, timeout_ms);
	for (i = 0; i < n; i++) {
		c = ev[i].data.ptr;
		if (c->fd < 0)
			continue;
		if (c->st == S_CONNECTING) {
			if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				bc_connected(c);
			if (c->fd < 0 || c->st == S_CONNECTING)
				continue;
		}
		if ((ev[i].events & EPOLLOUT) && c->tx_len)
			bc_flush(c);
		if (c->fd >= 0 && !c->broken && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
			if (c->stalled)
				on_server_close(c); /* reset while not reading */
			else
				bc_read(c);
		}
		if (c->fd >= 0 && c->broken)
			on_server_close(c);
	}
}
