/*
 * tls_chain: scope["extensions"]["tls"]["client_cert_chain"], lazily.
 *
 * PEM-encoding a client chain costs a few microseconds per certificate and
 * most apps never look at it, so the scope carries this read-only sequence
 * instead of a list: it holds the connection's session (sl_tls_peer, one
 * reference count) and encodes the chain the first time it is read (len()
 * does not encode). The ASGI TLS extension asks for an iterable of PEM
 * strings; this is a full sequence (indexing, slicing, iteration, len, in,
 * ==, registered as a collections.abc.Sequence). The session stays valid
 * after the connection is gone, so an app may read it late.
 */
#include "python/bridge_internal.h"
#include "server/tls.h"

struct chain {
    PyObject ob_base;         /* PyObject_HEAD */
    struct sl_tls_peer *peer; /* owned; NULL once encoded */
    PyObject *list;           /* the PEM strings, once encoded */
};

static PyTypeObject chain_type;

PyObject *sl__tls_chain_new(const struct sl_tls_conn *t)
{
    struct sl_tls_peer *peer = sl_tls_peer_get(t);
    if (peer == NULL) /* no client certificate: an empty list, as before */
        return PyList_New(0);
    struct chain *c = PyObject_New(struct chain, &chain_type);
    if (c == NULL) {
        sl_tls_peer_free(peer);
        return NULL;
    }
    c->peer = peer;
    c->list = NULL;
    return (PyObject *)c;
}

static int append_pem(void *arg, const char *pem, size_t len)
{
    PyObject *s = PyUnicode_DecodeASCII(pem, (Py_ssize_t)len, "replace"); /* new */
    int rc = s ? PyList_Append(arg, s) : -1;
    Py_XDECREF(s);
    return rc < 0 ? -1 : 0;
}

/* The PEM strings (borrowed), encoded on the first call. */
static PyObject *pems(struct chain *c)
{
    if (c->list != NULL)
        return c->list;
    PyObject *list = PyList_New(0); /* new */
    if (list == NULL)
        return NULL;
    int rc = sl_tls_peer_chain(c->peer, append_pem, list);
    if (rc < 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        Py_DECREF(list);
        return NULL;
    }
    c->list = list;
    sl_tls_peer_free(c->peer); /* the strings are all it was kept for */
    c->peer = NULL;
    return list;
}

static void chain_dealloc(PyObject *self)
{
    struct chain *c = (struct chain *)self;
    sl_tls_peer_free(c->peer);
    Py_XDECREF(c->list);
    Py_TYPE(self)->tp_free(self);
}

static Py_ssize_t chain_len(PyObject *self)
{
    struct chain *c = (struct chain *)self;
    return c->list ? PyList_GET_SIZE(c->list) : sl_tls_peer_count(c->peer);
}

static PyObject *chain_item(PyObject *self, Py_ssize_t i)
{
    PyObject *l = pems((struct chain *)self);
    return l ? PySequence_GetItem(l, i) : NULL;
}

static PyObject *chain_subscript(PyObject *self, PyObject *key)
{
    PyObject *l = pems((struct chain *)self);
    return l ? PyObject_GetItem(l, key) : NULL;
}

static int chain_contains(PyObject *self, PyObject *v)
{
    PyObject *l = pems((struct chain *)self);
    return l ? PySequence_Contains(l, v) : -1;
}

static PyObject *chain_iter(PyObject *self)
{
    PyObject *l = pems((struct chain *)self);
    return l ? PyObject_GetIter(l) : NULL;
}

static PyObject *chain_repr(PyObject *self)
{
    PyObject *l = pems((struct chain *)self);
    return l ? PyObject_Repr(l) : NULL;
}

/* Equal to another chain or a list or tuple of the same strings. */
static PyObject *chain_richcompare(PyObject *self, PyObject *other, int op)
{
    PyObject *l = pems((struct chain *)self), *o = other;
    if (l == NULL)
        return NULL;
    if (Py_IS_TYPE(other, &chain_type) && (o = pems((struct chain *)other)) == NULL)
        return NULL;
    if (PyTuple_Check(o)) {
        PyObject *t = PyList_AsTuple(l), *r; /* new */
        r = t ? PyObject_RichCompare(t, o, op) : NULL;
        Py_XDECREF(t);
        return r;
    }
    if (!PyList_Check(o))
        Py_RETURN_NOTIMPLEMENTED;
    return PyObject_RichCompare(l, o, op);
}

/* Sequence's mixin methods (register() does not add them). */
static PyObject *chain_index(PyObject *self, PyObject *v)
{
    PyObject *l = pems((struct chain *)self);
    return l ? PyObject_CallMethod(l, "index", "O", v) : NULL;
}

static PyObject *chain_count(PyObject *self, PyObject *v)
{
    PyObject *l = pems((struct chain *)self);
    return l ? PyObject_CallMethod(l, "count", "O", v) : NULL;
}

static PyMethodDef chain_methods[] = {
    {"index", chain_index, METH_O, "The position of the first certificate equal to the value."},
    {"count", chain_count, METH_O, "How many certificates equal the value."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods chain_seq = {
    .sq_length = chain_len,
    .sq_item = chain_item,
    .sq_contains = chain_contains,
};

static PyMappingMethods chain_map = {
    .mp_length = chain_len,
    .mp_subscript = chain_subscript,
};

static PyTypeObject chain_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "saltare.CertChain",
    .tp_basicsize = sizeof(struct chain),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_doc = "The client certificate chain as PEM strings, leaf first (read-only, "
              "encoded on first use).",
    .tp_dealloc = chain_dealloc,
    .tp_repr = chain_repr,
    .tp_as_sequence = &chain_seq,
    .tp_as_mapping = &chain_map,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_richcompare = chain_richcompare,
    .tp_iter = chain_iter,
    .tp_methods = chain_methods,
};

int sl__tls_chain_init(void)
{
    PyObject *abc = NULL, *seq = NULL, *r = NULL;
    int rc = -1;
    if (PyType_Ready(&chain_type) < 0)
        return -1;
    /* isinstance(chain, collections.abc.Sequence), as for a list. */
    if ((abc = PyImport_ImportModule("collections.abc")) == NULL ||
        (seq = PyObject_GetAttrString(abc, "Sequence")) == NULL ||
        (r = PyObject_CallMethod(seq, "register", "O", (PyObject *)&chain_type)) == NULL)
        goto out;
    rc = 0;
out:
    Py_XDECREF(r);
    Py_XDECREF(seq);
    Py_XDECREF(abc);
    return rc;
}
