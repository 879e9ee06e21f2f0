/*
 * stats: SIGUSR1 makes every process write one JSON line to the error log:
 * a worker its open connections, requests in flight, requests served, RSS,
 * reload generation and whether it drains; the master (which forwards the
 * signal to its workers) its workers, RSS and generation. The handler only
 * sets a flag and wakes the worker; the line is written by the worker's
 * next poll, never from the handler.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "base/procstat.h"
#include "server/metrics.h"
#include "server/server_internal.h"

static _Atomic(struct sl_worker *) stats_worker; /* the process's worker, if any */
static atomic_bool stats_wanted;

static void on_stats_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&stats_wanted, true);
    struct sl_worker *w = atomic_load(&stats_worker);
    uint64_t one = 1;
    if (w) {
        ssize_t rc = write(w->wakefd, &one, sizeof(one));
        (void)rc; /* EAGAIN: it is awake anyway */
    }
    errno = saved;
}

int sl__stats_on(struct sl_worker *w, int sig)
{
    struct sigaction sa = {.sa_handler = on_stats_signal, .sa_flags = SA_RESTART};
    sigset_t set;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&set);
    sigaddset(&set, sig);
    atomic_store(&stats_worker, w);
    if (sigaction(sig, &sa, NULL) < 0 || pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
        return -errno;
    return 0;
}

void sl__stats_off(struct sl_worker *w)
{
    struct sl_worker *expected = w;
    atomic_compare_exchange_strong(&stats_worker, &expected, NULL);
}

void sl__stats_check(struct sl_worker *w)
{
    if (!atomic_exchange(&stats_wanted, false))
        return;
    size_t in_flight = 0;
    for (const struct sl_conn *c = w->conns; c; c = c->next)
        in_flight += c->state == SL__C_REQ || c->state == SL__C_WS;
    char line[320];
    int n = snprintf(line, sizeof(line),
                     "{\"stats\":\"worker\",\"pid\":%d,\"connections\":%zu,\"in_flight\":%zu,"
                     "\"requests\":%" PRIu64 ",\"rss_bytes\":%" PRIu64 ",\"generation\":%" PRIu64
                     ",\"draining\":%s}\n",
                     (int)getpid(), w->nconns, in_flight, w->requests, sl_proc_rss(0),
                     sl_metrics_generation(), w->draining ? "true" : "false");
    sl_log_block(line, (size_t)n);
}

void sl_metrics_log_master_stats(unsigned workers, bool draining)
{
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "{\"stats\":\"master\",\"pid\":%d,\"workers\":%u,\"rss_bytes\":%" PRIu64
                     ",\"generation\":%" PRIu64 ",\"draining\":%s}\n",
                     (int)getpid(), workers, sl_proc_rss(0), sl_metrics_generation(),
                     draining ? "true" : "false");
    sl_log_block(line, (size_t)n);
}
