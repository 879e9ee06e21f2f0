/*
 * serve: the asyncio loop as the outer loop, the core inside it.
 *
 * The worker's epoll fd is registered once with loop.add_reader. Each wake-up
 * polls the core with a bounded budget (re-queued with call_soon while more
 * is pending, so Python tasks interleave with I/O), then makes sure one
 * call_later handle is armed for the core's next timer. Signals only poke
 * the core (async-signal-safe); the state it reports after each poll drives
 * the shutdown: drain, wait for in-flight tasks (bounded by
 * timeouts.shutdown), lifespan shutdown, stop.
 *
 * Serving happens inside one long-lived root task, run_until_complete of a
 * coroutine that awaits the end of serving, as uvicorn does: libraries look
 * for that task. anyio (FastAPI's sync endpoints, Starlette's
 * run_in_threadpool) ties its worker threads to it and, without one, to the
 * request's own task, starting and stopping a thread per request.
 *
 * A second SIGTERM/SIGINT exits at once, skipping lifespan shutdown; the
 * exit status is then 1 (not a clean exit).
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "python/bridge.h"
#include "python/bridge_internal.h"
#include "base/log.h"
#include "base/procstat.h"
#include "server/notify.h"

#define POLL_BUDGET 64 /* events per poll before other callbacks get a turn */
#define IDLE_MS 30000  /* no request for this long: collect garbage, trim malloc */

static struct {
    PyObject *on_readable; /* add_reader callback */
    PyObject *on_kick;     /* call_soon callback */
    PyObject *on_flush;    /* call_soon callback: write batched responses */
    PyObject *on_timer;    /* call_later callback for core timers */
    PyObject *on_deadline; /* call_later callback for the shutdown bound */
    PyObject *timer;       /* pending core-timer handle, or NULL */
    uint64_t timer_due;    /* when `timer` fires, sl__now_ms() clock */
    PyObject *deadline;    /* pending shutdown-bound handle, or NULL */
    PyObject *on_idle;     /* call_later callback for idle compaction */
    PyObject *root_fn;     /* async def serve(done): the root task's coroutine function */
    PyObject *root;        /* the root task while serving, or NULL */
    PyObject *done;        /* future the root task awaits: resolved when serving ends */
    PyObject *idle;        /* pending idle-check handle, or NULL */
    uint64_t idle_seen;    /* sl__py.nrequests at the last idle check */
    bool compacted;        /* compacted since the last request */
    bool kick_pending;     /* an on_kick is queued */
    bool flush_pending;    /* an on_flush is queued */
    bool stopping;         /* serving is ending (done resolved) or the loop was stopped */
    bool finishing;        /* serving ended: lifespan shutdown and cleanup */
    bool aborted;          /* second signal */
    uint64_t max_requests; /* process.max_requests plus this worker's jitter; 0 = none */
    bool recycle_asked;    /* told the master max_requests was reached */
} S;

static struct sl_worker *volatile sig_worker; /* NULL outside serving */
static volatile sig_atomic_t early_signals;   /* received while sig_worker was NULL */
static volatile sig_atomic_t early_restart;   /* one of them was a restart */

uint64_t sl__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Calls loop.<name>(*args) and drops the result; logs failures. */
static void loop_call(PyObject *callable, const char *what, PyObject *a, PyObject *b)
{
    PyObject *r = b   ? PyObject_CallFunctionObjArgs(callable, a, b, NULL)
                  : a ? PyObject_CallOneArg(callable, a)
                      : PyObject_CallNoArgs(callable); /* new */
    if (r == NULL)
        sl__py_log_error("%s failed", what);
    Py_XDECREF(r);
}

/* Stops the loop at once, whatever runs (second signal). */
static void stop_loop(void)
{
    PyObject *stop;

    if ((stop = PyObject_GetAttrString(sl__py.loop, "stop")) == NULL) { /* new */
        sl__py_log_error("loop.stop failed");
        return;
    }
    loop_call(stop, "loop.stop", NULL, NULL);
    Py_DECREF(stop);
}

/* Ends serving: the root task finishes, then run_until_complete returns. */
static void serve_end(void)
{
    PyObject *r;

    if (S.stopping || S.done == NULL)
        return;
    S.stopping = true;
    r = PyObject_CallMethodOneArg(S.done, sl__py.s.set_result, Py_None); /* new */
    if (r == NULL) {
        sl__py_log_error("cannot end serving");
        stop_loop();
    }
    Py_XDECREF(r);
}

void sl__serve_kick(void)
{
    if (S.kick_pending || S.on_kick == NULL)
        return;
    S.kick_pending = true;
    loop_call(sl__py.call_soon, "loop.call_soon", S.on_kick, NULL);
}

/*
 * The core batches the responses tasks send (sl_worker_set_batching): they
 * leave together once the tasks ready in this turn of the loop have run,
 * so a client is woken once per turn rather than per response, as uvloop
 * does for its own transports. call_soon queues the flush behind them.
 */
void sl__serve_flush_soon(void)
{
    struct sl_worker *w = sl__py.worker;

    if (S.flush_pending || S.on_flush == NULL || w == NULL || !sl_worker_flush_pending(w))
        return;
    S.flush_pending = true;
    loop_call(sl__py.call_soon, "loop.call_soon", S.on_flush, NULL);
}

/* Keeps one call_later handle due no later than the core's next timer. */
static void arm_timer(struct sl_worker *w)
{
    int ms = sl_worker_next_timer_ms(w);
    uint64_t due;
    PyObject *delay, *h;

    if (ms < 0)
        return;
    due = sl__now_ms() + (uint64_t)ms;
    if (S.timer != NULL && S.timer_due <= due)
        return;
    if (S.timer != NULL) {
        Py_XDECREF(PyObject_CallMethodNoArgs(S.timer, sl__py.s.cancel));
        PyErr_Clear();
        Py_CLEAR(S.timer);
    }
    delay = PyFloat_FromDouble(ms / 1000.0); /* new */
    h = delay ? PyObject_CallFunctionObjArgs(sl__py.call_later, delay, S.on_timer, NULL) : NULL;
    Py_XDECREF(delay);
    if (h == NULL) {
        sl__py_log_error("loop.call_later failed");
        return;
    }
    S.timer = h;
    S.timer_due = due;
}

/*
 * The shutdown bound passed: cancel what still runs and end serving. The
 * cancellations are delivered in the next turn of the loop; the root task
 * wakes in that same turn and run_until_complete returns one turn later, so
 * the tasks see them (and their clients get a 500) before the loop ends.
 */
static PyObject *on_deadline(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_CLEAR(S.deadline);
    sl__py_log(SL_LOG_WARNING, "shutdown timeout: cancelling %zu request(s) still running",
               sl__py.nactive);
    sl__requests_cancel_all();
    serve_end();
    Py_RETURN_NONE;
}

static void drain_begin(void)
{
    uint32_t ms = sl__py.cfg->timeouts.shutdown_ms;
    PyObject *delay;

    sl__py.draining = true;
    sl_notify_stopping(); /* systemd: only from the main process */
    sl__py_log(SL_LOG_INFO, "draining: %zu request(s) in flight", sl__py.nactive);
    if (ms == 0)
        return;
    delay = PyFloat_FromDouble(ms / 1000.0); /* new */
    S.deadline =
        delay ? PyObject_CallFunctionObjArgs(sl__py.call_later, delay, S.on_deadline, NULL) : NULL;
    Py_XDECREF(delay);
    if (S.deadline == NULL)
        sl__py_log_error("cannot arm the shutdown timeout");
}

/* Acts on what the core reports after a poll: abort, drain, done. */
static void check_state(struct sl_worker *w)
{
    if (sl_worker_abort_requested(w)) {
        if (!S.aborted) {
            sl__py_log(SL_LOG_WARNING, "second signal: exiting now");
            S.aborted = sl__py.aborted = true;
            stop_loop();
        }
        return;
    }
    if (S.finishing) /* the loop now runs for lifespan shutdown only */
        return;
    if (!sl__py.draining && sl_worker_draining(w))
        drain_begin();
    if (sl__py.draining && sl__py.nactive == 0 && sl_worker_done(w))
        serve_end();
}

static void poll_worker(void)
{
    struct sl_worker *w = sl__py.worker;
    int rc;

    if (w == NULL)
        return;
    rc = sl_worker_poll(w, POLL_BUDGET);
    if (PyErr_Occurred()) /* an app callback leaked an error: never fatal */
        sl__py_log_error("unexpected Python error while polling");
    if (rc < 0)
        sl__py_log(SL_LOG_ERROR, "worker poll failed: %s", strerror(-rc));
    else if (rc == 1)
        sl__serve_kick();
    arm_timer(w);
    check_state(w);
    if (S.max_requests && !S.recycle_asked && sl__py.nrequests >= S.max_requests) {
        /* The master starts a replacement and drains us once it is ready:
         * until then this worker keeps serving. */
        S.recycle_asked = true;
        sl__py_log(SL_LOG_INFO,
                   "served %llu requests (process.max_requests): asking to be replaced",
                   (unsigned long long)sl__py.nrequests);
        sl_notify_worker_recycle();
    }
}

static PyObject *on_readable(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    poll_worker();
    Py_RETURN_NONE;
}

static PyObject *on_kick(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    S.kick_pending = false;
    poll_worker();
    Py_RETURN_NONE;
}

static PyObject *on_flush(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    S.flush_pending = false;
    if (sl__py.worker != NULL)
        sl_worker_flush(sl__py.worker);
    Py_RETURN_NONE;
}

static PyObject *on_timer(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_CLEAR(S.timer);
    poll_worker();
    Py_RETURN_NONE;
}

/*
 * Every IDLE_MS: if no request arrived since the last check, gives memory
 * back once (gc.collect, malloc_trim, the executable's code pages). Unlike
 * at startup, nothing is frozen: objects created while serving may still
 * become cyclic garbage.
 */
static void idle_arm(void);

static PyObject *on_idle(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_CLEAR(S.idle);
    if (sl__py.nrequests != S.idle_seen) {
        S.idle_seen = sl__py.nrequests;
        S.compacted = false;
    } else if (!S.compacted && sl__py.nactive == 0) {
        PyObject *gc = PyImport_ImportModule("gc"); /* new */
        PyObject *r = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
        Py_XDECREF(r);
        Py_XDECREF(gc);
        PyErr_Clear();
        malloc_trim(0);
        sl_proc_release_text();
        S.compacted = true;
    }
    if (!S.finishing && !sl__py.draining)
        idle_arm();
    Py_RETURN_NONE;
}

static void idle_arm(void)
{
    PyObject *delay = PyFloat_FromDouble(IDLE_MS / 1000.0); /* new */
    S.idle = delay ? PyObject_CallFunctionObjArgs(sl__py.call_later, delay, S.on_idle, NULL) : NULL;
    Py_XDECREF(delay);
    if (S.idle == NULL)
        PyErr_Clear(); /* only an optimisation */
}

static PyMethodDef readable_def = {"saltare_readable", on_readable, METH_NOARGS, NULL};
static PyMethodDef kick_def = {"saltare_kick", on_kick, METH_NOARGS, NULL};
static PyMethodDef flush_def = {"saltare_flush", on_flush, METH_NOARGS, NULL};
static PyMethodDef timer_def = {"saltare_timer", on_timer, METH_NOARGS, NULL};
static PyMethodDef deadline_def = {"saltare_deadline", on_deadline, METH_NOARGS, NULL};
static PyMethodDef idle_def = {"saltare_idle", on_idle, METH_NOARGS, NULL};

/* ---- signals ------------------------------------------------------------------- */

/*
 * Async-signal-safe. Without a worker (during lifespan startup, or after
 * serving), a first signal is remembered for the worker to drain as soon as
 * it exists; a second one exits at once.
 */
static void on_signal(int sig, siginfo_t *info, void *ctx)
{
    struct sl_worker *w = sig_worker;
    int saved = errno;
    /* The master queues SIGTERM with SL_PY_DRAIN_RESTART when the worker is
     * replaced (reload, recycling) rather than the server stopping. */
    bool restart =
        info && info->si_code == SI_QUEUE && info->si_value.sival_int == SL_PY_DRAIN_RESTART;

    (void)sig, (void)ctx;
    if (w != NULL && restart)
        sl_worker_signal_restart(w);
    else if (w != NULL)
        sl_worker_signal_drain(w);
    else if (++early_signals >= 2)
        _exit(1);
    else if (restart)
        early_restart = 1;
    errno = saved;
}

/* Installs `handler` for SIGTERM and SIGINT, each blocking both while it
 * runs. If that fails (logged), the two stay blocked rather than falling
 * back to a default action that would kill the worker mid-request. */
static void signals_install(void (*handler)(int, siginfo_t *, void *))
{
    struct sigaction sa = {.sa_flags = SA_RESTART};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sa.sa_mask = set;
    if (handler) {
        sa.sa_sigaction = handler;
        sa.sa_flags |= SA_SIGINFO;
    } else {
        sa.sa_handler = SIG_DFL;
    }
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
        sl__py_log(SL_LOG_ERROR, "cannot install the stop signal handlers: %s", strerror(errno));
        return;
    }
    /* A forked worker starts with both blocked (program/main.c): one that
     * came before this point is delivered now, to the handler. */
    if (sigprocmask(SIG_UNBLOCK, &set, NULL) < 0)
        sl__py_log(SL_LOG_ERROR, "cannot unblock the stop signals: %s", strerror(errno));
}

/* ---- serving ------------------------------------------------------------------ */

/*
 * The root task's coroutine function. Compiled from source: a task needs a
 * real coroutine, and this one is the whole of what the root task does.
 */
static const char root_src[] = "async def serve(done):\n"
                               "    await done\n";

static PyObject *root_fn_compile(void) /* new reference */
{
    PyObject *code = NULL, *globals = NULL, *name = NULL, *r = NULL, *fn = NULL;

    if ((code = Py_CompileString(root_src, "<saltare>", Py_file_input)) == NULL ||
        (globals = PyDict_New()) == NULL || (name = PyUnicode_FromString("saltare")) == NULL ||
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(globals, "__name__", name) < 0 ||
        (r = PyEval_EvalCode(code, globals, globals)) == NULL)
        goto out;
    fn = Py_XNewRef(PyDict_GetItemString(globals, "serve")); /* borrowed -> new */
    if (fn == NULL)
        PyErr_SetString(PyExc_RuntimeError, "the root coroutine did not compile");
out:
    Py_XDECREF(r);
    Py_XDECREF(name);
    Py_XDECREF(globals);
    Py_XDECREF(code);
    return fn;
}

static int callbacks_create(void)
{
    if (S.root_fn == NULL && (S.root_fn = root_fn_compile()) == NULL)
        return -1;
    S.on_readable = PyCFunction_New(&readable_def, NULL);
    S.on_kick = PyCFunction_New(&kick_def, NULL);
    S.on_flush = PyCFunction_New(&flush_def, NULL);
    S.on_timer = PyCFunction_New(&timer_def, NULL);
    S.on_deadline = PyCFunction_New(&deadline_def, NULL);
    S.on_idle = PyCFunction_New(&idle_def, NULL);
    return S.on_readable && S.on_kick && S.on_flush && S.on_timer && S.on_deadline && S.on_idle
               ? 0
               : -1;
}

static int reader(const char *method, int fd)
{
    PyObject *r = fd < 0 ? NULL
                  : strcmp(method, "add_reader") == 0
                      ? PyObject_CallMethod(sl__py.loop, method, "iO", fd, S.on_readable)
                      : PyObject_CallMethod(sl__py.loop, method, "i", fd); /* new */
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Cancels the app's leftover tasks and lets them see it, once. */
static void cancel_leftovers(void)
{
    PyObject *asyncio = PyImport_ImportModule("asyncio"); /* new */
    PyObject *tasks = NULL, *it = NULL, *t, *sleep0 = NULL, *r = NULL;

    if (asyncio == NULL)
        goto out;
    if ((tasks = PyObject_CallMethod(asyncio, "all_tasks", "O", sl__py.loop)) == NULL)
        goto out;
    if ((it = PyObject_GetIter(tasks)) == NULL)
        goto out;
    while ((t = PyIter_Next(it)) != NULL) {
        Py_XDECREF(PyObject_CallMethodNoArgs(t, sl__py.s.cancel));
        Py_DECREF(t);
    }
    if ((sleep0 = PyObject_CallMethod(asyncio, "sleep", "i", 0)) == NULL)
        goto out;
    r = PyObject_CallMethod(sl__py.loop, "run_until_complete", "O", sleep0);
out:
    PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(sleep0);
    Py_XDECREF(it);
    Py_XDECREF(tasks);
    Py_XDECREF(asyncio);
}

static void release_handles(void)
{
    PyObject **h[] = {&S.timer, &S.deadline, &S.idle};
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        if (*h[i] != NULL)
            Py_XDECREF(PyObject_CallMethodNoArgs(*h[i], sl__py.s.cancel));
        Py_CLEAR(*h[i]);
    }
    PyErr_Clear();
}

/* Creates S.done and the root task awaiting it. Returns 0 or -1 (error set). */
static int root_create(void)
{
    PyObject *coro = NULL, *args = NULL, *kw = NULL;

    if ((S.done = PyObject_CallNoArgs(sl__py.create_future)) == NULL ||
        (coro = PyObject_CallOneArg(S.root_fn, S.done)) == NULL ||
        (args = PyTuple_Pack(1, coro)) == NULL ||
        (kw = Py_BuildValue("{ss}", "name", "saltare.serve")) == NULL)
        goto out;
    S.root = PyObject_Call(sl__py.create_task, args, kw); /* new */
out:
    if (S.root == NULL && coro != NULL) /* never awaited: close it quietly */
        Py_XDECREF(PyObject_CallMethod(coro, "close", NULL));
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_XDECREF(coro);
    return S.root ? 0 : -1;
}

/*
 * Makes sure the root task has finished, so that its done callbacks run
 * (anyio stops its idle worker threads there; a thread left waiting would
 * hold up interpreter finalisation). It is still pending only when the loop
 * stopped early. After a second signal it is left so: nothing more runs,
 * and the process exits without finalising (sl_py_fini).
 */
static void root_finish(void)
{
    PyObject *done = S.root ? PyObject_CallMethodNoArgs(S.root, sl__py.s.done) : NULL; /* new */

    if (done == Py_False && !S.aborted) {
        Py_XDECREF(PyObject_CallMethodNoArgs(S.root, sl__py.s.cancel));
        Py_XDECREF(PyObject_CallMethod(sl__py.loop, "run_until_complete", "O", S.root));
    }
    Py_XDECREF(done);
    PyErr_Clear(); /* CancelledError, as intended */
    Py_CLEAR(S.root);
    Py_CLEAR(S.done);
}

/* Runs the loop until drained (or aborted). Returns 0 or 1. */
static int run(struct sl_worker *w)
{
    int fd = sl_worker_fd(w), status = 0;
    PyObject *r;

    if (reader("add_reader", fd) < 0 || root_create() < 0) {
        sl__py_log_error("cannot start serving");
        root_finish();
        return 1;
    }
    sig_worker = w;
    for (int i = early_signals; i > 0; i--) /* a signal during startup: serve nothing */
        early_restart ? sl_worker_signal_restart(w) : sl_worker_signal_drain(w);
    sl__serve_kick();   /* connections may already be waiting */
    S.compacted = true; /* startup just did it */
    idle_arm();
    r = PyObject_CallMethod(sl__py.loop, "run_until_complete", "O", S.root); /* new */
    if (r == NULL && S.aborted) {
        PyErr_Clear(); /* "Event loop stopped before Future completed" */
    } else if (r == NULL) {
        sl__py_log_error("the event loop failed");
        status = 1;
    }
    Py_XDECREF(r);
    root_finish();
    S.stopping = false;
    S.finishing = true;
    if (!S.aborted && sl__lifespan_shutdown(sl__py.cfg->timeouts.shutdown_ms) < 0)
        status = 1;
    if (S.aborted)
        status = 1;
    early_signals = 1; /* from now on, one more signal exits at once */
    sig_worker = NULL;
    if (reader("remove_reader", fd) < 0)
        PyErr_Clear();
    return status;
}

/* process.max_requests plus 0..max_requests_jitter, drawn per worker. */
static uint64_t max_requests_draw(const struct sl_config *cfg)
{
    uint64_t n = cfg->process.max_requests, jitter = cfg->process.max_requests_jitter;
    struct timespec ts;

    if (n == 0 || jitter == 0)
        return n;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    srandom((unsigned)getpid() ^ (unsigned)ts.tv_nsec);
    return n + (uint64_t)random() % (jitter + 1);
}

int sl_py_serve(const struct sl_config *cfg, const int *listen_fds)
{
    struct sl_worker *w;
    int rc;

    sl__py.cfg = cfg;
    S.max_requests = max_requests_draw(cfg);
    if (sl__py_loop_for_child() < 0 || callbacks_create() < 0) {
        sl__py_log_error("cannot set up the event loop");
        return 1;
    }
    signals_install(on_signal); /* default behaviour until the worker exists */
    if ((rc = sl__lifespan_startup()) != 0) {
        sl__lifespan_release();
        return rc;
    }
    sl__py_compact();
    w = sl_worker_new(cfg, listen_fds, &sl__py_ops, NULL);
    if (w == NULL) {
        sl__py_log(SL_LOG_ERROR, "cannot start the worker: %s", strerror(errno));
        sl__lifespan_shutdown(cfg->timeouts.shutdown_ms);
        sl__lifespan_release();
        return 1;
    }
    sl_worker_set_batching(w, true);
    sl_worker_set_owns_listeners(w, true); /* our copies: a drain closes them */
    sl__py.worker = w;
    sl_notify_worker_ready(); /* lifespan startup done, accepting: READY=1 */
    sl_log(SL_LOG_INFO, "worker ready: lifespan startup done, serving");
    rc = run(w);
    release_handles();
    sl__requests_detach_all();
    sl__py.worker = NULL;
    sl_worker_free(w);
    if (!S.aborted)
        cancel_leftovers();
    sl__lifespan_release();
    signals_install(NULL); /* SIG_DFL */
    return rc;
}
