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
#include <time.h>
#include <unistd.h>

#include "base/log.h"

static struct {
    int sock; /* datagram socket to systemd, -1 = none */
    struct sockaddr_un addr;
    socklen_t addrlen;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* for a re-exec */
    int channel; /* worker: the write end of the master's pipe, -1 = none */
    bool is_worker, stopping_sent;
} N = {.sock = -1, .channel = -1};

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

int sl_notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL)
        return 0;
    snprintf(N.path, sizeof(N.path), "%s", path);
    unsetenv("NOTIFY_SOCKET"); /* the app's children must not notify for us */
    return open_socket(N.path);
}

void sl_notify_export(void)
{
    if (N.path[0] != '\0' && !N.is_worker)
        setenv("NOTIFY_SOCKET", N.path, 1);
}

void sl_notify(const char *msg)
{
    if (N.sock < 0 || N.is_worker)
        return;
    if (sendto(N.sock, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&N.addr,
               N.addrlen) < 0)
        sl_log(SL_LOG_WARNING, "NOTIFY_SOCKET: %s", strerror(errno));
}

void sl_notify_forked(int channel_fd)
{
    N.is_worker = true;
    if (N.sock >= 0)
        close(N.sock);
    N.sock = -1;
    N.channel = channel_fd;
}

static void tell_master(enum sl_notify_what what)
{
    struct sl_notify_msg m = {.pid = (int32_t)getpid(), .what = (int32_t)what};
    if (N.channel < 0)
        return;
    /* Blocking or not, a write below PIPE_BUF is whole or nothing. */
    if (write(N.channel, &m, sizeof(m)) != (ssize_t)sizeof(m))
        sl_log(SL_LOG_WARNING, "cannot report to the master: %s", strerror(errno));
}

void sl_notify_worker_ready(void)
{
    tell_master(SL_NOTIFY_READY);
}

void sl_notify_worker_recycle(void)
{
    tell_master(SL_NOTIFY_RECYCLE);
}

void sl_notify_ready(unsigned n)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving, %u worker%s ready", n, n == 1 ? "" : "s");
    sl_notify(msg);
}

void sl_notify_reloading(void)
{
    char msg[96];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    sl_notify(msg);
}

void sl_notify_stopping(void)
{
    if (N.stopping_sent || N.is_worker)
        return;
    N.stopping_sent = true;
    sl_notify("STOPPING=1\nSTATUS=draining");
}
