/*
 * worker: the event loop. One epoll set holds the listeners (level
 * triggered, EPOLLEXCLUSIVE so several workers can share them), the wake
 * eventfd and every connection (edge triggered). A connection is added
 * for in+rdhup when accepted (conn.c); out is added by the first write
 * that blocks (resp.c) and then stays, so a request costs no epoll_ctl.
 *
 * One round (sl_worker_poll or one turn of sl_worker_run):
 *   epoll_wait -> handle I/O (may call on_request) -> deferred work (pending
 *   connections, queued app events) -> timers -> deferred work again ->
 *   free the connections that died this round.
 * Connections closed during a round are freed only at its end because later
 * events of the same epoll batch may still point at them.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "server/client_table.h"
#include "server/metrics_internal.h"
#include "server/route_internal.h"
#include "server/server_internal.h"
#include "server/tls.h"
#include "server/ws_deflate.h"

#define ACCEPT_BATCH 64 /* accepts per listener event: fairness */
#define EVENT_BATCH 64  /* epoll_wait array */
#define HOUSEKEEPING_MS 1000
#define POOL_IDLE_MS 5000   /* free buffers unused this long go back to the kernel */
#define ACCEPT_PAUSE_MS 100 /* after EMFILE/ENFILE */

/* Inside a round the clock read at its start is fresh enough; app calls
 * between rounds (the app awaited something) read it again. */
uint64_t sl__worker_now(struct sl_worker *w)
{
    if (!w->in_poll)
        w->now_ms = sl_clock_ms();
    return w->now_ms;
}

/* A timer armed by an app call between polls (the keep-alive timer after a
 * response, the body and write timers) may be due before the time the
 * embedder was told to poll again: then it is woken to poll and ask anew. */
void sl__timer_arm(struct sl_conn *c, struct sl_timer *t, uint32_t ms)
{
    struct sl_worker *w = c->w;
    if (ms == 0) {
        sl_timer_cancel(&w->wheel, t);
        return;
    }
    uint64_t due = sl__worker_now(w) + ms;
    sl_timer_arm(&w->wheel, t, due);
    if (!w->in_poll && due < w->told_due_ms)
        sl__worker_wake(w);
}

/* Makes the embedding loop call sl_worker_poll soon: only needed between
 * rounds, and one write per round is enough. */
void sl__worker_wake(struct sl_worker *w)
{
    uint64_t one = 1;
    if (w->in_poll || w->wake_sent)
        return;
    w->wake_sent = true;
    if (write(w->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        sl_log(SL_LOG_ERROR, "worker wake: %s", strerror(errno));
}

void sl__worker_kick(struct sl_conn *c)
{
    if (c->state == SL__C_DEAD)
        return;
    if (c->busy) {
        c->again = true;
        return;
    }
    if (c->pending)
        return;
    c->pending = true;
    c->pnext = c->w->pending;
    c->w->pending = c;
    sl__worker_wake(c->w);
}

/* A connection that used up its step budget continues next round, after
 * the others had their turn (a client pipelining without pause would
 * otherwise keep the worker to itself). */
void sl__worker_defer(struct sl_conn *c)
{
    if (c->pending)
        return;
    c->pending = true;
    c->pnext = c->w->later;
    c->w->later = c;
}

void sl__worker_queue_event(struct sl_req *r, int ev)
{
    struct sl_worker *w = r->w;
    r->evmask |= (uint8_t)ev;
    if (r->queued)
        return;
    r->queued = true;
    r->evnext = NULL;
    if (w->evq_tail)
        w->evq_tail->evnext = r;
    else
        w->evq_head = r;
    w->evq_tail = r;
    sl__worker_wake(w);
}

static void deliver(struct sl_worker *w, struct sl_req *r)
{
    static const struct {
        int bit;
        enum sl_req_event ev;
    } order[] = {{SL__EV_BODY, SL_REQ_BODY},
                 {SL__EV_DRAIN, SL_REQ_DRAIN},
                 {SL__EV_DISCONNECT, SL_REQ_DISCONNECT},
                 {SL__EV_CANCEL, SL_REQ_CANCEL}};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        /* The app may release the req from inside a callback. */
        if (!r->app_holds)
            break;
        if (r->evmask & order[i].bit) {
            r->evmask &= (uint8_t)~order[i].bit;
            w->ops->on_event(w->app, r, order[i].ev);
        }
    }
}

/* Runs kicked connections and delivers queued events until both are empty
 * (each may produce more of the other). */
static void run_deferred(struct sl_worker *w)
{
    while (w->pending || w->evq_head) {
        while (w->pending) {
            struct sl_conn *c = w->pending;
            w->pending = c->pnext;
            c->pending = false;
            sl__conn_process(c);
        }
        while (w->evq_head) {
            struct sl_req *r = w->evq_head;
            w->evq_head = r->evnext;
            if (!w->evq_head)
                w->evq_tail = NULL;
            deliver(w, r);
            r->queued = false;
            r->evmask = 0;
            sl__req_maybe_free(r);
        }
    }
}

static void free_dead(struct sl_worker *w)
{
    while (w->dead) {
        struct sl_conn *c = w->dead;
        w->dead = c->next;
        assert(!c->pending && !c->batched); /* sl__conn_close unlinked it */
        sl__conn_free(c);
    }
}

static void listeners_ctl(struct sl_worker *w, int op)
{
    for (size_t i = 0; i < w->nls; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->ls[i]};
        if (epoll_ctl(w->epfd, op, w->ls[i].fd, &ev) < 0 && op == EPOLL_CTL_ADD)
            sl_log(SL_LOG_ERROR, "epoll add listener %s: %s", w->ls[i].cfg->name, strerror(errno));
    }
}

static void accept_resume(struct sl_timer *t)
{
    struct sl_worker *w = sl_container_of(t, struct sl_worker, accept_timer);
    w->accept_paused = false;
    if (!w->draining)
        listeners_ctl(w, EPOLL_CTL_ADD);
}

/* Out of fds: a level-triggered listener would spin, so stop watching the
 * listeners for a moment; the backlog waits in the kernel. */
static void accept_pause(struct sl_worker *w, int err)
{
    sl_log(SL_LOG_ERROR, "accept: %s; pausing accepts for %d ms", strerror(err), ACCEPT_PAUSE_MS);
    w->accept_paused = true;
    listeners_ctl(w, EPOLL_CTL_DEL);
    sl_timer_arm(&w->wheel, &w->accept_timer, w->now_ms + ACCEPT_PAUSE_MS);
}

/* A connection over limits.max_connections: counted, and said once a second. */
static void refused(struct sl_worker *w, struct sl__listener *l, uint32_t limit)
{
    sl_metrics_reject((size_t)(l - w->ls), SL_METRICS_REJECT_MAX_CONNECTIONS);
    uint64_t n = sl_log_every_due(&w->maxconn_warn, sl_clock_ms());
    if (n)
        sl_log(SL_LOG_WARNING,
               "%s: limits.max_connections (%u) reached: %llu connection(s) refused since the "
               "last such warning",
               l->cfg->label ? l->cfg->label : l->cfg->name, limit, (unsigned long long)n);
}

static void accept_ready(struct sl_worker *w, struct sl__listener *l)
{
    uint32_t limit = l->cfg->limits.max_connections;
    for (int i = 0; i < ACCEPT_BATCH && !w->accept_paused; i++) {
        union sl__addr peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(l->fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(w, errno);
            return; /* EAGAIN: the backlog is empty */
        }
        /* Over the limit: accepted and closed at once, so the client gets a
         * prompt end instead of waiting in the backlog. */
        if (w->draining || (limit && w->nconns >= limit)) {
            close(fd);
            if (!w->draining)
                refused(w, l, limit);
            continue;
        }
        if (sl__conn_new(w, l, fd, &peer, l->is_unix ? 0 : len))
            w->accepted++;
        else
            close(fd);
    }
}

static void wake_ready(struct sl_worker *w)
{
    uint64_t v;
    if (read(w->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        sl_log(SL_LOG_ERROR, "worker wake read: %s", strerror(errno));
    w->wake_sent = false;
}

static void check_signals(struct sl_worker *w)
{
    if (!w->draining && atomic_load_explicit(&w->signals, memory_order_relaxed) > 0)
        sl_worker_drain(w);
}

static void housekeeping(struct sl_timer *t)
{
    struct sl_worker *w = sl_container_of(t, struct sl_worker, housekeeping);
    sl_pool_trim(&w->small, POOL_IDLE_MS);
    sl_pool_trim(&w->large, POOL_IDLE_MS);
}

/* Trimming only matters while free buffers exist, and a log consumer that
 * pushed back is retried here too: an idle worker with empty pools and
 * nothing to log arms no timer and sleeps. */
static void housekeeping_arm(struct sl_worker *w)
{
    if (!sl_timer_armed(&w->housekeeping) && (w->small.nfree || w->large.nfree || sl_log_pending()))
        sl_timer_arm(&w->wheel, &w->housekeeping, w->now_ms + HOUSEKEEPING_MS);
}

static void dispatch(struct sl_worker *w, const struct epoll_event *ev)
{
    uint8_t tag = *(const uint8_t *)ev->data.ptr;
    if (tag == SL__TAG_CONN) {
        struct sl_conn *c = ev->data.ptr;
        if (c->state != SL__C_DEAD)
            sl__conn_io(c, ev->events);
    } else if (tag == SL__TAG_LISTENER) {
        if (!w->draining)
            accept_ready(w, ev->data.ptr);
    } else {
        wake_ready(w);
    }
}

/* Writes the output batching held back (sl_worker_set_batching). */
static void flush_batch(struct sl_worker *w)
{
    while (w->batch) {
        struct sl_conn *c = w->batch;
        w->batch = c->bnext;
        c->batched = false;
        sl__out_ready(c); /* never a closed conn: closing unlinks it */
    }
}

void sl_worker_set_batching(struct sl_worker *w, bool on)
{
    w->batching = on;
    if (!on)
        sl_worker_flush(w);
}

bool sl_worker_flush_pending(const struct sl_worker *w)
{
    return w->batch != NULL;
}

void sl_worker_flush(struct sl_worker *w)
{
    if (!w->in_poll)
        w->now_ms = sl_clock_ms();
    sl_log_batch_begin();
    flush_batch(w);
    sl_log_batch_end();
}

/* One round; returns the number of events handled. */
static int round_run(struct sl_worker *w, int timeout_ms, unsigned budget)
{
    struct epoll_event evs[EVENT_BATCH];
    int max = budget < EVENT_BATCH ? (int)budget : EVENT_BATCH;
    int n = epoll_wait(w->epfd, evs, max > 0 ? max : 1, timeout_ms);
    if (n < 0) {
        if (errno != EINTR)
            return -errno;
        n = 0;
    }
    w->now_ms = sl_clock_ms();
    w->in_poll = true;
    sl_log_batch_begin(); /* access lines of this round: one write at its end */
    flush_batch(w);       /* first: the responses of the embedder's last turn */
    check_signals(w);
    sl__stats_check(w); /* SIGUSR1 */
    while (w->later) {  /* deferred last round: their turn again */
        struct sl_conn *c = w->later;
        w->later = c->pnext;
        c->pnext = w->pending;
        w->pending = c;
    }
    for (int i = 0; i < n; i++)
        dispatch(w, &evs[i]);
    run_deferred(w);
    sl_timer_advance(&w->wheel, w->now_ms);
    run_deferred(w);
    free_dead(w);
    sl_log_batch_end();
    housekeeping_arm(w);
    w->in_poll = false;
    return n;
}

int sl_worker_poll(struct sl_worker *w, unsigned budget)
{
    unsigned handled = 0;
    int n;
    do {
        n = round_run(w, 0, budget - handled);
        if (n < 0)
            return n;
        handled += (unsigned)n;
    } while (n == EVENT_BATCH && handled < budget);
    return (handled >= budget && budget > 0) || w->later ? 1 : 0;
}

int sl_worker_next_timer_ms(struct sl_worker *w)
{
    uint64_t now = sl_clock_ms();
    int64_t ms =
        w->pending || w->later || w->evq_head || w->batch ? 0 : sl_timer_next_ms(&w->wheel, now);
    if (ms > 1000000000)
        ms = 1000000000;
    w->told_due_ms = ms < 0 ? UINT64_MAX : now + (uint64_t)ms;
    return (int)ms;
}

int sl_worker_run(struct sl_worker *w)
{
    while (!sl_worker_done(w) && !sl_worker_abort_requested(w)) {
        int rc = round_run(w, sl_worker_next_timer_ms(w), EVENT_BATCH);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int sl_worker_fd(const struct sl_worker *w)
{
    return w->epfd;
}

void sl_worker_read_stats(const struct sl_worker *w, struct sl_worker_stats *out)
{
    *out = (struct sl_worker_stats){
        .conns = w->nconns,
        .conn_bytes = w->nconns * sizeof(struct sl_conn),
        .bufs_in_use = w->small.outstanding + w->large.outstanding,
        .bufs_free = w->small.nfree + w->large.nfree,
        .buf_bytes = (w->small.outstanding + w->small.nfree) * w->small.size +
                     (w->large.outstanding + w->large.nfree) * w->large.size,
        .accepted = w->accepted,
        .proxy_rejects = w->proxy_rejects,
        .conn_ip_rejects = w->conn_ip_rejects,
        .rate_rejects = w->rate_rejects,
        .concurrency_rejects = w->concurrency_rejects,
        .requests = w->requests,
        .client_aborts = w->client_aborts,
        .app_timeouts = w->app_timeouts,
    };
}

bool sl_worker_draining(const struct sl_worker *w)
{
    return w->draining;
}

bool sl_worker_abort_requested(const struct sl_worker *w)
{
    return atomic_load_explicit(&((struct sl_worker *)w)->signals, memory_order_relaxed) >= 2;
}

bool sl_worker_done(const struct sl_worker *w)
{
    return w->draining && w->nconns == 0;
}

void sl_worker_signal_drain(struct sl_worker *w)
{
    uint64_t one = 1;
    int saved = errno;
    atomic_fetch_add_explicit(&w->signals, 1, memory_order_relaxed);
    ssize_t rc = write(w->wakefd, &one, sizeof(one));
    (void)rc; /* EAGAIN: the counter is saturated, the worker is awake anyway */
    errno = saved;
}

void sl_worker_signal_restart(struct sl_worker *w)
{
    atomic_store_explicit(&w->restarting, true, memory_order_relaxed);
    sl_worker_signal_drain(w);
}

void sl_worker_set_owns_listeners(struct sl_worker *w, bool on)
{
    w->owns_listeners = on;
}

/*
 * Whether an idle connection may be closed at once by a drain. Not a fresh
 * one (accepted, nothing read yet): its client is sending its first
 * request, which closing would reset (a new connection is never retried);
 * it gets one answer with "Connection: close", within timeouts.header. Not
 * a kept-alive one whose next request already sits unread in the socket.
 * The rest may close: a client must expect a kept-alive connection to
 * close while idle (RFC 9112 9.3.1 lets it retry).
 */
static bool idle_for_good(const struct sl_conn *c)
{
    int pending = 0;
    if (c->nrequests == 0)
        return false;
    return ioctl(c->fd, FIONREAD, &pending) < 0 || pending == 0;
}

/* Idle kept-alive connections close now (idle_for_good); the others close after
 * their current response (conn.c checks w->draining). */
void sl_worker_drain(struct sl_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    if (!w->accept_paused)
        listeners_ctl(w, EPOLL_CTL_DEL);
    sl_timer_cancel(&w->wheel, &w->accept_timer);
    for (size_t i = 0; w->owns_listeners && i < w->nls; i++) {
        close(w->ls[i].fd);
        w->ls[i].fd = -1;
    }
    for (struct sl_conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == SL__C_IDLE && idle_for_good(c))
            sl__conn_close(c);
        else if (c->state == SL__C_WS)
            sl__ws_going_away(c); /* close 1001 (1012: restart); the peer's answer ends it */
    }
}

/* ---- construction ----------------------------------------------------- */

static int make_server_line(struct sl_worker *w)
{
    const char *s = w->cfg->http.server_header;
    if (!s || !*s)
        return 0;
    if (!sl_h1_header_ok("Server", 6, s, strlen(s))) {
        sl_log(SL_LOG_WARNING, "http.server_header has a forbidden byte; not sent");
        return 0;
    }
    w->server_line_len = strlen(s) + 10;
    w->server_line = malloc(w->server_line_len + 1);
    if (!w->server_line)
        return -ENOMEM;
    memcpy(w->server_line, "Server: ", 8);
    memcpy(w->server_line + 8, s, strlen(s));
    memcpy(w->server_line + w->server_line_len - 2, "\r\n", 3);
    return 0;
}

/* The large buffer must hold any head the limits allow, plus room. */
static size_t large_size(const struct sl_config *cfg)
{
    size_t size = SL__LARGE_BUF;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        size_t need = (size_t)cfg->listeners[i].limits.max_header_bytes + 4096;
        if (need > size)
            size = need;
    }
    return size;
}

static int setup_listeners(struct sl_worker *w, const int *fds)
{
    w->nls = w->cfg->nlisteners;
    w->ls = calloc(w->nls ? w->nls : 1, sizeof(*w->ls));
    if (!w->ls)
        return -ENOMEM;
    for (size_t i = 0; i < w->nls; i++) {
        const struct sl_listener_config *lc = &w->cfg->listeners[i];
        struct sl__listener *l = &w->ls[i];
        l->tag = SL__TAG_LISTENER;
        l->fd = fds[i];
        l->tp = &sl_transport_plain;
        if (lc->tls.cert) {
            l->tp = &sl_transport_tls;
            if (!(l->tp_arg = sl_tls_for(lc)))
                return -EINVAL;
        }
        l->cfg = lc;
        l->is_unix = lc->kind == SL_LISTENER_UNIX;
        /* The target stays below the head limit so that a long URI is
         * 414, not 431 (config/schema.c documents the 64 bytes). */
        size_t head = lc->limits.max_header_bytes;
        size_t target = lc->limits.max_request_target;
        l->h1 = (struct sl_h1_limits){
            .max_head = head,
            .max_headers = lc->limits.max_headers,
            .max_target = target < head - 64 ? target : head - 64,
        };
        if (lc->limits.max_headers > w->max_hdrs)
            w->max_hdrs = lc->limits.max_headers;
    }
    if (w->max_hdrs == 0)
        w->max_hdrs = 1;
    w->hdrs = calloc(w->max_hdrs, sizeof(*w->hdrs));
    return w->hdrs ? 0 : -ENOMEM;
}

static int setup_epoll(struct sl_worker *w)
{
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        return -errno;
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wakefd < 0)
        return -errno;
    w->wake_tag = SL__TAG_WAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake_tag};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) < 0)
        return -errno;
    listeners_ctl(w, EPOLL_CTL_ADD);
    return 0;
}

/* The access log in the configured format. */
static int open_access_log(struct sl_worker *w)
{
    int rc = sl_access_log_open(&w->alog, w->cfg->log.access);
    w->alog.format = w->cfg->log.access_format;
    w->alog.time_format = w->cfg->log.time_format;
    w->alog.tmpl = w->cfg->log.access_template;
    return rc;
}

/* The process's worker, woken by SIGUSR2. */
static _Atomic(struct sl_worker *) reopen_worker;

/*
 * SIGUSR2: the log files are reopened at the next flush, and the end of
 * every round flushes; the handler wakes the worker so that the next round
 * comes now. Otherwise an idle worker (no timer armed) would keep the moved
 * file open, and say "reopened", only at its next request.
 */
static void on_reopen_signal(int sig)
{
    (void)sig;
    int saved = errno;
    sl_log_reopen_request();
    struct sl_worker *w = atomic_load(&reopen_worker);
    uint64_t one = 1;
    if (w) {
        ssize_t rc = write(w->wakefd, &one, sizeof(one));
        (void)rc; /* EAGAIN: it is awake anyway */
    }
    errno = saved;
}

/* After setup: the wake fd exists. Returns 0 or -errno. */
static int reopen_on(struct sl_worker *w, int sig)
{
    struct sigaction sa = {.sa_handler = on_reopen_signal, .sa_flags = SA_RESTART};
    sigset_t set;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&set);
    sigaddset(&set, sig);
    atomic_store(&reopen_worker, w);
    if (sigaction(sig, &sa, NULL) < 0 || pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
        return -errno;
    return 0;
}

static int worker_setup(struct sl_worker *w, const int *fds)
{
    int rc;
    w->now_ms = sl_clock_ms();
    sl_timer_wheel_init(&w->wheel, w->now_ms, SL__TICK_MS);
    sl_timer_init(&w->housekeeping, housekeeping);
    sl_timer_init(&w->accept_timer, accept_resume);
    if ((rc = sl_pool_init(&w->small, SL__SMALL_BUF, 1024, &w->now_ms)) < 0 ||
        (rc = sl_pool_init(&w->large, large_size(w->cfg), 64, &w->now_ms)) < 0 ||
        (rc = make_server_line(w)) < 0 || (rc = setup_listeners(w, fds)) < 0 ||
        (rc = open_access_log(w)) < 0 || (rc = setup_epoll(w)) < 0)
        return rc;
    return 0;
}

struct sl_worker *sl_worker_new(const struct sl_config *cfg, const int *listen_fds,
                                const struct sl_app_ops *ops, void *app)
{
    struct sl_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cfg = cfg;
    w->ops = ops;
    w->app = app;
    w->epfd = w->wakefd = -1;
    w->told_due_ms = UINT64_MAX;
    atomic_init(&w->signals, 0);
    sl__reqid_seed(w);
    if (sl_metrics_attach() < 0)
        sl_log(SL_LOG_WARNING, "metrics: no free slot in the registry; this worker counts into "
                               "the shared overflow slot");
    int rc = worker_setup(w, listen_fds);
    if (rc < 0) {
        sl_worker_free(w);
        errno = -rc;
        return NULL;
    }
    if ((rc = sl__stats_on(w, SIGUSR1)) < 0) /* after setup: the wake fd exists */
        sl_log(SL_LOG_WARNING, "cannot handle SIGUSR1 (stats): %s", strerror(-rc));
    if ((rc = reopen_on(w, SIGUSR2)) < 0) {
        sl_log(SL_LOG_ERROR, "access log: cannot handle SIGUSR2: %s", strerror(-rc));
        sl_worker_free(w);
        errno = -rc;
        return NULL;
    }
    return w;
}

void sl_worker_free(struct sl_worker *w)
{
    if (!w)
        return;
    sl__stats_off(w);
    struct sl_worker *expected = w;
    atomic_compare_exchange_strong(&reopen_worker, &expected, NULL);
    w->in_poll = true; /* closing conns must not write the wake fd */
    while (w->conns)
        sl__conn_close(w->conns);
    w->batch = NULL; /* held output of closed conns: dropped with them */
    free_dead(w);
    w->pending = w->later = NULL;
    sl__req_free_all(w);
    sl_ws_deflater_free(w->ws_deflater);
    sl_ws_inflater_free(w->ws_inflater);
    sl_client_table_free(w->clients);
    sl__route_files_release(w);
    sl_pool_release(&w->small);
    sl_pool_release(&w->large);
    sl_access_log_close(&w->alog);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wakefd >= 0)
        close(w->wakefd);
    free(w->server_line);
    free(w->hdrs);
    free(w->ls);
    free(w);
}
