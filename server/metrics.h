/*
 * metrics: the instance-wide metrics registry and its Prometheus rendering.
 *
 * The registry is one shared mapping of a memfd that the master creates
 * before it forks the workers, so every process of the instance sees it.
 * It holds one slot per worker; a worker writes only its own slot (single
 * writer: relaxed atomic loads and stores, no lock and no read-modify-write
 * instruction on the request path), and the master writes only the header
 * (worker restarts, reload generation). Any worker renders the whole
 * instance by summing the slots.
 *
 * A worker claims a slot when its sl_worker is created: one whose process
 * the master reaped (or that is gone), else a never used one. Counters of
 * a reclaimed slot carry on from where the dead worker left them, so the
 * instance's counters never go back; its gauges (open connections, in
 * flight) start at zero. The master sizes the registry for every process
 * it can have at once; should a worker still find no slot, it counts into
 * one shared overflow slot (locked adds), never nowhere. (A process of the
 * overflow slot that dies with connections open leaves them in its gauges:
 * they are not per process there.)
 *
 * A reload re-executes the master (program/reload.c): the memfd crosses
 * the exec (sl_metrics_exec_prepare, sl_metrics_inherit) and the new image
 * goes on with it when it counts the same series in the same cells (same
 * layout version, sizes, and labels of listeners and routes in order);
 * the old workers, still draining, keep writing their slots. Otherwise the
 * new image starts a new registry and logs once (info) why the counters
 * restart; the master's start time and the restart count carry over.
 *
 * Without sl_metrics_init (no `metrics` route in the config, unit tests of
 * other parts) every call here is a cheap no-op and rendering says so.
 *
 * Threading: one worker per process. Every sl_metrics_* call that records
 * is made from the worker's thread; the setters for the master from the
 * master's. Nothing here is async-signal-safe.
 */
#ifndef SL_SERVER_METRICS_H
#define SL_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a connection was closed without being served (label `reason`). */
enum sl_metrics_reject {
    SL_METRICS_REJECT_MAX_CONNECTIONS, /* limits.max_connections reached */
    SL_METRICS_REJECT_PARSE_ERROR,     /* a request head that does not parse (400) */
    SL_METRICS_REJECT_PROXY_PROTOCOL,  /* a bad or missing PROXY header */
    SL_METRICS_REJECT_PER_IP,          /* per-client connection limit */
    SL_METRICS_REJECT_RATE,            /* rate limit */
    SL_METRICS_REJECT_CONCURRENCY,     /* concurrency limit */
    SL_METRICS_REJECT__N
};

/* Which timer expired (label `kind`). */
enum sl_metrics_timeout {
    SL_METRICS_TIMEOUT_HEADER,     /* timeouts.header: no complete head in time */
    SL_METRICS_TIMEOUT_KEEP_ALIVE, /* timeouts.keep_alive: idle connection closed */
    SL_METRICS_TIMEOUT_BODY,       /* timeouts.body */
    SL_METRICS_TIMEOUT_WRITE,      /* timeouts.write */
    SL_METRICS_TIMEOUT_APP,        /* timeouts.app */
    SL_METRICS_TIMEOUT_HANDSHAKE,  /* timeouts.handshake (TLS) */
    SL_METRICS_TIMEOUT_WEBSOCKET,  /* websocket.ping_timeout */
    SL_METRICS_TIMEOUT__N
};

/* How a TLS handshake failed (label `reason`). */
enum sl_metrics_tls_failure {
    SL_METRICS_TLS_TIMEOUT,     /* not done within timeouts.handshake */
    SL_METRICS_TLS_ERROR,       /* another failure (a malformed message...) */
    SL_METRICS_TLS_CLOSED,      /* the client went away during the handshake */
    SL_METRICS_TLS_NOT_TLS,     /* the bytes were no TLS (plain HTTP to the port) */
    SL_METRICS_TLS_PROTOCOL,    /* no version, cipher, group or ALPN in common */
    SL_METRICS_TLS_CLIENT_CERT, /* mTLS: the client's certificate missing or refused */
    SL_METRICS_TLS_SERVER_CERT, /* the client refused our certificate (its alert) */
    SL_METRICS_TLS_FAILURE__N
};

/*
 * Creates the shared registry for `cfg` (borrowed: it must outlive every
 * later call; its listeners and their routes fix the layout) with `slots`
 * worker slots (plus the overflow slot), when a listener of `cfg` has a
 * `metrics` route, or always when `force`. After sl_metrics_inherit took a
 * registry over, goes on with it when compatible (see above), else logs
 * why and creates a new one. Call once, in the master, after the listeners
 * are bound and before the workers are forked. `version` is saltare's
 * (copied). Memory: a slot is touched only once claimed, so the resident
 * cost is that of the slots in use. Returns 0 (also when nothing was
 * needed) or -errno (memfd_create, ftruncate, mmap).
 */
int sl_metrics_init(const struct sl_config *cfg, unsigned slots, const char *version, bool force);

/* Unmaps the registry and closes its memfd (the master, at exit). */
void sl_metrics_fini(void);

/* ---- across the master's re-exec (program/reload.c) ----------------------- */

#define SL_METRICS_ENV "SALTARE_METRICS_FD" /* "PID,FD" */

/* Before execve: makes the registry's memfd (or one inherited and not yet
 * used) inheritable and names it in SALTARE_METRICS_FD. Returns 0 (also
 * without a registry) or -errno. */
int sl_metrics_exec_prepare(void);

/* The exec failed: undoes sl_metrics_exec_prepare. */
void sl_metrics_exec_abort(void);

/* At start, before sl_metrics_init: takes over the memfd named in
 * SALTARE_METRICS_FD (when it names this process) and unsets it.
 * `reexec`: this image is a reload's (sl_metrics_init then logs why,
 * should the counters restart). */
void sl_metrics_inherit(bool reexec);

/* True once sl_metrics_init created a registry. */
bool sl_metrics_enabled(void);

/*
 * Claims this process's worker slot (sl_worker_new calls it). Returns 0;
 * -ENOSPC when every slot belongs to a live process: the worker then
 * counts into the shared overflow slot (its counters still add up; it is
 * not listed as a process). 0 without a registry. Idempotent.
 */
int sl_metrics_attach(void);

/* The embedder's build facts for `saltare_build_info` (copied; NULL =
 * "unknown"): the Python version and the event loop ("asyncio", "uvloop"). */
void sl_metrics_set_build(const char *python, const char *loop);

/* ---- for the master --------------------------------------------------- */

/* SIGUSR1 in the master: its one JSON line of stats in the error log (the
 * workers write their own, server/stats.c). */
void sl_metrics_log_master_stats(unsigned workers, bool draining);

/* The reload generation last set (0 = as started). */
uint64_t sl_metrics_generation(void);

/* The master reaped worker `pid`: its slot may be claimed again (its
 * counters stay in the totals). */
void sl_metrics_reaped(pid_t pid);

/* A worker died and was respawned (saltare_worker_restarts_total). */
void sl_metrics_worker_restarted(void);
/* The reload generation now serving (saltare_reload_generation). */
void sl_metrics_set_generation(uint64_t generation);

/* ---- for the core and its plug-ins (listener = index in cfg->listeners) -- */

/* A connection on `listener` was closed without being served. */
void sl_metrics_reject(size_t listener, enum sl_metrics_reject why);
void sl_metrics_timeout(size_t listener, enum sl_metrics_timeout kind);
/* A TLS handshake finished: ok, or failed for `why` (ignored when ok). */
void sl_metrics_tls(size_t listener, bool ok, enum sl_metrics_tls_failure why);
/* WebSockets: `delta` +1 when one opens, -1 when it ends. */
void sl_metrics_ws_open(size_t listener, int delta);
/* One WebSocket message received (`out` false) or sent (`out` true). */
void sl_metrics_ws_message(size_t listener, bool out);

/* Counts a connection opening (+1) or closing (-1) on `listener`. */
void sl_metrics_conn(size_t listener, int delta);
/* A request head was handed over (in flight until sl_metrics_request_end). */
void sl_metrics_request_start(size_t listener);

/* What one finished exchange contributes. */
struct sl_metrics_exchange {
    size_t listener;
    size_t route;       /* 0 = no route matched; else 1 + the route's index */
    const char *method; /* NULL = not parsed ("other") */
    size_t method_len;
    int status; /* 100..599; anything else counts as 5xx */
    uint64_t duration_us;
    uint64_t bytes_in;  /* request body bytes received */
    uint64_t bytes_out; /* response body bytes sent */
    bool started;       /* it was counted by sl_metrics_request_start */
};
void sl_metrics_request_end(const struct sl_metrics_exchange *x);

/* ---- rendering ----------------------------------------------------------- */

/* Request duration histogram upper bounds, microseconds (documented in
 * docs/config.md under routes[].metrics; +Inf follows). */
#define SL_METRICS_NBUCKETS 13
extern const uint64_t sl_metrics_buckets_us[SL_METRICS_NBUCKETS];

enum sl_metrics_format {
    SL_METRICS_PROMETHEUS,  /* text/plain; version=0.0.4 */
    SL_METRICS_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
};

/* The format an Accept header value asks for (NULL = none: Prometheus). */
enum sl_metrics_format sl_metrics_negotiate(const char *accept, size_t len);

/* The Content-Type of a format. */
const char *sl_metrics_content_type(enum sl_metrics_format f);

/*
 * Renders the whole instance. On success *out is a malloc'd buffer (the
 * caller frees it) of *len bytes and 0 is returned; -ENOENT without a
 * registry, -ENOMEM.
 */
int sl_metrics_render(enum sl_metrics_format f, char **out, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
