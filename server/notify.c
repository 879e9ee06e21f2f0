/*
 * notify: sd_notify without libsystemd.
 */
#include "server/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"

static struct {
    int sock; /* datagram socket to systemd, -1 = none */
    struct sockaddr_un addr;
    socklen_t addrlen;
    int pipe_r, pipe_w; /* workers -> master readiness */
    unsigned workers, ready;
    bool is_worker, ready_sent, stopping_sent;
} N = {.sock = -1, .pipe_r = -1, .pipe_w = -1};

static int open_socket(const char *path)
{
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(N.addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
        sl_log(SL_LOG_WARNING, "NOTIFY_SOCKET=%s: not a socket path; not notifying", path);
        return -EINVAL;
    }
    N.addr.sun_family = AF_UNIX;
    memcpy(N.addr.sun_path, path, len);
    if (path[0] == '@')
        N.addr.sun_path[0] = '\0';
    N.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] != '@'));
    N.sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (N.sock < 0) {
        sl_log(SL_LOG_WARNING, "NOTIFY_SOCKET: socket: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

int sl_notify_init(unsigned workers)
{
    const char *path = getenv("NOTIFY_SOCKET");
    int p[2];
    if (path) {
        char copy[sizeof(N.addr.sun_path) + 1];
        snprintf(copy, sizeof(copy), "%s", path);
        unsetenv("NOTIFY_SOCKET"); /* the app's children must not notify for us */
        open_socket(copy);
    }
    N.workers = workers;
    if (workers == 0 || N.sock < 0)
        return 0;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        sl_log(SL_LOG_ERROR, "notify pipe: %s", strerror(errno));
        return -errno;
    }
    N.pipe_r = p[0];
    N.pipe_w = p[1];
    return 0;
}

void sl_notify(const char *msg)
{
    if (N.sock < 0 || N.is_worker)
        return;
    if (sendto(N.sock, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&N.addr,
               N.addrlen) < 0)
        sl_log(SL_LOG_WARNING, "NOTIFY_SOCKET: %s", strerror(errno));
}

void sl_notify_forked(void)
{
    N.is_worker = true;
    if (N.sock >= 0)
        close(N.sock);
    N.sock = -1;
    if (N.pipe_r >= 0)
        close(N.pipe_r);
    N.pipe_r = -1;
}

static void send_ready(unsigned n)
{
    char msg[128];
    if (N.ready_sent)
        return;
    N.ready_sent = true;
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving, %u worker%s ready", n, n == 1 ? "" : "s");
    sl_notify(msg);
}

void sl_notify_worker_ready(void)
{
    if (N.is_worker) {
        char one = 1;
        if (N.pipe_w >= 0 && write(N.pipe_w, &one, 1) < 0)
            sl_log(SL_LOG_WARNING, "notify pipe: %s", strerror(errno));
        return;
    }
    send_ready(1);
}

int sl_notify_pipe_fd(void)
{
    return N.pipe_r;
}

void sl_notify_collect(void)
{
    char buf[256];
    ssize_t n;
    while ((n = read(N.pipe_r, buf, sizeof(buf))) > 0)
        N.ready += (unsigned)n;
    if (N.ready >= N.workers)
        send_ready(N.workers);
    else if (!N.ready_sent) {
        char msg[96];
        snprintf(msg, sizeof(msg), "STATUS=starting, %u of %u workers ready", N.ready, N.workers);
        sl_notify(msg);
    }
}

void sl_notify_stopping(void)
{
    if (N.stopping_sent || N.is_worker)
        return;
    N.stopping_sent = true;
    sl_notify("STOPPING=1\nSTATUS=draining");
}
