/*
 * Socket helpers in the style of Redis' anet.c (sock.h): one option per function, each
 * result checked, the reason written into the caller's buffer. They touch only the
 * descriptor they are given: any thread (the broker thread's listen_open, the gateway
 * thread otherwise).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cable.h"
#include "sock.h"

const char *sock_error_text(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "in use (another broker, or a previous run still up? "
		       "ss -ltnp shows who holds it)";
	case EADDRNOTAVAIL:
		return "not a local address of this host";
	case EACCES:
	case EPERM:
		return "not permitted (ports below 1024 need privileges the broker has dropped "
		       "by the time it loads plugins)";
	default:
		return strerror(e);
	}
}

static int set_option(int fd, int level, int name, const void *value, socklen_t len,
                      const char *what, char *err, size_t errlen)
{
	if (setsockopt(fd, level, name, value, len) == 0)
		return CABLE_OK;
	snprintf(err, errlen, "setsockopt(%s): %s", what, strerror(errno));
	return CABLE_EIO;
}

int sock_set_nodelay(int fd, char *err, size_t errlen)
{
	int one = 1;

	return set_option(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one), "TCP_NODELAY", err,
	                  errlen);
}

int sock_set_cork(int fd, bool on, char *err, size_t errlen)
{
	int v = on;

	return set_option(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v), "TCP_CORK", err, errlen);
}

int sock_set_sndbuf(int fd, int bytes, char *err, size_t errlen)
{
	return set_option(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes), "SO_SNDBUF", err,
	                  errlen);
}

int sock_set_user_timeout(int fd, unsigned ms, char *err, size_t errlen)
{
	return set_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms), "TCP_USER_TIMEOUT",
	                  err, errlen);
}

int sock_listen_tcp(const char *address, int port, bool reuseport, int *fd, char *err,
                    size_t errlen)
{
	struct addrinfo hints = {0}, *ai = NULL;
	char service[16];
	int s, rc, one = 1;

	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(address, service, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		snprintf(err, errlen, "not a local address (the name does not resolve: %s)",
		         gai_strerror(rc));
		return CABLE_EINVAL;
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
	    bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, SOMAXCONN) != 0) {
		snprintf(err, errlen, "%s", sock_error_text(errno));
		if (s >= 0)
			close(s);
		freeaddrinfo(ai);
		return CABLE_EINVAL;
	}
	freeaddrinfo(ai);
	*fd = s;
	return CABLE_OK;
}

/*
 * Asked with poll() and not with lws_send_pipe_choked(), which also says yes while lws
 * holds the tail of a partial write that the next service round flushes: a writable
 * socket in the middle of a burst is not a slow client.
 */
bool sock_send_full(int fd)
{
	struct pollfd p = {fd, POLLOUT, 0};

	return fd < 0 || poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT);
}

/*
 * Before closing, read and drop what the client sent that we have not read. Closing a
 * TCP socket with unread data makes the kernel send a reset instead of a FIN, and a
 * reset makes the client's kernel discard what it has not yet handed to the client:
 * the disconnect frame just written would be lost. Bounded, non-blocking.
 */
void sock_drain_unread(int fd)
{
	char buf[4096];
	int i;

	if (fd < 0)
		return;
	for (i = 0; i < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
		;
}
