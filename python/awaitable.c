/*
 * awaitable: the two awaitables receive() and send() hand to the app.
 *
 * Both implement am_send, which CPython's `await` calls directly: finishing
 * without a suspension costs no StopIteration and no Future. Only when the
 * result is not there yet does an op yield an asyncio future (as
 * Future.__await__ would), and it recomputes the result when resumed.
 */
#include "python/bridge_internal.h"

PyObject *sl__py_ready_none;

/* ---- ready: completes at once with None --------------------------------- */

static PyObject *self_iter(PyObject *self)
{
    return Py_NewRef(self);
}

static PySendResult ready_send(PyObject *self, PyObject *arg, PyObject **result)
{
    (void)self;
    (void)arg;
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

static PyObject *ready_next(PyObject *self)
{
    (void)self;
    PyErr_SetNone(PyExc_StopIteration);
    return NULL;
}

static PyAsyncMethods ready_async = {
    .am_await = self_iter,
    .am_send = ready_send,
};

static PyTypeObject ready_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "saltare.Ready",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An awaitable that is already complete.",
    .tp_as_async = &ready_async,
    .tp_iter = self_iter,
    .tp_iternext = ready_next,
};

/*
 * StopIteration(value) without CPython's private helper: the instance is
 * made first, so a tuple or an exception as the value is carried as one
 * argument, never unpacked as the constructor's arguments.
 */
void sl__py_set_stop_iteration(PyObject *value)
{
    PyObject *e;

    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return;
    }
    e = PyObject_CallOneArg(PyExc_StopIteration, value); /* new */
    if (e == NULL)
        return;
    PyErr_SetObject(PyExc_StopIteration, e);
    Py_DECREF(e);
}

/* ---- op: computes its result when awaited, sleeping on futures ------------ */

struct op {
    PyObject ob_base; /* PyObject_HEAD */
    PyObject *owner;
    sl__op_fn fn;
    bool finished;
};

static PyTypeObject op_type;

PyObject *sl__op_new(PyObject *owner, sl__op_fn fn)
{
    struct op *op = PyObject_GC_New(struct op, &op_type);

    if (op == NULL)
        return NULL;
    op->owner = Py_NewRef(owner);
    op->fn = fn;
    op->finished = false;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

/* An op sits in the frame of the coroutine awaiting it, and its owner (the
 * exchange) holds that coroutine: the collector must see the cycle. */
static int op_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((struct op *)self)->owner);
    return 0;
}

static int op_clear(PyObject *self)
{
    Py_CLEAR(((struct op *)self)->owner);
    return 0;
}

static void op_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    op_clear(self);
    PyObject_GC_Del(self);
}

static PySendResult op_send(PyObject *self, PyObject *arg, PyObject **result)
{
    struct op *op = (struct op *)self;
    PyObject *wait = NULL, *r;

    (void)arg; /* the value a woken future delivers is only a wake-up */
    *result = NULL;
    if (op->finished || op->owner == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this awaitable was already awaited");
        return PYGEN_ERROR;
    }
    r = op->fn(op->owner, &wait);
    if (r != NULL) {
        op->finished = true;
        *result = r;
        return PYGEN_RETURN;
    }
    if (wait == NULL)
        return PYGEN_ERROR;
    /* What Future.__await__ does before yielding itself to the Task. */
    if (PyObject_SetAttr(wait, sl__py.s._asyncio_future_blocking, Py_True) < 0) {
        Py_DECREF(wait);
        return PYGEN_ERROR;
    }
    *result = wait;
    return PYGEN_NEXT;
}

/* The iterator protocol, for callers that do not use am_send. */
static PyObject *op_next(PyObject *self)
{
    PyObject *r = NULL;

    switch (op_send(self, Py_None, &r)) {
    case PYGEN_NEXT:
        return r;
    case PYGEN_RETURN:
        sl__py_set_stop_iteration(r);
        Py_DECREF(r);
        return NULL;
    default:
        return NULL;
    }
}

static PyAsyncMethods op_async = {
    .am_await = self_iter,
    .am_send = op_send,
};

static PyTypeObject op_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "saltare.Pending",
    .tp_basicsize = sizeof(struct op),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An ASGI receive() in progress.",
    .tp_dealloc = op_dealloc,
    .tp_traverse = op_traverse,
    .tp_clear = op_clear,
    .tp_as_async = &op_async,
    .tp_iter = self_iter,
    .tp_iternext = op_next,
};

int sl__awaitable_init(void)
{
    if (PyType_Ready(&ready_type) < 0 || PyType_Ready(&op_type) < 0)
        return -1;
    sl__py_ready_none = PyObject_New(PyObject, &ready_type); /* lives forever */
    return sl__py_ready_none ? 0 : -1;
}
