/*
 * worker_proc: a forked worker's process state, then serve.
 */
#include "program/worker_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/log.h"
#include "program/exit.h"
#include "program/proctitle.h"
#include "python/bridge.h"
#include "server/notify.h"

#define LOG_DRAIN_MS 2000 /* at exit, how long a slow log consumer may hold us */

static int exit_status(int py_rc)
{
    return py_rc == 0 ? SL_EXIT_OK : py_rc == SL_PY_APP_FAILED ? SL_EXIT_APP : SL_EXIT_FAILURE;
}

/*
 * Not the master's handlers. SIGTERM and SIGINT stay blocked (pending,
 * never lost) until the bridge installs its own; SIGHUP is the master's
 * business (ignored here); SIGUSR2 reopens this worker's log files.
 * Returns 0 or -errno.
 */
static int worker_signals(void)
{
    static const int dfl[] = {SIGCHLD, SIGTTIN, SIGTTOU};
    sigset_t set;

    for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        if (signal(dfl[i], SIG_DFL) == SIG_ERR)
            return -errno;
    if (signal(SIGHUP, SIG_IGN) == SIG_ERR || sl_log_reopen_on(SIGUSR2) < 0)
        return -errno;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        sigaddset(&set, dfl[i]);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    return sigprocmask(SIG_UNBLOCK, &set, NULL) < 0 ? -errno : 0;
}

/*
 * The process group and the parent-death signal are best effort (a failure
 * is logged: the worker still serves, it only loses that protection); the
 * signal dispositions are not: a worker that cannot set them exits 1.
 */
static int worker_main(struct sl_master *m, unsigned slot, pid_t master)
{
    int rc;

    /* Its own process group: a Ctrl-C at the terminal reaches only the
     * master, which sends one SIGTERM (two would mean "abort"). */
    if (setpgid(0, 0) < 0)
        sl_log(SL_LOG_WARNING, "setpgid: %s; a terminal Ctrl-C also reaches this worker",
               strerror(errno));
    close(m->chan[0]);
    sl_notify_forked(m->chan[1]);
    /* process.user/group: before any app code, and before PDEATHSIG (an id
     * change clears it). */
    if (sl_privdrop_apply(&m->priv) < 0)
        return SL_EXIT_FAILURE;
    /* A master killed outright (SIGKILL, a crash) must not leave orphans
     * serving on its sockets: they drain as if it had sent SIGTERM. The
     * master's re-exec keeps its pid and thread: it does not fire this. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        sl_log(SL_LOG_WARNING, "prctl(PR_SET_PDEATHSIG): %s; this worker outlives a killed master",
               strerror(errno));
    if (getppid() != master)
        raise(SIGTERM); /* it died before prctl: pending until handled */
    sl_proctitle_set("saltare-worker", "saltare: worker %u [gen %u]", slot, m->gen);
    if ((rc = worker_signals()) < 0) {
        sl_log(SL_LOG_ERROR, "worker signals: %s", strerror(-rc));
        return SL_EXIT_FAILURE;
    }
    if (!m->preload && (rc = sl_py_init(m->wcfg)) != 0)
        return exit_status(rc);
    rc = exit_status(sl_py_serve(m->wcfg, m->set.fds));
    sl_py_fini();
    return rc;
}

_Noreturn void sl_worker_proc_run(struct sl_master *m, unsigned slot, pid_t master)
{
    int rc = worker_main(m, slot, master);
    sl_log_drain(LOG_DRAIN_MS);
    _exit(rc);
}
