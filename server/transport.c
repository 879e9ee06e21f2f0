/*
 * transport: the plain-socket implementation of struct sl_transport.
 */
#include "server/transport.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t plain_read(int fd, void *ctx, void *buf, size_t len)
{
    ssize_t n;
    (void)ctx;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* sendmsg, not writev: MSG_NOSIGNAL turns a peer reset into EPIPE instead
 * of a process-killing SIGPIPE. */
static ssize_t plain_writev(int fd, void *ctx, const struct iovec *iov, int iovcnt)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n;
    (void)ctx;
    do
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

void sl_transport_ignore_sigpipe(void)
{
    static atomic_bool done;
    struct sigaction sa;
    if (atomic_load_explicit(&done, memory_order_relaxed))
        return;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    atomic_store_explicit(&done, true, memory_order_relaxed);
}

static ssize_t plain_sendfile(int fd, void *ctx, int file_fd, off_t *off, size_t len)
{
    ssize_t n;
    (void)ctx;
    sl_transport_ignore_sigpipe(); /* sendfile(2) has no MSG_NOSIGNAL */
    do
        n = sendfile(fd, file_fd, off, len);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static int plain_shutdown(int fd, void *ctx)
{
    (void)ctx;
    return shutdown(fd, SHUT_WR) == 0 ? 0 : -errno;
}

static void plain_close(int fd, void *ctx)
{
    (void)ctx;
    close(fd);
}

const struct sl_transport sl_transport_plain = {
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .shutdown = plain_shutdown,
    .close = plain_close,
};
