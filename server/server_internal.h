/*
 * server internals shared by worker.c, conn.c, req.c and resp.c.
 *
 * Object model:
 *   worker   one per thread: epoll fd, listeners, timer wheel, pools, the
 *            live connection list, deferred work (pending connections and
 *            queued app events).
 *   conn     one per accepted socket. Owns the read buffer (only while it
 *            holds bytes), the output queue and at most one current req.
 *   req      one request/response exchange. Held by the conn until the
 *            exchange is over (response flushed, body received or dropped)
 *            and by the app until sl_req_release(); freed to the worker's free
 *            list when neither holds it.
 *
 * Re-entrancy: app callbacks (on_request, on_event) are only ever called from
 * sl_worker_poll/run, never from inside an sl_req_* / sl_resp_* call. Work an
 * app call makes possible (parse the next pipelined request, resume reading)
 * is "kicked": done at once by the conn's processing loop when it is on the
 * stack (c->busy), else queued on the worker's pending list (and, outside
 * poll, the wake eventfd is written so the embedding loop polls soon).
 */
#ifndef SL_SERVER_SERVER_INTERNAL_H
#define SL_SERVER_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "server/date.h"
#include "base/log.h"
#include "server/pool.h"
#include "server/server.h"
#include "server/timer.h"
#include "server/transport.h"

#define SL__SMALL_BUF 4096u         /* read buffer for heads; response heads */
#define SL__LARGE_BUF 65536u        /* bodies, big heads, output overflow */
#define SL__HIGH_WATER (64u << 10)  /* sl_resp_body returns 1 above it */
#define SL__LOW_WATER (16u << 10)   /* SL_REQ_DRAIN below it */
#define SL__BATCH_MAX (16u << 10)   /* queued output a batched write may leave */
#define SL__DISCARD_MAX (64u << 10) /* unread body dropped to keep alive */
#define SL__LINGER_MS 2000u         /* lingering close bound */
#define SL__TICK_MS 8u              /* timer wheel resolution */
#define SL__RID_MAX 64u             /* longest request id (http.request_id) */

enum sl__tag { SL__TAG_LISTENER = 1, SL__TAG_CONN, SL__TAG_WAKE };

struct sl__listener {
    uint8_t tag; /* SL__TAG_LISTENER: first, epoll data points here */
    bool is_unix;
    int fd;
    const struct sl_transport *tp; /* for its connections */
    void *tp_arg;                  /* the transport's listener state (TLS contexts) */
    const struct sl_listener_config *cfg;
    struct sl_h1_limits h1;
};

union sl__addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Output bytes not yet written, in a pool buffer (this header first). */
struct sl__obuf {
    struct sl__obuf *next;
    uint32_t start, end, cap; /* data[start..end) pending; cap = usable bytes */
    bool large;
    char data[];
};

enum sl__conn_state {
    SL__C_IDLE,   /* no request bytes: fresh (header timer) or kept alive */
    SL__C_HEAD,   /* part of a request head buffered (header timer) */
    SL__C_REQ,    /* a request is being served (c->req set) */
    SL__C_LINGER, /* response sent, write side shut, draining input */
    SL__C_WS,     /* a WebSocket: frames (ws_conn.c); c->ws and c->req set */
    SL__C_DEAD,   /* closed, waiting to be freed at the end of poll */
};

struct sl_conn {
    uint8_t tag; /* SL__TAG_CONN: first, epoll data points here */
    uint8_t state;
    uint8_t peer_len, local_len;
    bool busy : 1;        /* the processing loop is on the stack */
    bool again : 1;       /* a kick arrived while busy: loop once more */
    bool pending : 1;     /* on the worker's pending list */
    bool readable : 1;    /* the socket may hold unread bytes (edge seen) */
    bool rpaused : 1;     /* reading stopped: the body buffer is full */
    bool wblocked : 1;    /* the last write was partial: wait for EPOLLOUT */
    bool close_after : 1; /* close once the current response is flushed */
    bool peer_eof : 1;    /* the peer shut its write side */
    bool rlarge : 1;      /* rbuf is a large-pool buffer */
    bool local_known : 1;
    bool epout : 1;      /* EPOLLOUT is in the epoll mask (added on the first blocked write) */
    bool batched : 1;    /* on the worker's batch list: output waits for a flush */
    bool need_proxy : 1; /* proxy.protocol: the PROXY header is still to come */
    bool proxy_ssl : 1;  /* the PROXY v2 header said the client spoke TLS */
    bool hs_pending : 1; /* TLS: the handshake runs under timeouts.handshake */
    int fd;
    const struct sl_transport *tp; /* all socket I/O goes through it */
    void *tp_ctx;                  /* the transport's state (NULL: plain) */
    uint32_t nrequests;            /* requests started on this connection */
    uint32_t client_id;            /* client table entry counting it (limits.c); 0 = none */
    uint64_t born_ms;              /* accepted at (limits.max_connection_lifetime) */
    uint32_t rlen;                 /* bytes in rbuf */
    uint32_t rstart;               /* leftover (next request) starts here after a request */
    uint32_t parse_prev;           /* head bytes already searched */
    char *rbuf;                    /* NULL while no bytes are buffered */
    struct sl_worker *w;
    struct sl__listener *l;
    struct sl_req *req;
    struct sl__ws *ws; /* WebSocket state once accepted (ws_conn.c), else NULL */
    struct sl__obuf *out_head, *out_tail;
    size_t out_bytes;
    struct sl_conn *next, *prev; /* live list; `next` links the dead list */
    struct sl_conn *pnext;       /* pending list */
    struct sl_conn *bnext;       /* batch list */
    struct sl_timer rtimer;      /* header / keep-alive / body / linger */
    struct sl_timer wtimer;      /* write progress */
    union sl__addr peer;
    union sl__addr local;
};

enum { SL__EV_BODY = 1, SL__EV_DRAIN = 2, SL__EV_DISCONNECT = 4, SL__EV_CANCEL = 8 };

struct sl__ws_msg;
struct sl_ws_deflater;
struct sl_ws_inflater;

struct sl_req {
    struct sl_conn *c; /* NULL once the conn let go of it */
    struct sl_worker *w;
    struct sl__listener *l;
    void *data;
    struct sl_req *evnext;   /* event queue, or free list */
    struct sl_req *all_next; /* every req the worker allocated */

    bool app_holds : 1;   /* not yet sl_req_release()d */
    bool queued : 1;      /* on the worker's event queue */
    bool head_only : 1;   /* HEAD request */
    bool req_ka : 1;      /* the request allows keep-alive */
    bool chunked_req : 1; /* chunked request body */
    bool expect : 1;      /* Expect: 100-continue on HTTP/1.1 */
    bool continue_sent : 1;
    bool body_complete : 1;
    bool body_waiting : 1; /* the app peeked and found nothing */
    bool started : 1;
    bool body_ended : 1; /* last body bytes given (trailers may be owed) */
    bool ended : 1;      /* the app is done with the response */
    bool finished : 1;   /* response flushed; only body leftovers remain */
    bool gone : 1;       /* the app's sl_resp_* now get -EPIPE */
    bool disc_sent : 1;  /* DISCONNECT delivered or not wanted */
    bool want_drain : 1; /* sl_resp_body returned 1 */
    bool ka : 1;         /* the response keeps the connection alive */
    bool no_body : 1;    /* HEAD, 204, 304: no body bytes on the wire */
    bool chunked : 1;    /* chunked response framing */
    bool has_cl : 1;     /* the app declared Content-Length */
    bool trailers : 1;   /* trailers announced */
    bool logged : 1;
    bool in_free : 1; /* on the worker's free list */
    bool ws : 1;      /* a checked WebSocket handshake (sl_req_is_websocket) */
    bool metered : 1; /* counted in flight by the metrics registry */
    bool mdone : 1;   /* its exchange was counted by the metrics registry */
    uint16_t ws_code; /* WebSocket close code for sl_ws_close_code; 0 = 1006 */
    uint8_t rid_len;  /* http.request_id: the id's length, 0 = none */
    char rid[SL__RID_MAX];
    uint32_t ws_key_off; /* Sec-WebSocket-Key value in c->rbuf (24 bytes) */
    uint8_t evmask;      /* SL__EV_* waiting to be delivered */
    uint8_t minor;       /* request HTTP minor version */
    int16_t status;
    int body_err; /* sticky peek error, 0 = none */

    /* WebSocket (ws_conn.c). */
    uint8_t ws_pmd; /* permessage-deflate accepted: our window bits (8..15), 0x10 if
                     * the offer named them; 0 = not negotiated */
    uint8_t ws_reason_len;
    char *ws_reason;         /* the peer's close reason, malloc'd; NULL = none */
    struct sl__ws_msg *ws_q; /* received messages waiting for the app; the req
                              * owns them so they outlive the connection */

    uint64_t resp_cl;    /* declared Content-Length */
    uint64_t resp_sent;  /* body bytes the app gave */
    uint64_t body_left;  /* Content-Length body bytes not yet received */
    uint64_t body_total; /* body bytes received (decoded) */
    uint64_t discard_limit;
    struct sl_h1_chunked dec;
    /* Offsets into c->rbuf. The head stays at [0, head_len) until the
     * exchange is over (the access log reads it); decoded body bytes are
     * [body_pos, body_end); undecoded bytes start at raw_pos. */
    uint32_t head_len, body_pos, body_end, raw_pos;
    uint32_t method_off, method_len, path_off, path_len, ua_off, ua_len; /* access log */
    uint32_t query_off, query_len, ref_off, ref_len; /* access log; query_off 0 = none */
    uint64_t t_start_us;
    /* proxy.headers from a trusted peer (proxy.c): the client they named
     * (fwd_client_len 0 = none), the scheme (enum sl_proxy_scheme) and the
     * host, an offset into the head. */
    union sl__addr fwd_client;
    uint8_t fwd_client_len;
    uint8_t fwd_scheme;
    uint32_t fwd_host_off, fwd_host_len;
    /* X-Forwarded-Prefix, an offset into the head; fwd_prefix false = none */
    bool fwd_prefix;
    uint32_t fwd_prefix_off, fwd_prefix_len;
    /* The formatted response head, from sl_resp_start until the app's first
     * body call commits it to the output queue. While it is here nothing of
     * the app's response is the client's yet: a failure can still be a 500. */
    struct sl__obuf *head;
    struct sl_timer atimer;              /* timeouts.app: armed while the app works on it */
    const struct sl_route_config *route; /* the intercept route matched, or NULL */
    uint32_t client_id; /* client table entry counting it in flight (limits.c); 0 = none */
    int file_fd;        /* files route: the body's file, 0 = none (route_files.c) */
    uint64_t file_off;  /* next byte of it to send */
    uint64_t file_left; /* bytes of it still to send */
    bool file_chunked;  /* sl_resp_file on a chunked response: CRLF after the file */
};

struct sl_worker {
    int epfd;
    int wakefd;
    uint8_t wake_tag; /* SL__TAG_WAKE: epoll data of wakefd */
    bool in_poll;
    bool wake_sent;
    bool batching; /* sl_worker_set_batching */
    bool draining;
    bool accept_paused;
    atomic_uint signals;
    atomic_bool restarting; /* sl_worker_signal_restart: WebSockets close with 1012 */
    const struct sl_config *cfg;
    const struct sl_app_ops *ops;
    void *app;
    struct sl__listener *ls;
    size_t nls;
    bool owns_listeners;  /* drain closes ls[i].fd (sl_worker_set_owns_listeners) */
    uint64_t now_ms;      /* CLOCK_MONOTONIC */
    uint64_t told_due_ms; /* the embedder polls by then (last sl_worker_next_timer_ms) */
    struct sl_timer_wheel wheel;
    struct sl_timer housekeeping; /* pool trimming */
    struct sl_timer accept_timer; /* resume after EMFILE */
    struct sl_pool small, large;
    struct sl_date date;
    struct sl_access_log alog;
    char *server_line; /* "Server: x\r\n" or NULL */
    size_t server_line_len;
    struct sl_h1_header *hdrs; /* parse scratch, max_hdrs entries */
    size_t max_hdrs;
    struct sl_h1_request head; /* the head being handed to on_request */
    struct sl_req *head_req;   /* whose head it is, during on_request */
    struct sl_conn *conns;     /* live list */
    size_t nconns;
    uint64_t accepted, requests; /* counters for sl_worker_stats */
    uint64_t client_aborts, app_timeouts;
    uint64_t proxy_rejects; /* connections closed for a bad or missing PROXY header */
    uint64_t conn_ip_rejects, rate_rejects, concurrency_rejects; /* limits.c */
    struct sl_client_table *clients;  /* limits.c; NULL until a limit needs it */
    struct sl_log_every maxconn_warn; /* "max_connections reached", once a second */
    struct sl_log_every proxy_warn;   /* bad PROXY headers, once a second */
    uint64_t rng[4];                  /* request ids: xoshiro256** state (reqid.c) */
    struct sl__root_fd {              /* route_files.c: files roots kept open */
        const char *root;             /* the route's root, as written; NULL = free */
        int fd;                       /* O_PATH directory */
        uint64_t opened_ms;           /* reopened SL__ROOT_TTL_MS after this */
    } roots[8];
    struct sl_conn *pending;
    struct sl_conn *later; /* kicked past their per-round step budget */
    struct sl_conn *batch; /* output held for sl_worker_flush */
    /* pending, later and batch never hold a closed conn (sl__conn_close
     * unlinks it), so none can reach one that was freed. */
    struct sl_conn *dead;
    struct sl_req *evq_head, *evq_tail;
    struct sl_req *req_free;
    struct sl_req *req_all;
    struct sl_ws_deflater *ws_deflater; /* permessage-deflate, made on first use */
    struct sl_ws_inflater *ws_inflater; /* for messages that arrive in one piece */
};

/* worker.c */
uint64_t sl__worker_now(struct sl_worker *w);
void sl__worker_wake(struct sl_worker *w);
void sl__worker_kick(struct sl_conn *c);
void sl__worker_defer(struct sl_conn *c);
void sl__worker_queue_event(struct sl_req *r, int ev);
void sl__timer_arm(struct sl_conn *c, struct sl_timer *t, uint32_t ms);

/* conn.c */
struct sl_conn *sl__conn_new(struct sl_worker *w, struct sl__listener *l, int fd,
                             const union sl__addr *peer, socklen_t peer_len);
void sl__conn_free(struct sl_conn *c);
void sl__conn_io(struct sl_conn *c, uint32_t events);
void sl__conn_process(struct sl_conn *c);
void sl__conn_close(struct sl_conn *c);
void sl__conn_lost(struct sl_conn *c);
void sl__conn_response_flushed(struct sl_conn *c);
uint32_t sl__conn_rcap(const struct sl_conn *c);
void sl__conn_client(const struct sl_conn *c, char *out, size_t cap);
void sl__addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t cap);
void sl__conn_note_line(struct sl_conn *c, struct sl_req *r);

/* stats.c: SIGUSR1's line (installed by sl_worker_new, checked each poll) */
int sl__stats_on(struct sl_worker *w, int sig);
void sl__stats_off(struct sl_worker *w);
void sl__stats_check(struct sl_worker *w);

/* reqid.c */
void sl__reqid_seed(struct sl_worker *w);
/* Gives r its request id (http.request_id), and its clock for Server-Timing. */
void sl__reqid_assign(struct sl_conn *c, struct sl_req *r, const struct sl_h1_request *h);

/* req.c */
struct sl_req *sl__req_new(struct sl_worker *w);
void sl__req_maybe_free(struct sl_req *r);
void sl__req_detach(struct sl_req *r);
void sl__req_free_all(struct sl_worker *w);

/* ws_conn.c */
int sl__ws_handshake(struct sl_conn *c, struct sl_req *r, const struct sl_h1_request *h);
void sl__ws_step(struct sl_conn *c);
bool sl__ws_timer(struct sl_conn *c);
void sl__ws_after_write(struct sl_conn *c);
void sl__ws_release(struct sl_req *r);
void sl__ws_going_away(struct sl_conn *c);
void sl__ws_free(struct sl_conn *c);
void sl__ws_log(struct sl_conn *c);
void sl__ws_req_clear(struct sl_req *r); /* frees the req's queued messages and reason */

/* conn.c, for ws_conn.c */
int sl__conn_rbuf_get(struct sl_conn *c);
void sl__conn_rbuf_put(struct sl_conn *c);
ssize_t sl__conn_rbuf_read(struct sl_conn *c);
void sl__conn_linger(struct sl_conn *c);

/* resp.c */
/* Writes caller bytes now, or holds them for sl_worker_flush under write
 * batching (as sl_resp_body does). Returns 0 or -errno (broken: close). */
int sl__out_send(struct sl_conn *c, const struct iovec *iov, int n);
int sl__out_write(struct sl_conn *c, const struct iovec *extra, int nextra);
void sl__out_free(struct sl_conn *c);
void sl__out_ready(struct sl_conn *c);
int sl__out_want_write(struct sl_conn *c); /* arm EPOLLOUT: 0 or -errno */
void sl__resp_core_error(struct sl_conn *c, int status);
void sl__resp_fail(struct sl_req *r, int status);
void sl__resp_drop_head(struct sl_req *r);

#endif
