/*
 * send: ASGI send() for HTTP.
 *
 * Validates each message against the response state machine (start, body
 * until more_body is false, trailers if announced) and passes it straight to
 * the core, which writes to the socket. While the core's buffered output
 * stays under its high-water mark, send() returns the shared completed
 * awaitable: no Future on the fast path. Above it, a future resolved on
 * SL_REQ_DRAIN paces the app to the client's reading speed.
 *
 * Errors raised into the app: TypeError for malformed messages,
 * RuntimeError for messages out of order, ValueError for a status or header
 * the wire cannot carry (the task then fails and the client gets a 500),
 * saltare.ClientDisconnected (an OSError) once the client is gone.
 * http.response.pathsend: ValueError for a path that is not absolute, the
 * OSError of open(2) (FileNotFoundError, IsADirectoryError...) for a file
 * that cannot be sent; neither commits anything, so the client gets 500.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "python/bridge_internal.h"

struct sender {
    PyObject ob_base; /* PyObject_HEAD */
    vectorcallfunc vectorcall;
    struct sl__exchange *ex; /* strong */
};

/* ---- headers ------------------------------------------------------------------ */

static int bad_pair(void)
{
    PyErr_SetString(PyExc_TypeError, "each header must be a [name, value] pair of bytes");
    return -1;
}

int sl__hdrs_collect(struct sl__hdrs *h, PyObject *seq)
{
    PyObject *fast;
    Py_ssize_t n;

    h->v = h->small;
    h->n = 0;
    h->keep = NULL;
    if (seq == NULL || seq == Py_None)
        return 0;
    fast = PySequence_Fast(seq, "headers must be an iterable of [name, value] pairs"); /* new */
    if (fast == NULL)
        return -1;
    h->keep = fast;
    n = PySequence_Fast_GET_SIZE(fast);
    if ((size_t)n > sizeof(h->small) / sizeof(h->small[0]) &&
        (h->v = PyMem_Malloc((size_t)n * sizeof(*h->v))) == NULL) {
        h->v = h->small;
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i); /* borrowed */
        if ((!PyTuple_Check(item) && !PyList_Check(item)) || PySequence_Fast_GET_SIZE(item) != 2)
            return bad_pair();
        PyObject *name = PySequence_Fast_GET_ITEM(item, 0),
                 *value = PySequence_Fast_GET_ITEM(item, 1);
        if (!PyBytes_Check(name) || !PyBytes_Check(value))
            return bad_pair();
        h->v[h->n++] = (struct sl_h1_header){
            .name = PyBytes_AS_STRING(name),
            .name_len = (size_t)PyBytes_GET_SIZE(name),
            .value = PyBytes_AS_STRING(value),
            .value_len = (size_t)PyBytes_GET_SIZE(value),
        };
    }
    return 0;
}

void sl__hdrs_release(struct sl__hdrs *h)
{
    if (h->v != h->small)
        PyMem_Free(h->v);
    h->v = h->small;
    Py_CLEAR(h->keep);
}

/* ---- results -------------------------------------------------------------------- */

static PyObject *ready(void)
{
    return Py_NewRef(sl__py_ready_none);
}

static PyObject *gone(struct sl__exchange *ex)
{
    ex->disconnected = true;
    PyErr_SetString(sl__py.client_disconnected, "the client disconnected");
    return NULL;
}

/* Maps a core error; NULL with a Python error set. */
static PyObject *core_error(struct sl__exchange *ex, int rc, const char *what)
{
    switch (rc) {
    case -EPIPE:
        return gone(ex);
    case -EINVAL:
        PyErr_Format(PyExc_ValueError,
                     "%s: a header name is not a token or a value holds CR, LF or NUL", what);
        return NULL;
    case -EPROTO:
        PyErr_Format(PyExc_RuntimeError,
                     "%s: more body bytes than the Content-Length header "
                     "announced",
                     what);
        return NULL;
    default:
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
}

static void response_ended(struct sl__exchange *ex)
{
    ex->resp = SL__RESP_ENDED;
    sl__py_wake(&ex->recv_waiter); /* a receive() waiting for the end */
}

/* Borrowed msg[key], or NULL when absent (check PyErr_Occurred). */
static PyObject *get(PyObject *msg, PyObject *key)
{
    return PyDict_GetItemWithError(msg, key);
}

/* PyObject_IsTrue of an optional key; -1 on error. */
static int get_flag(PyObject *msg, PyObject *key)
{
    PyObject *v = get(msg, key);
    if (v == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return PyObject_IsTrue(v);
}

/* ---- messages ---------------------------------------------------------------------- */

static PyObject *send_start(struct sl__exchange *ex, PyObject *msg)
{
    struct sl__hdrs h;
    PyObject *status = get(msg, sl__py.s.status); /* borrowed */
    long code;
    int trailers, rc;

    if (ex->resp != SL__RESP_INIT) {
        PyErr_SetString(PyExc_RuntimeError, "http.response.start sent twice");
        return NULL;
    }
    if (status == NULL || !PyLong_Check(status)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "http.response.start needs an int 'status'");
        return NULL;
    }
    code = PyLong_AsLong(status);
    if (code < 200 || code > 999) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError,
                         "http.response.start: status %ld is not a final "
                         "status (200-999)",
                         code);
        return NULL;
    }
    if ((trailers = get_flag(msg, sl__py.s.trailers)) < 0)
        return NULL;
    if (sl__hdrs_collect(&h, get(msg, sl__py.s.headers)) < 0 || PyErr_Occurred()) {
        sl__hdrs_release(&h);
        return NULL;
    }
    if (ex->req == NULL) {
        sl__hdrs_release(&h);
        PyErr_SetString(PyExc_RuntimeError, "send() after the app returned");
        return NULL;
    }
    rc = sl_resp_start(ex->req, (int)code, h.v, h.n, trailers);
    sl__hdrs_release(&h);
    if (rc < 0)
        return core_error(ex, rc, "http.response.start");
    ex->resp = SL__RESP_BODY;
    ex->trailers_announced = trailers;
    return ready();
}

static PyObject *send_body(struct sl__exchange *ex, PyObject *msg)
{
    Py_buffer buf = {.buf = NULL};
    PyObject *body = get(msg, sl__py.s.body); /* borrowed */
    int more, rc;

    if (ex->resp != SL__RESP_BODY) {
        PyErr_SetString(PyExc_RuntimeError, ex->resp == SL__RESP_INIT
                                                ? "http.response.body before http.response.start"
                                                : "http.response.body after the body ended");
        return NULL;
    }
    if (body == NULL && PyErr_Occurred())
        return NULL;
    if ((more = get_flag(msg, sl__py.s.more_body)) < 0)
        return NULL;
    if (body != NULL && PyObject_GetBuffer(body, &buf, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "http.response.body: 'body' must be bytes, not %.100s",
                     Py_TYPE(body)->tp_name);
        return NULL;
    }
    rc = ex->req ? sl_resp_body(ex->req, buf.buf, (size_t)buf.len, more) : -EPIPE;
    sl__serve_flush_soon();
    if (body != NULL)
        PyBuffer_Release(&buf);
    if (rc < 0)
        return core_error(ex, rc, "http.response.body");
    if (!more) {
        if (ex->trailers_announced)
            ex->resp = SL__RESP_TRAILERS;
        else
            response_ended(ex);
        return ready();
    }
    return rc == 1 ? sl__py_waiter(&ex->send_waiter) : ready();
}

static PyObject *send_trailers(struct sl__exchange *ex, PyObject *msg)
{
    struct sl__hdrs h;
    PyObject *headers = get(msg, sl__py.s.headers); /* borrowed */
    int more, rc;

    if (ex->resp != SL__RESP_TRAILERS) {
        PyErr_SetString(PyExc_RuntimeError,
                        ex->trailers_announced
                            ? "http.response.trailers before the body ended"
                            : "http.response.trailers without 'trailers': True in the start");
        return NULL;
    }
    if ((headers == NULL && PyErr_Occurred()) || (more = get_flag(msg, sl__py.s.more_trailers)) < 0)
        return NULL;
    if (headers != NULL) {
        if (ex->trailers == NULL && (ex->trailers = PyList_New(0)) == NULL)
            return NULL;
        PyObject *r = PyObject_CallMethod(ex->trailers, "extend", "O", headers); /* new */
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    if (more)
        return ready();
    if (sl__hdrs_collect(&h, ex->trailers) < 0) {
        sl__hdrs_release(&h);
        return NULL;
    }
    rc = ex->req ? sl_resp_trailers(ex->req, h.v, h.n) : -EPIPE;
    sl__serve_flush_soon();
    sl__hdrs_release(&h);
    Py_CLEAR(ex->trailers);
    if (rc < 0)
        return core_error(ex, rc, "http.response.trailers");
    response_ended(ex);
    return ready();
}

/* Opens `path` (absolute, a regular file) for reading; -1 with a Python
 * error set. */
static int open_pathsend(PyObject *path, struct stat *st)
{
    PyObject *enc = NULL;
    int fd = -1;
    if (path == NULL || !PyUnicode_Check(path)) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "http.response.pathsend needs a str 'path', not %.100s",
                         path ? Py_TYPE(path)->tp_name : "nothing");
        return -1;
    }
    if ((enc = PyUnicode_EncodeFSDefault(path)) == NULL) /* new */
        return -1;
    const char *p = PyBytes_AS_STRING(enc);
    if (p[0] != '/' || strlen(p) != (size_t)PyBytes_GET_SIZE(enc)) {
        PyErr_Format(PyExc_ValueError,
                     "http.response.pathsend: 'path' must be an absolute path without NUL, "
                     "got %R",
                     path);
        goto out;
    }
    fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0 && fstat(fd, st) == 0 && !S_ISREG(st->st_mode)) {
        close(fd);
        fd = -1;
        errno = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
    }
    if (fd < 0)
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
out:
    Py_DECREF(enc);
    return fd;
}

/* http.response.pathsend (the ASGI Path Send extension): the file goes to
 * the socket through the core's sendfile path, never through Python. */
static PyObject *send_pathsend(struct sl__exchange *ex, PyObject *msg)
{
    struct stat st;
    if (ex->resp != SL__RESP_BODY || ex->trailers_announced) {
        PyErr_SetString(
            PyExc_RuntimeError,
            ex->resp == SL__RESP_INIT   ? "http.response.pathsend before http.response.start"
            : ex->resp != SL__RESP_BODY ? "http.response.pathsend after the body ended"
                                        : "http.response.pathsend with trailers announced");
        return NULL;
    }
    int fd = open_pathsend(get(msg, sl__py.s.path), &st);
    if (fd < 0)
        return NULL;
    int rc = ex->req ? sl_resp_file(ex->req, fd, 0, (uint64_t)st.st_size) : (close(fd), -EPIPE);
    sl__serve_flush_soon();
    if (rc == -EPROTO) {
        PyErr_Format(PyExc_RuntimeError,
                     "http.response.pathsend: the file has %lld bytes, not what the "
                     "Content-Length header announced",
                     (long long)st.st_size);
        return NULL;
    }
    if (rc < 0)
        return core_error(ex, rc, "http.response.pathsend");
    response_ended(ex);
    return ready();
}

static bool is(const char *t, Py_ssize_t n, const char *lit)
{
    return (size_t)n == strlen(lit) && memcmp(t, lit, (size_t)n) == 0;
}

static PyObject *send_message(struct sl__exchange *ex, PyObject *msg)
{
    PyObject *type;
    const char *t;
    Py_ssize_t n;

    if (!PyDict_Check(msg)) {
        PyErr_Format(PyExc_TypeError, "an ASGI message must be a dict, not %.100s",
                     Py_TYPE(msg)->tp_name);
        return NULL;
    }
    type = get(msg, sl__py.s.type); /* borrowed */
    if (type == NULL || !PyUnicode_Check(type)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "an ASGI message needs a str 'type'");
        return NULL;
    }
    if ((t = PyUnicode_AsUTF8AndSize(type, &n)) == NULL)
        return NULL;
    if (ex->disconnected)
        return gone(ex);
    if (ex->ws != SL__WS_NONE)
        return sl__ws_send(ex, msg, t, n);
    if (is(t, n, "http.response.start"))
        return send_start(ex, msg);
    if (is(t, n, "http.response.body"))
        return send_body(ex, msg);
    if (is(t, n, "http.response.trailers"))
        return send_trailers(ex, msg);
    if (is(t, n, "http.response.pathsend"))
        return send_pathsend(ex, msg);
    PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message type %R for an HTTP request", type);
    return NULL;
}

PyObject *sl__send_http_start(struct sl__exchange *ex, PyObject *msg)
{
    return send_start(ex, msg);
}

PyObject *sl__send_http_body(struct sl__exchange *ex, PyObject *msg)
{
    return send_body(ex, msg);
}

/* ---- the send callable ------------------------------------------------------------- */

static PyObject *sender_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "send() takes exactly one argument (the message)");
        return NULL;
    }
    return send_message(((struct sender *)self)->ex, args[0]);
}

static int sender_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((struct sender *)self)->ex);
    return 0;
}

static int sender_clear(PyObject *self)
{
    Py_CLEAR(((struct sender *)self)->ex);
    return 0;
}

static void sender_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    sender_clear(self);
    PyObject_GC_Del(self);
}

static PyTypeObject sender_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "saltare.Send",
    .tp_basicsize = sizeof(struct sender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "ASGI send() for one HTTP request.",
    .tp_dealloc = sender_dealloc,
    .tp_traverse = sender_traverse,
    .tp_clear = sender_clear,
    .tp_vectorcall_offset = offsetof(struct sender, vectorcall),
    .tp_call = PyVectorcall_Call,
};

PyObject *sl__sender_new(struct sl__exchange *ex)
{
    struct sender *s = PyObject_GC_New(struct sender, &sender_type);

    if (s == NULL)
        return NULL;
    s->vectorcall = sender_vectorcall;
    s->ex = (struct sl__exchange *)Py_NewRef((PyObject *)ex);
    PyObject_GC_Track(s);
    return (PyObject *)s;
}

int sl__send_init(void)
{
    return PyType_Ready(&sender_type);
}
