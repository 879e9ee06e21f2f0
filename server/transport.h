/*
 * transport: the byte stream under a client connection.
 *
 * The HTTP code (conn.c, resp.c) never calls read, sendmsg, shutdown or
 * close on a client socket itself: it goes through the connection's
 * transport, an ops table chosen per listener. Plain sockets use
 * sl_transport_plain (ctx NULL, no copy, one indirect call); TLS listeners
 * use sl_transport_tls (server/tls.h), whose per-connection session travels
 * as `ctx`.
 *
 * Every implementation is non-blocking, returns errors as negative errno
 * values (-EAGAIN: nothing can be done now, wait for the fd's next edge),
 * retries EINTR itself and never raises SIGPIPE. A read shorter than asked
 * means the fd is drained (edge-triggered epoll relies on it).
 */
#ifndef SL_SERVER_TRANSPORT_H
#define SL_SERVER_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sl_transport {
    /* NULL (plain), or: the per-connection ctx for a freshly accepted fd,
     * given the listener's `arg` (struct sl__listener.tp_arg); NULL = refuse
     * the connection. */
    void *(*open)(int fd, void *arg);
    /* NULL, or: maps the epoll events of the fd to what the connection may
     * now do (TLS: a read that waited for writability can run on EPOLLOUT). */
    uint32_t (*events)(void *ctx, uint32_t events);
    /* NULL, or: after read returned -EAGAIN, whether it waits for the fd to
     * become writable (a handshake flight the socket did not take whole):
     * the caller adds EPOLLOUT to the fd's mask, which otherwise holds it
     * only once a response write blocked. An idle or closing connection
     * with EPOLLOUT in an edge-triggered mask wakes the worker at every ACK
     * that frees send space. */
    bool (*read_wants_write)(const void *ctx);
    /* Reads up to len bytes into buf: the count (> 0), 0 at the end of the
     * peer's stream, -EAGAIN, or another -errno. */
    ssize_t (*read)(int fd, void *ctx, void *buf, size_t len);
    /* Writes iov[0..iovcnt) in order: the bytes taken (possibly fewer than
     * offered), -EAGAIN when none could be, or another -errno (-EPIPE,
     * -ECONNRESET: the peer is gone). */
    ssize_t (*writev)(int fd, void *ctx, const struct iovec *iov, int iovcnt);
    /* NULL when the transport cannot send from a file directly, or: sends
     * up to len bytes of file_fd from *off (advanced), like writev's
     * results (0: the file ended). -EOPNOTSUPP when this connection cannot
     * (TLS without kTLS sending): the caller reads and writes instead. */
    ssize_t (*sendfile)(int fd, void *ctx, int file_fd, off_t *off, size_t len);
    /* Ends the write side after the bytes written so far; reading goes on.
     * Returns 0 or -errno. */
    int (*shutdown)(int fd, void *ctx);
    /* Releases ctx and closes fd. */
    void (*close)(int fd, void *ctx);
};

/* For writes that cannot say MSG_NOSIGNAL (sendfile(2), a kTLS socket's
 * OpenSSL write): ignores SIGPIPE, once, unless the embedder installed a
 * handler. The saltare master ignores it for its whole tree already
 * (program/master.c); this keeps the contract for any other user. */
void sl_transport_ignore_sigpipe(void);

/* Plain sockets: ctx is unused (NULL). */
extern const struct sl_transport sl_transport_plain;

#ifdef __cplusplus
}
#endif

#endif
