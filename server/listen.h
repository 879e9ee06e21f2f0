/*
 * listen: opening and closing the configured listening sockets.
 *
 * A listener item is bound here (tcp, unix), taken from an inherited fd
 * (fd: N), or taken from systemd socket activation (systemd: NAME|true).
 * systemd fds are matched to items by FileDescriptorName= or by address
 * (getsockname), never by their position: a TCP or Unix item whose address
 * systemd already bound takes that socket instead of binding its own.
 *
 * Across a re-exec (SIGHUP reload) the listening sockets are inherited: the
 * old image clears close-on-exec on them and describes them in
 * SALTARE_LISTEN_FDS (sl_listen_exec_prepare); the new image's
 * sl_listen_open_all adopts the ones its config still has (same address,
 * or same systemd name), binds the new ones and closes the removed ones.
 */
#ifndef SL_SERVER_LISTEN_H
#define SL_SERVER_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The sockets the process serves on. `cfg` is a copy of the compiled
 * config whose `listeners` are `items`: one per listener item, in order,
 * except that `systemd` items stand for as many entries as they matched
 * fds. Entries made from passed fds (fd, systemd) carry the kind (TCP or
 * Unix) and the address of the socket itself, so the rest of the server
 * sees an ordinary listener; `fd` and `systemd` still say where it came
 * from. Pass `&set->cfg` and `set->fds` to the workers.
 */
#define SL_LISTEN_SD_NAME_CAP 256 /* a FileDescriptorName: 1 to 255 bytes, NUL */

/* Where a listening socket first came from (kept across re-execs). */
enum sl_listen_origin {
    SL_LISTEN_FROM_SYSTEMD = 0, /* LISTEN_FDS (socket activation) */
    SL_LISTEN_FROM_BIND,        /* bound by saltare (a tcp or unix item) */
    SL_LISTEN_FROM_FD,          /* an `fd: N` item: passed by whoever started us */
};

struct sl_listen_set {
    struct sl_config cfg;
    struct sl_listener_config *items;
    int *fds;
    bool *owned; /* bound by us: a Unix socket file to remove at close */
    size_t n;
    char *names;                   /* the addresses of adopted sockets (items[i].name) */
    enum sl_listen_origin *origin; /* per entry */
    /* Per entry, SL_LISTEN_SD_NAME_CAP bytes each: the systemd
     * FileDescriptorName of a socket from systemd ("" = none). */
    char *sd_names;
};

/*
 * Opens every listener of `cfg` (which must outlive the set): reads and
 * unsets LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES and SL_LISTEN_ENV, matches
 * the passed fds, binds the rest, applies cfg->tcp to TCP listening sockets.
 * Every error is logged naming the listener. Returns 0, or a negative errno
 * with nothing left open.
 *
 * Sockets inherited through SL_LISTEN_ENV (a re-exec) are matched like
 * systemd's: by address to tcp/unix items (an `fd: N` item takes fd N), and
 * those that came from systemd also by name to systemd items. A kept socket
 * is never re-bound and its Unix socket file never unlinked; its backlog
 * and the `tcp` options are applied again (a value set back to 0 restores
 * the kernel's default), as are mode/owner/group of a Unix socket file we
 * created. `reuseport` cannot change on a bound socket: a kept listener
 * keeps the value it was bound with (a warning says so). An inherited
 * socket no item takes is closed, and its Unix socket file removed if we
 * created it.
 */
int sl_listen_open_all(const struct sl_config *cfg, struct sl_listen_set *set);

/* Closes every socket, removes the Unix socket files we created, frees. */
void sl_listen_close_set(struct sl_listen_set *set);

/*
 * Creates, binds and listens on one socket for `l` (TCP or Unix;
 * non-blocking, close-on-exec, SO_REUSEADDR; IPV6_V6ONLY for IPv6; a stale
 * Unix socket file is replaced, a live one is an error; mode, owner and
 * group applied; "@name" is an abstract socket). Returns the fd, or a
 * negative errno with a message written to stderr naming the address.
 * A TCP listener with port 0 logs the address the kernel bound:
 * "listening on HOST:PORT".
 */
int sl_listen_open(const struct sl_listener_config *l);

/* Closes every fd and removes Unix socket files (one fd per cfg listener). */
void sl_listen_close_all(const struct sl_config *cfg, int *fds);

/* Applies the `tcp` options to a TCP listening socket (accepted sockets
 * inherit them). Returns 0 or -errno. */
int sl_listen_tune(int fd, const struct sl_tcp_config *tcp);

/* ---- re-exec: carrying the listeners over ------------------------------- */

/* The environment variable that describes the inherited listening sockets. */
#define SL_LISTEN_ENV "SALTARE_LISTEN_FDS"

/*
 * What sl_listen_exec_prepare set up, to undo if the exec fails: the
 * sockets it bound for the next config's new listeners (they are inherited
 * too, so a bind error is found before the exec, while the old image still
 * serves).
 */
struct sl_listen_exec {
    int *fds;     /* bound for `next` */
    char **paths; /* their Unix socket files (NULL entry: none or abstract) */
    size_t n;
};

/*
 * Prepares this process for an exec that keeps its listeners: binds the
 * tcp/unix listeners of `next` (the config the new image will load; NULL =
 * none) that no socket of `set` serves yet, clears FD_CLOEXEC on every
 * socket of `set` and on those, and sets SL_LISTEN_ENV (every other fd keeps
 * its flags). A `systemd:` item of `next` that no inherited socket would
 * satisfy is an error too (-ENOENT). On an error (logged, naming the
 * listener) nothing is left changed and a negative errno is returned;
 * otherwise 0: call exec next, and sl_listen_exec_abort if it returns.
 */
int sl_listen_exec_prepare(const struct sl_listen_set *set, const struct sl_config *next,
                           struct sl_listen_exec *x);

/* After a failed exec: closes what prepare bound (removing their Unix socket
 * files), sets FD_CLOEXEC on the set again, unsets SL_LISTEN_ENV, frees x. */
void sl_listen_exec_abort(const struct sl_listen_set *set, struct sl_listen_exec *x);

/* ---- passed fds: systemd and re-exec (exposed for tests) ----------------- */

/* One fd passed to us: by systemd, or by the previous image (re-exec). */
struct sl_sd_fd {
    int fd;
    const char *name; /* from LISTEN_FDNAMES; "unknown" when none */
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0: getsockname failed (not a socket) */
    /* Re-exec only (systemd fds keep the zero values): */
    enum sl_listen_origin origin; /* systemd fds match systemd items; others only by address */
    bool owned;                   /* its Unix socket file is ours to remove */
};

/*
 * Formats the SL_LISTEN_ENV value describing every socket of `set` plus
 * the extra fds `x` (NULL = none), for process `pid`:
 *     PID;FD,ORIGIN,OWNED,KIND,ADDRESS,NAME;...
 * ORIGIN is systemd, bind or fd; OWNED 0 or 1; KIND tcp or unix; ADDRESS
 * the socket's own (getsockname) as "1.2.3.4:80", "[::1]:80", "/path" or
 * "@abstract"; NAME the systemd FileDescriptorName (or empty). ADDRESS and
 * NAME are %XX-escaped (every byte outside [A-Za-z0-9._/@:[]-]). Returns
 * the length, or a negative errno (-ENOSPC: cap is too small).
 */
int sl_listen_env_format(const struct sl_listen_set *set, const struct sl_listen_exec *x, long pid,
                         char *out, size_t cap);

/*
 * Parses an SL_LISTEN_ENV value: 0 entries when `value` is NULL or meant
 * for another pid; else fills out[0..max) (fd, name, origin, owned; addr
 * and addrlen from ADDRESS, to be checked against getsockname) with the
 * strings in names_buf, and returns the count; -EINVAL with a message in
 * err for a malformed value. Touches no fd.
 */
int sl_listen_env_parse(const char *value, long pid, struct sl_sd_fd *out, size_t max,
                        char *names_buf, size_t names_cap, char *err, size_t errcap);

/*
 * Assigns passed fds to listener items: owner[j] = the index of the item
 * that takes fds[j], or -1. Order of preference: a tcp/unix item with the
 * same address, a `systemd: NAME` item with that name, a `systemd: true`
 * item. Returns 0, or -ENOENT with a message in err naming the first item
 * that matched no fd.
 */
int sl_listen_match(const struct sl_listener_config *items, size_t nitems,
                    const struct sl_sd_fd *fds, size_t nfds, int *owner, char *err, size_t errcap);

/*
 * Parses the socket-activation environment (sd_listen_fds(3) semantics):
 * nothing passed (0) unless LISTEN_PID is `pid`; then LISTEN_FDS fds from
 * 3, named by LISTEN_FDNAMES. Fills out[0..max) and returns the count, or
 * -EINVAL with a message in err. `getenv_fn` NULL = getenv. Does not touch
 * the fds or the environment.
 */
int sl_listen_sd_env(const char *(*getenv_fn)(const char *), long pid, struct sl_sd_fd *out,
                     size_t max, char *names_buf, size_t names_cap, char *err, size_t errcap);

#ifdef __cplusplus
}
#endif

#endif
