/*
 * lifespan: the ASGI lifespan protocol, run in every worker process.
 *
 * The app's lifespan coroutine runs as a Task for the whole life of the
 * worker. The server side posts lifespan.startup / lifespan.shutdown into it
 * and runs the loop until the app answers (complete or failed) or the task
 * ends. app.lifespan decides what an app that does not speak the protocol
 * means: `auto` serves without it, `on` refuses to start (exit SL_PY_APP_FAILED),
 * `off` never calls the app with the lifespan scope.
 */
#include "python/bridge.h"
#include "python/bridge_internal.h"

enum phase { PH_STARTUP, PH_SERVING, PH_SHUTDOWN };
enum outcome { OUT_PENDING, OUT_COMPLETE, OUT_FAILED, OUT_ENDED, OUT_TIMEOUT };

struct lifespan {
    PyObject ob_base; /* PyObject_HEAD */
    PyObject *task;
    PyObject *waiter;  /* the future the app's receive() sleeps on */
    PyObject *pending; /* event dict not yet received by the app */
    PyObject *done;    /* future the server waits on for this phase */
    PyObject *message; /* the app's failure message (str) or NULL */
    PyObject *error;   /* the exception the task ended with, or NULL */
    enum phase phase;
    enum outcome outcome;
    bool task_done;
};

static struct lifespan *ls; /* while the protocol is in use */

static void lifespan_dealloc(PyObject *self)
{
    struct lifespan *l = (struct lifespan *)self;
    Py_XDECREF(l->task);
    Py_XDECREF(l->waiter);
    Py_XDECREF(l->pending);
    Py_XDECREF(l->done);
    Py_XDECREF(l->message);
    Py_XDECREF(l->error);
    PyObject_Free(l);
}

static PyTypeObject lifespan_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "saltare.Lifespan",
    .tp_basicsize = sizeof(struct lifespan),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = lifespan_dealloc,
};

/* Ends the wait of the current phase with `o` (the first outcome wins). */
static void settle(struct lifespan *l, enum outcome o)
{
    if (l->outcome != OUT_PENDING)
        return;
    l->outcome = o;
    sl__py_wake(&l->done);
}

/* ---- the app's side: receive, send, task end ------------------------------ */

static PyObject *recv_try(PyObject *owner, PyObject **wait)
{
    struct lifespan *l = (struct lifespan *)owner;
    PyObject *ev = l->pending;

    if (ev != NULL) {
        l->pending = NULL;
        return ev; /* the reference moves to the caller */
    }
    *wait = sl__py_waiter(&l->waiter);
    return NULL;
}

static PyObject *ls_receive(PyObject *self, PyObject *unused)
{
    (void)unused;
    return sl__op_new(self, recv_try);
}

static bool type_is(PyObject *t, const char *lit)
{
    return PyUnicode_CompareWithASCIIString(t, lit) == 0;
}

static PyObject *ls_send(PyObject *self, PyObject *msg)
{
    struct lifespan *l = (struct lifespan *)self;
    PyObject *t = PyDict_Check(msg) ? PyDict_GetItemWithError(msg, sl__py.s.type) : NULL;
    bool startup = l->phase == PH_STARTUP, shutdown = l->phase == PH_SHUTDOWN;

    if (t == NULL || !PyUnicode_Check(t)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a lifespan message must be a dict with a str 'type'");
        return NULL;
    }
    if ((startup && type_is(t, "lifespan.startup.complete")) ||
        (shutdown && type_is(t, "lifespan.shutdown.complete"))) {
        settle(l, OUT_COMPLETE);
    } else if ((startup && type_is(t, "lifespan.startup.failed")) ||
               (shutdown && type_is(t, "lifespan.shutdown.failed"))) {
        PyObject *m = PyDict_GetItemWithError(msg, sl__py.s.message); /* borrowed */
        if (m == NULL && PyErr_Occurred())
            return NULL;
        Py_XSETREF(l->message, m ? PyObject_Str(m) : NULL);
        PyErr_Clear();
        settle(l, OUT_FAILED);
    } else {
        PyErr_Format(PyExc_RuntimeError, "unexpected lifespan message %R", t);
        return NULL;
    }
    return Py_NewRef(sl__py_ready_none);
}

static PyObject *ls_task_done(PyObject *self, PyObject *task)
{
    struct lifespan *l = (struct lifespan *)self;
    PyObject *exc = PyObject_CallMethodNoArgs(task, sl__py.s.exception); /* new */

    if (exc == NULL)
        PyErr_Clear(); /* cancelled */
    l->task_done = true;
    if (exc != NULL && exc != Py_None) {
        Py_XSETREF(l->error, Py_NewRef(exc));
        if (l->phase == PH_SERVING)
            sl__py_log_exception(exc, "the lifespan task failed while serving");
    }
    Py_XDECREF(exc);
    settle(l, OUT_ENDED);
    Py_RETURN_NONE;
}

static PyMethodDef receive_def = {"receive", ls_receive, METH_NOARGS, NULL};
static PyMethodDef send_def = {"send", ls_send, METH_O, NULL};
static PyMethodDef done_def = {"lifespan_done", ls_task_done, METH_O, NULL};

/* ---- the server's side ---------------------------------------------------------- */

/* Delivers {"type": type} to the app's receive(). */
static int post(struct lifespan *l, PyObject *type)
{
    PyObject *ev = Py_BuildValue("{OO}", sl__py.s.type, type); /* new */
    if (ev == NULL)
        return -1;
    Py_XSETREF(l->pending, ev);
    sl__py_wake(&l->waiter);
    return 0;
}

/* Starts a phase: a fresh future to wait on, then the event. */
static int phase_begin(struct lifespan *l, enum phase ph, PyObject *event)
{
    l->phase = ph;
    l->outcome = OUT_PENDING;
    Py_CLEAR(l->done);
    if ((l->done = PyObject_CallNoArgs(sl__py.create_future)) == NULL)
        return -1;
    return post(l, event);
}

/* Runs the loop until the phase settles. Returns 0, or -1 when the loop was
 * stopped first (abort) or failed. */
static int phase_wait(struct lifespan *l)
{
    PyObject *fut = Py_NewRef(l->done);
    PyObject *r = PyObject_CallMethod(sl__py.loop, "run_until_complete", "O", fut); /* new */
    Py_DECREF(fut);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* app(scope, receive, send) as a Task. Returns the lifespan or NULL. */
static struct lifespan *lifespan_start(PyObject *state)
{
    struct lifespan *l = PyObject_New(struct lifespan, &lifespan_type);
    PyObject *scope = NULL, *asgi = NULL, *recv = NULL, *send = NULL, *coro = NULL, *cb = NULL;
    PyObject *r = NULL;

    if (l == NULL)
        return NULL;
    l->task = l->waiter = l->pending = l->done = l->message = l->error = NULL;
    l->phase = PH_STARTUP;
    l->outcome = OUT_PENDING;
    l->task_done = false;
    if ((asgi = sl__scope_asgi("2.0")) == NULL ||
        (scope = Py_BuildValue("{OOOOOO}", sl__py.s.type, sl__py.s.lifespan, sl__py.s.asgi, asgi,
                               sl__py.s.state, state)) == NULL ||
        (recv = PyCFunction_New(&receive_def, (PyObject *)l)) == NULL ||
        (send = PyCFunction_New(&send_def, (PyObject *)l)) == NULL)
        goto fail;
    if ((coro = PyObject_CallFunctionObjArgs(sl__py.app, scope, recv, send, NULL)) == NULL ||
        (l->task = PyObject_CallOneArg(sl__py.create_task, coro)) == NULL ||
        (cb = PyCFunction_New(&done_def, (PyObject *)l)) == NULL ||
        (r = PyObject_CallMethodOneArg(l->task, sl__py.s.add_done_callback, cb)) == NULL)
        goto fail;
    goto out;
fail:
    Py_CLEAR(l);
out:
    Py_XDECREF(r);
    Py_XDECREF(cb);
    Py_XDECREF(coro);
    Py_XDECREF(send);
    Py_XDECREF(recv);
    Py_XDECREF(scope);
    Py_XDECREF(asgi);
    return l;
}

/*
 * Logs "<what>: <message>" for a lifespan.*.failed event. `message` (borrowed,
 * a str or NULL) may hold lone surrogates, which have no UTF-8: they are
 * shown backslash-escaped rather than losing the line.
 */
static void log_failure(const char *what, PyObject *message)
{
    PyObject *b = NULL;
    if (message != NULL && PyUnicode_Check(message))
        b = PyUnicode_AsEncodedString(message, "utf-8", "backslashreplace"); /* new */
    if (b == NULL) {
        PyErr_Clear();
        sl__py_log(SL_LOG_ERROR, "%s: (no message)", what);
        return;
    }
    sl__py_log(SL_LOG_ERROR, "%s: %s", what, PyBytes_AS_STRING(b));
    Py_DECREF(b);
}

/*
 * The app does not speak lifespan: it raised `exc` (borrowed; NULL when it
 * returned) before lifespan.startup.complete. Fine under `auto`, fatal
 * under `on`.
 */
static int unsupported(PyObject *exc, bool on)
{
    PyObject *s = NULL;
    const char *text = NULL;

    if (on) {
        if (exc != NULL)
            sl__py_log_exception(exc, "lifespan startup failed (app.lifespan: on)");
        else
            sl__py_log(SL_LOG_ERROR, "lifespan startup failed: the app returned before "
                                     "lifespan.startup.complete (app.lifespan: on)");
        return SL_PY_APP_FAILED;
    }
    if (exc != NULL && (s = PyObject_Repr(exc)) != NULL && (text = PyUnicode_AsUTF8(s)) != NULL)
        sl__py_log(SL_LOG_INFO, "the app does not support lifespan (%s); serving without it", text);
    else
        sl__py_log(SL_LOG_INFO, "the app does not support lifespan; serving without it");
    Py_XDECREF(s);
    PyErr_Clear();
    return 0;
}

/* unsupported() for an error raised while starting the lifespan task. */
static int start_failed(bool on)
{
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    int rc;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    rc = unsupported(value, on);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return rc;
}

int sl__lifespan_startup(void)
{
    enum sl_lifespan mode = sl__py.cfg->app.lifespan;
    PyObject *state = NULL;
    int rc = 0;

    if (mode == SL_LIFESPAN_OFF)
        return 0;
    if ((state = PyDict_New()) == NULL)
        return SL_PY_APP_FAILED;
    ls = lifespan_start(state);
    if (ls == NULL) {
        rc = start_failed(mode == SL_LIFESPAN_ON);
        goto out;
    }
    if (phase_begin(ls, PH_STARTUP, sl__py.s.lifespan_startup) < 0 || phase_wait(ls) < 0) {
        sl__py_log_error("lifespan startup failed");
        rc = SL_PY_APP_FAILED;
        goto out;
    }
    switch (ls->outcome) {
    case OUT_COMPLETE:
        ls->phase = PH_SERVING;
        sl__py.lifespan_state = Py_NewRef(state);
        break;
    case OUT_FAILED:
        log_failure("lifespan startup failed", ls->message);
        rc = SL_PY_APP_FAILED;
        break;
    default:
        rc = unsupported(ls->error, mode == SL_LIFESPAN_ON);
        sl__lifespan_release();
        break;
    }
out:
    PyErr_Clear();
    Py_DECREF(state);
    return rc;
}

static PyObject *on_timeout(PyObject *self, PyObject *unused)
{
    (void)unused;
    settle((struct lifespan *)self, OUT_TIMEOUT);
    Py_RETURN_NONE;
}

static PyMethodDef timeout_def = {"lifespan_timeout", on_timeout, METH_NOARGS, NULL};

/* call_later(ms, on_timeout) (new reference to the handle) or NULL. */
static PyObject *arm_timeout(uint32_t ms)
{
    PyObject *cb = NULL, *h = NULL;

    if (ms == 0)
        return NULL;
    if ((cb = PyCFunction_New(&timeout_def, (PyObject *)ls)) != NULL)
        h = PyObject_CallFunction(sl__py.call_later, "dO", ms / 1000.0, cb);
    Py_XDECREF(cb);
    if (h == NULL)
        PyErr_Clear();
    return h;
}

int sl__lifespan_shutdown(uint32_t timeout_ms)
{
    PyObject *timer = NULL;
    int rc = 0;

    if (ls == NULL || ls->task_done)
        return 0;
    if (phase_begin(ls, PH_SHUTDOWN, sl__py.s.lifespan_shutdown) < 0) {
        sl__py_log_error("lifespan shutdown failed");
        return -1;
    }
    timer = arm_timeout(timeout_ms);
    if (phase_wait(ls) < 0) {
        PyErr_Clear(); /* the loop was stopped: abort */
        rc = -1;
    } else if (ls->outcome == OUT_FAILED) {
        log_failure("lifespan shutdown failed", ls->message);
        rc = -1;
    } else if (ls->outcome == OUT_TIMEOUT) {
        sl__py_log(SL_LOG_ERROR, "lifespan shutdown timed out after %u ms", timeout_ms);
        rc = -1;
    } else if (ls->outcome == OUT_ENDED && ls->error != NULL) {
        sl__py_log_exception(ls->error, "lifespan shutdown failed");
        rc = -1;
    }
    if (timer != NULL) {
        Py_XDECREF(PyObject_CallMethodNoArgs(timer, sl__py.s.cancel));
        Py_DECREF(timer);
    }
    PyErr_Clear();
    return rc;
}

void sl__lifespan_release(void)
{
    if (ls == NULL)
        return;
    if (ls->task != NULL && !ls->task_done) {
        PyObject *r = PyObject_CallMethodNoArgs(ls->task, sl__py.s.cancel); /* new */
        Py_XDECREF(r);
        PyErr_Clear();
    }
    /* The task's callbacks reference `ls`: drop the cycle through it. */
    Py_CLEAR(ls->task);
    Py_CLEAR(ls->waiter);
    Py_CLEAR(ls);
}

int sl__lifespan_init(void)
{
    return PyType_Ready(&lifespan_type);
}
