/*
 * metrics: the shared registry (see metrics.h; its layout:
 * metrics_registry_internal.h), its life across the master's re-exec, and
 * recording. The text exposition: metrics_render.c.
 */
#include "server/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "server/metrics_registry_internal.h"

#define MAGIC 0x736c6d6574726963ull /* "slmetric" */
#define LINE 64u

const uint64_t sl_metrics_buckets_us[SL_METRICS_NBUCKETS] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
const char *const sl__metrics_method_names[NMETHOD] = {"GET",    "HEAD",  "POST",    "PUT",
                                                       "DELETE", "PATCH", "OPTIONS", "other"};
const char *const sl__metrics_status_names[NSTATUS] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
const char *const sl__metrics_reject_names[SL_METRICS_REJECT__N] = {
    "max_connections", "parse_error", "proxy_protocol", "per_ip", "rate", "concurrency"};
const char *const sl__metrics_timeout_names[SL_METRICS_TIMEOUT__N] = {
    "header", "keep_alive", "body", "write", "app", "handshake", "websocket"};
const char *const sl__metrics_tls_names[SL_METRICS_TLS_FAILURE__N] = {
    "timeout", "error", "closed", "not_tls", "protocol", "client_cert", "server_cert"};

#define ENV SL_METRICS_ENV

/* Set by init (the master), inherited by fork. */
struct sl__metrics_reg sl__metrics = {.fd = -1};

static cell *me;           /* this process's slot, NULL = record nothing */
static pid_t me_pid;       /* who claimed `me` (a forked child must claim anew) */
static bool me_shared;     /* `me` is the overflow slot: several writers */
static int inherited = -1; /* the previous image's memfd, until init decides */
static bool reexeced;      /* this image is a reload's (sl_metrics_inherit) */

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
        st(c, sl__metrics_ld(c) + v);
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

const char *sl__metrics_listener_label(const struct sl_config *cfg, size_t l)
{
    const struct sl_listener_config *lc = &cfg->listeners[l];
    return lc->label ? lc->label : lc->name;
}

const char *sl__metrics_route_label(const struct sl_config *cfg, size_t listener, size_t route,
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
        h = fnv_str(h, sl__metrics_method_names[i]);
    for (size_t i = 0; i < NSTATUS; i++)
        h = fnv_str(h, sl__metrics_status_names[i]);
    for (size_t i = 0; i < SL_METRICS_REJECT__N; i++)
        h = fnv_str(h, sl__metrics_reject_names[i]);
    for (size_t i = 0; i < SL_METRICS_TIMEOUT__N; i++)
        h = fnv_str(h, sl__metrics_timeout_names[i]);
    for (size_t i = 0; i < SL_METRICS_TLS_FAILURE__N; i++)
        h = fnv_str(h, sl__metrics_tls_names[i]);
    for (size_t l = 0; l < cfg->nlisteners; l++) {
        size_t n = cfg->listeners[l].routes.n;
        h = fnv_str(h, sl__metrics_listener_label(cfg, l));
        h = fnv(h, &n, sizeof(n));
        for (size_t k = 0; k <= n; k++)
            h = fnv_str(h, sl__metrics_route_label(cfg, l, k, buf, sizeof(buf)));
    }
    return h;
}

/* The registry's shape for `cfg` with `nslots` worker slots (its sizes
 * and lbase, which the caller owns). */
static int shape(struct sl__metrics_reg *r, const struct sl_config *cfg, size_t nslots)
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
static const char *incompatible(const cell *old, size_t bytes, const struct sl__metrics_reg *r,
                                uint64_t fp)
{
    if (bytes < H_CELLS * sizeof(cell) || sl__metrics_ld(&old[H_MAGIC]) != MAGIC)
        return "the previous registry is not one";
    if (sl__metrics_ld(&old[H_LAYOUT]) != LAYOUT)
        return "the binary's registry layout changed";
    if (sl__metrics_ld(&old[H_NSLOTS]) != r->nslots ||
        sl__metrics_ld(&old[H_SLOT_CELLS]) != r->slot_cells || bytes != r->bytes)
        return "the listeners, routes or slot count changed the registry's size";
    if (sl__metrics_ld(&old[H_FINGERPRINT]) != fp)
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
static bool adopt(struct sl__metrics_reg *r, uint64_t fp, uint64_t *carry)
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
        if (sl__metrics_ld(&old[H_MAGIC]) == MAGIC) { /* the stable prefix */
            carry[H_MASTER_START_MS] = sl__metrics_ld(&old[H_MASTER_START_MS]);
            carry[H_RESTARTS] = sl__metrics_ld(&old[H_RESTARTS]);
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
static int create(struct sl__metrics_reg *r, uint64_t fp, const uint64_t *carry)
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
    struct sl__metrics_reg r = {.fd = -1};
    uint64_t carry[H_CELLS] = {0}, fp;
    int rc;

    if (sl__metrics.base)
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
    sl__metrics = r;
    return 0;
}

void sl_metrics_fini(void)
{
    if (inherited >= 0)
        close(inherited);
    inherited = -1;
    if (!sl__metrics.base)
        return;
    munmap(sl__metrics.base, sl__metrics.bytes);
    if (sl__metrics.fd >= 0)
        close(sl__metrics.fd);
    free(sl__metrics.lbase);
    sl__metrics = (struct sl__metrics_reg){.fd = -1};
    me = NULL;
    me_shared = false;
}

bool sl_metrics_enabled(void)
{
    return sl__metrics.base != NULL;
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
    int fd = sl__metrics.base ? sl__metrics.fd : inherited, rc;
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
    int fd = sl__metrics.base ? sl__metrics.fd : inherited;
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

bool sl__metrics_alive(uint64_t owner)
{
    pid_t pid = (pid_t)owner;
    if (owner & DEAD)
        return false;
    return pid > 0 && (pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH);
}

void sl_metrics_reaped(pid_t pid)
{
    if (!sl__metrics.base || pid <= 0)
        return;
    for (size_t i = 0; i < sl__metrics.nslots; i++) {
        uint64_t owner = (uint64_t)pid;
        if (atomic_compare_exchange_strong(sl__metrics_pid_cell(i), &owner, (uint64_t)pid | DEAD) ||
            owner == 0) /* the end of the claimed prefix */
            return;
    }
}

/* Takes slot i for this process: gauges start at zero, counters go on. */
static void take(size_t i, pid_t pid)
{
    cell *s = sl__metrics_slot(i);
    me = s;
    me_pid = pid;
    st(&s[S_START_MS], now_realtime_ms());
    for (size_t l = 0; l < sl__metrics.cfg->nlisteners; l++) {
        cell *b = s + sl__metrics.lbase[l];
        st(&b[L_CONNS_OPEN], 0);
        st(&b[L_IN_FLIGHT], 0);
        st(&b[L_WS_OPEN], 0);
    }
}

int sl_metrics_attach(void)
{
    pid_t pid = getpid();
    if (!sl__metrics.base)
        return 0;
    if (me && me_pid == pid)
        return me_shared ? -ENOSPC : 0;
    me = NULL;
    me_shared = false;
    /* A dead worker's slot first (its pages are in use already), else a
     * fresh one: memory grows with the workers alive at once, not with
     * every worker ever started. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sl__metrics.nslots; i++) {
            uint64_t owner = sl__metrics_ld(sl__metrics_pid_cell(i));
            if (pass == 0 && owner == 0)
                break; /* the end of the claimed prefix */
            if (pass == 0 ? sl__metrics_alive(owner) : owner != 0)
                continue;
            if (atomic_compare_exchange_strong(sl__metrics_pid_cell(i), &owner, (uint64_t)pid)) {
                take(i, pid);
                return 0;
            }
        }
    }
    me = sl__metrics_slot(sl__metrics.nslots); /* the overflow slot: counted, shared */
    me_pid = pid;
    me_shared = true;
    st(&sl__metrics.base[H_OVERFLOW], 1);
    return -ENOSPC;
}

void sl_metrics_worker_restarted(void)
{
    if (sl__metrics.base)
        add(&sl__metrics.base[H_RESTARTS], 1);
}

static uint64_t generation_here; /* without a registry, or before fork */

void sl_metrics_set_generation(uint64_t generation)
{
    generation_here = generation;
    if (sl__metrics.base)
        st(&sl__metrics.base[H_GENERATION], generation);
}

uint64_t sl_metrics_generation(void)
{
    return sl__metrics.base ? sl__metrics_ld(&sl__metrics.base[H_GENERATION]) : generation_here;
}

/* ---- recording ------------------------------------------------------------ */

static cell *block(size_t listener)
{
    if (!me || listener >= sl__metrics.cfg->nlisteners)
        return NULL;
    return me + sl__metrics.lbase[listener];
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

/* Index into sl__metrics_method_names; by length first (this runs per request). */
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
        if (memcmp(sl__metrics_method_names[i], m, n) == 0)
            return i;
    }
    return NMETHOD - 1;
}

void sl_metrics_request_end(const struct sl_metrics_exchange *x)
{
    cell *b = block(x->listener);
    if (!b || x->route > sl__metrics.cfg->listeners[x->listener].routes.n)
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
