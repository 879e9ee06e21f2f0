/*
 * listen: binds the configured listeners, or takes them from systemd.
 */
#include "server/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"

#define SD_FDS_START 3  /* SD_LISTEN_FDS_START */
#define SD_FDS_MAX 1024 /* passed fds we look at */

static const char *label_of(const struct sl_listener_config *l)
{
    return l->label ? l->label : l->name ? l->name : l->path ? l->path : "?";
}

static int fail(const struct sl_listener_config *l, const char *what, int err)
{
    sl_log(SL_LOG_ERROR, "listen %s: %s: %s", label_of(l), what, strerror(err));
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

/* The kernel silently truncates a backlog above net.core.somaxconn: say so. */
static int backlog_of(const struct sl_listener_config *l)
{
    int max = 4096;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    if (f) {
        if (fscanf(f, "%d", &max) != 1)
            max = 4096;
        fclose(f);
    }
    if (l->backlog > (uint32_t)max) {
        sl_log(SL_LOG_WARNING, "listen %s: backlog %u capped to net.core.somaxconn = %d",
               label_of(l), l->backlog, max);
        return max;
    }
    return l->backlog ? (int)l->backlog : 1024;
}

int sl_listen_tune(int fd, const struct sl_tcp_config *tcp)
{
    int on = tcp->nodelay, ka = tcp->keepalive_idle_ms > 0;
    int idle = (int)(tcp->keepalive_idle_ms / 1000),
        intvl = (int)(tcp->keepalive_interval_ms / 1000);
    int cnt = (int)tcp->keepalive_count, user = (int)tcp->user_timeout_ms;
    int tfo = (int)tcp->fastopen, defer = (int)((tcp->defer_accept_ms + 999) / 1000);
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, sizeof(ka)) < 0)
        return -errno;
    if (ka && idle > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0)
        return -errno;
    if (ka && intvl > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0)
        return -errno;
    if (ka && cnt > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
        return -errno;
    if (user > 0 && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user)) < 0)
        return -errno;
    if (tfo > 0 && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &tfo, sizeof(tfo)) < 0)
        return -errno;
    if (defer > 0 && setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer)) < 0)
        return -errno;
    return 0;
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
    if (l->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto out_close;
    /* On until sl_listen_tune applies `tcp.nodelay`: accepted sockets
     * inherit it. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto out_close;
    /* A "[::]" listener serves IPv6 only; IPv4 is its own listener. */
    if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto out_close;
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0) {
        int err = errno;
        close(fd);
        return fail(l, "bind", err);
    }
    if (listen(fd, backlog_of(l)) < 0)
        goto out_close;
    announce_port0(l, fd);
    return fd;
out_close : {
    int err = errno;
    close(fd);
    return fail(l, "setup", err);
}
}

/* Fills sun from a path ("@name": abstract). Returns the address length. */
static socklen_t unix_addr(const char *path, struct sockaddr_un *sun)
{
    size_t len = strlen(path);
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (len >= sizeof(sun->sun_path))
        return 0;
    memcpy(sun->sun_path, path, len);
    if (path[0] != '@')
        return (socklen_t)sizeof(*sun);
    sun->sun_path[0] = '\0';
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
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
    sl_log(SL_LOG_INFO, "listen %s: replaced a stale socket file", label_of(l));
    return 0;
}

/* A user or group given by name or number; -1 with errno when unknown. */
static long id_of(const char *s, bool group)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && *end == '\0' && v >= 0)
        return v;
    errno = ENOENT;
    if (group) {
        struct group *g = getgrnam(s);
        return g ? (long)g->gr_gid : -1;
    }
    struct passwd *p = getpwnam(s);
    return p ? (long)p->pw_uid : -1;
}

/* mode, owner, group of the socket file. */
static int unix_file_attrs(const struct sl_listener_config *l)
{
    long uid = -1, gid = -1;
    if (l->owner && (uid = id_of(l->owner, false)) < 0) {
        sl_log(SL_LOG_ERROR, "listen %s: owner: no user \"%s\"", label_of(l), l->owner);
        return -ENOENT;
    }
    if (l->group && (gid = id_of(l->group, true)) < 0) {
        sl_log(SL_LOG_ERROR, "listen %s: group: no group \"%s\"", label_of(l), l->group);
        return -ENOENT;
    }
    if ((uid >= 0 || gid >= 0) && chown(l->path, (uid_t)uid, (gid_t)gid) < 0)
        return fail(l, "chown", errno);
    if (l->mode >= 0 && chmod(l->path, (mode_t)l->mode) < 0)
        return fail(l, "chmod", errno);
    return 0;
}

static int open_unix(const struct sl_listener_config *l)
{
    struct sockaddr_un sun;
    socklen_t len = l->path ? unix_addr(l->path, &sun) : 0;
    bool abstract = l->path && l->path[0] == '@';
    if (len == 0)
        return fail(l, "path too long for a Unix socket", ENAMETOOLONG);
    int rc = abstract ? 0 : clear_stale(l, &sun);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(l, "socket", errno);
    if (bind(fd, (const struct sockaddr *)&sun, len) < 0) {
        int err = errno;
        close(fd);
        return fail(l, err == EADDRINUSE && abstract ? "abstract name in use" : "bind", err);
    }
    if (!abstract && (rc = unix_file_attrs(l)) < 0) {
        close(fd);
        unlink(l->path);
        return rc;
    }
    if (listen(fd, backlog_of(l)) < 0) {
        int err = errno;
        close(fd);
        if (!abstract)
            unlink(l->path);
        return fail(l, "listen", err);
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
        const char *p = cfg->listeners[i].path;
        if (cfg->listeners[i].kind == SL_LISTENER_UNIX && p && p[0] != '@')
            unlink(p);
    }
}

/* ---- systemd socket activation ------------------------------------------ */

static bool same_addr(const struct sockaddr_storage *a, socklen_t alen,
                      const struct sockaddr_storage *b, socklen_t blen)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port != 0 && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    if (a->ss_family == AF_UNIX) {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
        if (alen <= off || blen <= off)
            return false;
        size_t xl = alen - off, yl = blen - off;
        if (x->sun_path[0] != '\0') /* pathname: compare as strings */
            return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
        return xl == yl && memcmp(x->sun_path, y->sun_path, xl) == 0;
    }
    return false;
}

/* The address a tcp/unix item would bind, for matching. */
static bool item_addr(const struct sl_listener_config *l, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    if (l->kind == SL_LISTENER_TCP && l->name) {
        memcpy(ss, &l->addr, sizeof(*ss));
        *len = l->addrlen;
        return true;
    }
    if (l->kind == SL_LISTENER_UNIX && l->path) {
        memset(ss, 0, sizeof(*ss));
        *len = unix_addr(l->path, (struct sockaddr_un *)ss);
        return *len > 0;
    }
    return false;
}

int sl_listen_match(const struct sl_listener_config *items, size_t nitems,
                    const struct sl_sd_fd *fds, size_t nfds, int *owner, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    for (size_t j = 0; j < nfds; j++)
        owner[j] = -1;
    for (size_t j = 0; j < nfds; j++) /* an `fd: N` item takes fd N */
        for (size_t i = 0; i < nitems && owner[j] < 0; i++)
            if (items[i].kind == SL_LISTENER_FD && items[i].fd == fds[j].fd)
                owner[j] = (int)i;
    for (size_t j = 0; j < nfds; j++) /* by address */
        for (size_t i = 0; i < nitems && owner[j] < 0; i++)
            if (fds[j].addrlen && item_addr(&items[i], &ss, &len) &&
                same_addr(&ss, len, &fds[j].addr, fds[j].addrlen))
                owner[j] = (int)i;
    for (size_t j = 0; j < nfds; j++) /* by name, then the catch-all */
        for (int pass = 0; pass < 2 && owner[j] < 0 && fds[j].origin == SL_LISTEN_FROM_SYSTEMD;
             pass++)
            for (size_t i = 0; i < nitems && owner[j] < 0; i++) {
                const char *want = items[i].systemd;
                if (items[i].kind != SL_LISTENER_SYSTEMD || want == NULL)
                    continue;
                bool all = strcmp(want, "true") == 0;
                if (pass == 0 ? !all && strcmp(want, fds[j].name) == 0 : all)
                    owner[j] = (int)i;
            }
    for (size_t i = 0; i < nitems; i++) {
        if (items[i].kind != SL_LISTENER_SYSTEMD)
            continue;
        bool found = false;
        for (size_t j = 0; j < nfds && !found; j++)
            found = owner[j] == (int)i;
        if (found)
            continue;
        size_t o =
            (size_t)snprintf(err, errcap, "listeners.%zu (systemd: %s): no ", i, items[i].systemd);
        if (nfds == 0) {
            snprintf(err + o, errcap > o ? errcap - o : 0,
                     "socket passed by systemd (LISTEN_FDS unset or 0: not started by a "
                     "socket unit?)");
        } else {
            o += (size_t)snprintf(err + o, errcap > o ? errcap - o : 0,
                                  "such socket among those passed (names:");
            for (size_t j = 0; j < nfds && o < errcap; j++)
                o += (size_t)snprintf(err + o, errcap - o, " %s%s", fds[j].name,
                                      owner[j] >= 0 ? " (taken)" : "");
            if (o < errcap)
                snprintf(err + o, errcap - o, ")");
        }
        return -ENOENT;
    }
    return 0;
}

static const char *env_get(const char *(*getenv_fn)(const char *), const char *name)
{
    return getenv_fn ? getenv_fn(name) : getenv(name);
}

static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0)
        return -1;
    *out = v;
    return 0;
}

int sl_listen_sd_env(const char *(*getenv_fn)(const char *), long pid, struct sl_sd_fd *out,
                     size_t max, char *names_buf, size_t names_cap, char *err, size_t errcap)
{
    const char *spid = env_get(getenv_fn, "LISTEN_PID");
    const char *sfds = env_get(getenv_fn, "LISTEN_FDS");
    const char *names = env_get(getenv_fn, "LISTEN_FDNAMES");
    long lpid, n;
    if (spid == NULL || sfds == NULL)
        return 0;
    if (parse_count(spid, &lpid) < 0 || parse_count(sfds, &n) < 0) {
        snprintf(err, errcap, "LISTEN_PID=%s LISTEN_FDS=%s: not numbers", spid, sfds);
        return -EINVAL;
    }
    if (lpid != pid) /* meant for another process (our parent) */
        return 0;
    if ((size_t)n > max) {
        snprintf(err, errcap, "LISTEN_FDS=%ld: more than %zu", n, max);
        return -EINVAL;
    }
    snprintf(names_buf, names_cap, "%s", names ? names : "");
    char *p = names_buf;
    for (long i = 0; i < n; i++) {
        char *colon = p ? strchr(p, ':') : NULL;
        if (colon)
            *colon = '\0';
        out[i] = (struct sl_sd_fd){.fd = SD_FDS_START + (int)i, .name = p && *p ? p : "unknown"};
        p = colon ? colon + 1 : NULL;
    }
    return (int)n;
}

/* Reads the passed fds' addresses, marks them close-on-exec. */
static int sd_prepare(struct sl_sd_fd *fds, int n)
{
    for (int j = 0; j < n; j++) {
        int listening = 0;
        socklen_t ol = sizeof(listening);
        fds[j].addrlen = sizeof(fds[j].addr);
        if (getsockname(fds[j].fd, (struct sockaddr *)&fds[j].addr, &fds[j].addrlen) < 0 ||
            getsockopt(fds[j].fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) < 0 || !listening) {
            sl_log(SL_LOG_ERROR, "systemd fd %d (%s): not a listening socket", fds[j].fd,
                   fds[j].name);
            return -ENOTSOCK;
        }
        int fl = fcntl(fds[j].fd, F_GETFD);
        if (fl >= 0)
            fcntl(fds[j].fd, F_SETFD, fl | FD_CLOEXEC);
    }
    return 0;
}

/* ---- the set ------------------------------------------------------------- */

static void format_addr(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_un *sun = (const void *)ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? len - off : 0;
        if (n && sun->sun_path[0] == '\0')
            snprintf(out, cap, "@%.*s", (int)(n - 1), sun->sun_path + 1);
        else
            snprintf(out, cap, "%.*s", (int)strnlen(sun->sun_path, n), sun->sun_path);
    }
}

/*
 * Turns an item served from a passed socket into an ordinary TCP or Unix
 * listener entry for the workers: its kind and address are the socket's.
 * The strings live in `names` (one slot per entry, freed with the set).
 */
static int adopt(struct sl_listener_config *e, int fd, char *name, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fl;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    if ((fl = fcntl(fd, F_GETFD)) < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -errno;
    format_addr(&ss, len, name, cap);
    if (ss.ss_family == AF_UNIX) {
        e->kind = SL_LISTENER_UNIX;
        e->path = name;
    } else {
        e->kind = SL_LISTENER_TCP;
        e->addr = ss;
        e->addrlen = len;
    }
    e->name = name;
    return 0;
}

#define NAME_CAP 128 /* an address: "[v6]:port", a Unix path (< 108) */
#define SD_NAME_CAP SL_LISTEN_SD_NAME_CAP

struct build {
    const struct sl_config *cfg;
    struct sl_listen_set *set;
    char *names; /* NAME_CAP bytes per entry */
};

/* The system-wide value a keep-alive option falls back to. */
static int sysctl_int(const char *path, int dflt)
{
    int v = dflt;
    FILE *f = fopen(path, "re");
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = dflt;
        fclose(f);
    }
    return v;
}

/*
 * sl_listen_tune for a socket that may carry options from an older config:
 * every option the config leaves at 0 is set back to the kernel's default
 * (Fast Open and defer-accept off, no user timeout, the sysctl keep-alive
 * values), since a kept socket still has whatever was set on it.
 */
static int retune(int fd, const struct sl_tcp_config *tcp)
{
    struct {
        uint32_t val;
        int level, name, dflt;
    } opts[] = {
        {tcp->fastopen, IPPROTO_TCP, TCP_FASTOPEN, 0},
        {tcp->defer_accept_ms, IPPROTO_TCP, TCP_DEFER_ACCEPT, 0},
        {tcp->user_timeout_ms, IPPROTO_TCP, TCP_USER_TIMEOUT, 0},
        {tcp->keepalive_idle_ms, IPPROTO_TCP, TCP_KEEPIDLE,
         sysctl_int("/proc/sys/net/ipv4/tcp_keepalive_time", 7200)},
        {tcp->keepalive_interval_ms, IPPROTO_TCP, TCP_KEEPINTVL,
         sysctl_int("/proc/sys/net/ipv4/tcp_keepalive_intvl", 75)},
        {tcp->keepalive_count, IPPROTO_TCP, TCP_KEEPCNT,
         sysctl_int("/proc/sys/net/ipv4/tcp_keepalive_probes", 9)},
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        int v = opts[i].dflt;
        if (opts[i].val == 0 && setsockopt(fd, opts[i].level, opts[i].name, &v, sizeof(v)) < 0 &&
            errno != ENOPROTOOPT)
            return -errno;
    }
    return sl_listen_tune(fd, tcp);
}

/*
 * A socket kept from the previous image gets the new config's settings
 * that can change on a live socket: the backlog (listen(2) again updates
 * it), the TCP options, the mode and owner of a socket file we created.
 * Sockets from systemd or an `fd:` item keep the backlog their creator set.
 */
static int refresh_kept(const struct sl_listener_config *item, const struct sl_listener_config *e,
                        int fd, enum sl_listen_origin origin, bool owned)
{
    if (origin != SL_LISTEN_FROM_BIND)
        return 0;
    if (listen(fd, backlog_of(item)) < 0)
        return fail(e, "listen (new backlog)", errno);
    if (e->kind == SL_LISTENER_TCP) {
        int on = 0;
        socklen_t len = sizeof(on);
        if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 &&
            (on != 0) != item->reuseport)
            sl_log(SL_LOG_WARNING,
                   "listen %s: reuseport is now %s but the kept socket was bound with it %s; "
                   "it stays so until the listener is removed and added again (or a restart)",
                   label_of(e), item->reuseport ? "on" : "off", on ? "on" : "off");
    }
    if (e->kind == SL_LISTENER_UNIX && owned && e->path && e->path[0] != '@') {
        struct sl_listener_config l = *item;
        l.path = e->path;
        return unix_file_attrs(&l);
    }
    return 0;
}

/* Adds entry for cfg item `item` served by `fd`; `p` = the passed fd it
 * came from (systemd, `fd:` item or previous image), NULL = bound now. */
static int add_entry(struct build *b, size_t item, int fd, const struct sl_sd_fd *p)
{
    struct sl_listen_set *s = b->set;
    const struct sl_listener_config *l = &b->cfg->listeners[item];
    struct sl_listener_config *e = &s->items[s->n];
    size_t k = s->n;
    *e = *l;
    s->fds[k] = fd;
    s->owned[k] = p ? p->owned : l->kind == SL_LISTENER_UNIX && l->path && l->path[0] != '@';
    s->origin[k] = p                           ? p->origin
                   : l->kind == SL_LISTENER_FD ? SL_LISTEN_FROM_FD
                                               : SL_LISTEN_FROM_BIND;
    if (p && p->origin == SL_LISTEN_FROM_SYSTEMD)
        snprintf(s->sd_names + k * SD_NAME_CAP, SD_NAME_CAP, "%s", p->name);
    s->n++;
    if (p || l->kind == SL_LISTENER_FD) {
        int rc = adopt(e, fd, b->names + k * NAME_CAP, NAME_CAP);
        if (rc < 0)
            return fail(e, "inherited socket", -rc);
    }
    /* Only our own sockets get options reset: those from systemd or an `fd:`
     * item may carry settings of their creator (DeferAcceptSec=...). */
    bool kept = p && p->origin == SL_LISTEN_FROM_BIND;
    if (p && refresh_kept(l, e, fd, p->origin, p->owned) < 0)
        return -1;
    if (e->kind == SL_LISTENER_TCP) {
        int rc = kept ? retune(fd, &b->cfg->tcp) : sl_listen_tune(fd, &b->cfg->tcp);
        if (rc < 0)
            return fail(e, "TCP options", -rc);
    }
    return 0;
}

/* An `fd: N` item: must be a listening socket. */
static int check_fd(const struct sl_listener_config *l)
{
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(l->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
        return fail(l, "inherited fd", errno);
    if (!listening)
        return fail(l, "inherited fd is not a listening socket", EINVAL);
    return l->fd;
}

static int build_entries(struct build *b, const struct sl_sd_fd *sd, int nsd, const int *owner)
{
    const struct sl_config *cfg = b->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct sl_listener_config *l = &cfg->listeners[i];
        bool taken = false;
        for (int j = 0; j < nsd; j++) {
            if (owner[j] != (int)i)
                continue;
            taken = true;
            if (add_entry(b, i, sd[j].fd, &sd[j]) < 0)
                return -1;
        }
        if (taken)
            continue;
        if (l->kind == SL_LISTENER_FD) {
            int fd = check_fd(l);
            if (fd < 0 || add_entry(b, i, fd, NULL) < 0)
                return -1;
            continue;
        }
        int fd = sl_listen_open(l);
        if (fd < 0)
            return -1;
        if (add_entry(b, i, fd, NULL) < 0)
            return -1;
    }
    return 0;
}

static void unset_sd_env(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    unsetenv(SL_LISTEN_ENV);
}

/* Passed fds no item claimed: said once, then closed (and a Unix socket
 * file we created removed: that listener left the config). */
static void close_unclaimed(const struct sl_sd_fd *sd, int nsd, const int *owner)
{
    for (int j = 0; j < nsd; j++) {
        if (owner[j] >= 0)
            continue;
        char addr[NAME_CAP];
        format_addr(&sd[j].addr, sd[j].addrlen, addr, sizeof(addr));
        if (sd[j].origin == SL_LISTEN_FROM_SYSTEMD)
            sl_log(SL_LOG_WARNING, "systemd socket %s (%s, fd %d) matches no listener; closed",
                   sd[j].name, addr, sd[j].fd);
        else
            sl_log(SL_LOG_INFO, "listener %s (fd %d) is no longer configured; closed", addr,
                   sd[j].fd);
        close(sd[j].fd);
        if (sd[j].owned && sd[j].addr.ss_family == AF_UNIX && addr[0] != '@' && unlink(addr) < 0 &&
            errno != ENOENT)
            sl_log(SL_LOG_WARNING, "listener %s: cannot remove the socket file: %s", addr,
                   strerror(errno));
    }
}

static int set_alloc(struct sl_listen_set *set, size_t cap, char **names)
{
    set->items = calloc(cap, sizeof(*set->items));
    set->fds = calloc(cap, sizeof(*set->fds));
    set->owned = calloc(cap, sizeof(*set->owned));
    set->origin = calloc(cap, sizeof(*set->origin));
    set->sd_names = calloc(cap, SD_NAME_CAP);
    *names = calloc(cap, NAME_CAP);
    return set->items && set->fds && set->owned && set->origin && set->sd_names && *names ? 0
                                                                                          : -ENOMEM;
}

/*
 * Checks the sockets the previous image described: each must be a
 * listening socket at the address described. One that is not (the
 * variable is stale or forged) is left alone, neither used nor closed.
 * Returns how many remain, compacted at the front.
 */
static int inherit_prepare(struct sl_sd_fd *fds, int n)
{
    int kept = 0;
    for (int j = 0; j < n; j++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int listening = 0;
        socklen_t ol = sizeof(listening);
        char want[NAME_CAP];
        format_addr(&fds[j].addr, fds[j].addrlen, want, sizeof(want));
        if (getsockname(fds[j].fd, (struct sockaddr *)&ss, &len) < 0 ||
            getsockopt(fds[j].fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) < 0 || !listening ||
            !same_addr(&fds[j].addr, fds[j].addrlen, &ss, len)) {
            sl_log(SL_LOG_ERROR, "%s: fd %d is not the listening socket %s; ignored", SL_LISTEN_ENV,
                   fds[j].fd, want);
            continue;
        }
        fds[kept++] = fds[j];
    }
    return kept;
}

/* Reads and unsets the passed-fd variables: systemd's first, then ours.
 * Returns the count in sd, or a negative errno (logged). */
static int read_passed(struct sl_sd_fd *sd, char *sdnames, size_t sdcap, char **inhnames)
{
    char err[1024];
    int nsd =
        sl_listen_sd_env(NULL, (long)getpid(), sd, SD_FDS_MAX, sdnames, sdcap, err, sizeof(err));
    const char *v = getenv(SL_LISTEN_ENV);
    char *inh = v ? strdup(v) : NULL;
    unset_sd_env(); /* the app and its children must not see them */
    if (nsd < 0) {
        sl_log(SL_LOG_ERROR, "systemd socket activation: %s", err);
        goto out;
    }
    if (sd_prepare(sd, nsd) < 0) {
        nsd = -ENOTSOCK;
        goto out;
    }
    if (inh) {
        size_t cap = strlen(inh) + 1;
        int n;
        *inhnames = malloc(cap);
        if (*inhnames == NULL) {
            nsd = -ENOMEM;
            goto out;
        }
        n = sl_listen_env_parse(inh, (long)getpid(), sd + nsd, (size_t)(SD_FDS_MAX - nsd),
                                *inhnames, cap, err, sizeof(err));
        if (n < 0) {
            sl_log(SL_LOG_ERROR, "%s: %s", SL_LISTEN_ENV, err);
            nsd = n;
            goto out;
        }
        nsd += inherit_prepare(sd + nsd, n);
    }
out:
    free(inh);
    return nsd;
}

int sl_listen_open_all(const struct sl_config *cfg, struct sl_listen_set *set)
{
    static struct sl_sd_fd sd[SD_FDS_MAX];
    static int owner[SD_FDS_MAX];
    char envnames[4096], err[1024], *inhnames = NULL;
    memset(set, 0, sizeof(*set));
    int nsd = read_passed(sd, envnames, sizeof(envnames), &inhnames);
    if (nsd < 0) {
        free(inhnames);
        return nsd;
    }
    if (sl_listen_match(cfg->listeners, cfg->nlisteners, sd, (size_t)nsd, owner, err, sizeof(err)) <
        0) {
        sl_log(SL_LOG_ERROR, "%s", err);
        free(inhnames);
        return -ENOENT;
    }
    /* Before binding: a removed listener may hold a port a new one needs. */
    close_unclaimed(sd, nsd, owner);
    struct build b = {.cfg = cfg, .set = set};
    if (set_alloc(set, cfg->nlisteners + (size_t)nsd + 1, &b.names) < 0) {
        free(b.names);
        free(inhnames);
        sl_listen_close_set(set);
        return -ENOMEM;
    }
    set->names = b.names;
    int rc = build_entries(&b, sd, nsd, owner);
    free(inhnames); /* the names were copied into the set */
    if (rc < 0) {
        for (int j = 0; j < nsd; j++) /* passed fds not yet in the set */
            if (owner[j] >= 0) {
                bool in = false;
                for (size_t k = 0; k < set->n; k++)
                    in |= set->fds[k] == sd[j].fd;
                if (!in)
                    close(sd[j].fd);
            }
        sl_listen_close_set(set);
        return -EINVAL;
    }
    set->cfg = *cfg;
    set->cfg.listeners = set->items;
    set->cfg.nlisteners = set->n;
    return 0;
}

void sl_listen_close_set(struct sl_listen_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->fds[i] < 0)
            continue;
        close(set->fds[i]);
        const char *p = set->items[i].path;
        if (set->owned[i] && p && p[0] != '@')
            unlink(p);
        set->fds[i] = -1;
    }
    free(set->items);
    free(set->fds);
    free(set->owned);
    free(set->names);
    free(set->origin);
    free(set->sd_names);
    memset(set, 0, sizeof(*set));
}

/* ---- re-exec: the SL_LISTEN_ENV variable --------------------------------- */

static const char *const origin_names[] = {"systemd", "bind", "fd"};

static bool plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("._/@:[]-", c) != NULL;
}

/* Appends s %XX-escaped at *pos; false when out of room. */
static bool put_escaped(char *out, size_t cap, size_t *pos, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int n = plain(c) ? snprintf(out + *pos, cap - *pos, "%c", c)
                         : snprintf(out + *pos, cap - *pos, "%%%02X", c);
        if (n < 0 || (size_t)n >= cap - *pos)
            return false;
        *pos += (size_t)n;
    }
    return true;
}

/* One entry ";FD,ORIGIN,OWNED,KIND,ADDRESS,NAME" for a listening fd. */
static int put_entry(char *out, size_t cap, size_t *pos, int fd, enum sl_listen_origin origin,
                     bool owned, const char *sdname)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[NAME_CAP];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    format_addr(&ss, len, addr, sizeof(addr));
    int n = snprintf(out + *pos, cap - *pos, ";%d,%s,%d,%s,", fd, origin_names[origin],
                     owned ? 1 : 0, ss.ss_family == AF_UNIX ? "unix" : "tcp");
    if (n < 0 || (size_t)n >= cap - *pos)
        return -ENOSPC;
    *pos += (size_t)n;
    if (!put_escaped(out, cap, pos, addr) || *pos + 1 >= cap)
        return -ENOSPC;
    out[(*pos)++] = ',';
    out[*pos] = '\0';
    return put_escaped(out, cap, pos, sdname) ? 0 : -ENOSPC;
}

int sl_listen_env_format(const struct sl_listen_set *set, const struct sl_listen_exec *x, long pid,
                         char *out, size_t cap)
{
    size_t pos = 0;
    int n = snprintf(out, cap, "%ld", pid), rc;
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    pos = (size_t)n;
    for (size_t i = 0; i < set->n; i++) {
        if (set->fds[i] < 0)
            continue;
        rc = put_entry(out, cap, &pos, set->fds[i], set->origin[i], set->owned[i],
                       set->sd_names + i * SD_NAME_CAP);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; x && i < x->n; i++)
        if ((rc = put_entry(out, cap, &pos, x->fds[i], SL_LISTEN_FROM_BIND, x->paths[i] != NULL,
                            "")) < 0)
            return rc;
    return (int)pos;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* Unescapes s[0..len) into out (NUL-terminated); false on a bad escape or
 * an embedded NUL. */
static bool unescape(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) /* the names buffer is full */
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

/* "1.2.3.4:80", "[::1]:80" -> a socket address; false when it is not one. */
static bool parse_ip_port(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon = strrchr(s, ':');
    long port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host) || parse_count(colon + 1, &port) < 0 ||
        port > 65535)
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(ss, 0, sizeof(*ss));
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    *len = sizeof(*in);
    return inet_pton(AF_INET, host, &in->sin_addr) == 1;
}

/* Splits the next `sep`-terminated field off *p (NUL-terminates it). */
static char *field(char **p, char sep)
{
    char *start = *p, *end = start ? strchr(start, sep) : NULL;
    if (end) {
        *end = '\0';
        *p = end + 1;
    } else {
        *p = NULL;
    }
    return start;
}

static int parse_origin(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, origin_names[i]) == 0)
            return i;
    return -1;
}

/* One "FD,ORIGIN,OWNED,KIND,ADDRESS,NAME" (modified in place). */
static bool parse_entry(char *e, struct sl_sd_fd *out, char *names, size_t cap, size_t *used)
{
    char *f[6], addr[NAME_CAP * 3];
    long fd;
    for (int i = 0; i < 6; i++)
        if ((f[i] = field(&e, ',')) == NULL)
            return false;
    int origin = parse_origin(f[1]);
    bool unix_kind = strcmp(f[3], "unix") == 0;
    if (e != NULL || parse_count(f[0], &fd) < 0 || fd > INT_MAX || origin < 0 ||
        (strcmp(f[2], "0") != 0 && strcmp(f[2], "1") != 0) ||
        (!unix_kind && strcmp(f[3], "tcp") != 0) ||
        !unescape(f[4], strlen(f[4]), addr, sizeof(addr)) ||
        !unescape(f[5], strlen(f[5]), names + *used, cap - *used))
        return false;
    memset(out, 0, sizeof(*out));
    out->fd = (int)fd;
    out->origin = (enum sl_listen_origin)origin;
    out->owned = f[2][0] == '1';
    out->name = names[*used] ? names + *used : "unknown";
    *used += strlen(names + *used) + 1;
    if (unix_kind) {
        out->addrlen = addr[0] ? unix_addr(addr, (struct sockaddr_un *)&out->addr) : 0;
        return out->addrlen > 0;
    }
    return parse_ip_port(addr, &out->addr, &out->addrlen);
}

int sl_listen_env_parse(const char *value, long pid, struct sl_sd_fd *out, size_t max,
                        char *names_buf, size_t names_cap, char *err, size_t errcap)
{
    size_t n = 0, used = 0;
    long vpid;
    if (value == NULL)
        return 0;
    char *copy = strdup(value), *p = copy;
    if (copy == NULL) {
        snprintf(err, errcap, "out of memory");
        return -ENOMEM;
    }
    char *head = field(&p, ';');
    int rc = 0;
    if (parse_count(head, &vpid) < 0) {
        snprintf(err, errcap, "\"%.64s\": expected PID;FD,ORIGIN,OWNED,KIND,ADDRESS,NAME;...",
                 value);
        rc = -EINVAL;
    } else if (vpid == pid) {
        while (p != NULL && rc == 0) {
            char *e = field(&p, ';');
            if (n == max) {
                snprintf(err, errcap, "more than %zu sockets", max);
                rc = -EINVAL;
            } else if (!parse_entry(e, &out[n], names_buf, names_cap, &used)) {
                snprintf(err, errcap,
                         "entry %zu: \"%.128s\" is not FD,ORIGIN,OWNED,KIND,ADDRESS,"
                         "NAME",
                         n + 1, e);
                rc = -EINVAL;
            } else {
                n++;
            }
        }
    }
    free(copy);
    return rc < 0 ? rc : (int)n;
}

/* ---- re-exec: preparing and undoing ------------------------------------- */

static int set_cloexec(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0)
        return -errno;
    return fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC) < 0 ? -errno : 0;
}

/* Whether a socket of the set (or one already prepared) listens on item's address. */
static bool served(const struct sl_listen_set *set, const struct sl_listen_exec *x,
                   const struct sl_listener_config *item)
{
    struct sockaddr_storage want, ss;
    socklen_t wl, len;
    if (!item_addr(item, &want, &wl))
        return false;
    for (size_t i = 0; i < set->n + x->n; i++) {
        int fd = i < set->n ? set->fds[i] : x->fds[i - set->n];
        len = sizeof(ss);
        if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
            same_addr(&want, wl, &ss, len))
            return true;
    }
    return false;
}

static bool is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    const struct sockaddr_in6 *in6 = (const void *)ss;
    return memcmp(&in6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                    : ((const struct sockaddr_in6 *)ss)->sin6_port;
}

/*
 * Whether binding item now would collide with a socket of our own that
 * the next image will close (0.0.0.0:80 kept until then, 127.0.0.1:80
 * new): such a listener is left for the next image to bind.
 */
static bool collides_with_ours(const struct sl_listen_set *set,
                               const struct sl_listener_config *item)
{
    for (size_t i = 0; i < set->n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (set->fds[i] < 0 || getsockname(set->fds[i], (struct sockaddr *)&ss, &len) < 0 ||
            ss.ss_family != item->addr.ss_family || port_of(&ss) != port_of(&item->addr))
            continue;
        if (is_any(&ss) || is_any(&item->addr))
            return true;
    }
    return false;
}

static int exec_add(struct sl_listen_exec *x, int fd, const struct sl_listener_config *l)
{
    int *fds = realloc(x->fds, (x->n + 1) * sizeof(*fds));
    if (fds)
        x->fds = fds;
    char **paths = fds ? realloc(x->paths, (x->n + 1) * sizeof(*paths)) : NULL;
    if (paths)
        x->paths = paths;
    char *path = NULL;
    if (paths && l->kind == SL_LISTENER_UNIX && l->path[0] != '@')
        path = strdup(l->path);
    if (!paths || (l->kind == SL_LISTENER_UNIX && l->path[0] != '@' && !path)) {
        close(fd);
        if (l->kind == SL_LISTENER_UNIX && l->path[0] != '@')
            unlink(l->path);
        return -ENOMEM;
    }
    x->fds[x->n] = fd;
    x->paths[x->n] = path;
    x->n++;
    return 0;
}

/* Binds next's listeners the set does not serve yet (see the header). */
static int prebind(const struct sl_listen_set *set, const struct sl_config *next,
                   struct sl_listen_exec *x)
{
    for (size_t i = 0; next && i < next->nlisteners; i++) {
        const struct sl_listener_config *l = &next->listeners[i];
        bool tcp = l->kind == SL_LISTENER_TCP && l->name;
        if (!(tcp || (l->kind == SL_LISTENER_UNIX && l->path)))
            continue; /* systemd, fd: nothing to bind */
        if ((tcp && port_of(&l->addr) == 0) || served(set, x, l))
            continue; /* port 0: a new port each time; or kept */
        if (tcp && collides_with_ours(set, l))
            continue;
        int fd = sl_listen_open(l);
        if (fd < 0)
            return fd;
        int rc = exec_add(x, fd, l);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * Runs the next image's matching over the sockets it will inherit, so a
 * `systemd:` item no inherited socket satisfies is an error now, not after
 * the exec (systemd passes its sockets only at the first start).
 */
static int check_next(const struct sl_listen_set *set, const struct sl_listen_exec *x,
                      const struct sl_config *next)
{
    size_t n = set->n + x->n;
    struct sl_sd_fd *fds = calloc(n + 1, sizeof(*fds));
    int *owner = calloc(n + 1, sizeof(*owner));
    char err[1024];
    int rc = fds && owner ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool old = i < set->n;
        struct sl_sd_fd *f = &fds[i];
        f->fd = old ? set->fds[i] : x->fds[i - set->n];
        f->origin = old ? set->origin[i] : SL_LISTEN_FROM_BIND;
        f->name =
            old && set->sd_names[i * SD_NAME_CAP] ? set->sd_names + i * SD_NAME_CAP : "unknown";
        f->addrlen = sizeof(f->addr);
        if (f->fd < 0 || getsockname(f->fd, (struct sockaddr *)&f->addr, &f->addrlen) < 0)
            f->addrlen = 0;
    }
    if (rc == 0 &&
        sl_listen_match(next->listeners, next->nlisteners, fds, n, owner, err, sizeof(err)) < 0) {
        sl_log(SL_LOG_ERROR, "%s (systemd passes sockets only at the first start)", err);
        rc = -ENOENT;
    }
    free(fds);
    free(owner);
    return rc;
}

int sl_listen_exec_prepare(const struct sl_listen_set *set, const struct sl_config *next,
                           struct sl_listen_exec *x)
{
    size_t cap;
    char *env = NULL;
    int rc;
    memset(x, 0, sizeof(*x));
    if ((rc = prebind(set, next, x)) < 0 || (next && (rc = check_next(set, x, next)) < 0))
        goto out_abort;
    cap = 32 + (set->n + x->n) * (32 + 3 * (NAME_CAP + SD_NAME_CAP));
    if ((env = malloc(cap)) == NULL) {
        rc = -ENOMEM;
        goto out_abort;
    }
    if ((rc = sl_listen_env_format(set, x, (long)getpid(), env, cap)) < 0) {
        sl_log(SL_LOG_ERROR, "%s: %s", SL_LISTEN_ENV, strerror(-rc));
        goto out_abort;
    }
    for (size_t i = 0; i < set->n + x->n && rc >= 0; i++) {
        int fd = i < set->n ? set->fds[i] : x->fds[i - set->n];
        if (fd >= 0)
            rc = set_cloexec(fd, false);
    }
    if (rc >= 0 && setenv(SL_LISTEN_ENV, env, 1) < 0)
        rc = -errno;
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, "preparing the listeners for exec: %s", strerror(-rc));
        goto out_abort;
    }
    free(env);
    return 0;
out_abort:
    free(env);
    sl_listen_exec_abort(set, x);
    return rc;
}

void sl_listen_exec_abort(const struct sl_listen_set *set, struct sl_listen_exec *x)
{
    for (size_t i = 0; i < x->n; i++) {
        close(x->fds[i]);
        if (x->paths[i])
            unlink(x->paths[i]);
        free(x->paths[i]);
    }
    free(x->fds);
    free(x->paths);
    memset(x, 0, sizeof(*x));
    for (size_t i = 0; i < set->n; i++)
        if (set->fds[i] >= 0)
            set_cloexec(set->fds[i], true);
    unsetenv(SL_LISTEN_ENV);
}
