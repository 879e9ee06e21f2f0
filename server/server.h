/*
 * server: the C core's public seam. It accepts connections, speaks HTTP/1.1
 * and calls "the app" through `struct sl_app_ops`. It knows nothing of
 * Python: python/ implements the ops; tests implement them with a fake app.
 *
 * Threading: one worker = one thread. Nothing here is thread-safe; every
 * call for a worker happens on that worker's thread, except
 * sl_worker_signal_drain() which is async-signal-safe.
 *
 * Driving: the worker owns an epoll fd (sl_worker_fd). The embedding loop
 * watches it for readability and calls sl_worker_poll(); it also calls
 * sl_worker_poll() again after sl_worker_next_timer_ms() milliseconds so
 * timers fire. sl_worker_run() is a self-contained blocking loop that does
 * both, for embedders without a loop of their own.
 *
 * Callbacks (on_request, on_event) are only ever called from inside
 * sl_worker_poll()/sl_worker_run(), never from inside an sl_req_* or
 * sl_resp_* call. Work such a call makes possible (the next pipelined
 * request, resuming a paused body read, a queued event) is deferred to the
 * next poll, and the worker's fd is made readable so that poll comes soon.
 */
#ifndef SL_SERVER_SERVER_H
#define SL_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "server/h1.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sl_worker;
struct sl_req; /* one request/response exchange; opaque */

enum sl_req_event {
    SL_REQ_BODY,       /* body bytes arrived, or the body is now complete;
                          on a WebSocket: a message arrived (sl_ws_recv) */
    SL_REQ_DRAIN,      /* buffered output fell below the low-water mark */
    SL_REQ_DISCONNECT, /* the client went away or the connection was closed:
                          every later sl_resp_* call returns -EPIPE. An EOF
                          from the client (close or half-close) while the
                          app has not ended its response counts as gone. */
    SL_REQ_CANCEL,     /* timeouts.app expired before the app ended its
                          response: the core answered 504 (nothing of the
                          response committed yet) or delivered what the app
                          gave and closed. The app should stop working on
                          the request; its sl_resp_* calls get -EPIPE. */
};

struct sl_app_ops {
    /*
     * A request head is complete. sl_req_head() is valid until this returns;
     * the req itself stays valid until the app calls sl_req_release(). The
     * app must eventually answer (sl_resp_*) or release it.
     */
    void (*on_request)(void *app, struct sl_req *req);
    /* Something the app may be waiting for happened on `req`. */
    void (*on_event)(void *app, struct sl_req *req, enum sl_req_event ev);
};

/* ---- request side --------------------------------------------------- */

/* The parsed head. Borrowed, valid only inside on_request. */
const struct sl_h1_request *sl_req_head(const struct sl_req *r);

/* Peer and local addresses; NULL/0 length for Unix-socket peers and once
 * the connection is gone (read them in on_request). Behind a proxy
 * (proxy.*) they are the real client's: the PROXY header's source and
 * destination, and the client that trusted forwarding headers named
 * (port 0 when they gave none). */
const struct sockaddr *sl_req_peer(const struct sl_req *r, socklen_t *len);
const struct sockaddr *sl_req_local(const struct sl_req *r, socklen_t *len);
bool sl_req_is_unix(const struct sl_req *r);
/* The listener's unix path for Unix sockets, else NULL. */
const char *sl_req_unix_path(const struct sl_req *r);

/* What a trusted proxy said about the client's scheme: 0 = nothing (use
 * the connection's own), 1 = http, 2 = https (enum sl_proxy_scheme). */
int sl_req_forwarded_scheme(const struct sl_req *r);
/* The host[:port] a trusted proxy says the client asked for
 * (X-Forwarded-Host, Forwarded host=): false when none. *host borrows the
 * head: valid only inside on_request. *port is the one given, else 0. */
bool sl_req_forwarded_host(const struct sl_req *r, const char **host, size_t *len, int *port);

/* The intercept route the request matched (its action is `app` or
 * `tracemalloc`: the others never reach the app), or NULL. */
const struct sl_route_config *sl_req_route(const struct sl_req *r);
/* The request's id (http.request_id; NULL, *len 0 when off). Borrowed:
 * valid as long as the req. */
const char *sl_req_request_id(const struct sl_req *r, size_t *len);

/* The path a trusted proxy says it mounted the app at (X-Forwarded-Prefix,
 * percent-encoded as sent, no trailing slash; *len 0 for the root): false
 * when none. *prefix borrows the head: valid only inside on_request. */
bool sl_req_forwarded_prefix(const struct sl_req *r, const char **prefix, size_t *len);

void sl_req_set_data(struct sl_req *r, void *data);
void *sl_req_data(const struct sl_req *r);

/*
 * Body bytes buffered so far and not yet consumed: *data and *len (borrowed,
 * valid until the next call into the worker), *done once the whole body has
 * been received and nothing is left (so *done implies *len == 0: after
 * consuming the last bytes, peek again to see it). A peek that finds nothing
 * while more is due makes the app "waiting": SL_REQ_BODY fires once when
 * bytes (or the end, or an error) arrive, and the body timeout runs until
 * then. The first peek of a request that sent `Expect: 100-continue` sends
 * the interim 100 response. Once the response has been sent in full the
 * body is gone (the core drops the rest) and peek returns -EPIPE.
 * Returns 0, or -EPIPE (disconnected), -EMSGSIZE (body over max_body: the
 * core has answered 413), -ETIMEDOUT (body timeout), -EPROTO (bad chunked
 * framing: the core has answered 400).
 */
int sl_req_body_peek(struct sl_req *r, const char **data, size_t *len, bool *done);

/* Marks n bytes from the last peek consumed; reading from the socket
 * resumes once the buffer has room (bounded buffering). */
void sl_req_body_consume(struct sl_req *r, size_t n);

/* ---- response side -------------------------------------------------- */

/*
 * Starts the response: formats the head, which stays the core's until the
 * first sl_resp_body (or sl_resp_error before it, which answers `status`
 * instead: nothing of this response reached the client). Headers are validated (sl_h1_header_ok);
 * on a bad header nothing is written and -EINVAL is returned (the app then answers 500 with
 * sl_resp_error). The core adds Date, Server (unless the app set one or http.server_header is
 * empty), and framing: Content-Length when the app gave one, else chunked (HTTP/1.1) or
 * close-delimited (HTTP/1.0). `trailers` announces a later sl_resp_trailers (forces chunked). The
 * app's Connection and Transfer-Encoding headers are not sent (the core owns framing; "Connection:
 * close" from the app is honoured). Status must be 200..999 (-EINVAL otherwise: no 1xx final
 * responses). Returns 0, -EALREADY (already started), -EINVAL, -EPIPE, -ENOMEM.
 */
int sl_resp_start(struct sl_req *r, int status, const struct sl_h1_header *h, size_t n,
                  bool trailers);

/*
 * Sends body bytes (copied if they cannot be written at once, or held for
 * the next flush under write batching, see sl_worker_set_batching); an empty
 * call with `more` true just flushes the head. `more` false
 * ends the body (then trailers, if announced, are still owed). HEAD requests
 * and 204/304 responses write no body bytes.
 * Returns 0, 1 when buffered output is above the high-water mark (wait for
 * SL_REQ_DRAIN before sending more), -EPIPE (gone), -EPROTO (not started,
 * already ended, or more bytes than the declared Content-Length: on the
 * first body call nothing is taken, so an sl_resp_error can still answer
 * 500; later, the bytes that fit are sent, the response ends there and the
 * connection closes after it).
 */
int sl_resp_body(struct sl_req *r, const void *data, size_t len, bool more);

/*
 * Ends the body with `len` bytes of the open regular file `fd` from `off`
 * (ASGI http.response.pathsend), sent by the core with sendfile(2) (read and
 * write on TLS) as the socket takes them, like a files route: no byte of it
 * passes through the caller. Takes ownership of fd: it is closed once sent,
 * on any error, or with the exchange. With a declared Content-Length, `len`
 * must be what it still owes; a chunked response gets the file as one
 * chunk. The app's part of the response is over when this returns 0 (it may
 * release the req while the file is still going out). Returns 0, -EPIPE,
 * -EPROTO (not started, already ended, trailers announced, or a length
 * that does not match the Content-Length; nothing committed then).
 */
int sl_resp_file(struct sl_req *r, int fd, uint64_t off, uint64_t len);

/* Ends a response that announced trailers. Returns 0, -EINVAL, -EPIPE, -EPROTO. */
int sl_resp_trailers(struct sl_req *r, const struct sl_h1_header *h, size_t n);

/*
 * The app failed. While nothing of its response is committed (not started,
 * or started without a body call yet): sends `status` (500) with
 * `Connection: close` instead. After: the bytes the app gave are still
 * delivered (write timeout permitting), then the connection closes.
 * Returns 0 or -EPIPE.
 */
int sl_resp_error(struct sl_req *r, int status);

/* The app is done with `r`; it must not touch it again. The core frees it
 * once the connection no longer needs it. An unfinished response is failed
 * as by sl_resp_error(r, 500). */
void sl_req_release(struct sl_req *r);

/* ---- WebSocket (RFC 6455) ------------------------------------------- */

/*
 * True when the request is a WebSocket opening handshake the core checked:
 * GET, HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`, no body,
 * `Sec-WebSocket-Version: 13` and a valid `Sec-WebSocket-Key`. (A handshake
 * with another version got 426 with `Sec-WebSocket-Version: 13`, one with a
 * missing or bad key 400, from the core, before on_request.) The app either
 * accepts it (sl_ws_accept) or denies it with an ordinary HTTP response
 * (sl_resp_start and sl_resp_body, e.g. 403).
 */
bool sl_req_is_websocket(const struct sl_req *r);

/*
 * Accepts the handshake: writes the 101 with Sec-WebSocket-Accept, the
 * chosen subprotocol (NULL = none), Sec-WebSocket-Extensions when the core
 * accepted a permessage-deflate offer (websocket.compression; an app's own
 * Sec-WebSocket-Extensions is dropped) and the app's extra headers; from then
 * on the connection carries frames. Bytes the client sent after its
 * handshake are frames. Returns 0, -EPROTO (not a websocket, or a response
 * already started), -EINVAL (a bad header or subprotocol: nothing written),
 * -EPIPE (gone), -ENOMEM.
 */
int sl_ws_accept(struct sl_req *r, const char *subprotocol, const struct sl_h1_header *h, size_t n);

/*
 * The next complete message (inflated, if it was compressed): *data and
 * *len (borrowed until sl_ws_consume or the next call into the worker),
 * *text. Returns 1 with a message; 0 when none is there yet (SL_REQ_BODY
 * fires once when one arrives, or SL_REQ_DISCONNECT when the socket ends);
 * -EPIPE once the WebSocket is over and every message received before its
 * end was taken (sl_ws_close_code says how); -EPROTO before sl_ws_accept.
 * While websocket.max_queue messages (or max_message bytes) wait
 * unconsumed, the core reads no more frames (backpressure).
 */
int sl_ws_recv(struct sl_req *r, const void **data, size_t *len, bool *text);

/* Drops the message sl_ws_recv returned; reading frames resumes if it had
 * paused on a full queue. */
void sl_ws_consume(struct sl_req *r);

/*
 * Sends one message (a single frame; copied if it cannot be written at
 * once; compressed whole when permessage-deflate was negotiated, the message
 * is at least SL_WS_DEFLATE_MIN bytes and deflate makes it smaller). Returns 0, 1 when buffered
 * output is above the high-water mark (wait for SL_REQ_DRAIN), -EPIPE (the socket is closed or
 * closing), -EPROTO (not accepted), -ENOMEM.
 */
int sl_ws_send(struct sl_req *r, bool text, const void *data, size_t len);

/*
 * Starts the closing handshake with `code` (1000..4999 except 1004..1006,
 * 1015 and 1016..2999 unregistered: -EINVAL) and a UTF-8 reason of at most
 * 123 bytes (-EINVAL). The core waits a short while (2 s) for the peer's
 * close, then closes TCP. Returns 0, -EPIPE (already closed or closing),
 * -EPROTO (not accepted).
 */
int sl_ws_close(struct sl_req *r, unsigned code, const char *reason, size_t len);

/* How the WebSocket ended, valid once sl_ws_recv returned -EPIPE: the
 * peer's close code (1005 when its close had none), the code the core sent
 * for a protocol violation (1002, 1007, 1009) or on shutdown (1001), the
 * app's own code after sl_ws_close, or 1006 when the connection dropped
 * without a close. */
unsigned sl_ws_close_code(const struct sl_req *r);

/* The reason in the peer's close frame (UTF-8, at most 123 bytes; "" when
 * none, or when our side closed first), borrowed while r lives. */
const char *sl_ws_close_reason(const struct sl_req *r, size_t *len);

/* ---- worker ---------------------------------------------------------- */

/*
 * A worker serving the listener fds (already bound and listening, one per
 * cfg->listeners entry, in the same order; borrowed). Returns NULL with
 * errno set.
 */
struct sl_worker *sl_worker_new(const struct sl_config *cfg, const int *listen_fds,
                                const struct sl_app_ops *ops, void *app);
void sl_worker_free(struct sl_worker *w);

int sl_worker_fd(const struct sl_worker *w);

/*
 * Handles up to `budget` ready events without blocking, and fires expired
 * timers. Returns 1 when more work may be pending (call again soon), 0 when
 * idle, or a negative errno.
 */
int sl_worker_poll(struct sl_worker *w, unsigned budget);

/* Milliseconds until the next timer is due; -1 when none is armed. The
 * worker remembers the answer: should a call between polls arm a timer due
 * earlier, it makes its fd readable so that the embedder polls and asks
 * again. */
int sl_worker_next_timer_ms(struct sl_worker *w);

/*
 * Write batching, for embedders whose app answers between polls, from the
 * callbacks of its own event loop. Off by default: sl_resp_* write to the
 * socket at once. On: the small writes (up to 16 KiB queued per connection)
 * an app makes outside sl_worker_poll are held in the connection's output
 * queue, so that the responses one turn of the embedding loop produces go
 * out back to back when it ends. A client waiting on the other side is then
 * woken once per turn instead of once per response, as with uvloop's
 * transports. Larger writes, and writes from inside a poll, go out at once.
 *
 * With batching on, the embedder calls sl_worker_flush() once the callbacks
 * ready in its loop's turn have run, whenever sl_worker_flush_pending();
 * sl_worker_poll() flushes first too, and sl_worker_next_timer_ms() says 0
 * while a flush is pending. sl_worker_flush() writes and does the
 * bookkeeping a finished response allows, like an immediate write would
 * (it never calls the app: work for it is deferred to the next poll). A
 * write error found then closes the connection; the app, if it still
 * holds the req, gets SL_REQ_DISCONNECT.
 */
void sl_worker_set_batching(struct sl_worker *w, bool on);
bool sl_worker_flush_pending(const struct sl_worker *w);
void sl_worker_flush(struct sl_worker *w);

/* Graceful drain: stop accepting, close idle keep-alives, let in-flight
 * requests finish (connections close after their current response). */
void sl_worker_drain(struct sl_worker *w);

/*
 * The listening fds are this process's own copies (a forked worker): the
 * drain then closes them, so that once every process sharing a socket has
 * closed it the kernel refuses new connections at once instead of queueing
 * them in a backlog nobody accepts from. Off by default (the fds are
 * borrowed).
 */
void sl_worker_set_owns_listeners(struct sl_worker *w, bool on);

/* Async-signal-safe: asks the worker to drain (wakes its epoll fd). A second
 * call before the worker is done sets sl_worker_abort_requested(). */
void sl_worker_signal_drain(struct sl_worker *w);
bool sl_worker_draining(const struct sl_worker *w);

/* Async-signal-safe: sl_worker_signal_drain for a restart (a reload, a
 * recycling): open WebSockets are closed with 1012 (Service Restart, the
 * client may reconnect at once) instead of 1001 (Going Away). */
void sl_worker_signal_restart(struct sl_worker *w);
bool sl_worker_abort_requested(const struct sl_worker *w);

/* True once draining and no connection is left. */
bool sl_worker_done(const struct sl_worker *w);

/* Counters, for tests and diagnostics. Pool buffers are the
 * only per-connection memory besides the connection structs: an idle
 * keep-alive connection holds none. */
struct sl_worker_stats {
    size_t conns;                 /* open connections */
    size_t conn_bytes;            /* heap held by their structs */
    size_t bufs_in_use;           /* pool buffers held by connections (input + output) */
    size_t bufs_free;             /* pool buffers cached for reuse */
    size_t buf_bytes;             /* bytes of all pool buffers mapped, in use or free */
    uint64_t accepted;            /* connections accepted */
    uint64_t requests;            /* request heads handed to the app */
    uint64_t client_aborts;       /* exchanges whose client left (EOF, reset, failed
                                     write) before the response was out */
    uint64_t app_timeouts;        /* requests cancelled by timeouts.app */
    uint64_t proxy_rejects;       /* connections closed: bad or missing PROXY header */
    uint64_t conn_ip_rejects;     /* connections closed: limits.max_connections_per_ip */
    uint64_t rate_rejects;        /* requests answered 429: limits.rate */
    uint64_t concurrency_rejects; /* requests answered 503: limits.concurrency */
};
void sl_worker_read_stats(const struct sl_worker *w, struct sl_worker_stats *out);

/* Blocking loop (epoll_wait + timers) until sl_worker_done() or
 * sl_worker_abort_requested(). Returns 0 or a negative errno. */
int sl_worker_run(struct sl_worker *w);

#ifdef __cplusplus
}
#endif

#endif
