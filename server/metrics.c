/*
 * metrics: the shared registry (see metrics.h) and its text exposition.
 *
 * Layout of the mapping (a memfd, so that the master's re-exec can map it
 * again), in 8-byte cells:
 *   header   magic, layout, master facts, sizes, fingerprint, then one
 *            owner (pid) per worker slot
 *   slots    nslots worker slots, then the overflow slot; each: slot
 *            cells, then one block per listener
 * A listener block holds its fixed cells (L_*), then per route (index 0:
 * no route matched, r + 1: route r of the listener's table) the request
 * counts by method class and status class, the duration histogram's
 * buckets (not cumulative; the last one is +Inf) and its sum in
 * microseconds. Slots are padded to a cache line so that two workers never
 * write the same line.
 */
#include "server/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/procstat.h"

typedef _Atomic uint64_t cell;

#define MAGIC 0x736c6d6574726963ull /* "slmetric" */
#define LINE 64u

const uint64_t sl_metrics_buckets_us[SL_METRICS_NBUCKETS] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_text[SL_METRICS_NBUCKETS + 1] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1.0",   "2.5",  "5.0",   "10.0", "+Inf",
};

enum { NMETHOD = 8, NSTATUS = 5, NBUCKET = SL_METRICS_NBUCKETS + 1 };
static const char *const method_names[NMETHOD] = {"GET",    "HEAD",  "POST",    "PUT",
                                                  "DELETE", "PATCH", "OPTIONS", "other"};
static const char *const status_names[NSTATUS] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const reject_names[SL_METRICS_REJECT__N] = {
    "max_connections", "parse_error", "proxy_protocol", "per_ip", "rate", "concurrency"};
static const char *const timeout_names[SL_METRICS_TIMEOUT__N] = {
    "header", "keep_alive", "body", "write", "app", "handshake", "websocket"};
static const char *const tls_names[SL_METRICS_TLS_FAILURE__N] = {"timeout", "error", "closed"};

/* Fixed cells of a listener block. */
enum {
    L_CONNS_OPEN,
    L_CONNS_ACCEPTED,
    L_IN_FLIGHT,
    L_BYTES_IN,
    L_BYTES_OUT,
    L_WS_OPEN,
    L_WS_OPENED,
    L_WS_MSG_IN,
    L_WS_MSG_OUT,
    L_TLS_OK,
    L_REJECT,
    L_TIMEOUT = L_REJECT + SL_METRICS_REJECT__N,
    L_TLS_FAIL = L_TIMEOUT + SL_METRICS_TIMEOUT__N,
    L_ROUTES = L_TLS_FAIL + SL_METRICS_TLS_FAILURE__N,
};
/* Cells of one route within a listener block. */
enum {
    R_REQ = 0,
    R_HIST = R_REQ + NMETHOD * NSTATUS,
    R_SUM = R_HIST + NBUCKET,
    R_CELLS,
};
/* Cells of a slot before its listener blocks. */
enum { S_START_MS, S_CELLS };
/*
 * Header cells; one owner cell per worker slot follows (a pid, with DEAD
 * set once the master reaped it). H_MAGIC..H_GENERATION are the stable
 * prefix: every LAYOUT keeps them where they are, so that an image with
 * another layout still carries the master's facts over.
 */
enum {
    H_MAGIC,
    H_LAYOUT,
    H_MASTER_PID,
    H_MASTER_START_MS,
    H_RESTARTS,
    H_GENERATION,
    H_NSLOTS, /* worker slots; the overflow slot follows them */
    H_SLOT_CELLS,
    H_FINGERPRINT, /* of the series each cell stands for (layout_hash) */
    H_CELLS
};
#define LAYOUT 2u /* bump when a cell moves (the fingerprint catches most) */
#define DEAD (1ull << 63)
#define ENV SL_METRICS_ENV

struct registry {
    cell *base;
    size_t bytes;
    int fd; /* the memfd, in the master (workers keep an inherited copy) */
    size_t nslots, slot_cells;
    size_t slots_off; /* first cell of slot 0 (after the header, line-aligned) */
    size_t *lbase;    /* per listener: its block's first cell within a slot */
    const struct sl_config *cfg;
    char version[32];
};

static struct registry reg = {.fd = -1}; /* set by init (the master), inherited by fork */
static cell *me;                         /* this process's slot, NULL = record nothing */
static pid_t me_pid;                     /* who claimed `me` (a forked child must claim anew) */
static bool me_shared;                   /* `me` is the overflow slot: several writers */
static int inherited = -1;               /* the previous image's memfd, until init decides */
static bool reexeced;                    /* sl_metrics_inherit saw our own state */
static char build_python[32] = "unknown", build_loop[32] = "unknown";

static uint64_t ld(const cell *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void st(cell *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Single writer: a load and a store, not a locked add; the overflow slot
 * has several writers and pays for a locked add. */
static void add(cell *c, uint64_t v)
{
    if (__builtin_expect(me_shared, 0))
        atomic_fetch_add_explicit(c, v, memory_order_relaxed);
    else
        st(c, ld(c) + v);
}

static cell *slot(size_t i)
{
    return reg.base + reg.slots_off + i * reg.slot_cells;
}

static cell *pid_cell(size_t i)
{
    return reg.base + H_CELLS + i;
}

static uint64_t now_realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* When this process started (ms since the epoch, from /proc: a re-exec'd
 * master is the process it was); now when /proc cannot say. */
static uint64_t self_start_ms(void)
{
    char buf[1024];
    unsigned long long ticks = 0, btime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold anything */
    /* after ')': state is field 3, starttime field 22 */
    if (p == NULL ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
               "%*d %*d %*d %*d %*d %llu",
               &ticks) != 1 ||
        hz <= 0)
        return now_realtime_ms();
    if ((f = fopen("/proc/stat", "r")) == NULL)
        return now_realtime_ms();
    while (fgets(buf, sizeof(buf), f) && sscanf(buf, "btime %llu", &btime) != 1) {
    }
    fclose(f);
    return btime ? btime * 1000u + ticks * 1000u / (unsigned long long)hz : now_realtime_ms();
}

static bool has_metrics_route(const struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        for (size_t k = 0; k < cfg->listeners[i].routes.n; k++)
            if (cfg->listeners[i].routes.items[k].action == SL_ROUTE_METRICS)
                return true;
    return false;
}

static const char *listener_label(const struct sl_config *cfg, size_t l)
{
    const struct sl_listener_config *lc = &cfg->listeners[l];
    return lc->label ? lc->label : lc->name;
}

/* The route label, unescaped: its name when given and first of that name
 * in the table, else its key path ("routes.3"); "" for requests no route
 * matched. Returns `out` or the name. */
static const char *route_label(const struct sl_config *cfg, size_t listener, size_t route,
                               char *out, size_t cap)
{
    const struct sl_route_list *t = &cfg->listeners[listener].routes;
    if (route == 0)
        return "";
    const char *name = t->items[route - 1].name;
    bool unique = name && *name;
    for (size_t k = 0; unique && k + 1 < route; k++)
        if (t->items[k].name && strcmp(t->items[k].name, name) == 0)
            unique = false;
    if (unique)
        return name;
    snprintf(out, cap, "routes.%zu", route - 1);
    return out;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (const unsigned char *c = p; n--; c++)
        h = (h ^ *c) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s, strlen(s) + 1); /* the NUL separates the strings */
}

/*
 * What each cell of a slot stands for: the series' labels in layout order
 * (listeners, their routes), the label tables and the bucket bounds. Two
 * images with equal fingerprints (and sizes) count the same series in the
 * same cells, so one can go on with the other's registry.
 */
static uint64_t layout_hash(const struct sl_config *cfg)
{
    static const uint64_t dims[] = {NMETHOD,
                                    NSTATUS,
                                    NBUCKET,
                                    L_ROUTES,
                                    R_CELLS,
                                    S_CELLS,
                                    SL_METRICS_REJECT__N,
                                    SL_METRICS_TIMEOUT__N,
                                    SL_METRICS_TLS_FAILURE__N};
    uint64_t h = fnv(0xcbf29ce484222325ull, dims, sizeof(dims));
    char buf[32];

    h = fnv(h, sl_metrics_buckets_us, sizeof(sl_metrics_buckets_us));
    for (size_t i = 0; i < NMETHOD; i++)
        h = fnv_str(h, method_names[i]);
    for (size_t i = 0; i < NSTATUS; i++)
        h = fnv_str(h, status_names[i]);
    for (size_t i = 0; i < SL_METRICS_REJECT__N; i++)
        h = fnv_str(h, reject_names[i]);
    for (size_t i = 0; i < SL_METRICS_TIMEOUT__N; i++)
        h = fnv_str(h, timeout_names[i]);
    for (size_t i = 0; i < SL_METRICS_TLS_FAILURE__N; i++)
        h = fnv_str(h, tls_names[i]);
    for (size_t l = 0; l < cfg->nlisteners; l++) {
        size_t n = cfg->listeners[l].routes.n;
        h = fnv_str(h, listener_label(cfg, l));
        h = fnv(h, &n, sizeof(n));
        for (size_t k = 0; k <= n; k++)
            h = fnv_str(h, route_label(cfg, l, k, buf, sizeof(buf)));
    }
    return h;
}

/* The registry's shape for `cfg` with `nslots` worker slots (reg's sizes
 * and lbase, which the caller owns). */
static int shape(struct registry *r, const struct sl_config *cfg, size_t nslots)
{
    size_t per_line = LINE / sizeof(cell), cells = S_CELLS;
    r->lbase = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*r->lbase));
    if (r->lbase == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        r->lbase[i] = cells;
        cells += L_ROUTES + (cfg->listeners[i].routes.n + 1) * R_CELLS;
    }
    /* slots padded to a cache line: two workers never write the same line */
    r->slot_cells = (cells + per_line - 1) / per_line * per_line;
    r->nslots = nslots;
    r->slots_off = (H_CELLS + nslots + per_line - 1) / per_line * per_line;
    r->bytes = (r->slots_off + (nslots + 1) * r->slot_cells) * sizeof(cell);
    r->cfg = cfg;
    return 0;
}

/* Why the mapping `old` (`bytes` long) cannot go on as `r` (fingerprint
 * `fp`), or NULL when it can. */
static const char *incompatible(const cell *old, size_t bytes, const struct registry *r,
                                uint64_t fp)
{
    if (bytes < H_CELLS * sizeof(cell) || ld(&old[H_MAGIC]) != MAGIC)
        return "the previous registry is not one";
    if (ld(&old[H_LAYOUT]) != LAYOUT)
        return "the binary's registry layout changed";
    if (ld(&old[H_NSLOTS]) != r->nslots || ld(&old[H_SLOT_CELLS]) != r->slot_cells ||
        bytes != r->bytes)
        return "the listeners, routes or slot count changed the registry's size";
    if (ld(&old[H_FINGERPRINT]) != fp)
        return "the listeners' or routes' labels changed";
    return NULL;
}

/* Maps `fd` (`bytes`), or NULL with errno. */
static cell *map(int fd, size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

/*
 * Goes on with the previous image's registry when it counts the same
 * series in the same cells. Returns true then (r->base, r->fd set);
 * otherwise false, with the facts of the master to carry over in
 * carry[H_MASTER_START_MS] and carry[H_RESTARTS] when the old one had them
 * (else 0), and logs why the counters restart.
 */
static bool adopt(struct registry *r, uint64_t fp, uint64_t *carry)
{
    struct stat sb;
    const char *why = "the previous image had none (no metrics route, or an older binary)";
    int fd = inherited;
    cell *old = NULL;

    inherited = -1;
    if (fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size >= (off_t)(H_CELLS * sizeof(cell)) &&
        (old = map(fd, (size_t)sb.st_size)) != NULL) {
        why = incompatible(old, (size_t)sb.st_size, r, fp);
        if (why == NULL) {
            r->base = old;
            r->fd = fd;
            return true;
        }
        if (ld(&old[H_MAGIC]) == MAGIC) { /* the stable prefix */
            carry[H_MASTER_START_MS] = ld(&old[H_MASTER_START_MS]);
            carry[H_RESTARTS] = ld(&old[H_RESTARTS]);
        }
        munmap(old, (size_t)sb.st_size);
    } else if (fd >= 0) {
        why = "the previous registry cannot be mapped";
    }
    if (fd >= 0)
        close(fd);
    if (reexeced)
        sl_log(SL_LOG_INFO, "metrics: a new registry, counters restart from zero: %s", why);
    return false;
}

/* A new memfd-backed registry for `r`. Returns 0 or -errno. */
static int create(struct registry *r, uint64_t fp, const uint64_t *carry)
{
    int fd = memfd_create("saltare-metrics", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)r->bytes) < 0 || (r->base = map(fd, r->bytes)) == NULL) {
        int err = errno;
        close(fd);
        return -err;
    }
    r->fd = fd;
    st(&r->base[H_LAYOUT], LAYOUT);
    st(&r->base[H_NSLOTS], r->nslots);
    st(&r->base[H_SLOT_CELLS], r->slot_cells);
    st(&r->base[H_FINGERPRINT], fp);
    st(&r->base[H_MASTER_START_MS], carry[H_MASTER_START_MS] ? carry[H_MASTER_START_MS]
                                    : reexeced               ? self_start_ms()
                                                             : now_realtime_ms());
    st(&r->base[H_RESTARTS], carry[H_RESTARTS]);
    st(&r->base[H_MAGIC], MAGIC);
    return 0;
}

int sl_metrics_init(const struct sl_config *cfg, unsigned slots, const char *version, bool force)
{
    struct registry r = {.fd = -1};
    uint64_t carry[H_CELLS] = {0}, fp;
    int rc;

    if (reg.base)
        return 0;
    if (!force && !has_metrics_route(cfg)) {
        if (inherited >= 0 && reexeced)
            sl_log(SL_LOG_INFO, "metrics: no metrics route any more; the registry is dropped");
        if (inherited >= 0)
            close(inherited);
        inherited = -1;
        return 0;
    }
    if ((rc = shape(&r, cfg, slots ? slots : 1)) < 0)
        return rc;
    fp = layout_hash(cfg);
    if (!adopt(&r, fp, carry) && (rc = create(&r, fp, carry)) < 0) {
        free(r.lbase);
        return rc;
    }
    st(&r.base[H_MASTER_PID], (uint64_t)getpid());
    snprintf(r.version, sizeof(r.version), "%s", version ? version : "unknown");
    reg = r;
    return 0;
}

void sl_metrics_fini(void)
{
    if (inherited >= 0)
        close(inherited);
    inherited = -1;
    if (!reg.base)
        return;
    munmap(reg.base, reg.bytes);
    if (reg.fd >= 0)
        close(reg.fd);
    free(reg.lbase);
    reg = (struct registry){.fd = -1};
    me = NULL;
    me_shared = false;
}

bool sl_metrics_enabled(void)
{
    return reg.base != NULL;
}

/* ---- across the master's re-exec ------------------------------------------- */

static int set_cloexec(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return -errno;
    return fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0 ? -errno : 0;
}

int sl_metrics_exec_prepare(void)
{
    int fd = reg.base ? reg.fd : inherited, rc;
    char v[48];

    if (fd < 0)
        return 0;
    snprintf(v, sizeof(v), "%ld,%d", (long)getpid(), fd);
    if (setenv(ENV, v, 1) < 0)
        return -errno;
    if ((rc = set_cloexec(fd, false)) < 0)
        unsetenv(ENV);
    return rc;
}

void sl_metrics_exec_abort(void)
{
    int fd = reg.base ? reg.fd : inherited;
    unsetenv(ENV);
    if (fd >= 0)
        set_cloexec(fd, true);
}

void sl_metrics_inherit(bool reexec)
{
    const char *v = getenv(ENV);
    long pid;
    int fd, used = 0;

    reexeced = reexec;
    if (v == NULL)
        return;
    /* another PID: an app that runs saltare, not our own re-exec */
    if (sscanf(v, "%ld,%d%n", &pid, &fd, &used) == 2 && v[used] == 0 && pid == (long)getpid() &&
        fd >= 0 && set_cloexec(fd, true) == 0) {
        if (inherited >= 0)
            close(inherited);
        inherited = fd;
    }
    unsetenv(ENV);
}

/* ---- slots ------------------------------------------------------------------ */

/* Whether the owner of a slot still exists: not reaped by the master, and
 * (a process that is not our child) kill(0) finds it. A zombie does, until
 * reaped: its slot is not reused before. */
static bool alive(uint64_t owner)
{
    pid_t pid = (pid_t)owner;
    if (owner & DEAD)
        return false;
    return pid > 0 && (pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH);
}

void sl_metrics_reaped(pid_t pid)
{
    if (!reg.base || pid <= 0)
        return;
    for (size_t i = 0; i < reg.nslots; i++) {
        uint64_t owner = (uint64_t)pid;
        if (atomic_compare_exchange_strong(pid_cell(i), &owner, (uint64_t)pid | DEAD))
            return;
    }
}

/* Takes slot i for this process: gauges start at zero, counters go on. */
static void take(size_t i, pid_t pid)
{
    cell *s = slot(i);
    me = s;
    me_pid = pid;
    st(&s[S_START_MS], now_realtime_ms());
    for (size_t l = 0; l < reg.cfg->nlisteners; l++) {
        cell *b = s + reg.lbase[l];
        st(&b[L_CONNS_OPEN], 0);
        st(&b[L_IN_FLIGHT], 0);
        st(&b[L_WS_OPEN], 0);
    }
}

int sl_metrics_attach(void)
{
    pid_t pid = getpid();
    if (!reg.base)
        return 0;
    if (me && me_pid == pid)
        return me_shared ? -ENOSPC : 0;
    me = NULL;
    me_shared = false;
    /* A dead worker's slot first (its pages are in use already), else a
     * fresh one: memory grows with the workers alive at once, not with
     * every worker ever started. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < reg.nslots; i++) {
            uint64_t owner = ld(pid_cell(i));
            if (pass == 0 ? owner == 0 || alive(owner) : owner != 0)
                continue;
            if (atomic_compare_exchange_strong(pid_cell(i), &owner, (uint64_t)pid)) {
                take(i, pid);
                return 0;
            }
        }
    }
    me = slot(reg.nslots); /* the overflow slot: counted, shared */
    me_pid = pid;
    me_shared = true;
    return -ENOSPC;
}

void sl_metrics_set_build(const char *python, const char *loop)
{
    snprintf(build_python, sizeof(build_python), "%s", python ? python : "unknown");
    snprintf(build_loop, sizeof(build_loop), "%s", loop ? loop : "unknown");
}

void sl_metrics_worker_restarted(void)
{
    if (reg.base)
        add(&reg.base[H_RESTARTS], 1);
}

static uint64_t generation_here; /* without a registry, or before fork */

void sl_metrics_set_generation(uint64_t generation)
{
    generation_here = generation;
    if (reg.base)
        st(&reg.base[H_GENERATION], generation);
}

uint64_t sl_metrics_generation(void)
{
    return reg.base ? ld(&reg.base[H_GENERATION]) : generation_here;
}

/* ---- recording ------------------------------------------------------------ */

static cell *block(size_t listener)
{
    if (!me || listener >= reg.cfg->nlisteners)
        return NULL;
    return me + reg.lbase[listener];
}

void sl_metrics_reject(size_t listener, enum sl_metrics_reject why)
{
    cell *b = block(listener);
    if (b && (unsigned)why < SL_METRICS_REJECT__N)
        add(&b[L_REJECT + why], 1);
}

void sl_metrics_timeout(size_t listener, enum sl_metrics_timeout kind)
{
    cell *b = block(listener);
    if (b && (unsigned)kind < SL_METRICS_TIMEOUT__N)
        add(&b[L_TIMEOUT + kind], 1);
}

void sl_metrics_tls(size_t listener, bool ok, enum sl_metrics_tls_failure why)
{
    cell *b = block(listener);
    if (!b)
        return;
    if (ok)
        add(&b[L_TLS_OK], 1);
    else if ((unsigned)why < SL_METRICS_TLS_FAILURE__N)
        add(&b[L_TLS_FAIL + why], 1);
}

void sl_metrics_ws_open(size_t listener, int delta)
{
    cell *b = block(listener);
    if (!b)
        return;
    add(&b[L_WS_OPEN], (uint64_t)(int64_t)delta);
    if (delta > 0)
        add(&b[L_WS_OPENED], 1);
}

void sl_metrics_ws_message(size_t listener, bool out)
{
    cell *b = block(listener);
    if (b)
        add(&b[out ? L_WS_MSG_OUT : L_WS_MSG_IN], 1);
}

void sl_metrics_conn(size_t listener, int delta)
{
    cell *b = block(listener);
    if (!b)
        return;
    add(&b[L_CONNS_OPEN], (uint64_t)(int64_t)delta);
    if (delta > 0)
        add(&b[L_CONNS_ACCEPTED], 1);
}

void sl_metrics_request_start(size_t listener)
{
    cell *b = block(listener);
    if (b)
        add(&b[L_IN_FLIGHT], 1);
}

/* Index into method_names; by length first (this runs per request). */
static unsigned method_class(const char *m, size_t n)
{
    static const unsigned by_len[8][2] = {
        [3] = {0, 3}, /* GET, PUT */
        [4] = {1, 2}, /* HEAD, POST */
        [5] = {5, 5}, /* PATCH */
        [6] = {4, 4}, /* DELETE */
        [7] = {6, 6}, /* OPTIONS */
    };
    if (!m || n < 3 || n > 7)
        return NMETHOD - 1;
    for (int k = 0; k < 2; k++) {
        unsigned i = by_len[n][k];
        if (memcmp(method_names[i], m, n) == 0)
            return i;
    }
    return NMETHOD - 1;
}

void sl_metrics_request_end(const struct sl_metrics_exchange *x)
{
    cell *b = block(x->listener);
    if (!b || x->route > reg.cfg->listeners[x->listener].routes.n)
        return;
    if (x->started)
        add(&b[L_IN_FLIGHT], (uint64_t)-1);
    add(&b[L_BYTES_IN], x->bytes_in);
    add(&b[L_BYTES_OUT], x->bytes_out);
    cell *r = b + L_ROUTES + x->route * R_CELLS;
    unsigned sc = x->status >= 100 && x->status <= 599 ? (unsigned)x->status / 100 - 1 : 4;
    add(&r[R_REQ + method_class(x->method, x->method_len) * NSTATUS + sc], 1);
    unsigned k = 0;
    while (k < SL_METRICS_NBUCKETS && x->duration_us > sl_metrics_buckets_us[k])
        k++;
    add(&r[R_HIST + k], 1);
    add(&r[R_SUM], x->duration_us);
}

/* ---- rendering ------------------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void vputf(struct buf *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    for (;;) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, aq);
        va_end(aq);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 : b->len + (size_t)n + 1;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vputf(b, fmt, ap);
    va_end(ap);
}

/* A label value with \, " and newline escaped (both formats), at most 255
 * bytes of it. */
static const char *esc(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; s && *s && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"')
            out[n++] = '\\', out[n++] = *s;
        else if (*s == '\n')
            out[n++] = '\\', out[n++] = 'n';
        else
            out[n++] = *s;
    }
    out[n] = 0;
    return out;
}

struct render {
    struct buf b;
    bool om; /* OpenMetrics */
    /* live slots: index and pid */
    size_t n;
    size_t *idx;
    pid_t *pid;
    bool *up; /* its process still exists (gauges count) */
    char (*llabel)[256];
};

/* HELP and TYPE of a family; `name` carries `_total` for counters, which
 * OpenMetrics names the family without. */
static void family(struct render *r, const char *name, const char *type, const char *help)
{
    size_t n = strlen(name);
    int fl = (int)n;
    if (r->om && strcmp(type, "counter") == 0 && n > 6 && strcmp(name + n - 6, "_total") == 0)
        fl -= 6;
    if (r->om && strcmp(type, "info") == 0 && n > 5 && strcmp(name + n - 5, "_info") == 0)
        fl -= 5;
    if (!r->om && strcmp(type, "info") == 0)
        type = "gauge";
    putf(&r->b, "# HELP %.*s %s\n# TYPE %.*s %s\n", fl, name, help, fl, name, type);
}

/* Sum of cell `off` (from a listener block's start) over the claimed
 * slots and the overflow slot; gauges count only slots whose process
 * exists (and the overflow slot's, which its processes keep). */
static uint64_t sum(const struct render *r, size_t listener, size_t off, bool gauge)
{
    uint64_t v = ld(slot(reg.nslots) + reg.lbase[listener] + off);
    for (size_t i = 0; i < r->n; i++)
        if (!gauge || r->up[i])
            v += ld(slot(r->idx[i]) + reg.lbase[listener] + off);
    return v;
}

static void per_listener(struct render *r, const char *name, const char *type, const char *help,
                         size_t off, bool gauge)
{
    family(r, name, type, help);
    for (size_t l = 0; l < reg.cfg->nlisteners; l++)
        putf(&r->b, "%s{listener=\"%s\"} %" PRId64 "\n", name, r->llabel[l],
             (int64_t)sum(r, l, off, gauge));
}

static void per_reason(struct render *r, const char *name, const char *label, const char *help,
                       size_t off, const char *const *names, size_t n, bool tls_only)
{
    family(r, name, "counter", help);
    for (size_t l = 0; l < reg.cfg->nlisteners; l++) {
        if (tls_only && !reg.cfg->listeners[l].tls.cert)
            continue;
        for (size_t k = 0; k < n; k++)
            putf(&r->b, "%s{listener=\"%s\",%s=\"%s\"} %" PRIu64 "\n", name, r->llabel[l], label,
                 names[k], sum(r, l, off + k, false));
    }
}

static void requests(struct render *r)
{
    char rl[256], tmp[32];
    family(r, "saltare_http_requests_total", "counter",
           "HTTP requests answered, by listener, route, method and status class.");
    for (size_t l = 0; l < reg.cfg->nlisteners; l++)
        for (size_t k = 0; k <= reg.cfg->listeners[l].routes.n; k++) {
            esc(route_label(reg.cfg, l, k, tmp, sizeof(tmp)), rl, sizeof(rl));
            for (size_t c = 0; c < NMETHOD * NSTATUS; c++) {
                uint64_t v = sum(r, l, L_ROUTES + k * R_CELLS + R_REQ + c, false);
                if (v)
                    putf(&r->b,
                         "saltare_http_requests_total{listener=\"%s\",route=\"%s\",method=\"%s\","
                         "status=\"%s\"} %" PRIu64 "\n",
                         r->llabel[l], rl, method_names[c / NSTATUS], status_names[c % NSTATUS], v);
            }
        }
}

static void durations(struct render *r)
{
    static const char name[] = "saltare_http_request_duration_seconds";
    char rl[256], tmp[32];
    family(r, name, "histogram",
           "Time from the request head to the end of the exchange, by listener and route.");
    for (size_t l = 0; l < reg.cfg->nlisteners; l++)
        for (size_t k = 0; k <= reg.cfg->listeners[l].routes.n; k++) {
            size_t off = L_ROUTES + k * R_CELLS;
            uint64_t cum = 0, total = 0;
            for (size_t j = 0; j < NBUCKET; j++)
                total += sum(r, l, off + R_HIST + j, false);
            if (total == 0)
                continue;
            esc(route_label(reg.cfg, l, k, tmp, sizeof(tmp)), rl, sizeof(rl));
            for (size_t j = 0; j < NBUCKET; j++) {
                cum += sum(r, l, off + R_HIST + j, false);
                putf(&r->b, "%s_bucket{listener=\"%s\",route=\"%s\",le=\"%s\"} %" PRIu64 "\n", name,
                     r->llabel[l], rl, bucket_text[j], cum);
            }
            uint64_t us = sum(r, l, off + R_SUM, false);
            putf(&r->b, "%s_sum{listener=\"%s\",route=\"%s\"} %" PRIu64 ".%06" PRIu64 "\n", name,
                 r->llabel[l], rl, us / 1000000, us % 1000000);
            putf(&r->b, "%s_count{listener=\"%s\",route=\"%s\"} %" PRIu64 "\n", name, r->llabel[l],
                 rl, total);
        }
}

static void processes(struct render *r)
{
    pid_t master = (pid_t)ld(&reg.base[H_MASTER_PID]);
    bool master_is_worker = false;
    for (size_t i = 0; i < r->n; i++)
        master_is_worker |= r->pid[i] == master;
    family(r, "saltare_process_start_time_seconds", "gauge",
           "Start time of each process since the Unix epoch.");
    if (!master_is_worker) {
        uint64_t ms = ld(&reg.base[H_MASTER_START_MS]);
        putf(&r->b,
             "saltare_process_start_time_seconds{process=\"master\",pid=\"%d\"} %" PRIu64
             ".%03" PRIu64 "\n",
             (int)master, ms / 1000, ms % 1000);
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!r->up[i])
            continue;
        uint64_t ms = ld(slot(r->idx[i]) + S_START_MS);
        putf(&r->b,
             "saltare_process_start_time_seconds{process=\"worker%zu\",pid=\"%d\"} %" PRIu64
             ".%03" PRIu64 "\n",
             r->idx[i], (int)r->pid[i], ms / 1000, ms % 1000);
    }
    family(r, "saltare_process_resident_memory_bytes", "gauge",
           "Resident set size of each process (shared pages count in each).");
    if (!master_is_worker) {
        uint64_t v = sl_proc_rss(master);
        if (v)
            putf(&r->b,
                 "saltare_process_resident_memory_bytes{process=\"master\",pid=\"%d\"} %" PRIu64
                 "\n",
                 (int)master, v);
    }
    for (size_t i = 0; i < r->n; i++) {
        uint64_t v = r->up[i] ? sl_proc_rss(r->pid[i]) : 0;
        if (v)
            putf(&r->b,
                 "saltare_process_resident_memory_bytes{process=\"worker%zu\",pid=\"%d\"} "
                 "%" PRIu64 "\n",
                 r->idx[i], (int)r->pid[i], v);
    }
}

static void instance(struct render *r)
{
    char py[80], loop[80], ver[80];
    family(r, "saltare_build_info", "info", "saltare's version, the Python version and the loop.");
    putf(&r->b, "saltare_build_info{version=\"%s\",python=\"%s\",loop=\"%s\"} 1\n",
         esc(reg.version, ver, sizeof(ver)), esc(build_python, py, sizeof(py)),
         esc(build_loop, loop, sizeof(loop)));
    size_t up = 0;
    for (size_t i = 0; i < r->n; i++)
        up += r->up[i];
    family(r, "saltare_workers", "gauge", "Worker processes running.");
    putf(&r->b, "saltare_workers %zu\n", up);
    family(r, "saltare_worker_restarts_total", "counter",
           "Workers that died and were started again by the master.");
    putf(&r->b, "saltare_worker_restarts_total %" PRIu64 "\n", ld(&reg.base[H_RESTARTS]));
    family(r, "saltare_reload_generation", "gauge",
           "Reload generation serving (0 = as started; +1 per SIGHUP reload).");
    putf(&r->b, "saltare_reload_generation %" PRIu64 "\n", ld(&reg.base[H_GENERATION]));
}

static void connections(struct render *r)
{
    per_listener(r, "saltare_connections_open", "gauge", "Open client connections.", L_CONNS_OPEN,
                 true);
    per_listener(r, "saltare_connections_accepted_total", "counter",
                 "Client connections accepted (and served).", L_CONNS_ACCEPTED, false);
    per_reason(r, "saltare_connections_rejected_total", "reason",
               "Client connections closed without being served, by reason.", L_REJECT, reject_names,
               SL_METRICS_REJECT__N, false);
    per_listener(r, "saltare_http_requests_in_flight", "gauge",
                 "Requests whose exchange is not over yet.", L_IN_FLIGHT, true);
    per_listener(r, "saltare_http_request_body_bytes_total", "counter",
                 "Request body bytes received.", L_BYTES_IN, false);
    per_listener(r, "saltare_http_response_body_bytes_total", "counter",
                 "Response body bytes sent.", L_BYTES_OUT, false);
    per_reason(r, "saltare_timeouts_total", "kind", "Timeouts that expired, by kind.", L_TIMEOUT,
               timeout_names, SL_METRICS_TIMEOUT__N, false);
    per_listener(r, "saltare_websockets_open", "gauge", "Open WebSockets.", L_WS_OPEN, true);
    per_listener(r, "saltare_websockets_opened_total", "counter", "WebSockets accepted.",
                 L_WS_OPENED, false);
    family(r, "saltare_websocket_messages_total", "counter",
           "WebSocket messages received (in) and sent (out).");
    for (size_t l = 0; l < reg.cfg->nlisteners; l++)
        for (int d = 0; d < 2; d++)
            putf(&r->b,
                 "saltare_websocket_messages_total{listener=\"%s\",direction=\"%s\"} %" PRIu64 "\n",
                 r->llabel[l], d ? "out" : "in", sum(r, l, d ? L_WS_MSG_OUT : L_WS_MSG_IN, false));
    family(r, "saltare_tls_handshakes_total", "counter", "TLS handshakes completed.");
    for (size_t l = 0; l < reg.cfg->nlisteners; l++)
        if (reg.cfg->listeners[l].tls.cert)
            putf(&r->b, "saltare_tls_handshakes_total{listener=\"%s\"} %" PRIu64 "\n", r->llabel[l],
                 sum(r, l, L_TLS_OK, false));
    per_reason(r, "saltare_tls_handshake_failures_total", "reason",
               "TLS handshakes that failed, by reason.", L_TLS_FAIL, tls_names,
               SL_METRICS_TLS_FAILURE__N, true);
}

static int render_setup(struct render *r)
{
    size_t nl = reg.cfg->nlisteners;
    r->idx = calloc(reg.nslots, sizeof(*r->idx));
    r->pid = calloc(reg.nslots, sizeof(*r->pid));
    r->up = calloc(reg.nslots, sizeof(*r->up));
    r->llabel = calloc(nl ? nl : 1, sizeof(*r->llabel));
    r->b.cap = 16384;
    r->b.p = malloc(r->b.cap);
    if (!r->idx || !r->pid || !r->up || !r->llabel || !r->b.p)
        return -ENOMEM;
    for (size_t i = 0; i < reg.nslots; i++) {
        uint64_t owner = ld(pid_cell(i));
        if (owner == 0) /* never claimed: its pages were never touched */
            continue;
        r->idx[r->n] = i;
        r->pid[r->n] = (pid_t)(owner & ~DEAD);
        r->up[r->n] = alive(owner);
        r->n++;
    }
    for (size_t l = 0; l < nl; l++) {
        const struct sl_listener_config *lc = &reg.cfg->listeners[l];
        esc(lc->label ? lc->label : lc->name, r->llabel[l], sizeof(r->llabel[l]));
    }
    return 0;
}

int sl_metrics_render(enum sl_metrics_format f, char **out, size_t *len)
{
    if (!reg.base)
        return -ENOENT;
    struct render r = {.om = f == SL_METRICS_OPENMETRICS};
    int rc = render_setup(&r);
    if (rc == 0) {
        instance(&r);
        processes(&r);
        connections(&r);
        requests(&r);
        durations(&r);
        if (r.om)
            putf(&r.b, "# EOF\n");
        rc = r.b.oom ? -ENOMEM : 0;
    }
    free(r.idx);
    free(r.pid);
    free(r.up);
    free(r.llabel);
    if (rc) {
        free(r.b.p);
        return rc;
    }
    *out = r.b.p;
    *len = r.b.len;
    return 0;
}

/* ---- negotiation ------------------------------------------------------------ */

/* True when the media range [s, e) names OpenMetrics with a q above 0. */
static bool wants_openmetrics(const char *s, const char *e)
{
    static const char om[] = "application/openmetrics-text";
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    size_t n = sizeof(om) - 1;
    if ((size_t)(e - s) < n || strncasecmp(s, om, n) != 0)
        return false;
    const char *p = s + n;
    if (p < e && *p != ';' && *p != ' ' && *p != '\t')
        return false;
    for (; p < e; p++) { /* a q=0 parameter refuses it */
        if ((*p == 'q' || *p == 'Q') && p + 1 < e && p[1] == '=' && p > s &&
            (p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t')) {
            const char *v = p + 2;
            bool nonzero = false;
            for (; v < e && ((*v >= '0' && *v <= '9') || *v == '.'); v++)
                nonzero |= *v >= '1' && *v <= '9';
            return nonzero;
        }
    }
    return true;
}

enum sl_metrics_format sl_metrics_negotiate(const char *accept, size_t len)
{
    const char *p = accept, *end = accept ? accept + len : NULL;
    while (p && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        if (wants_openmetrics(p, e))
            return SL_METRICS_OPENMETRICS;
        p = comma ? comma + 1 : end;
    }
    return SL_METRICS_PROMETHEUS;
}

const char *sl_metrics_content_type(enum sl_metrics_format f)
{
    return f == SL_METRICS_OPENMETRICS
               ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
               : "text/plain; version=0.0.4; charset=utf-8";
}
