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
 * A second SIGTERM/SIGINT exits at once, skipping lifespan shutdown; the
 * exit status is then 1 (not a clean exit).
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "python/bridge.h"
#include "python/bridge_internal.h"
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
    PyObject *idle;        /* pending idle-check handle, or NULL */
    uint64_t idle_seen;    /* sl__py.nrequests at the last idle check */
    bool compacted;        /* compacted since the last request */
    bool kick_pending;     /* an on_kick is queued */
    bool flush_pending;    /* an on_flush is queued */
    bool stopping;         /* loop.stop() was called */
    bool finishing;        /* serving ended: lifespan shutdown and cleanup */
    bool aborted;          /* second signal */
} S;

static struct sl_worker *volatile sig_worker; /* NULL outside serving */
static volatile sig_atomic_t early_signals;   /* received while sig_worker was NULL */

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

static void stop_loop(void)
{
    PyObject *stop;

    if (S.stopping)
        return;
    S.stopping = true;
    if ((stop = PyObject_GetAttrString(sl__py.loop, "stop")) == NULL) { /* new */
        sl__py_log_error("loop.stop failed");
        return;
    }
    loop_call(stop, "loop.stop", NULL, NULL);
    Py_DECREF(stop);
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
 * The shutdown bound passed: cancel what still runs and stop. The stop is
 * queued behind the cancellations so that the tasks see them (and their
 * clients get a 500) before the loop ends.
 */
static PyObject *on_deadline(PyObject *self, PyObject *unused)
{
    PyObject *stop;

    (void)self;
    (void)unused;
    Py_CLEAR(S.deadline);
    sl__py_log(SL_LOG_WARNING, "shutdown timeout: cancelling %zu request(s) still running",
               sl__py.nactive);
    sl__requests_cancel_all();
    if ((stop = PyObject_GetAttrString(sl__py.loop, "stop")) == NULL) { /* new */
        PyErr_Clear();
        stop_loop();
        Py_RETURN_NONE;
    }
    S.stopping = true;
    loop_call(sl__py.call_soon, "loop.call_soon", stop, NULL);
    Py_DECREF(stop);
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
        if (!S.aborted)
            sl__py_log(SL_LOG_WARNING, "second signal: exiting now");
        S.aborted = true;
        stop_loop();
        return;
    }
    if (S.finishing) /* the loop now runs for lifespan shutdown only */
        return;
    if (!sl__py.draining && sl_worker_draining(w))
        drain_begin();
    if (sl__py.draining && sl__py.nactive == 0 && sl_worker_done(w))
        stop_loop();
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
 * back once (gc.collect, malloc_trim). Unlike at startup, nothing is frozen:
 * objects created while serving may still become cyclic garbage.
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
static void on_signal(int sig)
{
    struct sl_worker *w = sig_worker;
    int saved = errno;

    (void)sig;
    if (w != NULL)
        sl_worker_signal_drain(w);
    else if (++early_signals >= 2)
        _exit(1);
    errno = saved;
}

static void signals_install(void (*handler)(int))
{
    struct sigaction sa = {.sa_handler = handler, .sa_flags = SA_RESTART};
    sigset_t set;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A forked worker starts with both blocked (server/main.c): one that
     * came before this point is delivered now, to the handler. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* ---- serving ------------------------------------------------------------------ */

static int callbacks_create(void)
{
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

/* Runs the loop until drained (or aborted). Returns 0 or 1. */
static int run(struct sl_worker *w)
{
    int fd = sl_worker_fd(w), status = 0;
    PyObject *r;

    if (reader("add_reader", fd) < 0) {
        sl__py_log_error("cannot watch the worker");
        return 1;
    }
    sig_worker = w;
    for (int i = early_signals; i > 0; i--)
        sl_worker_signal_drain(w); /* a signal during startup: serve nothing */
    sl__serve_kick();              /* connections may already be waiting */
    S.compacted = true;            /* startup just did it */
    idle_arm();
    r = PyObject_CallMethod(sl__py.loop, "run_forever", NULL); /* new */
    if (r == NULL) {
        sl__py_log_error("the event loop failed");
        status = 1;
    }
    Py_XDECREF(r);
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

int sl_py_serve(const struct sl_config *cfg, const int *listen_fds)
{
    struct sl_worker *w;
    int rc;

    sl__py.cfg = cfg;
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
    sl__py.worker = w;
    sl_notify_worker_ready(); /* lifespan startup done, accepting: READY=1 */
    rc = run(w);
    release_handles();
    sl__requests_detach_all();
    sl__py.worker = NULL;
    sl_worker_free(w);
    if (!S.aborted)
        cancel_leftovers();
    sl__lifespan_release();
    signals_install(SIG_DFL);
    return rc;
}
