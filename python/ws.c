/*
 * ws: the ASGI websocket protocol (spec_version 2.4) on the core's sl_ws_*
 * seam.
 *
 * A WebSocket exchange is an ordinary exchange (request.c) whose `ws`
 * state is set: the scope is the websocket scope, receive() yields
 * websocket.connect, then websocket.receive per message and finally
 * websocket.disconnect with the close code; send() takes websocket.accept,
 * websocket.send, websocket.close and the websocket.http.response.*
 * messages of the denial-response extension.
 *
 *   CONNECTING --receive: connect--> CONNECTED --accept--> ACCEPTED
 *   CONNECTING/CONNECTED --close or http.response--> DENIED
 *   ACCEPTED --close--> CLOSED
 *
 * A close before accept is an HTTP 403; an app that returns without
 * accepting gets 403 too (500 when it raised); after accept, an app that
 * raises gets close 1011 and one that returns is closed with 1000 by the
 * core. Messages out of order raise RuntimeError, malformed ones TypeError
 * or ValueError, and anything sent once the socket is over raises
 * saltare.ClientDisconnected.
 */
#include <errno.h>
#include <string.h>

#include "python/bridge_internal.h"

static PyObject *s_websocket, *s_connect, *s_receive, *s_disconnect, *s_bytes, *s_text, *s_code,
    *s_reason, *s_subprotocol, *s_subprotocols, *s_ws, *s_wss, *s_https, *s_ext_key;

/* Interns the strings on first use. Returns 0 or -1 (error set). */
static int strs_init(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } t[] = {
        {&s_websocket, "websocket"},
        {&s_connect, "websocket.connect"},
        {&s_receive, "websocket.receive"},
        {&s_disconnect, "websocket.disconnect"},
        {&s_bytes, "bytes"},
        {&s_text, "text"},
        {&s_code, "code"},
        {&s_reason, "reason"},
        {&s_subprotocol, "subprotocol"},
        {&s_subprotocols, "subprotocols"},
        {&s_ws, "ws"},
        {&s_wss, "wss"},
        {&s_https, "https"},
        {&s_ext_key, "websocket.http.response"},
    };
    if (s_ext_key != NULL)
        return 0;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (*t[i].slot == NULL && (*t[i].slot = PyUnicode_InternFromString(t[i].text)) == NULL)
            return -1;
    return 0;
}

/* ---- the scope ------------------------------------------------------------------ */

/* Sec-WebSocket-Protocol values, in order, as a list of str (new reference). */
static PyObject *subprotocols(const struct sl_h1_request *h)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < h->nheaders; i++) {
        const struct sl_h1_header *f = &h->headers[i];
        if (!sl_h1_name_is(f, "sec-websocket-protocol", 22))
            continue;
        for (size_t a = 0; a < f->value_len;) {
            size_t b = a;
            while (b < f->value_len && f->value[b] != ',')
                b++;
            size_t s = a, e = b;
            while (s < e && (f->value[s] == ' ' || f->value[s] == '\t'))
                s++;
            while (e > s && (f->value[e - 1] == ' ' || f->value[e - 1] == '\t'))
                e--;
            if (e > s) {
                PyObject *p = PyUnicode_DecodeLatin1(f->value + s, (Py_ssize_t)(e - s), NULL);
                if (p == NULL || PyList_Append(list, p) < 0) {
                    Py_XDECREF(p);
                    Py_CLEAR(list);
                    break;
                }
                Py_DECREF(p);
            }
            a = b + 1;
        }
    }
    return list;
}

/* The HTTP scope turned into a websocket one, in place. Returns 0 or -1. */
static int to_ws_scope(PyObject *scope, struct sl_req *req)
{
    const struct sl__strs *s = &sl__py.s;
    PyObject *scheme = PyDict_GetItemWithError(scope, s->scheme); /* borrowed */
    bool tls = scheme != NULL && PyUnicode_Compare(scheme, s_https) == 0;
    PyObject *ext = NULL, *empty = NULL, *protos = NULL;
    int rc = -1;

    if (PyErr_Occurred())
        return -1;
    if (PyDict_SetItem(scope, s->type, s_websocket) < 0 ||
        PyDict_SetItem(scope, s->scheme, tls ? s_wss : s_ws) < 0 ||
        PyDict_DelItem(scope, s->method) < 0)
        return -1;
    /* The HTTP extensions (trailers, pathsend) do not apply; tls and
     * request_id do. */
    if ((ext = PyDict_New()) == NULL || (empty = PyDict_New()) == NULL ||
        PyDict_SetItem(ext, s_ext_key, empty) < 0)
        goto out;
    PyObject *old = PyDict_GetItemWithError(scope, s->extensions); /* borrowed */
    static const char *const kept[] = {"tls", "request_id"};
    for (size_t i = 0; old && i < sizeof(kept) / sizeof(kept[0]); i++) {
        PyObject *v = PyDict_GetItemString(old, kept[i]); /* borrowed */
        if (v && PyDict_SetItemString(ext, kept[i], v) < 0)
            goto out;
    }
    if (PyDict_SetItem(scope, s->extensions, ext) < 0 ||
        (protos = subprotocols(sl_req_head(req))) == NULL ||
        PyDict_SetItem(scope, s_subprotocols, protos) < 0)
        goto out;
    rc = 0;
out:
    Py_XDECREF(ext);
    Py_XDECREF(empty);
    Py_XDECREF(protos);
    return rc;
}

PyObject *sl__scope_ws(struct sl_req *req, PyObject **method, PyObject **path)
{
    PyObject *scope;
    if (strs_init() < 0 || (scope = sl__scope_http(req, method, path)) == NULL)
        return NULL;
    /* *method stays alive: method strings are interned in scope.c's table. */
    if (to_ws_scope(scope, req) < 0) {
        Py_DECREF(scope);
        return NULL;
    }
    return scope;
}

/* ---- receive ---------------------------------------------------------------------- */

static PyObject *event(PyObject *type)
{
    PyObject *d = PyDict_New();
    if (d && PyDict_SetItem(d, sl__py.s.type, type) < 0)
        Py_CLEAR(d);
    return d;
}

/* websocket.disconnect with the code and the peer's close reason (the
 * ASGI spec's optional `reason`, which uvicorn sends since 0.30.2; "" when
 * there was none). */
static PyObject *disconnect_event(unsigned code, const char *reason, size_t rlen)
{
    PyObject *d = event(s_disconnect), *c = PyLong_FromUnsignedLong(code), *why = NULL;
    /* The core checked the reason is UTF-8 (else the close was a 1007). */
    why = rlen ? PyUnicode_DecodeUTF8(reason, (Py_ssize_t)rlen, "replace")
               : Py_NewRef(sl__py.s.empty);
    if (d == NULL || c == NULL || why == NULL || PyDict_SetItem(d, s_code, c) < 0 ||
        PyDict_SetItem(d, s_reason, why) < 0)
        Py_CLEAR(d);
    Py_XDECREF(c);
    Py_XDECREF(why);
    return d;
}

static PyObject *message_event(const void *data, size_t len, bool text)
{
    PyObject *d = event(s_receive), *v;
    if (d == NULL)
        return NULL;
    v = text ? PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "strict")
             : PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    if (v == NULL || PyDict_SetItem(d, text ? s_text : s_bytes, v) < 0)
        Py_CLEAR(d);
    Py_XDECREF(v);
    return d;
}

/* websocket.disconnect saying how the socket ended. */
static PyObject *end_event(struct sl__exchange *ex)
{
    size_t rlen = 0;
    const char *reason = "";
    if (ex->req == NULL || ex->ws == SL__WS_CONNECTED || ex->ws == SL__WS_DENIED)
        return disconnect_event(1006, reason, rlen);
    reason = sl_ws_close_reason(ex->req, &rlen);
    return disconnect_event(sl_ws_close_code(ex->req), reason, rlen);
}

static PyObject *recv_try(PyObject *owner, PyObject **wait)
{
    struct sl__exchange *ex = (struct sl__exchange *)owner;
    const void *data;
    size_t len;
    bool text;

    if (ex->ws == SL__WS_CONNECTING) {
        ex->ws = SL__WS_CONNECTED;
        return event(s_connect);
    }
    if (ex->req == NULL || ex->ws == SL__WS_DENIED ||
        (ex->ws == SL__WS_CONNECTED && ex->disconnected))
        return end_event(ex);
    if (ex->ws == SL__WS_CONNECTED) { /* receive() before accept: wait for it */
        *wait = sl__py_waiter(&ex->recv_waiter);
        return NULL;
    }
    int rc = sl_ws_recv(ex->req, &data, &len, &text);
    if (rc == 1) {
        PyObject *m = message_event(data, len, text);
        sl_ws_consume(ex->req);
        return m;
    }
    if (rc < 0)
        return end_event(ex);
    *wait = sl__py_waiter(&ex->recv_waiter);
    return NULL;
}

PyObject *sl__ws_receive(struct sl__exchange *ex)
{
    if (strs_init() < 0)
        return NULL;
    return sl__op_new((PyObject *)ex, recv_try);
}

/* ---- send ------------------------------------------------------------------------- */

static PyObject *gone(struct sl__exchange *ex)
{
    ex->disconnected = true;
    PyErr_SetString(sl__py.client_disconnected, "the WebSocket is closed");
    return NULL;
}

static PyObject *order_error(const char *what, struct sl__exchange *ex)
{
    static const char *const state[] = {"",
                                        "before websocket.connect was received",
                                        "before websocket.accept",
                                        "after websocket.accept",
                                        "after the handshake was denied",
                                        "after websocket.close"};
    PyErr_Format(PyExc_RuntimeError, "%s %s", what, state[ex->ws]);
    return NULL;
}

/* Optional str-or-None field; *out borrowed UTF-8 or NULL. Returns 0/-1. */
static int opt_str(PyObject *msg, PyObject *key, const char **out, Py_ssize_t *n)
{
    PyObject *v = PyDict_GetItemWithError(msg, key); /* borrowed */
    *out = NULL;
    *n = 0;
    if (v == NULL || v == Py_None)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "'%U' must be a str or None, not %.100s", key,
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    *out = PyUnicode_AsUTF8AndSize(v, n);
    return *out ? 0 : -1;
}

static PyObject *ws_accept(struct sl__exchange *ex, PyObject *msg)
{
    struct sl__hdrs h;
    const char *proto;
    Py_ssize_t plen;
    int rc;

    if (ex->ws != SL__WS_CONNECTING && ex->ws != SL__WS_CONNECTED)
        return order_error("websocket.accept", ex);
    if (opt_str(msg, s_subprotocol, &proto, &plen) < 0)
        return NULL;
    if (sl__hdrs_collect(&h, PyDict_GetItemWithError(msg, sl__py.s.headers)) < 0 ||
        PyErr_Occurred()) {
        sl__hdrs_release(&h);
        return NULL;
    }
    rc = sl_ws_accept(ex->req, proto, h.v, h.n);
    sl__hdrs_release(&h);
    if (rc == -EPIPE)
        return gone(ex);
    if (rc == -EINVAL) {
        PyErr_SetString(PyExc_ValueError, "websocket.accept: a header or the subprotocol "
                                          "cannot be sent (not a token, or CR, LF or NUL)");
        return NULL;
    }
    if (rc < 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    ex->ws = SL__WS_ACCEPTED;
    sl__py_wake(&ex->recv_waiter); /* a receive() made before the accept */
    return Py_NewRef(sl__py_ready_none);
}

static PyObject *ws_send(struct sl__exchange *ex, PyObject *msg)
{
    PyObject *b = PyDict_GetItemWithError(msg, s_bytes); /* borrowed */
    const char *text;
    Py_ssize_t tlen;
    int rc;

    if (ex->ws == SL__WS_CLOSED)
        return gone(ex);
    if (ex->ws != SL__WS_ACCEPTED)
        return order_error("websocket.send", ex);
    if ((b == NULL && PyErr_Occurred()) || opt_str(msg, s_text, &text, &tlen) < 0)
        return NULL;
    if (b == Py_None)
        b = NULL;
    if ((b != NULL) == (text != NULL)) {
        PyErr_SetString(PyExc_TypeError,
                        "websocket.send needs exactly one of 'bytes' and 'text' (not None)");
        return NULL;
    }
    if (b != NULL) {
        Py_buffer buf;
        if (PyObject_GetBuffer(b, &buf, PyBUF_SIMPLE) < 0) {
            PyErr_Format(PyExc_TypeError, "websocket.send: 'bytes' must be bytes, not %.100s",
                         Py_TYPE(b)->tp_name);
            return NULL;
        }
        rc = sl_ws_send(ex->req, false, buf.buf, (size_t)buf.len);
        PyBuffer_Release(&buf);
    } else {
        rc = sl_ws_send(ex->req, true, text, (size_t)tlen);
    }
    sl__serve_flush_soon();
    if (rc < 0)
        return gone(ex);
    return rc == 1 ? sl__py_waiter(&ex->send_waiter) : Py_NewRef(sl__py_ready_none);
}

static PyObject *ws_close(struct sl__exchange *ex, PyObject *msg)
{
    PyObject *code = PyDict_GetItemWithError(msg, s_code); /* borrowed */
    const char *reason;
    Py_ssize_t rlen;
    long c = 1000;

    if (code == NULL && PyErr_Occurred())
        return NULL;
    if (ex->ws == SL__WS_CONNECTING || ex->ws == SL__WS_CONNECTED) {
        /* A close before accept denies the handshake: 403 (ASGI). */
        ex->ws = SL__WS_DENIED;
        ex->resp = SL__RESP_ENDED;
        sl_resp_error(ex->req, 403);
        sl__serve_flush_soon();
        return Py_NewRef(sl__py_ready_none);
    }
    if (ex->ws != SL__WS_ACCEPTED)
        return gone(ex);
    if (code != NULL && code != Py_None) {
        if (!PyLong_Check(code)) {
            PyErr_SetString(PyExc_TypeError, "websocket.close: 'code' must be an int");
            return NULL;
        }
        c = PyLong_AsLong(code);
        if (c == -1 && PyErr_Occurred())
            return NULL;
    }
    if (opt_str(msg, s_reason, &reason, &rlen) < 0)
        return NULL;
    int rc = c < 0 || c > 65535 ? -EINVAL : sl_ws_close(ex->req, (unsigned)c, reason, (size_t)rlen);
    if (rc == -EINVAL) {
        PyErr_Format(PyExc_ValueError,
                     "websocket.close: code %ld may not be sent (1000-4999, not 1004-1006, "
                     "1015-2999) or the reason is over 123 bytes",
                     c);
        return NULL;
    }
    ex->ws = SL__WS_CLOSED;
    if (rc < 0)
        return gone(ex);
    return Py_NewRef(sl__py_ready_none);
}

static bool is(const char *t, Py_ssize_t n, const char *lit)
{
    return (size_t)n == strlen(lit) && memcmp(t, lit, (size_t)n) == 0;
}

PyObject *sl__ws_send(struct sl__exchange *ex, PyObject *msg, const char *t, Py_ssize_t n)
{
    if (strs_init() < 0)
        return NULL;
    if (ex->req == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "send() after the app returned");
        return NULL;
    }
    if (is(t, n, "websocket.send"))
        return ws_send(ex, msg);
    if (is(t, n, "websocket.accept"))
        return ws_accept(ex, msg);
    if (is(t, n, "websocket.close"))
        return ws_close(ex, msg);
    if (is(t, n, "websocket.http.response.start") || is(t, n, "websocket.http.response.body")) {
        if (ex->ws != SL__WS_CONNECTING && ex->ws != SL__WS_CONNECTED && ex->ws != SL__WS_DENIED)
            return order_error("the denial response", ex);
        ex->ws = SL__WS_DENIED;
        return t[24] == 's' ? sl__send_http_start(ex, msg) : sl__send_http_body(ex, msg);
    }
    PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message type '%s' for a WebSocket", t);
    return NULL;
}

/* ---- the app's end ---------------------------------------------------------------- */

void sl__ws_settle(struct sl__exchange *ex, bool raised)
{
    if (ex->req == NULL)
        return;
    switch (ex->ws) {
    case SL__WS_CONNECTING:
    case SL__WS_CONNECTED:
        if (!ex->disconnected)
            sl_resp_error(ex->req, raised ? 500 : 403);
        break;
    case SL__WS_DENIED:
        if (ex->resp != SL__RESP_ENDED)
            sl_resp_error(ex->req, 500); /* a denial response left unfinished */
        break;
    case SL__WS_ACCEPTED:
        if (raised && !ex->disconnected)
            sl_ws_close(ex->req, 1011, NULL, 0);
        break; /* returned: the core closes with 1000 at release */
    default:
        break;
    }
    ex->resp = SL__RESP_ENDED;
}
