/*
 * bridge: runs an ASGI 3 application inside saltare's worker.
 *
 * Embeds CPython, imports cfg->app.target, drives the asyncio (or uvloop)
 * loop as the outer loop with the server core's epoll fd registered through
 * loop.add_reader, and implements struct sl_app_ops (scope, receive, send,
 * lifespan) on top of server/server.h.
 */
#ifndef SL_PYTHON_BRIDGE_H
#define SL_PYTHON_BRIDGE_H

#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What sl_py_init and sl_py_serve return when the app cannot be imported or
 * started; program/exit.h turns it into the exit status. */
#define SL_PY_APP_FAILED 3

/*
 * Initialises the interpreter (app.path, app.venv), creates the event loop
 * (app.loop) and sets it current, then imports the app. Call once per process,
 * before forking workers so they share the imported pages. Returns 0, or
 * SL_PY_APP_FAILED after printing the Python traceback.
 */
int sl_py_init(const struct sl_config *cfg);

/*
 * sl_py_init in the master (app.preload), where the master's signals are
 * blocked: the app's import is bounded by timeouts.startup, and SIGTERM or
 * SIGINT interrupt it. For the time of the import SIGALRM (an interval
 * timer: the deadline, then once a second), SIGTERM and SIGINT are
 * unblocked with Python handlers that raise in the code running (TimeoutError,
 * KeyboardInterrupt): an import waiting in sleep, select or I/O wakes up and
 * fails; a loop in C code that never checks for signals is not interrupted.
 * Then the three are blocked again and the caller's handlers restored; a
 * SIGTERM/SIGINT taken is not pending any more (the caller re-raises it).
 * Returns 0, or SL_PY_APP_FAILED (traceback printed); `*interrupted_by`:
 * 0, SIGALRM (the deadline passed: a failure even if the app caught the
 * exception and finished), SIGTERM or SIGINT. With `give_up` (nothing to
 * fall back on: the first start) an import that has not returned 10 s after
 * the deadline or a stop signal is stuck in such C code: the process writes
 * that to stderr and exits with SL_PY_APP_FAILED.
 */
int sl_py_init_bounded(const struct sl_config *cfg, bool give_up, int *interrupted_by);

/*
 * Serves on the listening fds (one per cfg->listeners entry) in this process
 * until SIGTERM/SIGINT drains it: lifespan startup, report ready
 * (sl_notify_worker_ready), serve, lifespan shutdown. The fds are this
 * process's own copies (a forked worker): the drain closes them at once,
 * so that new connections are refused once every process let go. After
 * process.max_requests (+ jitter) requests it asks the master to be
 * replaced (sl_notify_worker_recycle) and serves on until told to drain.
 * Installs the signal handlers. Returns the process exit status (0 clean,
 * SL_PY_APP_FAILED on lifespan startup failure, 1 otherwise).
 */
int sl_py_serve(const struct sl_config *cfg, const int *listen_fds);

/* sigqueue(2) value with SIGTERM: drain for a restart (reload, recycling):
 * WebSockets close with 1012 instead of 1001. A plain SIGTERM stops. */
#define SL_PY_DRAIN_RESTART 1

/*
 * fork(2) for a worker, with CPython's before/after-fork hooks (a plain
 * fork when the interpreter was not started: app.preload off). In the
 * child, the next sl_py_serve() replaces the event loop inherited from the
 * parent (whose epoll instance the parent still owns) with a fresh one;
 * the imported app is shared copy-on-write (gc.freeze() ran before).
 */
pid_t sl_py_fork(void);

/*
 * Finalises the interpreter. After a second signal (sl_py_serve aborted) it
 * only flushes sys.stdout and sys.stderr: finalising would wait for the
 * app's threads, and the process is meant to exit at once.
 */
void sl_py_fini(void);

#ifdef __cplusplus
}
#endif

#endif
