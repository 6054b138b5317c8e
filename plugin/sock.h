/*
 * Socket helpers in the style of Redis' anet.c: one option per function, each result
 * checked, and on failure CABLE_EIO with the system's reason in err (the caller reports
 * it once). They touch only the descriptor: any thread.
 */
#ifndef CABLE_SOCK_H
#define CABLE_SOCK_H

#include <stdbool.h>
#include <stddef.h>

/* What a failed bind() or listen() means, for the operator. Never NULL. */
const char *sock_error_text(int e);

/*
 * A non-blocking IPv4 listening socket bound to address:port; *fd on success. reuseport:
 * SO_REUSEPORT, for one socket per gateway shard on the same port.
 */
int sock_listen_tcp(const char *address, int port, bool reuseport, int *fd, char *err,
                    size_t errlen);

int sock_set_nodelay(int fd, char *err, size_t errlen);                   /* TCP_NODELAY */
int sock_set_cork(int fd, bool on, char *err, size_t errlen);             /* TCP_CORK */
int sock_set_sndbuf(int fd, int bytes, char *err, size_t errlen);         /* SO_SNDBUF */
int sock_set_user_timeout(int fd, unsigned ms, char *err, size_t errlen); /* TCP_USER_TIMEOUT */

/* Is the kernel refusing more data for this socket now (poll for POLLOUT, no wait)? */
bool sock_send_full(int fd);

/* Read and drop what is waiting (bounded, non-blocking), so a close sends FIN, not RST. */
void sock_drain_unread(int fd);

#endif
