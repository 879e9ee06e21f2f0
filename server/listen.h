/*
 * listen: opening and closing the configured listening sockets.
 */
#ifndef SL_SERVER_LISTEN_H
#define SL_SERVER_LISTEN_H

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Creates, binds and listens on one socket for `l` (non-blocking,
 * close-on-exec, SO_REUSEADDR; IPV6_V6ONLY for IPv6; a stale Unix socket
 * file is replaced, `mode` applied). Returns the fd, or a negative errno
 * with a message written to stderr naming the address. A TCP listener with
 * port 0 logs the address the kernel bound: "listening on HOST:PORT".
 */
int sl_listen_open(const struct sl_listener_config *l);

/* Closes every fd and removes Unix socket files. */
void sl_listen_close_all(const struct sl_config *cfg, int *fds);

#ifdef __cplusplus
}
#endif

#endif
