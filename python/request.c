/*
 * request: the life of one HTTP exchange on the Python side.
 *
 * on_request builds the scope and calls app(scope, receive, send). The
 * resulting coroutine runs inside a real asyncio Task (Starlette/anyio need
 * current_task()), but wrapped: the exchange object is itself a coroutine
 * that forwards send/throw to the app's and sees how it ends. Whatever the
 * app left undone then becomes a 500 (before http.response.start) or a
 * closed connection (after it), app errors are logged, and the request goes
 * back to the core. No done callback, no extra Future: app errors never
 * reach the Task, the loop or the worker.
 *
 * The exchange is also the app's `receive` callable; `send` is a companion
 * object (send.c).
 *
 * References: the core's req holds one reference to the exchange (its
 * sl_req_data) until release; the exchange holds the app's coroutine and the
 * Task until the app finishes, which breaks the cycle
 * task -> exchange -> coroutine -> frame -> exchange.
 */
#include <errno.h>

#include "python/bridge_internal.h"

static struct sl__exchange *active; /* unfinished requests, newest first */
static PyObject *cancelled_error;   /* asyncio.CancelledError */
static PyObject *task_type;         /* asyncio.Task */
static PyObject *task_kwnames;      /* ("loop", "name") */
static PyObject *task_name;         /* "saltare.http": every request task's name */

/* ---- waking and sleeping ------------------------------------------------------- */

void sl__py_wake(PyObject **slot)
{
    PyObject *fut = *slot, *r;

    if (fut == NULL)
        return;
    *slot = NULL;
    /* A cancelled future refuses a result (InvalidStateError): that task
     * was woken by its cancellation already. */
    r = PyObject_CallMethodOneArg(fut, sl__py.s.set_result, Py_None);
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_DECREF(fut);
}

PyObject *sl__py_waiter(PyObject **slot)
{
    if (*slot != NULL) {
        /* Still pending (another task waits too): share it. Done means it
         * was cancelled under a task that then came back: replace it. */
        PyObject *d = PyObject_CallMethodNoArgs(*slot, sl__py.s.done); /* new */
        int is_done = d ? PyObject_IsTrue(d) : -1;
        Py_XDECREF(d);
        if (is_done < 0)
            return NULL;
        if (!is_done)
            return Py_NewRef(*slot);
        Py_CLEAR(*slot);
    }
    *slot = PyObject_CallNoArgs(sl__py.create_future);
    return *slot ? Py_NewRef(*slot) : NULL;
}

/* ---- the active list ------------------------------------------------------------ */

static void active_link(struct sl__exchange *ex)
{
    ex->linked = true;
    ex->next = active;
    if (active)
        active->prev = ex;
    active = ex;
    sl__py.nactive++;
}

static void active_unlink(struct sl__exchange *ex)
{
    if (!ex->linked)
        return;
    ex->linked = false;
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        active = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    ex->prev = ex->next = NULL;
    sl__py.nactive--;
}

/* ---- finishing ------------------------------------------------------------------ */

static const char *utf8_or(PyObject *s, const char *dflt)
{
    const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
    if (u == NULL) {
        PyErr_Clear();
        return dflt;
    }
    return u;
}

/* Hands the request back to the core and drops the core's reference. */
static void exchange_release(struct sl__exchange *ex)
{
    struct sl_req *req = ex->req;

    if (req == NULL)
        return;
    ex->req = NULL;
    sl_req_set_data(req, NULL);
    sl_req_release(req);
    /* Anyone still waiting (a helper task of the app) gets disconnect. */
    sl__py_wake(&ex->recv_waiter);
    sl__py_wake(&ex->send_waiter);
    if (sl__py.draining)
        sl__serve_kick();
    Py_DECREF(ex);
}

/* Answers for the app whatever it left unfinished. */
static void exchange_settle(struct sl__exchange *ex, bool raised)
{
    if (ex->ws != SL__WS_NONE) {
        sl__ws_settle(ex, raised);
        return;
    }
    if (ex->req == NULL || ex->resp == SL__RESP_ENDED || ex->disconnected)
        return;
    if (!raised)
        sl__py_log(SL_LOG_ERROR, "%s %s: the app returned %s", utf8_or(ex->method, "?"),
                   utf8_or(ex->path, "?"),
                   ex->resp == SL__RESP_INIT ? "without starting a response"
                                             : "before completing its response");
    /* Before the start: a 500 with Connection: close; after: a close. */
    sl_resp_error(ex->req, 500);
    ex->resp = SL__RESP_ENDED;
}

/* The app's coroutine ended (raised: with an exception, or cancelled). */
static void exchange_finish(struct sl__exchange *ex, bool raised)
{
    ex->failed = raised;
    exchange_settle(ex, raised);
    Py_CLEAR(ex->coro);
    Py_CLEAR(ex->task);
    active_unlink(ex);
    exchange_release(ex);
}

/*
 * The app raised (the error is set). Logs it unless it is the client's
 * disconnect, and finishes. A cancellation stays raised so that the Task
 * ends cancelled; any other error is consumed: returns 0 then.
 */
static int app_raised(struct sl__exchange *ex)
{
    PyObject *type = NULL, *value = NULL, *tb = NULL;

    if (PyErr_ExceptionMatches(cancelled_error)) {
        /* Finishing calls into Python (wakes waiters, kicks the serve loop):
         * not with an exception set. The cancellation is re-raised after. */
        PyErr_Fetch(&type, &value, &tb);
        exchange_finish(ex, true);
        PyErr_Restore(type, value, tb);
        return -1;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    if (value != NULL && !ex->disconnected &&
        !PyObject_TypeCheck(value, (PyTypeObject *)sl__py.client_disconnected))
        sl__py_log_exception(value, "%s %s: exception in the ASGI app", utf8_or(ex->method, "?"),
                             utf8_or(ex->path, "?"));
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    exchange_finish(ex, true);
    return 0;
}

/* ---- the exchange as the Task's coroutine ---------------------------------------- */

/* What the app's coroutine did with a send or throw. */
static PySendResult step_outcome(struct sl__exchange *ex, PySendResult r, PyObject **result)
{
    if (r == PYGEN_NEXT)
        return r; /* it awaits: the future goes up to the Task */
    if (r == PYGEN_RETURN) {
        Py_CLEAR(*result); /* an ASGI app returns None; anything else is ignored */
        exchange_finish(ex, false);
    } else if (app_raised(ex) < 0) {
        return PYGEN_ERROR;
    }
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

static PySendResult exchange_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    struct sl__exchange *ex = (struct sl__exchange *)self;

    *result = NULL;
    if (ex->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already finished request coroutine");
        return PYGEN_ERROR;
    }
    return step_outcome(ex, PyIter_Send(ex->coro, arg, result), result);
}

/* Turns an am_send outcome into the generator protocol's method result. */
static PyObject *as_method_result(PySendResult r, PyObject *result)
{
    if (r == PYGEN_NEXT)
        return result;
    if (r == PYGEN_RETURN) {
        sl__py_set_stop_iteration(result);
        Py_DECREF(result);
    }
    return NULL;
}

static PyObject *exchange_send_method(PyObject *self, PyObject *arg)
{
    PyObject *result = NULL;
    PySendResult r = exchange_am_send(self, arg, &result);
    return as_method_result(r, result);
}

static PyObject *exchange_next(PyObject *self)
{
    return exchange_send_method(self, Py_None);
}

/* coro.throw(...): how the Task delivers a cancellation. */
static PyObject *exchange_throw(PyObject *self, PyObject *args)
{
    struct sl__exchange *ex = (struct sl__exchange *)self;
    PyObject *meth, *result;
    PySendResult r;

    if (ex->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot throw into a finished request coroutine");
        return NULL;
    }
    if ((meth = PyObject_GetAttrString(ex->coro, "throw")) == NULL) /* new */
        return NULL;
    result = PyObject_Call(meth, args, NULL);
    Py_DECREF(meth);
    if (result != NULL) {
        r = PYGEN_NEXT;
    } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
        PyErr_Clear(); /* the app caught it and returned */
        result = Py_NewRef(Py_None);
        r = PYGEN_RETURN;
    } else {
        r = PYGEN_ERROR;
    }
    r = step_outcome(ex, r, &result);
    return as_method_result(r, result);
}

static PyObject *exchange_close(PyObject *self, PyObject *unused)
{
    struct sl__exchange *ex = (struct sl__exchange *)self;
    PyObject *r;

    (void)unused;
    if (ex->coro == NULL)
        Py_RETURN_NONE;
    r = PyObject_CallMethod(ex->coro, "close", NULL); /* new */
    if (r == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        exchange_finish(ex, true);
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    exchange_finish(ex, true);
    return r;
}

static PyObject *self_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* Attributes the exchange lacks come from the app's coroutine (cr_frame,
 * cr_code, __qualname__...): Task.get_stack() and Task reprs use them. */
static PyObject *exchange_getattro(PyObject *self, PyObject *name)
{
    struct sl__exchange *ex = (struct sl__exchange *)self;
    PyObject *r = PyObject_GenericGetAttr(self, name);

    if (r == NULL && ex->coro != NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        r = PyObject_GetAttr(ex->coro, name);
    }
    return r;
}

/* ---- the exchange as `receive` --------------------------------------------------- */

static PyObject *exchange_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames)
{
    (void)args;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "receive() takes no arguments");
        return NULL;
    }
    return sl__receive((struct sl__exchange *)self);
}

/* ---- the type ---------------------------------------------------------------------- */

static int exchange_traverse(PyObject *self, visitproc visit, void *arg)
{
    struct sl__exchange *ex = (struct sl__exchange *)self;
    Py_VISIT(ex->coro);
    Py_VISIT(ex->task);
    Py_VISIT(ex->recv_waiter);
    Py_VISIT(ex->send_waiter);
    Py_VISIT(ex->trailers);
    Py_VISIT(ex->method);
    Py_VISIT(ex->path);
    return 0;
}

static int exchange_clear(PyObject *self)
{
    struct sl__exchange *ex = (struct sl__exchange *)self;
    Py_CLEAR(ex->coro);
    Py_CLEAR(ex->task);
    Py_CLEAR(ex->recv_waiter);
    Py_CLEAR(ex->send_waiter);
    Py_CLEAR(ex->trailers);
    Py_CLEAR(ex->method);
    Py_CLEAR(ex->path);
    return 0;
}

static void exchange_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    exchange_clear(self);
    PyObject_GC_Del(self);
}

static PyMethodDef exchange_methods[] = {
    {"send", exchange_send_method, METH_O, "Coroutine protocol: resumes the app."},
    {"throw", exchange_throw, METH_VARARGS, "Coroutine protocol: raises into the app."},
    {"close", exchange_close, METH_NOARGS, "Coroutine protocol: closes the app's coroutine."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods exchange_async = {
    .am_await = self_await,
    .am_send = exchange_am_send,
};

PyTypeObject sl__exchange_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "saltare.Request",
    .tp_basicsize = sizeof(struct sl__exchange),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "One HTTP request: the app's receive() and the coroutine its Task runs.",
    .tp_dealloc = exchange_dealloc,
    .tp_traverse = exchange_traverse,
    .tp_clear = exchange_clear,
    .tp_vectorcall_offset = offsetof(struct sl__exchange, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_as_async = &exchange_async,
    .tp_iter = self_await,
    .tp_iternext = exchange_next,
    .tp_methods = exchange_methods,
    .tp_getattro = exchange_getattro,
};

static struct sl__exchange *exchange_new(struct sl_req *req)
{
    struct sl__exchange *ex = PyObject_GC_New(struct sl__exchange, &sl__exchange_type);

    if (ex == NULL)
        return NULL;
    ex->vectorcall = exchange_vectorcall;
    ex->req = req;
    ex->coro = ex->task = ex->recv_waiter = ex->send_waiter = ex->trailers = NULL;
    ex->method = ex->path = NULL;
    ex->prev = ex->next = NULL;
    ex->resp = SL__RESP_INIT;
    ex->ws = sl_req_is_websocket(req) ? SL__WS_CONNECTING : SL__WS_NONE;
    ex->trailers_announced = ex->body_done = ex->disconnected = ex->failed = false;
    ex->linked = false;
    PyObject_GC_Track(ex);
    return ex;
}

/* ---- the core's callbacks ------------------------------------------------------- */

/* Asks the request's task to stop (it gets CancelledError at its await). */
static void cancel_task(struct sl__exchange *ex)
{
    PyObject *r;

    if (ex->task == NULL)
        return;
    r = PyObject_CallMethodNoArgs(ex->task, sl__py.s.cancel); /* new */
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
}

/* Fails a request before its task runs: logs, 500, release. */
static void fail_early(struct sl__exchange *ex, struct sl_req *req)
{
    sl__py_log_error("%s %s: cannot start the ASGI app", utf8_or(ex ? ex->method : NULL, "?"),
                     utf8_or(ex ? ex->path : NULL, "?"));
    if (ex == NULL) {
        sl_resp_error(req, 500);
        sl_req_release(req);
        return;
    }
    Py_CLEAR(ex->coro);
    exchange_settle(ex, true);
    exchange_release(ex);
}

/*
 * Replaces *obj (what the app call returned) with the iterator `await obj`
 * would drive: a coroutine or generator itself, else obj.__await__().
 * Returns 0 or -1 (TypeError set, *obj cleared).
 */
static int awaitable_iter(PyObject **obj)
{
    PyTypeObject *t = Py_TYPE(*obj);
    PyObject *it;

    if (PyCoro_CheckExact(*obj) || PyGen_CheckExact(*obj))
        return 0;
    if (t->tp_as_async == NULL || t->tp_as_async->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "the ASGI app returned a %.100s, not an awaitable",
                     t->tp_name);
        Py_CLEAR(*obj);
        return -1;
    }
    it = t->tp_as_async->am_await(*obj); /* new */
    Py_SETREF(*obj, it);
    return it ? 0 : -1;
}

/*
 * A Task running `coro` (new reference): what loop.create_task(coro) makes,
 * minus its "Task-<n>" name. Task() formats that name with printf on every
 * call, ~7% of a small request's instructions, so request tasks share one
 * constant name instead. When the app has set a task factory on the loop,
 * create_task itself runs, factory and all.
 */
static PyObject *task_new(PyObject *coro)
{
    PyObject *factory = PyObject_CallNoArgs(sl__py.get_task_factory); /* new */

    if (factory == NULL)
        return NULL;
    if (factory != Py_None) {
        Py_DECREF(factory);
        return PyObject_CallOneArg(sl__py.create_task, coro);
    }
    Py_DECREF(factory);
    PyObject *args[3] = {coro, sl__py.loop, task_name};
    return PyObject_Vectorcall(task_type, args, 1, task_kwnames);
}

/* Runs app(scope, receive, send) in a Task. Returns 0 or -1 (error set). */
static int start_task(struct sl__exchange *ex, PyObject *scope)
{
    PyObject *send = NULL, *task = NULL;

    if ((send = sl__sender_new(ex)) == NULL)
        return -1;
    PyObject *args[3] = {scope, (PyObject *)ex, send};
    ex->coro = PyObject_Vectorcall(sl__py.app, args, 3, NULL);
    Py_DECREF(send);
    if (ex->coro == NULL || awaitable_iter(&ex->coro) < 0)
        return -1;
    if ((task = task_new((PyObject *)ex)) == NULL)
        return -1;
    ex->task = task;
    active_link(ex);
    return 0;
}

static void on_request(void *app, struct sl_req *req)
{
    struct sl__exchange *ex = NULL;
    PyObject *scope = NULL, *method = NULL, *path = NULL;

    (void)app;
    sl__py.nrequests++;
    if (sl__tracemalloc_answer(req))
        return;
    if ((ex = exchange_new(req)) == NULL) {
        fail_early(NULL, req);
        return;
    }
    sl_req_set_data(req, ex); /* the core's reference: dropped at release */
    scope = ex->ws ? sl__scope_ws(req, &method, &path) : sl__scope_http(req, &method, &path);
    if (scope == NULL) {
        fail_early(ex, req);
        return;
    }
    ex->method = Py_NewRef(method);
    ex->path = Py_NewRef(path);
    if (start_task(ex, scope) < 0)
        fail_early(ex, req);
    Py_DECREF(scope);
}

static void on_event(void *app, struct sl_req *req, enum sl_req_event ev)
{
    struct sl__exchange *ex = sl_req_data(req);

    (void)app;
    if (ex == NULL)
        return;
    switch (ev) {
    case SL_REQ_BODY:
        sl__py_wake(&ex->recv_waiter);
        break;
    case SL_REQ_DRAIN:
        sl__py_wake(&ex->send_waiter);
        break;
    case SL_REQ_DISCONNECT:
        ex->disconnected = true;
        sl__py_wake(&ex->recv_waiter);
        sl__py_wake(&ex->send_waiter);
        break;
    case SL_REQ_CANCEL:
        ex->disconnected = true;
        sl__py_log(SL_LOG_WARNING, "%s %s: timeouts.app expired; cancelling the request's task",
                   utf8_or(ex->method, "?"), utf8_or(ex->path, "?"));
        cancel_task(ex);
        break;
    }
}

const struct sl_app_ops sl__py_ops = {
    .on_request = on_request,
    .on_event = on_event,
};

/* ---- shutdown ---------------------------------------------------------------------- */

void sl__requests_cancel_all(void)
{
    for (struct sl__exchange *ex = active; ex != NULL; ex = ex->next)
        cancel_task(ex);
}

void sl__requests_detach_all(void)
{
    /* The worker is about to free every req: forget them without calling
     * into the core. A task that still runs sees a disconnected client. */
    while (active != NULL) {
        struct sl__exchange *ex = active;
        active_unlink(ex);
        if (ex->req != NULL) {
            sl_req_set_data(ex->req, NULL);
            ex->req = NULL;
            ex->disconnected = true;
            Py_DECREF(ex); /* the core's reference */
        }
    }
}

int sl__request_init(void)
{
    PyObject *asyncio = NULL, *abc = NULL, *coroutine = NULL, *r = NULL;
    int rc = -1;

    if (PyType_Ready(&sl__exchange_type) < 0)
        return -1;
    if ((asyncio = PyImport_ImportModule("asyncio")) == NULL ||
        (cancelled_error = PyObject_GetAttrString(asyncio, "CancelledError")) == NULL ||
        (task_type = PyObject_GetAttrString(asyncio, "Task")) == NULL ||
        (task_name = PyUnicode_InternFromString("saltare.http")) == NULL ||
        (task_kwnames = Py_BuildValue("(NN)", PyUnicode_InternFromString("loop"),
                                      PyUnicode_InternFromString("name"))) == NULL)
        goto out;
    /* asyncio.Task only runs what asyncio.iscoroutine() recognises. */
    if ((abc = PyImport_ImportModule("collections.abc")) == NULL ||
        (coroutine = PyObject_GetAttrString(abc, "Coroutine")) == NULL ||
        (r = PyObject_CallMethod(coroutine, "register", "O", &sl__exchange_type)) == NULL)
        goto out;
    rc = 0;
out:
    Py_XDECREF(r);
    Py_XDECREF(coroutine);
    Py_XDECREF(abc);
    Py_XDECREF(asyncio);
    return rc;
}
