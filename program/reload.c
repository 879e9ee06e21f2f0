/*
 * reload: SIGHUP by re-exec (see reload.h), and adopting the previous
 * image's state.
 *
 * SALTARE_MASTER = PID;GEN;CHAN_R,CHAN_W;SIGHUP_MS;EXE_HEX;W...
 * with one W = "pid,slot,gen,state" per live worker (state s/r/d:
 * starting, ready, draining). PID guards against a stale value: an app
 * that runs saltare itself does not inherit our state. EXE_HEX is the
 * binary's path in hex (any byte may appear in a path).
 */
#include "program/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "program/exit.h"
#include "server/metrics.h"
#include "server/notify.h"

#define LOG_DRAIN_MS 2000

static int cloexec(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return -errno;
    flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
    return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

static const char state_chars[] = {
    [SL_W_STARTING] = 's', [SL_W_READY] = 'r', [SL_W_DRAINING] = 'd'};

/* The SALTARE_MASTER value (heap), or NULL. */
static char *state_format(const struct sl_master *m, uint64_t sighup_ms)
{
    size_t cap = 128 + 2 * strlen(m->exe) + SL_MASTER_MAX_PROCS * 48, len;
    char *out = malloc(cap);

    if (out == NULL)
        return NULL;
    len = (size_t)snprintf(out, cap, "%ld;%u;%d,%d;%llu;", (long)getpid(), m->gen, m->chan[0],
                           m->chan[1], (unsigned long long)sighup_ms);
    for (const unsigned char *p = (const unsigned char *)m->exe; *p; p++)
        len += (size_t)snprintf(out + len, cap - len, "%02x", *p);
    for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++) {
        const struct sl_wproc *w = &m->w[i];
        if (w->pid)
            len += (size_t)snprintf(out + len, cap - len, ";%d,%u,%u,%c", (int)w->pid, w->slot,
                                    w->gen, state_chars[w->state]);
    }
    return out;
}

/* Makes the pipe inheritable and describes the state. Returns 0 or -errno. */
static int state_export(struct sl_master *m, uint64_t sighup_ms)
{
    char *value = state_format(m, sighup_ms);
    int rc = value ? 0 : -ENOMEM;

    if (rc == 0 && setenv(SL_RELOAD_ENV, value, 1) < 0)
        rc = -errno;
    if (rc == 0 && ((rc = cloexec(m->chan[0], false)) < 0 || (rc = cloexec(m->chan[1], false)) < 0))
        unsetenv(SL_RELOAD_ENV);
    free(value);
    return rc;
}

static void state_unexport(struct sl_master *m)
{
    unsetenv(SL_RELOAD_ENV);
    cloexec(m->chan[0], true);
    cloexec(m->chan[1], true);
}

void sl_reload(struct sl_master *m)
{
    const struct sl_config *next;
    struct sl_listen_exec x = {0};
    uint64_t sighup_ms = sl__master_now_ms();
    int rc;

    sl_log(SL_LOG_INFO, "SIGHUP: reloading (generation %u)", m->gen + 1);
    next = sl_cli_load_config(m->cli, true);
    if (next == NULL) {
        sl_log(SL_LOG_ERROR, "reload: the config has errors; generation %u keeps serving", m->gen);
        return;
    }
    sl_notify_reloading();
    /* New listeners are bound here, while this image still serves: a bind
     * error is found before anything changed. */
    rc = m->have_set ? sl_listen_exec_prepare(&m->set, next, &x) : 0;
    sl_cfg_free(next);
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, "reload: cannot carry the listeners over; generation %u keeps serving",
               m->gen);
        goto out_ready;
    }
    if ((rc = state_export(m, sighup_ms)) < 0) {
        sl_log(SL_LOG_ERROR, "reload: cannot pass the state on: %s; generation %u keeps serving",
               strerror(-rc), m->gen);
        goto out_listeners;
    }
    if ((rc = sl_metrics_exec_prepare()) < 0) /* the counters go on */
        sl_log(SL_LOG_WARNING, "reload: cannot pass the metrics registry on: %s", strerror(-rc));
    sl_notify_export();
    sl_log(SL_LOG_INFO, "reload: config OK; re-executing %s", m->exe);
    sl_log_drain(LOG_DRAIN_MS);
    execv(m->exe, m->argv);
    rc = -errno;
    sl_log(SL_LOG_ERROR, "reload: exec %s: %s; generation %u keeps serving", m->exe, strerror(-rc),
           m->gen);
    unsetenv("NOTIFY_SOCKET");
    sl_metrics_exec_abort();
    state_unexport(m);
out_listeners:
    if (m->have_set)
        sl_listen_exec_abort(&m->set, &x);
out_ready:
    sl_notify_ready(m->target);
}

/* ---- the new image ------------------------------------------------------ */

static int exe_parse(const char *hex, size_t n, char *out, size_t cap)
{
    if (n % 2 || n / 2 >= cap)
        return -EINVAL;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    return 0;
}

static int state_parse(struct sl_master *m, const char *v)
{
    long pid;
    unsigned gen;
    unsigned long long sighup_ms;
    int r, w, used = 0;
    const char *p, *semi;

    if (sscanf(v, "%ld;%u;%d,%d;%llu;%n", &pid, &gen, &r, &w, &sighup_ms, &used) != 5 || !used)
        return -EINVAL;
    if (pid != (long)getpid())
        return -ESRCH;
    p = v + used;
    semi = strchr(p, ';');
    if (exe_parse(p, semi ? (size_t)(semi - p) : strlen(p), m->exe, sizeof(m->exe)) < 0)
        return -EINVAL;
    m->gen = gen + 1;
    m->chan[0] = r;
    m->chan[1] = w;
    m->reload_started_ms = sighup_ms;
    for (p = semi; p != NULL; p = strchr(p + 1, ';')) {
        int wpid;
        unsigned slot, wgen;
        char st;
        struct sl_wproc *e;
        if (sscanf(p, ";%d,%u,%u,%c", &wpid, &slot, &wgen, &st) != 4 || wpid <= 0)
            return -EINVAL;
        if ((e = sl__master_entry_new(m)) == NULL)
            return -ENOSPC;
        e->pid = wpid;
        e->slot = slot;
        e->gen = wgen;
        e->state = st == 'r' ? SL_W_READY : st == 'd' ? SL_W_DRAINING : SL_W_STARTING;
        e->started_ms = e->ready_ms = sl__master_now_ms();
    }
    return 0;
}

static int fresh(struct sl_master *m)
{
    ssize_t n;
    m->gen = 1;
    /* The path, not /proc/self/exe: a binary replaced on disk (the upgrade
     * path) is what the next reload runs. */
    n = readlink("/proc/self/exe", m->exe, sizeof(m->exe) - 1);
    if (n <= 0) {
        sl_log(SL_LOG_ERROR, "readlink /proc/self/exe: %s", strerror(errno));
        return -errno;
    }
    m->exe[n] = '\0';
    if (pipe2(m->chan, O_CLOEXEC | O_NONBLOCK) < 0) {
        sl_log(SL_LOG_ERROR, "cannot create the workers' pipe: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

bool sl_reload_adopt(struct sl_master *m, int *err)
{
    const char *v = getenv(SL_RELOAD_ENV);
    int rc = v != NULL ? state_parse(m, v) : -ENOENT;

    *err = 0;
    sl_metrics_inherit(rc == 0); /* before sl_metrics_init, which decides */
    if (v != NULL) {
        unsetenv(SL_RELOAD_ENV);
        if (rc == 0) {
            cloexec(m->chan[0], true);
            cloexec(m->chan[1], true);
            return true;
        }
        if (rc != -ESRCH)
            sl_log(SL_LOG_ERROR, "%s: malformed; starting afresh", SL_RELOAD_ENV);
        for (size_t i = 0; i < SL_MASTER_MAX_PROCS; i++)
            m->w[i].pid = 0;
    }
    *err = fresh(m);
    return false;
}
