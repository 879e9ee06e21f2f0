/*
 * metrics: the text exposition of the registry (Prometheus text 0.0.4,
 * OpenMetrics 1.0) and the Accept negotiation between them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "base/procstat.h"
#include "server/metrics.h"
#include "server/metrics_registry_internal.h"

static const char *const bucket_text[SL_METRICS_NBUCKETS + 1] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1.0",   "2.5",  "5.0",   "10.0", "+Inf",
};

static char build_python[32] = "unknown", build_loop[32] = "unknown";

void sl_metrics_set_build(const char *python, const char *loop)
{
    snprintf(build_python, sizeof(build_python), "%s", python ? python : "unknown");
    snprintf(build_loop, sizeof(build_loop), "%s", loop ? loop : "unknown");
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
    size_t base = sl__metrics.lbase[listener] + off;
    uint64_t v = 0;
    if (sl__metrics_ld(&sl__metrics.base[H_OVERFLOW])) /* else its pages stay untouched */
        v = sl__metrics_ld(sl__metrics_slot(sl__metrics.nslots) + base);
    for (size_t i = 0; i < r->n; i++)
        if (!gauge || r->up[i])
            v += sl__metrics_ld(sl__metrics_slot(r->idx[i]) + base);
    return v;
}

static void per_listener(struct render *r, const char *name, const char *type, const char *help,
                         size_t off, bool gauge)
{
    family(r, name, type, help);
    for (size_t l = 0; l < sl__metrics.cfg->nlisteners; l++)
        putf(&r->b, "%s{listener=\"%s\"} %" PRId64 "\n", name, r->llabel[l],
             (int64_t)sum(r, l, off, gauge));
}

static void per_reason(struct render *r, const char *name, const char *label, const char *help,
                       size_t off, const char *const *names, size_t n, bool tls_only)
{
    family(r, name, "counter", help);
    for (size_t l = 0; l < sl__metrics.cfg->nlisteners; l++) {
        if (tls_only && !sl__metrics.cfg->listeners[l].tls.cert)
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
    for (size_t l = 0; l < sl__metrics.cfg->nlisteners; l++)
        for (size_t k = 0; k <= sl__metrics.cfg->listeners[l].routes.n; k++) {
            esc(sl__metrics_route_label(sl__metrics.cfg, l, k, tmp, sizeof(tmp)), rl, sizeof(rl));
            for (size_t c = 0; c < NMETHOD * NSTATUS; c++) {
                uint64_t v = sum(r, l, L_ROUTES + k * R_CELLS + R_REQ + c, false);
                if (v)
                    putf(&r->b,
                         "saltare_http_requests_total{listener=\"%s\",route=\"%s\",method=\"%s\","
                         "status=\"%s\"} %" PRIu64 "\n",
                         r->llabel[l], rl, sl__metrics_method_names[c / NSTATUS],
                         sl__metrics_status_names[c % NSTATUS], v);
            }
        }
}

static void durations(struct render *r)
{
    static const char name[] = "saltare_http_request_duration_seconds";
    char rl[256], tmp[32];
    family(r, name, "histogram",
           "Time from the request head to the end of the exchange, by listener and route.");
    for (size_t l = 0; l < sl__metrics.cfg->nlisteners; l++)
        for (size_t k = 0; k <= sl__metrics.cfg->listeners[l].routes.n; k++) {
            size_t off = L_ROUTES + k * R_CELLS;
            uint64_t cum = 0, total = 0;
            for (size_t j = 0; j < NBUCKET; j++)
                total += sum(r, l, off + R_HIST + j, false);
            if (total == 0)
                continue;
            esc(sl__metrics_route_label(sl__metrics.cfg, l, k, tmp, sizeof(tmp)), rl, sizeof(rl));
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
    pid_t master = (pid_t)sl__metrics_ld(&sl__metrics.base[H_MASTER_PID]);
    bool master_is_worker = false;
    for (size_t i = 0; i < r->n; i++)
        master_is_worker |= r->pid[i] == master;
    family(r, "saltare_process_start_time_seconds", "gauge",
           "Start time of each process since the Unix epoch.");
    if (!master_is_worker) {
        uint64_t ms = sl__metrics_ld(&sl__metrics.base[H_MASTER_START_MS]);
        putf(&r->b,
             "saltare_process_start_time_seconds{process=\"master\",pid=\"%d\"} %" PRIu64
             ".%03" PRIu64 "\n",
             (int)master, ms / 1000, ms % 1000);
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!r->up[i])
            continue;
        uint64_t ms = sl__metrics_ld(sl__metrics_slot(r->idx[i]) + S_START_MS);
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
         esc(sl__metrics.version, ver, sizeof(ver)), esc(build_python, py, sizeof(py)),
         esc(build_loop, loop, sizeof(loop)));
    size_t up = 0;
    for (size_t i = 0; i < r->n; i++)
        up += r->up[i];
    family(r, "saltare_workers", "gauge", "Worker processes running.");
    putf(&r->b, "saltare_workers %zu\n", up);
    family(r, "saltare_worker_restarts_total", "counter",
           "Workers that died and were started again by the master.");
    putf(&r->b, "saltare_worker_restarts_total %" PRIu64 "\n",
         sl__metrics_ld(&sl__metrics.base[H_RESTARTS]));
    family(r, "saltare_reload_generation", "gauge",
           "Reload generation serving (0 = as started; +1 per SIGHUP reload).");
    putf(&r->b, "saltare_reload_generation %" PRIu64 "\n",
         sl__metrics_ld(&sl__metrics.base[H_GENERATION]));
}

static void connections(struct render *r)
{
    per_listener(r, "saltare_connections_open", "gauge", "Open client connections.", L_CONNS_OPEN,
                 true);
    per_listener(r, "saltare_connections_accepted_total", "counter",
                 "Client connections accepted (and served).", L_CONNS_ACCEPTED, false);
    per_reason(r, "saltare_connections_rejected_total", "reason",
               "Client connections closed without being served, by reason.", L_REJECT,
               sl__metrics_reject_names, SL_METRICS_REJECT__N, false);
    per_listener(r, "saltare_http_requests_in_flight", "gauge",
                 "Requests whose exchange is not over yet.", L_IN_FLIGHT, true);
    per_listener(r, "saltare_http_request_body_bytes_total", "counter",
                 "Request body bytes received.", L_BYTES_IN, false);
    per_listener(r, "saltare_http_response_body_bytes_total", "counter",
                 "Response body bytes sent.", L_BYTES_OUT, false);
    per_reason(r, "saltare_timeouts_total", "kind", "Timeouts that expired, by kind.", L_TIMEOUT,
               sl__metrics_timeout_names, SL_METRICS_TIMEOUT__N, false);
    per_listener(r, "saltare_websockets_open", "gauge", "Open WebSockets.", L_WS_OPEN, true);
    per_listener(r, "saltare_websockets_opened_total", "counter", "WebSockets accepted.",
                 L_WS_OPENED, false);
    family(r, "saltare_websocket_messages_total", "counter",
           "WebSocket messages received (in) and sent (out).");
    for (size_t l = 0; l < sl__metrics.cfg->nlisteners; l++)
        for (int d = 0; d < 2; d++)
            putf(&r->b,
                 "saltare_websocket_messages_total{listener=\"%s\",direction=\"%s\"} %" PRIu64 "\n",
                 r->llabel[l], d ? "out" : "in", sum(r, l, d ? L_WS_MSG_OUT : L_WS_MSG_IN, false));
    family(r, "saltare_tls_handshakes_total", "counter", "TLS handshakes completed.");
    for (size_t l = 0; l < sl__metrics.cfg->nlisteners; l++)
        if (sl__metrics.cfg->listeners[l].tls.cert)
            putf(&r->b, "saltare_tls_handshakes_total{listener=\"%s\"} %" PRIu64 "\n", r->llabel[l],
                 sum(r, l, L_TLS_OK, false));
    per_reason(r, "saltare_tls_handshake_failures_total", "reason",
               "TLS handshakes that failed, by reason.", L_TLS_FAIL, sl__metrics_tls_names,
               SL_METRICS_TLS_FAILURE__N, true);
}

static int render_setup(struct render *r)
{
    size_t nl = sl__metrics.cfg->nlisteners;
    r->idx = calloc(sl__metrics.nslots, sizeof(*r->idx));
    r->pid = calloc(sl__metrics.nslots, sizeof(*r->pid));
    r->up = calloc(sl__metrics.nslots, sizeof(*r->up));
    r->llabel = calloc(nl ? nl : 1, sizeof(*r->llabel));
    r->b.cap = 16384;
    r->b.p = malloc(r->b.cap);
    if (!r->idx || !r->pid || !r->up || !r->llabel || !r->b.p)
        return -ENOMEM;
    for (size_t i = 0; i < sl__metrics.nslots; i++) {
        uint64_t owner = sl__metrics_ld(sl__metrics_pid_cell(i));
        if (owner == 0) /* the end of the claimed prefix */
            break;
        r->idx[r->n] = i;
        r->pid[r->n] = (pid_t)(owner & ~DEAD);
        r->up[r->n] = sl__metrics_alive(owner);
        r->n++;
    }
    for (size_t l = 0; l < nl; l++) {
        const struct sl_listener_config *lc = &sl__metrics.cfg->listeners[l];
        esc(lc->label ? lc->label : lc->name, r->llabel[l], sizeof(r->llabel[l]));
    }
    return 0;
}

int sl_metrics_render(enum sl_metrics_format f, char **out, size_t *len)
{
    if (!sl__metrics.base)
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
