/*
 * receive: ASGI receive() for HTTP.
 *
 * Hands out the request body in the chunks the core has buffered
 * (http.request, more_body while more may come), sleeping on a future the
 * core's SL_REQ_BODY event resolves. Consuming a chunk lets the core read
 * more from the socket, so a large upload flows through bounded buffers at
 * the pace the app reads it. After the body, receive() sleeps until the
 * response is complete or the client is gone (an EOF from it counts),
 * then says http.disconnect.
 */
#include <errno.h>

#include "python/bridge_internal.h"

/* {"type": "http.disconnect"} (new reference; a fresh dict: apps mutate). */
static PyObject *disconnect_msg(void)
{
    PyObject *d = PyDict_New();
    if (d != NULL && PyDict_SetItem(d, sl__py.s.type, sl__py.s.http_disconnect) < 0)
        Py_CLEAR(d);
    return d;
}

/* {"type": "http.request", "body": body, "more_body": more}; steals body. */
static PyObject *request_msg(PyObject *body, bool more)
{
    const struct sl__strs *s = &sl__py.s;
    PyObject *d = body ? PyDict_New() : NULL;

    if (d != NULL &&
        (PyDict_SetItem(d, s->type, s->http_request) < 0 || PyDict_SetItem(d, s->body, body) < 0 ||
         PyDict_SetItem(d, s->more_body, more ? Py_True : Py_False) < 0))
        Py_CLEAR(d);
    Py_XDECREF(body);
    return d;
}

/* The next body chunk, from data[0..len) the peek returned. */
static PyObject *take_chunk(struct sl__exchange *ex, const char *data, size_t len, bool done)
{
    PyObject *body = PyBytes_FromStringAndSize(data, (Py_ssize_t)len); /* new */

    if (body == NULL)
        return NULL;
    if (len > 0)
        sl_req_body_consume(ex->req, len);
    if (!done) {
        /* Saves the app a round trip for an empty final message: if that
         * was the last chunk, say so now. */
        const char *d2;
        size_t l2;
        bool done2 = false;
        if (sl_req_body_peek(ex->req, &d2, &l2, &done2) == 0 && l2 == 0 && done2)
            done = true;
    }
    if (done)
        ex->body_done = true;
    return request_msg(body, !done);
}

static PyObject *recv_try(PyObject *owner, PyObject **wait)
{
    struct sl__exchange *ex = (struct sl__exchange *)owner;
    const char *data;
    size_t len;
    bool done = false;
    int rc;

    if (ex->req == NULL || ex->disconnected)
        return disconnect_msg();
    if (!ex->body_done) {
        rc = sl_req_body_peek(ex->req, &data, &len, &done);
        if (rc < 0) {
            /* Gone, or the core already answered (413, 400, timeout): the
             * app must stop, and anything it sends is refused. */
            ex->disconnected = true;
            ex->body_done = true;
            return disconnect_msg();
        }
        if (len > 0 || done)
            return take_chunk(ex, data, len, done);
    } else if (ex->resp == SL__RESP_ENDED) {
        return disconnect_msg();
    }
    *wait = sl__py_waiter(&ex->recv_waiter);
    return NULL;
}

PyObject *sl__receive(struct sl__exchange *ex)
{
    if (ex->ws != SL__WS_NONE)
        return sl__ws_receive(ex);
    return sl__op_new((PyObject *)ex, recv_try);
}
