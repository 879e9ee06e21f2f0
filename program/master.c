/*
 * master: supervision of the worker processes (see master.h for the
 * signals it takes; the reload itself is program/reload.c).
 *
 * One loop: the master's signals stay blocked and are taken only inside
 * ppoll(), which also watches the workers' message pipe, so nothing can
 * land between looking at the state and going to sleep. Each turn acts on
 * signals, reaps exited workers, reads messages, then runs what is due
 * (startup timeouts, respawns, memory samples, recycling, the stop bound).
 */
#include "program/master.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/procstat.h"
#include "program/exit.h"
#include "program/pidfile.h"
#include "program/proctitle.h"
#include "program/reload.h"
#include "program/version.h"
#include "program/worker_proc.h"
#include "python/bridge.h"
#include "server/metrics.h"
#include "server/notify.h"
#include "server/tls.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define HEALTHY_MS 10000   /* a worker ready this long resets its slot's back-off */
#define STOP_GRACE_MS 5000 /* beyond timeouts.shutdown before a stop kills what is left */
#define RSS_SAMPLE_MS 1000
#define RSS_STRIKES 3 /* consecutive samples over process.max_rss */

static volatile sig_atomic_t sig_stop, sig_hup, sig_ttin, sig_ttou, sig_usr1, sig_usr2;

static void on_signal(int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        sig_stop++;
        break;
    case SIGHUP:
        sig_hup++;
        break;
    case SIGTTIN:
        sig_ttin++;
        break;
    case SIGTTOU:
        sig_ttou++;
        break;
    case SIGUSR1:
        sig_usr1++;
        break; /* stats */
    case SIGUSR2:
        sig_usr2++;
        sl_log_reopen_request(); /* the master's own error-log file */
        break;
    default:
        break; /* SIGCHLD: only wakes ppoll */
    }
}

static const int master_sigs[] = {SIGTERM, SIGINT,  SIGHUP,  SIGCHLD,
                                  SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU};
#define NSIGS (sizeof(master_sigs) / sizeof(master_sigs[0]))

int sl_master_signals(struct sl_master *m)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigset_t set;

    sigemptyset(&set);
    for (size_t i = 0; i < NSIGS; i++)
        sigaddset(&set, master_sigs[i]);
    sa.sa_mask = set; /* no handler interrupts another */
    if (sigprocmask(SIG_BLOCK, &set, &m->open) < 0)
        return -errno;
    for (size_t i = 0; i < NSIGS; i++)
        if (sigaction(master_sigs[i], &sa, NULL) < 0)
            return -errno;
    for (size_t i = 0; i < NSIGS; i++)
        sigdelset(&m->open, master_sigs[i]);
    /* SIGPIPE ignored, here and (inherited) in every worker: a write to a
     * pipe or socket whose reader is gone fails with EPIPE instead of
     * killing the process. CPython ignores it when it installs its signal
     * handlers, which the embedded interpreter does not do (interp.c), and
     * Python code relies on it (socket.send raises BrokenPipeError). Without
     * it a worker died silently: on a write to an app's closed socket or
     * pipe, to a stderr pipe whose reader left, or reporting "ready" to a
     * master killed during its lifespan startup. Children the app starts
     * with subprocess get the default back (restore_signals). */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return -errno;
    return 0;
}

uint64_t sl__master_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the worker table ---------------------------------------------------- */

struct sl_wproc *sl__master_entry_new(struct sl_master *m)
{
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
        if (m->w[i].pid == 0) {
            memset(&m->w[i], 0, sizeof(m->w[i]));
            return &m->w[i];
        }
    return NULL;
}

static struct sl_wproc *find(struct sl_master *m, pid_t pid)
{
    for (size_t i = 0; pid > 0 && i < SL_MASTER_MAX_PROCS; i++)
        if (m->w[i].pid == pid)
            return &m->w[i];
    return NULL;
}

static unsigned count(const struct sl_master *m, bool old, int state)
{
    unsigned n = 0;
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++) {
        const struct sl_wproc *w = &m->w[i];
        if (w->pid && (w->gen != m->gen) == old && (state < 0 || (int)w->state == state))
            n++;
    }
    return n;
}

static unsigned alive(const struct sl_master *m)
{
    return count(m, false, -1) + count(m, true, -1);
}

/* Tells a worker to drain (once: a second SIGTERM would abort it). */
static void drain_for(struct sl_wproc *w, bool restart)
{
    if (w->state == SL_W_DRAINING)
        return;
    w->state = SL_W_DRAINING;
    if (restart) /* replaced, not stopping: its WebSockets close with 1012 */
        sigqueue(w->pid, SIGTERM, (union sigval){.sival_int = SL_PY_DRAIN_RESTART});
    else
        kill(w->pid, SIGTERM);
}

static void drain(struct sl_wproc *w)
{
    drain_for(w, false);
}

struct sl_wproc *sl__master_spawn(struct sl_master *m, unsigned slot, pid_t replaces)
{
    struct sl_wproc *w = sl__master_entry_new(m);
    pid_t master = getpid(), pid;

    if (w == NULL) {
        sl_log(SL_LOG_ERROR, "cannot start worker %u: too many processes", slot);
        return NULL;
    }
    pid = sl_py_fork();
    if (pid < 0) {
        sl_log(SL_LOG_ERROR, "cannot start worker %u: fork: %s", slot, strerror(errno));
        return NULL;
    }
    if (pid == 0)
        sl_worker_proc_run(m, slot, master);
    w->pid = pid;
    w->slot = slot;
    w->gen = m->gen;
    w->state = SL_W_STARTING;
    w->started_ms = sl__master_now_ms();
    w->replaces = replaces;
    m->slots[slot].respawn_at_ms = 0;
    return w;
}

/* ---- generations --------------------------------------------------------- */

static void announce(const struct sl_master *m)
{
    const struct sl_config *cfg = m->wcfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct sl_listener_config *l = &cfg->listeners[i];
        const char *label = l->label ? l->label : "";
        if (l->kind == SL_LISTENER_TCP)
            sl_log(SL_LOG_INFO, "serving %s on %s://%s%s%s%s", cfg->app.target,
                   l->tls.cert ? "https" : "http", l->name, *label ? " (" : "", label,
                   *label ? ")" : "");
        else
            sl_log(SL_LOG_INFO, "serving %s on unix:%s%s%s%s", cfg->app.target, l->path,
                   *label ? " (" : "", label, *label ? ")" : "");
    }
    sl_log(SL_LOG_INFO, "%u worker%s [gen %u]", m->target, m->target == 1 ? "" : "s", m->gen);
}

/* Every slot of this generation has a ready worker: it serves alone now. */
static bool all_ready(const struct sl_master *m)
{
    for (unsigned s = 1; s <= m->target; s++) {
        bool ok = false;
        for (size_t i = 0; i < SL_MASTER_MAX_PROCS && !ok; i++)
            ok = m->w[i].pid && m->w[i].gen == m->gen && m->w[i].slot == s &&
                 m->w[i].state == SL_W_READY;
        if (!ok)
            return false;
    }
    return true;
}

static void gen_became_ready(struct sl_master *m)
{
    unsigned old = 0;

    m->gen_ready = true;
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
        old += m->w[i].pid && m->w[i].gen != m->gen && m->w[i].state != SL_W_DRAINING;
    /* Logged before the old workers hear of it, so the log reads in the
     * order things happen: a client cut by a draining worker (1012, or a
     * closed keep-alive) finds this line already written. */
    if (m->reload_started_ms)
        sl_log(SL_LOG_INFO,
               "reload: generation %u ready %.2f s after SIGHUP; %u old worker%s draining", m->gen,
               (double)(sl__master_now_ms() - m->reload_started_ms) / 1000.0, old,
               old == 1 ? "" : "s");
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
        if (m->w[i].pid && m->w[i].gen != m->gen && m->w[i].state != SL_W_DRAINING)
            drain_for(&m->w[i], true);
    announce(m);
    sl_notify_ready(m->target);
    /* The master's own startup (config, TLS, maybe the app import) is
     * done: give back what only it touched. */
    malloc_trim(0);
    sl_proc_release_text();
}

static void stop_begin(struct sl_master *m, int rc);

/*
 * The new generation could not start. At the first start that is the end
 * (exit 3 for the app's failure); after a reload the old workers serve on,
 * and a later SIGHUP tries again (a new exec: a fresh interpreter).
 */
static void gen_fail(struct sl_master *m, const char *why, int code)
{
    unsigned old = count(m, true, -1);

    if (old == 0) {
        sl_log(SL_LOG_ERROR, "%s; stopping", why);
        stop_begin(m, code == SL_EXIT_APP ? SL_EXIT_APP : SL_EXIT_FAILURE);
        return;
    }
    m->gen_failed = true;
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++) {
        struct sl_wproc *w = &m->w[i];
        if (w->pid && w->gen == m->gen && w->state == SL_W_STARTING) {
            kill(w->pid, SIGKILL);
            w->state = SL_W_DRAINING;
            w->startup_killed = true; /* its status is ours, not a failure to report */
        } else if (w->pid && w->gen == m->gen)
            drain(w);
    }
    sl_log(SL_LOG_ERROR,
           "reload failed: %s; the %u worker%s of the previous generation keep serving "
           "(fix the problem and send SIGHUP again)",
           why, old, old == 1 ? "" : "s");
    sl_notify_ready(old);
}

/* ---- stop ------------------------------------------------------------- */

/* New connections are refused at once: our copies of the listening sockets
 * close now, the workers close theirs as they start draining. Sockets from
 * systemd stay open (systemd holds them anyway, and queues for the next
 * start). */
static void listeners_close(struct sl_master *m)
{
    for (size_t i = 0; m->have_set && i < m->set.n; i++)
        if (m->set.items[i].systemd == NULL && m->set.fds[i] >= 0) {
            const char *path = m->set.items[i].path;
            close(m->set.fds[i]);
            if (m->set.owned[i] && path && path[0] != '@')
                unlink(path);
            m->set.fds[i] = -1;
        }
}

static void stop_begin(struct sl_master *m, int rc)
{
    uint32_t shutdown_ms = m->cfg ? m->cfg->timeouts.shutdown_ms : 30000;

    if (m->stopping)
        return;
    m->stopping = true;
    if (m->rc == 0)
        m->rc = rc;
    sl_notify_stopping();
    listeners_close(m);
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
        if (m->w[i].pid)
            drain(&m->w[i]);
    if (shutdown_ms)
        m->stop_deadline_ms = sl__master_now_ms() + shutdown_ms + STOP_GRACE_MS;
    if (alive(m))
        sl_log(SL_LOG_INFO, "stopping: draining %u worker%s", alive(m), alive(m) == 1 ? "" : "s");
}

static void kill_all(struct sl_master *m, const char *why)
{
    if (alive(m))
        sl_log(SL_LOG_WARNING, "%s: killing %u worker%s", why, alive(m), alive(m) == 1 ? "" : "s");
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
        if (m->w[i].pid)
            kill(m->w[i].pid, SIGKILL);
}

/* ---- crashes ------------------------------------------------------------ */

static void crash_loop_check(struct sl_master *m, uint64_t now)
{
    const struct sl_config *cfg = m->cfg;
    unsigned limit = cfg->process.crash_limit, n = 0;
    uint64_t window = cfg->process.crash_window_ms;

    m->crashes[m->ncrashes++ % SL_MASTER_CRASH_RING] = now;
    for (unsigned i = 0; i < SL_MASTER_CRASH_RING && i < m->ncrashes; i++)
        if (now - m->crashes[i] <= window)
            n++;
    if (n < limit || (m->crash_loop_logged_ms && now - m->crash_loop_logged_ms < window))
        return;
    m->crash_loop_logged_ms = now;
    sl_log(SL_LOG_ERROR,
           "crash loop: %u worker crashes in the last %llu s (process.crash_limit %u); "
           "respawning with back-off, %u worker%s still serving",
           n, (unsigned long long)(window / 1000), limit, count(m, false, SL_W_READY),
           count(m, false, SL_W_READY) == 1 ? "" : "s");
}

static void describe(char *buf, size_t cap, int status)
{
    if (WIFSIGNALED(status))
        snprintf(buf, cap, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
}

/* A worker of this generation died unexpectedly: respawn after back-off. */
static void crashed(struct sl_master *m, const struct sl_wproc *w, const char *how, uint64_t now)
{
    struct sl_slot *s = &m->slots[w->slot];
    bool healthy = w->state == SL_W_READY && now - w->ready_ms >= HEALTHY_MS;

    s->backoff_ms = healthy || s->backoff_ms == 0        ? BACKOFF_MIN_MS
                    : s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : s->backoff_ms * 2;
    crash_loop_check(m, now);
    if (w->slot > m->target) {
        sl_log(SL_LOG_ERROR, "worker %u (pid %d) %s", w->slot, (int)w->pid, how);
        return;
    }
    s->respawn_at_ms = now + s->backoff_ms;
    sl_metrics_worker_restarted(); /* saltare_worker_restarts_total */
    sl_log(SL_LOG_ERROR, "worker %u (pid %d) %s; respawning in %u ms", w->slot, (int)w->pid, how,
           s->backoff_ms);
}

/* ---- reaping ------------------------------------------------------------ */

static void reaped(struct sl_master *m, pid_t pid, int status)
{
    struct sl_wproc *e = find(m, pid), w;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    uint64_t now = sl__master_now_ms();
    char how[96], why[192];

    if (e == NULL)
        return; /* not a worker (the app's own child in a preloaded master) */
    w = *e;
    e->pid = 0;
    sl_metrics_reaped(pid); /* its metrics slot may be claimed again */
    describe(how, sizeof(how), status);
    if (m->stopping) {
        sl_log(SL_LOG_INFO, "worker %u [gen %u] (pid %d) %s", w.slot, w.gen, (int)pid, how);
        if (code != 0 && m->rc == 0 && !m->killed && !w.startup_killed)
            m->rc = code == SL_EXIT_APP ? SL_EXIT_APP : SL_EXIT_FAILURE;
        return;
    }
    if (w.state == SL_W_DRAINING) {
        sl_log(SL_LOG_INFO, "worker %u [gen %u] (pid %d) %s %s", w.slot, w.gen, (int)pid,
               WIFEXITED(status) ? "drained and" : "stopped:", how);
        return;
    }
    if (w.gen != m->gen) {
        sl_log(SL_LOG_ERROR, "worker %u [gen %u] (pid %d) %s; %s", w.slot, w.gen, (int)pid, how,
               m->gen_failed ? "not replaced: the last reload failed"
                             : "the new generation takes over");
        return;
    }
    if (w.startup_killed)
        snprintf(how, sizeof(how), "did not become ready within timeouts.startup (%u s)",
                 m->cfg->timeouts.startup_ms / 1000);
    if (w.replaces) {
        struct sl_wproc *old = find(m, w.replaces);
        sl_log(SL_LOG_ERROR,
               "the replacement for worker %u (pid %d) %s during startup; "
               "the old worker keeps serving",
               w.slot, (int)pid, how);
        m->slots[w.slot].respawn_at_ms = now + BACKOFF_MAX_MS; /* next recycling try */
        if (old)
            old->recycle = old->recycle ? old->recycle : "retry";
        crash_loop_check(m, now);
        return;
    }
    /* A generation whose worker dies before it ever served is not
     * respawned: at the first start that ends the server, on a reload the
     * old generation serves on. */
    if (!m->gen_ready && w.state == SL_W_STARTING) {
        snprintf(why, sizeof(why), "worker %u of generation %u %s during startup", w.slot, m->gen,
                 how);
        gen_fail(m, why, w.startup_killed ? SL_EXIT_APP : code);
        return;
    }
    crashed(m, &w, how, now);
}

static void reap_all(struct sl_master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        reaped(m, pid, status);
}

/* ---- messages ----------------------------------------------------------- */

static void on_ready(struct sl_master *m, struct sl_wproc *w)
{
    if (w->state != SL_W_STARTING)
        return;
    w->state = SL_W_READY;
    w->ready_ms = sl__master_now_ms();
    sl_log(SL_LOG_DEBUG, "worker %u [gen %u] (pid %d) ready", w->slot, w->gen, (int)w->pid);
    if (w->replaces) {
        struct sl_wproc *old = find(m, w->replaces);
        if (old) {
            sl_log(SL_LOG_INFO, "worker %u replaced: pid %d ready, pid %d draining (%s)", w->slot,
                   (int)w->pid, (int)old->pid, old->recycle ? old->recycle : "recycled");
            drain_for(old, true);
        }
        w->replaces = 0;
    }
    if (!m->gen_ready && !m->gen_failed && w->gen == m->gen && all_ready(m))
        gen_became_ready(m);
}

static void read_messages(struct sl_master *m)
{
    struct sl_notify_msg msg[64];
    ssize_t n;

    while ((n = read(m->chan[0], msg, sizeof(msg))) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
            struct sl_wproc *w = find(m, msg[i].pid);
            if (w == NULL)
                continue;
            if (msg[i].what == SL_NOTIFY_READY)
                on_ready(m, w);
            else if (msg[i].what == SL_NOTIFY_RECYCLE && !w->recycle)
                w->recycle = "process.max_requests";
        }
    }
}

/* ---- what is due -------------------------------------------------------- */

static void rss_sample(struct sl_master *m)
{
    uint64_t limit = m->cfg->process.max_rss;

    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++) {
        struct sl_wproc *w = &m->w[i];
        if (!w->pid || w->gen != m->gen || w->state != SL_W_READY || w->recycle)
            continue;
        uint64_t rss = sl_proc_rss(w->pid);
        w->rss_strikes = rss > limit ? w->rss_strikes + 1 : 0;
        if (w->rss_strikes >= RSS_STRIKES) {
            sl_log(SL_LOG_WARNING,
                   "worker %u (pid %d) uses %llu KiB, over process.max_rss for %u samples: "
                   "replacing it",
                   w->slot, (int)w->pid, (unsigned long long)(rss >> 10), RSS_STRIKES);
            w->recycle = "process.max_rss";
        }
    }
}

/* One replacement at a time: the next once the last one's old worker drains. */
static void recycle_next(struct sl_master *m, uint64_t now)
{
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
        if (m->w[i].pid && m->w[i].replaces)
            return;
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++) {
        struct sl_wproc *w = &m->w[i];
        if (!w->pid || w->gen != m->gen || w->state != SL_W_READY || !w->recycle ||
            m->slots[w->slot].respawn_at_ms > now)
            continue;
        sl_log(SL_LOG_INFO, "recycling worker %u (pid %d): %s", w->slot, (int)w->pid, w->recycle);
        sl__master_spawn(m, w->slot, w->pid);
        return;
    }
}

static void due(struct sl_master *m, uint64_t now)
{
    const struct sl_config *cfg = m->cfg;

    if (m->stopping) {
        if (m->stop_deadline_ms && now >= m->stop_deadline_ms && !m->killed) {
            m->killed = true;
            m->rc = SL_EXIT_FAILURE;
            kill_all(m, "timeouts.shutdown passed and workers are still running");
        }
        return;
    }
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++) {
        struct sl_wproc *w = &m->w[i];
        if (w->pid && w->state == SL_W_STARTING && !w->startup_killed && cfg->timeouts.startup_ms &&
            now - w->started_ms >= cfg->timeouts.startup_ms) {
            sl_log(SL_LOG_ERROR,
                   "worker %u (pid %d) did not become ready within "
                   "timeouts.startup (%u s): killing it",
                   w->slot, (int)w->pid, cfg->timeouts.startup_ms / 1000);
            w->startup_killed = true;
            kill(w->pid, SIGKILL);
        }
    }
    if (m->gen_failed)
        return;
    for (unsigned s = 1; s <= m->target; s++)
        if (m->slots[s].respawn_at_ms && now >= m->slots[s].respawn_at_ms)
            sl__master_spawn(m, s, 0);
    if (cfg->process.max_rss && m->gen_ready && now >= m->next_rss_ms) {
        m->next_rss_ms = now + RSS_SAMPLE_MS;
        rss_sample(m);
    }
    if (m->gen_ready)
        recycle_next(m, now);
}

/* Milliseconds until the next thing due, -1 = nothing. */
static int next_due(const struct sl_master *m, uint64_t now)
{
    uint64_t at = UINT64_MAX;
    const struct sl_config *cfg = m->cfg;

    if (m->stopping) {
        if (m->stop_deadline_ms && !m->killed)
            at = m->stop_deadline_ms;
    } else if (cfg != NULL) {
        for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++) {
            const struct sl_wproc *w = &m->w[i];
            if (w->pid && w->state == SL_W_STARTING && cfg->timeouts.startup_ms &&
                !w->startup_killed && w->started_ms + cfg->timeouts.startup_ms < at)
                at = w->started_ms + cfg->timeouts.startup_ms;
        }
        for (unsigned s = 1; s <= m->target; s++)
            if (m->slots[s].respawn_at_ms && m->slots[s].respawn_at_ms < at)
                at = m->slots[s].respawn_at_ms;
        if (cfg->process.max_rss && m->gen_ready && m->next_rss_ms < at)
            at = m->next_rss_ms;
        for (size_t i = 0; i < SL_MASTER_MAX_PROCS && at > now + 1000; i++)
            if (m->w[i].pid && m->w[i].recycle)
                at = now + 1000; /* a recycling waiting for its slot's back-off */
    }
    if (at == UINT64_MAX)
        return -1;
    return at <= now ? 0 : at - now > 60000 ? 60000 : (int)(at - now);
}

/* ---- signals ---------------------------------------------------------- */

static void workers_more(struct sl_master *m)
{
    if (m->target >= SL_MASTER_MAX_WORKERS)
        return;
    m->target++;
    m->slots[m->target].backoff_ms = 0;
    sl_log(SL_LOG_INFO, "SIGTTIN: %u workers", m->target);
    sl__master_spawn(m, m->target, 0);
}

static void workers_fewer(struct sl_master *m)
{
    if (m->target <= 1)
        return;
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
        if (m->w[i].pid && m->w[i].gen == m->gen && m->w[i].slot == m->target)
            drain(&m->w[i]);
    m->slots[m->target].respawn_at_ms = 0;
    m->target--;
    sl_log(SL_LOG_INFO, "SIGTTOU: %u worker%s", m->target, m->target == 1 ? "" : "s");
}

static void signals_act(struct sl_master *m)
{
    static sig_atomic_t stops, hups, ttins, ttous, usr1s, usr2s;

    if (sig_stop > stops) {
        stops = sig_stop;
        if (!m->stopping) {
            stop_begin(m, SL_EXIT_OK);
        } else if (!m->killed) {
            m->killed = true;
            m->rc = SL_EXIT_FAILURE;
            kill_all(m, "second signal");
        }
    }
    while (usr1s < sig_usr1) { /* SIGUSR1: our stats line, and each worker's */
        usr1s++;
        sl_metrics_log_master_stats(alive(m), m->stopping);
        for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
            if (m->w[i].pid)
                kill(m->w[i].pid, SIGUSR1);
    }
    if (m->stopping)
        return;
    while (usr2s < sig_usr2) {
        usr2s++;
        for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
            if (m->w[i].pid)
                kill(m->w[i].pid, SIGUSR2);
    }
    if (ttins < sig_ttin || ttous < sig_ttou) {
        bool ok = m->gen_ready && !m->gen_failed;
        if (!ok)
            sl_log(SL_LOG_WARNING, "SIGTTIN/SIGTTOU ignored: %s",
                   m->gen_failed ? "the last reload failed" : "workers are still starting");
        for (; ttins < sig_ttin; ttins++)
            if (ok)
                workers_more(m);
        for (; ttous < sig_ttou; ttous++)
            if (ok)
                workers_fewer(m);
    }
    if (hups < sig_hup) {
        hups = sig_hup;
        if (!m->gen_ready && !m->gen_failed && !m->hup_pending)
            sl_log(SL_LOG_INFO,
                   "SIGHUP: generation %u is still starting; reloading once it "
                   "serves",
                   m->gen);
        m->hup_pending = true;
    }
    if (m->hup_pending && (m->gen_ready || m->gen_failed)) {
        m->hup_pending = false;
        sl_reload(m); /* returns only if the reload did not happen */
    }
}

/* ---- the loop ----------------------------------------------------------- */

static void loop(struct sl_master *m)
{
    for (;;) {
        struct pollfd pfd = {.fd = m->chan[0], .events = POLLIN};
        uint64_t now;
        int ms;

        signals_act(m);
        reap_all(m);
        read_messages(m);
        now = sl__master_now_ms();
        if (m->cfg != NULL || m->stopping)
            due(m, now);
        if (m->stopping && alive(m) == 0)
            return;
        ms = next_due(m, now);
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        ppoll(&pfd, 1, ms < 0 ? NULL : &ts, &m->open);
    }
}

/* ---- start -------------------------------------------------------------- */

/* process.raise_nofile: the soft fd limit up to the hard one. */
static void raise_nofile(const struct sl_config *cfg)
{
    struct rlimit rl;
    if (!cfg->process.raise_nofile || getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
        rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        sl_log(SL_LOG_WARNING, "process.raise_nofile: %s", strerror(errno));
    else
        sl_log(SL_LOG_INFO, "open file limit raised from %llu to %llu", (unsigned long long)was,
               (unsigned long long)rl.rlim_max);
}

static unsigned workers_wanted(const struct sl_config *cfg)
{
    unsigned n = cfg->workers;
    if (n == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        n = ncpu > 0 ? (unsigned)ncpu : 1;
    }
    return n > SL_MASTER_MAX_WORKERS ? SL_MASTER_MAX_WORKERS : n;
}

/*
 * Listeners, TLS, the app (preload), the workers. Returns 0, or an exit
 * status: only at the first start; after a re-exec a failure leaves the
 * adopted workers serving (gen_failed) and returns 0.
 */
static int start(struct sl_master *m)
{
    const struct sl_config *cfg = m->cfg;
    bool adopted = count(m, true, -1) > 0;
    char why[160] = "the app could not be imported";
    int rc;

    m->target = workers_wanted(cfg);
    raise_nofile(cfg);
    if (sl_listen_open_all(cfg, &m->set) < 0) {
        rc = SL_EXIT_FAILURE;
        goto fail;
    }
    m->have_set = true;
    m->wcfg = &m->set.cfg; /* systemd items expanded to the sockets passed */
    if (cfg->process.pid_file && sl_pidfile_write(cfg->process.pid_file) < 0) {
        rc = SL_EXIT_FAILURE;
        goto fail;
    }
    /* Before fork: the registry is shared. A slot for every process the
     * master can have at once (SIGTTIN, recycling overlaps, a draining
     * generation); only the claimed ones take memory. After a reload it
     * goes on with the previous image's registry when compatible. */
    if ((rc = sl_metrics_init(m->wcfg, SL_MASTER_MAX_PROCS, SL_VERSION, false)) < 0)
        sl_log(SL_LOG_WARNING, "metrics: cannot map the registry: %s", strerror(-rc));
    sl_metrics_set_generation(m->gen);
    if (sl_tls_init(m->wcfg) < 0) { /* before fork: workers share ticket keys */
        rc = SL_EXIT_CONFIG;
        goto fail;
    }
    m->tls_on = true;
    /* The master keeps its privileges (a reload binds, reads keys, rewrites
     * the pid file); each worker drops them right after fork. */
    if ((rc = sl_privdrop_init(&m->priv, cfg)) < 0) {
        rc = rc == -ENOENT || rc == -EINVAL ? SL_EXIT_CONFIG : SL_EXIT_FAILURE;
        goto fail;
    }
    /* With process.user, `auto` never runs the app as root in the master. */
    m->preload = cfg->app.preload == SL_PRELOAD_ON ||
                 (cfg->app.preload == SL_PRELOAD_AUTO && m->target > 1 && !m->priv.on);
    if (m->preload && m->priv.on)
        sl_log(SL_LOG_WARNING, "app.preload: on with process.user: the app is imported in the "
                               "master, before the workers drop their privileges");
    if (m->preload) {
        int by = 0;
        sl_notify("STATUS=starting: importing the app");
        if (sl_py_init_bounded(m->wcfg, !adopted, &by) != 0) {
            if (by == SIGTERM || by == SIGINT) {
                /* A stop during the import: the first start ends here
                 * (status 0); after a reload the signal is raised again,
                 * pending, for the loop to stop the old generation. */
                if (!adopted) {
                    sl_log(SL_LOG_INFO, "%s during the app import: stopping",
                           by == SIGTERM ? "SIGTERM" : "SIGINT");
                    stop_begin(m, 0);
                    return 0;
                }
                kill(getpid(), by);
                gen_fail(m, "the app import was interrupted by a stop signal", SL_EXIT_APP);
                return 0;
            }
            if (by == SIGALRM) {
                snprintf(why, sizeof(why),
                         "app import did not finish within timeouts.startup (%u s)",
                         cfg->timeouts.startup_ms / 1000);
                if (!adopted) /* gen_fail says it after a reload */
                    sl_log(SL_LOG_ERROR, "%s", why);
            }
            rc = SL_EXIT_APP;
            goto fail;
        }
    }
    sl_notify("STATUS=starting: workers starting");
    for (unsigned s = 1; s <= m->target; s++)
        if (sl__master_spawn(m, s, 0) == NULL) {
            rc = SL_EXIT_FAILURE;
            goto fail;
        }
    return 0;
fail:
    if (!adopted)
        return rc;
    gen_fail(m, rc == SL_EXIT_APP ? why : "the listeners or TLS could not be set up", rc);
    return 0;
}

int sl_master_run(struct sl_master *m, const struct sl_config *cfg)
{
    int rc;

    m->cfg = cfg;
    sl_proctitle_set("saltare-master", "saltare: master [gen %u]", m->gen);
    if (cfg == NULL) {
        m->gen_failed = true;
        sl_log(SL_LOG_ERROR,
               "reload failed: the config no longer compiles; the %u worker%s of the "
               "previous generation keep serving",
               count(m, true, -1), count(m, true, -1) == 1 ? "" : "s");
        sl_notify_ready(count(m, true, -1));
    } else if ((rc = start(m)) != 0) {
        stop_begin(m, rc);
    }
    loop(m);
    if (m->preload)
        sl_py_fini();
    if (m->tls_on)
        sl_tls_fini();
    if (m->have_set)
        sl_listen_close_set(&m->set);
    sl_privdrop_release(&m->priv);
    return m->rc;
}
