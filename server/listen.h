/*
 * listen: opening and closing the configured listening sockets.
 *
 * A listener item is bound here (tcp, unix), taken from an inherited fd
 * (fd: N), or taken from systemd socket activation (systemd: NAME|true).
 * systemd fds are matched to items by FileDescriptorName= or by address
 * (getsockname), never by their position: a TCP or Unix item whose address
 * systemd already bound takes that socket instead of binding its own.
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
struct sl_listen_set {
    struct sl_config cfg;
    struct sl_listener_config *items;
    int *fds;
    bool *owned; /* bound by us: a Unix socket file to remove at close */
    size_t n;
    char *names; /* the addresses of adopted sockets (items[i].name) */
};

/*
 * Opens every listener of `cfg` (which must outlive the set): reads and
 * unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, matches the passed fds,
 * binds the rest, applies cfg->tcp to TCP listening sockets. Every error is
 * logged naming the listener. Returns 0, or a negative errno with nothing
 * left open.
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

/* ---- systemd socket activation (exposed for tests) ---------------------- */

/* One fd passed by systemd. */
struct sl_sd_fd {
    int fd;
    const char *name; /* from LISTEN_FDNAMES; "unknown" when none */
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0: getsockname failed (not a socket) */
};

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
