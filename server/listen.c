/*
 * listen: binds the configured listeners.
 */
#include "server/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/log.h"

#define BACKLOG 1024 /* the kernel caps it at net.core.somaxconn */

static int fail(const struct sl_listener_config *l, const char *what, int err)
{
    sl_log(SL_LOG_ERROR, "listen %s: %s: %s", l->name ? l->name : l->path, what, strerror(err));
    return -err;
}

/*
 * With port 0 the kernel picks the port, so the log says which: one
 * "listening on HOST:PORT" line ("[HOST]:PORT" for IPv6), which scripts and
 * tests wait for as the ready signal.
 */
static void announce_port0(const struct sl_listener_config *l, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&l->addr;
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&l->addr;
    bool is6 = l->addr.ss_family == AF_INET6;
    if ((is6 ? v6->sin6_port : v4->sin_port) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    v4 = (const struct sockaddr_in *)&ss;
    v6 = (const struct sockaddr_in6 *)&ss;
    if (!inet_ntop(ss.ss_family, is6 ? (const void *)&v6->sin6_addr : (const void *)&v4->sin_addr,
                   host, sizeof(host)))
        return;
    sl_log(SL_LOG_INFO, is6 ? "listening on [%s]:%u" : "listening on %s:%u", host,
           (unsigned)ntohs(is6 ? v6->sin6_port : v4->sin_port));
}

static int open_tcp(const struct sl_listener_config *l)
{
    int one = 1;
    int family = l->addr.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(l, "socket", errno);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto out_close;
    /* A "[::]" listener serves IPv6 only; IPv4 is its own listener. */
    if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto out_close;
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0) {
        int err = errno;
        close(fd);
        return fail(l, "bind", err);
    }
    if (listen(fd, BACKLOG) < 0)
        goto out_close;
    announce_port0(l, fd);
    return fd;
out_close : {
    int err = errno;
    close(fd);
    return fail(l, "setup", err);
}
}

/*
 * A socket file left by a previous run is removed, but only when it is a
 * socket nobody accepts on: a live server's socket, or a regular file at the
 * path, is an error rather than something to delete.
 */
static int clear_stale(const struct sl_listener_config *l, const struct sockaddr_un *sun)
{
    struct stat st;
    if (lstat(l->path, &st) < 0)
        return errno == ENOENT ? 0 : fail(l, "stat", errno);
    if (!S_ISSOCK(st.st_mode))
        return fail(l, "path exists and is not a socket", EEXIST);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return fail(l, "socket", errno);
    int live = connect(probe, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
    close(probe);
    if (live)
        return fail(l, "another process is listening on it", EADDRINUSE);
    if (unlink(l->path) < 0 && errno != ENOENT)
        return fail(l, "unlink stale socket", errno);
    return 0;
}

static int open_unix(const struct sl_listener_config *l)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!l->path || strlen(l->path) >= sizeof(sun.sun_path))
        return fail(l, "path too long for a Unix socket", ENAMETOOLONG);
    strcpy(sun.sun_path, l->path);
    int rc = clear_stale(l, &sun);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(l, "socket", errno);
    if (bind(fd, (const struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int err = errno;
        close(fd);
        return fail(l, "bind", err);
    }
    if ((l->mode >= 0 && chmod(l->path, (mode_t)l->mode) < 0) || listen(fd, BACKLOG) < 0) {
        int err = errno;
        close(fd);
        unlink(l->path);
        return fail(l, "chmod/listen", err);
    }
    return fd;
}

int sl_listen_open(const struct sl_listener_config *l)
{
    return l->kind == SL_LISTENER_UNIX ? open_unix(l) : open_tcp(l);
}

void sl_listen_close_all(const struct sl_config *cfg, int *fds)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (fds[i] < 0)
            continue;
        close(fds[i]);
        fds[i] = -1;
        /* Only a socket this process bound (fd was valid) is ours to remove. */
        if (cfg->listeners[i].kind == SL_LISTENER_UNIX && cfg->listeners[i].path)
            unlink(cfg->listeners[i].path);
    }
}
