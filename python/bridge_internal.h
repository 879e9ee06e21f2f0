/*
 * bridge internals shared by the python/ sources. Not a public header.
 *
 * Everything here runs on the worker's one thread with the GIL held (the
 * bridge never releases it: the asyncio loop is the outer loop). Functions
 * returning PyObject * say whether the reference is new or borrowed.
 */
#ifndef SL_PYTHON_BRIDGE_INTERNAL_H
#define SL_PYTHON_BRIDGE_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "server/server.h"

/* Interned strings, created once by sl__py_strings_init(). */
struct sl__strs {
    /* scope keys */
    PyObject *type, *asgi, *http_version, *method, *scheme, *path, *raw_path, *query_string,
        *root_path, *headers, *client, *server, *state, *extensions, *version, *spec_version;
    /* message keys */
    PyObject *body, *more_body, *status, *trailers, *more_trailers, *message;
    /* values */
    PyObject *http, *lifespan, *v1_0, *v1_1, *empty, *http_request, *http_disconnect,
        *lifespan_startup, *lifespan_shutdown;
    /* attribute and method names */
    PyObject *_asyncio_future_blocking, *set_result, *done, *cancel, *exception, *add_done_callback;
};

/* Process-wide bridge state: one interpreter, one loop, one worker. */
struct sl__py {
    const struct sl_config *cfg;
    PyObject *app;            /* the ASGI callable */
    PyObject *loop;           /* the event loop of this process */
    PyObject *loop_factory;   /* callable returning a new loop */
    PyObject *inherited_loop; /* forked child: the parent's loop, never closed */
    bool forked;              /* this process is a forked child */
    /* Bound methods of `loop`, refreshed whenever the loop changes. */
    PyObject *create_task, *create_future, *call_soon, *call_later, *get_task_factory;
    PyObject *client_disconnected; /* exception type, subclass of OSError */
    PyObject *scope_template;      /* constant part of every HTTP scope */
    PyObject *lifespan_state;      /* scope["state"] source; NULL without lifespan */
    struct sl_worker *worker;      /* while serving */
    size_t nactive;                /* requests whose task has not finished */
    uint64_t nrequests;            /* requests started, ever */
    bool draining;                 /* the worker was seen draining */
    bool aborted;                  /* a second signal: exit without finalising */
    struct sl__strs s;
};

extern struct sl__py sl__py;

/* ---- interp.c --------------------------------------------------------- */

/* Binds sl__py.create_task etc. to `loop` (borrowed). Returns 0 or -1 with a
 * Python error set. */
int sl__py_bind_loop(PyObject *loop);

/* In a forked child, replaces the parent's loop with a fresh current one
 * (once). Returns 0 or -1 with a Python error set. */
int sl__py_loop_for_child(void);

/* Prints "saltare: <msg>" and the traceback of the current Python error to
 * stderr, then clears the error. Never exits, even for SystemExit. */
void sl__py_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Same for an exception object (borrowed) rather than the current error. */
void sl__py_log_exception(PyObject *exc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "saltare: <msg>" when cfg->log.level allows `level`. */
void sl__py_log(enum sl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* gc.collect(); gc.freeze(); malloc_trim(0); sl_proc_release_text(). Errors
 * are cleared. */
void sl__py_compact(void);

/* ---- awaitable.c ------------------------------------------------------ */

/* An awaitable that completes at once with None; immortal singleton
 * (borrowed; Py_NewRef it before returning it to Python). */
extern PyObject *sl__py_ready_none;

/*
 * A resumable operation: `await op` calls fn(owner, &wait). fn returns the
 * result (new reference), or NULL with a Python error, or NULL without an
 * error and *wait set to a new reference to an asyncio future; the awaiting
 * task then sleeps until that future is done and fn is called again.
 */
typedef PyObject *(*sl__op_fn)(PyObject *owner, PyObject **wait);

/* Raises StopIteration carrying `value` (borrowed), as a generator returning
 * it would (public API only). */
void sl__py_set_stop_iteration(PyObject *value);

/* New reference; `owner` is kept alive by the op (GC-tracked). */
PyObject *sl__op_new(PyObject *owner, sl__op_fn fn);

int sl__awaitable_init(void);

/* ---- scope.c ---------------------------------------------------------- */

/* The HTTP scope for `req` (new reference). *method and *path receive
 * borrowed references into the scope, for log lines. */
PyObject *sl__scope_http(struct sl_req *req, PyObject **method, PyObject **path);
/* {"version": "3.0", "spec_version": spec_version} (new reference). */
PyObject *sl__scope_asgi(const char *spec_version);
int sl__scope_init(void);
void sl__scope_fini(void);

/* ---- tls_chain.c ------------------------------------------------------ */

struct sl_tls_conn;
/* scope["extensions"]["tls"]["client_cert_chain"] of a TLS connection (new
 * reference): a read-only sequence of PEM strings encoded on first use, or
 * an empty list when the client sent no certificate. */
PyObject *sl__tls_chain_new(const struct sl_tls_conn *t);
int sl__tls_chain_init(void);

/* ---- request.c -------------------------------------------------------- */

enum sl__resp_state {
    SL__RESP_INIT,     /* nothing sent */
    SL__RESP_BODY,     /* started, body in progress */
    SL__RESP_TRAILERS, /* body ended, trailers announced and owed */
    SL__RESP_ENDED,    /* response complete */
};

/* Where a WebSocket exchange is (python/ws.c); NONE for HTTP. */
enum sl__ws_state {
    SL__WS_NONE,
    SL__WS_CONNECTING, /* websocket.connect not yet received by the app */
    SL__WS_CONNECTED,  /* connect received; no accept yet */
    SL__WS_ACCEPTED,
    SL__WS_DENIED, /* closed before accept (403) or an HTTP denial response */
    SL__WS_CLOSED, /* the app sent websocket.close after accept */
};

/*
 * One HTTP exchange as the app sees it. The object itself is the `receive`
 * callable and the coroutine its Task runs (wrapping the app's); `send` is a
 * small companion object. While the request is in flight, `req` holds a
 * reference to it (sl_req_data).
 */
struct sl__exchange {
    PyObject ob_base; /* PyObject_HEAD */
    vectorcallfunc vectorcall;
    struct sl_req *req;               /* NULL once released to the core */
    PyObject *coro;                   /* app(scope, receive, send); cleared when it ends */
    PyObject *task;                   /* the Task running this exchange; cleared likewise */
    PyObject *recv_waiter;            /* future receive() sleeps on, or NULL */
    PyObject *send_waiter;            /* future send() sleeps on (backpressure), or NULL */
    PyObject *trailers;               /* list of trailer pairs while more_trailers, or NULL */
    PyObject *method;                 /* for log lines */
    PyObject *path;                   /* for log lines */
    struct sl__exchange *prev, *next; /* active list (unfinished tasks) */
    enum sl__resp_state resp;
    uint8_t ws; /* enum sl__ws_state */
    bool trailers_announced;
    bool body_done;    /* the request body has been handed over entirely */
    bool disconnected; /* the client is gone: send raises ClientDisconnected */
    bool failed;       /* the task raised */
    bool linked;       /* in the active list */
};

extern PyTypeObject sl__exchange_type;
extern const struct sl_app_ops sl__py_ops;

/* Wakes the task sleeping on *slot (steals the future): set_result(None). */
void sl__py_wake(PyObject **slot);

/* A future for receive()/send() to sleep on, kept in *slot (new reference
 * returned; the slot keeps its own). */
PyObject *sl__py_waiter(PyObject **slot);

/* Cancels every unfinished request task (shutdown timeout). */
void sl__requests_cancel_all(void);

/* Forgets every request still attached to the worker before it is freed. */
void sl__requests_detach_all(void);

int sl__request_init(void);

/* ---- receive.c / send.c ----------------------------------------------- */

/* receive(): a new op (new reference). */
PyObject *sl__receive(struct sl__exchange *ex);

/* The `send` callable bound to `ex` (new reference). */
PyObject *sl__sender_new(struct sl__exchange *ex);
int sl__send_init(void);

/* Collects ASGI header pairs from `seq` into an array of sl_h1_header.
 * `keep` receives a new reference that keeps the pointed-to bytes alive. */
struct sl__hdrs {
    struct sl_h1_header *v;
    size_t n;
    struct sl_h1_header small[24];
    PyObject *keep;
};
int sl__hdrs_collect(struct sl__hdrs *h, PyObject *seq);
void sl__hdrs_release(struct sl__hdrs *h);

/* send.c: the HTTP response messages, for the WebSocket denial response. */
PyObject *sl__send_http_start(struct sl__exchange *ex, PyObject *msg);
PyObject *sl__send_http_body(struct sl__exchange *ex, PyObject *msg);

/* ---- ws.c ------------------------------------------------------------- */

/* The websocket scope for `req` (new reference); like sl__scope_http. */
PyObject *sl__scope_ws(struct sl_req *req, PyObject **method, PyObject **path);
/* receive() of a WebSocket exchange: a new op (new reference). */
PyObject *sl__ws_receive(struct sl__exchange *ex);
/* send(msg) of a WebSocket exchange, msg["type"] = t[0..n) (new reference). */
PyObject *sl__ws_send(struct sl__exchange *ex, PyObject *msg, const char *t, Py_ssize_t n);
/* The app ended: 403/500 before accept, close 1011 if it raised after. */
void sl__ws_settle(struct sl__exchange *ex, bool raised);

/* ---- lifespan.c ------------------------------------------------------- */

/* Runs lifespan startup per app.lifespan. Returns 0 (serving may start) or
 * SL_PY_APP_FAILED after logging why. */
int sl__lifespan_startup(void);

/* Runs lifespan shutdown, bounded by `timeout_ms` (0 = unbounded). Returns 0
 * or -1 (failed or timed out; logged). A no-op without lifespan. */
int sl__lifespan_shutdown(uint32_t timeout_ms);

/* Drops the lifespan object (after the loop stopped for good). */
void sl__lifespan_release(void);

int sl__lifespan_init(void);

/* ---- tracemalloc.c ------------------------------------------------------ */

/* Starts tracemalloc when a route of cfg has the action (before the app is
 * imported, so its imports are traced). 0, or -1 with a Python error. */
int sl__tracemalloc_init(const struct sl_config *cfg);

/* Stops tracing (its traces are freed) and drops the report function. */
void sl__tracemalloc_fini(void);

/* Answers `req` when its route is `tracemalloc` (GIL held, in on_request):
 * true then (the req is released), false for the app. */
bool sl__tracemalloc_answer(struct sl_req *req);

/* ---- serve.c ---------------------------------------------------------- */

/* Asks the serve loop to poll the worker again soon (after a release). */
void sl__serve_kick(void);

/* After a send: if the core held the output back (write batching), makes
 * sure a flush runs once the loop's current turn is over. */
void sl__serve_flush_soon(void);

/* Monotonic clock, milliseconds. */
uint64_t sl__now_ms(void);

#endif
