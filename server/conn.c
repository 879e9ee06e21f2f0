/*
 * conn: one client connection's state machine.
 *
 *   IDLE --first byte--> HEAD --head parsed--> REQ --response flushed and
 *   body received/dropped--> IDLE (keep-alive) or LINGER --EOF/timeout--> DEAD
 *
 * The socket is edge triggered, so `readable` remembers an edge we did not
 * act on: while a request is in flight with its body complete, bytes of the
 * next (pipelined) request stay in the kernel until the response is done.
 * Reading is also what bounds request bodies: when the buffer is full and
 * the app does not consume, we simply stop reading and TCP flow control
 * pushes back on the client.
 *
 * The read buffer holds the current head at [0, head_len) for the whole
 * exchange (the access log reads method, path and User-Agent from it) and is
 * only ever moved or released from the processing loop, never from inside an
 * app callback, so sl_req_head() pointers stay valid during on_request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "server/proxy.h"
#include "server/metrics_internal.h"
#include "server/route_internal.h"
#include "server/tls.h"
#include "server/server_internal.h"

#define STEP_BUDGET 64 /* state machine steps per connection and round */

static void rtimer_fired(struct sl_timer *t);
static void wtimer_fired(struct sl_timer *t);
static void proxy_reject(struct sl_conn *c, const char *why);

uint32_t sl__conn_rcap(const struct sl_conn *c)
{
    return (uint32_t)(c->rlarge ? c->w->large.size : c->w->small.size);
}

struct sl_conn *sl__conn_new(struct sl_worker *w, struct sl__listener *l, int fd,
                             const union sl__addr *peer, socklen_t peer_len)
{
    struct sl_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->tag = SL__TAG_CONN;
    c->state = SL__C_IDLE;
    c->fd = fd;
    c->tp = l->tp;
    c->w = w;
    c->l = l;
    if (peer_len > 0 && peer_len <= sizeof(c->peer)) {
        memcpy(&c->peer, peer, peer_len);
        c->peer_len = (uint8_t)peer_len;
    }
    c->born_ms = w->now_ms;
    /* limits.max_connections_per_ip: behind a PROXY header the client is
     * known once the header is read (proxy_done) */
    if (l->cfg->proxy.protocol == SL_PROXY_OFF && !sl__limits_conn_open(c)) {
        free(c);
        return NULL;
    }
    sl_timer_init(&c->rtimer, rtimer_fired);
    sl_timer_init(&c->wtimer, wtimer_fired);
    /* TCP_NODELAY and the other `tcp` options come from the listening
     * socket (listen.c): accepted sockets inherit them, no syscall here. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    /* proxy: the PROXY header precedes a TLS handshake; the transport
     * opens once it is read (proxy_done). */
    c->need_proxy = l->cfg->proxy.protocol != SL_PROXY_OFF;
    if (c->need_proxy)
        c->tp = &sl_transport_plain;
    else if (l->tp->open) { /* TLS: its session */
        if (!(c->tp_ctx = l->tp->open(fd, l->tp_arg))) {
            sl__limits_conn_close(c);
            free(c);
            return NULL;
        }
        c->hs_pending = true;
    }
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        if (c->tp_ctx)
            l->tp->close(-1, c->tp_ctx);
        sl__limits_conn_close(c);
        free(c);
        return NULL;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    const struct sl_timeouts *to = &l->cfg->timeouts;
    sl__timer_arm(c, &c->rtimer, c->hs_pending ? to->handshake_ms : to->header_ms);
    sl_metrics_conn(sl__metrics_l(c), +1);
    return c;
}

/* ---- read buffer -------------------------------------------------------- */

static int rbuf_get(struct sl_conn *c)
{
    if (c->rbuf)
        return 0;
    c->rbuf = sl_pool_get(&c->w->small);
    c->rlarge = false;
    c->rlen = c->rstart = c->parse_prev = 0;
    return c->rbuf ? 0 : -ENOMEM;
}

static void rbuf_put(struct sl_conn *c)
{
    if (!c->rbuf)
        return;
    sl_pool_put(c->rlarge ? &c->w->large : &c->w->small, c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rstart = c->parse_prev = 0;
}

/* Moves the bytes to a large buffer. */
static int rbuf_grow(struct sl_conn *c)
{
    if (c->rlarge)
        return -ENOBUFS;
    char *b = sl_pool_get(&c->w->large);
    if (!b)
        return -ENOMEM;
    memcpy(b, c->rbuf, c->rlen);
    sl_pool_put(&c->w->small, c->rbuf);
    c->rbuf = b;
    c->rlarge = true;
    return 0;
}

/* After a read's -EAGAIN: a transport read that waits for writability
 * (a TLS handshake flight) gets EPOLLOUT in the mask. -EAGAIN, or the
 * -errno of a failed epoll_ctl (the caller closes: nothing would resume). */
static ssize_t read_blocked(struct sl_conn *c)
{
    if (c->tp->read_wants_write && c->tp->read_wants_write(c->tp_ctx)) {
        int rc = sl__out_want_write(c);
        if (rc < 0)
            return rc;
    }
    return -EAGAIN;
}

/* One read into the free tail: bytes read, 0 at EOF, -EAGAIN, or -errno. A
 * short read means the socket is drained (edge triggered: wait for the next
 * edge). */
static ssize_t rbuf_read(struct sl_conn *c)
{
    size_t room = sl__conn_rcap(c) - c->rlen;
    ssize_t n = c->tp->read(c->fd, c->tp_ctx, c->rbuf + c->rlen, room);
    if (c->hs_pending && sl_tls_handshake_done(c->tp_ctx)) {
        c->hs_pending = false; /* the first request head's time starts now */
        sl_metrics_tls(sl__metrics_l(c), true, 0);
        sl__timer_arm(c, &c->rtimer, c->l->cfg->timeouts.header_ms);
    }
    if (n > 0) {
        c->rlen += (uint32_t)n;
        if ((size_t)n < room)
            c->readable = false;
        return n;
    }
    c->readable = false;
    if (n == 0)
        c->peer_eof = true;
    return n == -EAGAIN ? read_blocked(c) : n;
}

/* Bytes left after the previous request go to the front. */
static void shift_leftover(struct sl_conn *c)
{
    if (!c->rstart)
        return;
    c->rlen -= c->rstart;
    memmove(c->rbuf, c->rbuf + c->rstart, c->rlen);
    c->rstart = 0;
    c->parse_prev = 0;
}

/* ---- closing ------------------------------------------------------------ */

void sl__addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr_in *in = (const void *)sa;
    const struct sockaddr_in6 *in6 = (const void *)sa;
    if (len && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    } else if (len && sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(out, cap, "unix");
    }
}

void sl__conn_client(const struct sl_conn *c, char *out, size_t cap)
{
    sl__addr_format(&c->peer.sa, c->peer_len, out, cap);
}

/* The access log's TLS version of r's connection; NULL when plain. */
static const char *tls_name(const struct sl_req *r)
{
    const struct sl_tls_conn *t = sl_req_tls(r);
    int v = t ? sl_tls_version(t) : 0;
    return !t ? NULL : v == 0x0304 ? "TLSv1.3" : v == 0x0303 ? "TLSv1.2" : "TLS";
}

/* One access-log line per exchange, written when it ends (a client that
 * left before any of the response was committed is logged as 499, as
 * nginx does). */
static void access_log(struct sl_conn *c, struct sl_req *r)
{
    struct sl_worker *w = c->w;
    bool log = sl_access_log_on(&w->alog) && !r->logged;
    if (!log && (r->mdone || !sl_metrics_enabled()))
        return;
    uint64_t end_us = r->t_start_us ? sl_clock_us() : 0; /* one clock read for both */
    sl__metrics_req_end(c, r, end_us);
    if (!log)
        return;
    r->logged = true;
    char client[64];
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    if (r->fwd_client_len) /* proxy.headers */
        sl__addr_format(&r->fwd_client.sa, r->fwd_client_len, client, sizeof(client));
    else
        sl__conn_client(c, client, sizeof(client));
    struct sl_access_entry e = {
        .time_ms = (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000,
        .client = client,
        .method = c->rbuf + r->method_off,
        .method_len = r->method_len,
        .path = r->path_off == UINT32_MAX ? "/" : c->rbuf + r->path_off,
        .path_len = r->path_off == UINT32_MAX ? 1 : r->path_len,
        .query = r->query_off ? c->rbuf + r->query_off : NULL,
        .query_len = r->query_len,
        .status = r->started && !r->head ? r->status : 499,
        .minor = r->minor,
        .bytes = r->no_body ? 0 : r->resp_sent,
        .bytes_in = r->body_total,
        .latency_us = end_us ? end_us - r->t_start_us : 0,
        .user_agent = r->ua_len ? c->rbuf + r->ua_off : NULL,
        .user_agent_len = r->ua_len,
        .route = r->route ? r->route->name : NULL,
        .referer = r->ref_len ? c->rbuf + r->ref_off : NULL,
        .referer_len = r->ref_len,
        .listener = c->l->cfg->label ? c->l->cfg->label : c->l->cfg->name,
        .tls = tls_name(r),
        .request_id = r->rid_len ? r->rid : NULL,
        .request_id_len = r->rid_len,
    };
    if (!c->rbuf)
        e.method_len = e.path_len = e.user_agent_len = e.referer_len = 0, e.user_agent = NULL,
        e.referer = e.query = NULL;
    sl_access_log_write(&w->alog, &e);
}

/* Removes c from a singly linked list threaded through `link`. */
static void list_remove(struct sl_conn **head, struct sl_conn *c, size_t link)
{
    for (struct sl_conn **pp = head; *pp; pp = (struct sl_conn **)((char *)*pp + link)) {
        if (*pp == c) {
            *pp = *(struct sl_conn **)((char *)c + link);
            return;
        }
    }
}

/* A closed conn is on no work list: the dead list alone holds it until it
 * is freed, so no later round can reach freed memory. The lists hold only
 * the current round's work, and a close while on one is rare: a scan. */
static void unlink_work(struct sl_conn *c)
{
    struct sl_worker *w = c->w;
    if (c->pending) {
        list_remove(&w->pending, c, offsetof(struct sl_conn, pnext));
        list_remove(&w->later, c, offsetof(struct sl_conn, pnext));
        c->pending = false;
    }
    if (c->batched) {
        list_remove(&w->batch, c, offsetof(struct sl_conn, bnext));
        c->batched = false;
    }
}

/*
 * Closes the socket now. A req still in flight is detached: the app gets
 * SL_REQ_DISCONNECT (queued, delivered by the poll loop) unless it already
 * ended its response or closed the connection itself. Output still queued
 * is dropped: callers that owe the client bytes flush first
 * (sl__resp_fail). The conn struct and its read buffer live until the end
 * of the round (later events of the same epoll batch, and an on_request
 * still on the stack, may point at them).
 */
void sl__conn_close(struct sl_conn *c)
{
    struct sl_worker *w = c->w;
    if (c->state == SL__C_DEAD)
        return;
    c->state = SL__C_DEAD;
    unlink_work(c);
    sl__limits_conn_close(c);
    sl_timer_cancel(&w->wheel, &c->rtimer);
    sl_timer_cancel(&w->wheel, &c->wtimer);
    int hs_why = c->hs_pending ? sl_tls_failure(c->tp_ctx) : -1;
    c->tp->close(c->fd, c->tp_ctx);
    c->fd = -1;
    c->tp_ctx = NULL;
    if (c->ws) {
        sl__ws_log(c); /* its one access-log line, now that it ended */
        sl_metrics_ws_open(sl__metrics_l(c), -1);
    }
    if (c->hs_pending) /* a handshake that never finished (timeouts count on their own) */
        sl_metrics_tls(sl__metrics_l(c), false,
                       hs_why >= 0   ? (enum sl_metrics_tls_failure)hs_why
                       : c->peer_eof ? SL_METRICS_TLS_CLOSED
                                     : SL_METRICS_TLS_ERROR);
    struct sl_req *r = c->req;
    if (r) {
        access_log(c, r);
        if (r->app_holds && !r->ended && !r->disc_sent) {
            r->disc_sent = true;
            sl__worker_queue_event(r, SL__EV_DISCONNECT);
        }
        r->gone = true;
        r->body_waiting = false;
        sl__req_detach(r);
    }
    sl__out_free(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    sl_metrics_conn(sl__metrics_l(c), -1);
    c->next = w->dead;
    c->prev = NULL;
    w->dead = c;
}

/* The client is gone (EOF, reset, a failed write) before its exchange was
 * over: close (the app gets SL_REQ_DISCONNECT) and count it. */
void sl__conn_lost(struct sl_conn *c)
{
    if (c->state == SL__C_REQ && c->req && !c->req->finished)
        c->w->client_aborts++;
    sl__conn_close(c);
}

void sl__conn_free(struct sl_conn *c)
{
    sl__ws_free(c);
    rbuf_put(c);
    free(c);
}

/*
 * After a response that ends the connection: shut our write side so the
 * client sees the response and a FIN, then read and drop whatever it still
 * sends until its EOF or a short timeout. Closing with unread input would
 * make the kernel send RST, which can destroy the response in flight.
 */
static void close_linger(struct sl_conn *c)
{
    if (c->req)
        sl__req_detach(c->req);
    c->tp->shutdown(c->fd, c->tp_ctx);
    c->state = SL__C_LINGER;
    c->readable = true; /* look once: EOF may already be queued */
    sl__timer_arm(c, &c->rtimer, SL__LINGER_MS);
    sl__worker_kick(c);
}

static void linger_step(struct sl_conn *c)
{
    char sink[4096];
    rbuf_put(c);
    while (c->readable) {
        ssize_t n = c->tp->read(c->fd, c->tp_ctx, sink, sizeof(sink));
        if (n > 0) {
            if ((size_t)n < sizeof(sink))
                c->readable = false;
            continue;
        }
        if (n == -EAGAIN && read_blocked(c) == -EAGAIN) {
            c->readable = false;
            break;
        }
        sl__conn_close(c); /* EOF or error */
        return;
    }
    if (c->peer_eof)
        sl__conn_close(c);
}

static void rtimer_fired(struct sl_timer *t)
{
    struct sl_conn *c = sl_container_of(t, struct sl_conn, rtimer);
    struct sl_req *r = c->req;
    if (c->state == SL__C_WS && sl__ws_timer(c))
        return; /* a keepalive ping went out, or the peer was heard from */
    /* In REQ the read timer is the body timeout: the app waited for body
     * bytes too long (or leftover body was being dropped). */
    if (c->state == SL__C_REQ && r && !r->finished && r->body_waiting) {
        sl_metrics_timeout(sl__metrics_l(c), SL_METRICS_TIMEOUT_BODY);
        r->body_err = -ETIMEDOUT;
        r->body_waiting = false;
        sl__worker_queue_event(r, SL__EV_BODY);
    }
    if (c->need_proxy) {
        sl_metrics_timeout(sl__metrics_l(c), SL_METRICS_TIMEOUT_HEADER);
        proxy_reject(c, "no PROXY header within timeouts.header");
        return;
    }
    if (c->hs_pending) {
        char client[64];
        sl__conn_client(c, client, sizeof(client));
        sl_log(SL_LOG_INFO, "tls handshake %s: not done within timeouts.handshake", client);
        sl_metrics_timeout(sl__metrics_l(c), SL_METRICS_TIMEOUT_HANDSHAKE);
        sl_metrics_tls(sl__metrics_l(c), false, SL_METRICS_TLS_TIMEOUT);
        c->hs_pending = false; /* counted: not again as a failure at close */
        sl__conn_close(c);
        return;
    }
    /* Part of a request head came but not all of it in time: say so (408,
     * as Apache and NGINX Unit do) before closing. A connection that sent
     * nothing (fresh, or idle between requests) is closed in silence. */
    if (c->state == SL__C_HEAD && c->rbuf && c->rlen > c->rstart) {
        sl_metrics_timeout(sl__metrics_l(c), SL_METRICS_TIMEOUT_HEADER);
        sl__resp_core_error(c, 408);
        return;
    }
    if (c->state == SL__C_IDLE || c->state == SL__C_HEAD)
        sl_metrics_timeout(sl__metrics_l(c), c->nrequests ? SL_METRICS_TIMEOUT_KEEP_ALIVE
                                                          : SL_METRICS_TIMEOUT_HEADER);
    sl__conn_close(c);
}

static void wtimer_fired(struct sl_timer *t)
{
    struct sl_conn *c = sl_container_of(t, struct sl_conn, wtimer);
    sl_metrics_timeout(sl__metrics_l(c), SL_METRICS_TIMEOUT_WRITE);
    sl__conn_close(c);
}

/* ---- between requests ---------------------------------------------------- */

/* The exchange is over: response flushed, body fully received or dropped. */
static void request_done(struct sl_conn *c)
{
    const struct sl_timeouts *to = &c->l->cfg->timeouts;
    uint32_t next = c->req->raw_pos;
    sl__req_detach(c->req);
    c->rstart = next;
    if (c->rlen > next) {
        c->state = SL__C_HEAD;
        sl__timer_arm(c, &c->rtimer, to->header_ms);
    } else {
        c->state = SL__C_IDLE;
        sl__timer_arm(c, &c->rtimer, sl__limits_idle_ms(c, to->keep_alive_ms));
    }
    if (c->busy) {
        c->again = true;
        return;
    }
    /* Called from the app between rounds: settle now so an idle keep-alive
     * connection gives its buffer back without waiting for the next round. */
    shift_leftover(c);
    if (c->rlen == 0) {
        rbuf_put(c);
        if (!c->readable && !c->peer_eof)
            return;
    }
    sl__worker_kick(c);
}

void sl__conn_response_flushed(struct sl_conn *c)
{
    struct sl_req *r = c->req;
    r->finished = true;
    r->body_waiting = false;
    access_log(c, r);
    /* After a half-close, requests the client pipelined before it are
     * still answered; with none left, nothing more can come. */
    bool more = c->rlen > r->raw_pos || c->readable;
    if (!r->ka || c->close_after || c->w->draining || (c->peer_eof && !more)) {
        close_linger(c);
        return;
    }
    if (r->body_complete) {
        request_done(c);
        return;
    }
    /* The app answered without reading the whole body: drop a small rest to
     * keep the connection, close on a big one. */
    if (!r->chunked_req && r->body_left > SL__DISCARD_MAX) {
        close_linger(c);
        return;
    }
    r->discard_limit = r->body_total + SL__DISCARD_MAX;
    r->body_pos = r->body_end;
    const struct sl_timeouts *to = &c->l->cfg->timeouts;
    sl__timer_arm(c, &c->rtimer, to->body_ms ? to->body_ms : SL__LINGER_MS);
    sl__worker_kick(c);
}

/* ---- request body ------------------------------------------------------- */

/* Decodes the undecoded bytes [raw_pos, rlen) into the body span (chunked
 * data is moved down over its framing, in place). Returns 0, -EMSGSIZE or
 * -EPROTO. */
static int decode_body(struct sl_conn *c, struct sl_req *r)
{
    while (!r->body_complete && r->raw_pos < c->rlen) {
        size_t avail = c->rlen - r->raw_pos;
        size_t used, off, len;
        if (!r->chunked_req) {
            used = avail < r->body_left ? avail : (size_t)r->body_left;
            off = 0;
            len = used;
            r->body_left -= used;
            r->body_complete = r->body_left == 0;
        } else {
            int rc = sl_h1_chunked_feed(&r->dec, c->rbuf + r->raw_pos, avail, &used, &off, &len);
            if (rc < 0)
                return rc == SL_H1_E_BODY_TOO_LARGE ? -EMSGSIZE : -EPROTO;
            r->body_complete = rc == 1;
            if (!used && !r->body_complete)
                break;
        }
        if (len && r->body_end != r->raw_pos + off)
            memmove(c->rbuf + r->body_end, c->rbuf + r->raw_pos + off, len);
        r->body_end += (uint32_t)len;
        r->body_total += len;
        r->raw_pos += (uint32_t)used;
    }
    return 0;
}

/* Bad or oversized body: the app learns through sl_req_body_peek; the
 * client gets 413/400 if no response started yet, else a closed
 * connection. */
static void body_fail(struct sl_conn *c, struct sl_req *r, int err)
{
    r->body_err = err;
    if (r->body_waiting && r->app_holds) {
        r->body_waiting = false;
        sl__worker_queue_event(r, SL__EV_BODY);
    }
    if (r->finished)
        close_linger(c);
    else if (!r->started || r->head)
        sl__resp_core_error(c, err == -EMSGSIZE ? 413 : 400);
    else
        sl__conn_close(c);
}

/* New bytes were read in REQ state. Returns false when the conn left the
 * state (closed, failed, or the dropped rest of a body ended). */
static bool body_arrived(struct sl_conn *c, struct sl_req *r)
{
    uint64_t before = r->body_total;
    int err = decode_body(c, r);
    if (err) {
        body_fail(c, r, err);
        return false;
    }
    if (r->finished) {
        r->body_pos = r->body_end;
        if (r->body_total > r->discard_limit) {
            close_linger(c);
            return false;
        }
        if (r->body_complete) {
            request_done(c);
            return false;
        }
        return true;
    }
    if ((r->body_total != before || r->body_complete) && r->body_waiting) {
        r->body_waiting = false;
        sl_timer_cancel(&c->w->wheel, &c->rtimer);
        sl__worker_queue_event(r, SL__EV_BODY);
    }
    return true;
}

/* Free bytes for the body, compacting consumed bytes away (the head stays)
 * and moving to a large buffer when a small one runs out. 0 = full. */
static uint32_t body_room(struct sl_conn *c, struct sl_req *r)
{
    uint32_t cap = sl__conn_rcap(c);
    if (cap - c->rlen >= cap / 4)
        return cap - c->rlen;
    uint32_t gap = r->body_pos - r->head_len;
    if (gap) {
        memmove(c->rbuf + r->head_len, c->rbuf + r->body_pos, c->rlen - r->body_pos);
        r->body_pos -= gap;
        r->body_end -= gap;
        r->raw_pos -= gap;
        c->rlen -= gap;
    }
    if (cap - c->rlen < cap / 4 && !c->rlarge && rbuf_grow(c) == 0)
        cap = sl__conn_rcap(c);
    return cap - c->rlen;
}

static void read_body(struct sl_conn *c, struct sl_req *r)
{
    while (!r->body_complete && c->readable) {
        if (body_room(c, r) == 0) {
            c->rpaused = true;
            return;
        }
        c->rpaused = false;
        ssize_t n = rbuf_read(c);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            sl__conn_lost(c); /* EOF or error in the middle of a body */
            return;
        }
        if (!body_arrived(c, r))
            return;
    }
}

static void req_step(struct sl_conn *c)
{
    struct sl_req *r = c->req;
    if (r->file_fd > 0) { /* a files route's body yielded: go on */
        sl__route_file_pump(r);
        if (c->state != SL__C_REQ || c->req != r)
            return;
    }
    if (!r->body_complete) {
        read_body(c, r);
        if (c->state != SL__C_REQ || c->req != r)
            return;
    }
    if (r->finished && r->body_complete) {
        request_done(c);
        return;
    }
    /* EOF before the app ended its response: the client is gone. A close
     * and a half-close look the same from here, and waiting to tell them
     * apart would let abandoned requests hold their fd and slot as long as
     * the app works (forever for one that never returns); nginx and
     * uvicorn decide the same way. A response the app has ended is still
     * flushed (the write timeout bounds it); leftover body being dropped
     * after it will not come. */
    if (!c->peer_eof)
        return;
    if (!r->ended)
        sl__conn_lost(c);
    else if (r->finished)
        sl__conn_close(c);
}

/* ---- request head -------------------------------------------------------- */

/* Where the access log will find method, path and User-Agent. */
static void note_log_fields(struct sl_conn *c, struct sl_req *r, const struct sl_h1_request *h)
{
    if (!r->t_start_us) /* the metrics hook may have read the clock already */
        r->t_start_us = sl_clock_us();
    r->method_off = (uint32_t)(h->method - c->rbuf);
    r->method_len = (uint32_t)h->method_len;
    if (h->path >= c->rbuf && h->path < c->rbuf + r->head_len) {
        r->path_off = (uint32_t)(h->path - c->rbuf);
        r->path_len = (uint32_t)h->path_len;
    } else {
        r->path_off = UINT32_MAX; /* absolute-form without a path: "/" */
    }
    if (h->query && h->query > c->rbuf && h->query < c->rbuf + r->head_len) {
        r->query_off = (uint32_t)(h->query - c->rbuf);
        r->query_len = (uint32_t)h->query_len;
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct sl_h1_header *f = &h->headers[i];
        if (!r->ua_len && sl_h1_name_is(f, "user-agent", 10)) {
            r->ua_off = (uint32_t)(f->value - c->rbuf);
            r->ua_len = (uint32_t)f->value_len;
        } else if (!r->ref_len && sl_h1_name_is(f, "referer", 7)) {
            r->ref_off = (uint32_t)(f->value - c->rbuf);
            r->ref_len = (uint32_t)f->value_len;
        }
    }
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/*
 * A core error before the head was handed over (400, 408, 414, 431...):
 * the method and path for the access log, when the request line got that
 * far (a method of tchars, a space, a target ended by a space).
 */
void sl__conn_note_line(struct sl_conn *c, struct sl_req *r)
{
    if ((!sl_access_log_on(&c->w->alog) && !sl_metrics_enabled()) || !c->rbuf)
        return;
    const char *b = c->rbuf + c->rstart, *end = c->rbuf + c->rlen, *p = b;
    r->t_start_us = sl_clock_us();
    while (p < end && p - b < 64 && is_tchar((unsigned char)*p))
        p++;
    if (p == b || p >= end || *p != ' ')
        return;
    const char *t = p + 1, *q = t;
    while (q < end && (unsigned char)*q > ' ' && *q != 0x7f)
        q++;
    if (q == t || q >= end || *q != ' ')
        return;
    const char *qm = memchr(t, '?', (size_t)(q - t));
    r->method_off = (uint32_t)(b - c->rbuf);
    r->method_len = (uint32_t)(p - b);
    r->path_off = (uint32_t)(t - c->rbuf);
    r->path_len = (uint32_t)((qm ? qm : q) - t);
    if (qm) {
        r->query_off = (uint32_t)(qm + 1 - c->rbuf);
        r->query_len = (uint32_t)(q - qm - 1);
    }
}

/* Framing and connection facts the exchange needs after on_request. */
static int setup_request(struct sl_conn *c, struct sl_req *r, const struct sl_h1_request *h,
                         size_t head_len, uint64_t max_body)
{
    r->head_only = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
    r->minor = (uint8_t)h->minor_version;
    r->req_ka = h->keep_alive;
    r->expect = h->expect_continue && h->minor_version >= 1;
    r->head_len = r->body_pos = r->body_end = r->raw_pos = (uint32_t)head_len;
    if (sl_access_log_on(&c->w->alog))
        note_log_fields(c, r, h);
    if (h->content_length >= 0 && max_body && (uint64_t)h->content_length > max_body)
        return -EMSGSIZE;
    if (h->chunked) {
        r->chunked_req = true;
        r->dec = (struct sl_h1_chunked){.max_body = max_body};
    } else if (h->content_length > 0) {
        r->body_left = (uint64_t)h->content_length;
    } else {
        r->body_complete = true;
    }
    return decode_body(c, r);
}

/* proxy.headers: a trusted peer's word on the client, scheme and host. */
static void proxy_headers(struct sl_conn *c, struct sl_req *r, const struct sl_h1_request *h)
{
    const struct sl_proxy_config *p = &c->l->cfg->proxy;
    if (!p->headers || !sl_proxy_trusted(p, c->peer_len ? &c->peer.sa : NULL))
        return;
    struct sl_proxy_origin o;
    sl_proxy_from_headers(p, h, &o);
    if (o.has_client && o.client_len <= sizeof(r->fwd_client)) {
        memcpy(&r->fwd_client, &o.client, o.client_len);
        r->fwd_client_len = (uint8_t)o.client_len;
    }
    r->fwd_scheme = (uint8_t)o.scheme;
    if (o.host) {
        r->fwd_host_off = (uint32_t)(o.host - c->rbuf);
        r->fwd_host_len = (uint32_t)o.host_len;
    }
    if (o.prefix) {
        r->fwd_prefix = true;
        r->fwd_prefix_off = (uint32_t)(o.prefix - c->rbuf);
        r->fwd_prefix_len = (uint32_t)o.prefix_len;
    }
}

static void start_request(struct sl_conn *c, size_t head_len)
{
    struct sl_worker *w = c->w;
    struct sl_req *r = sl__req_new(w);
    if (!r) {
        sl__conn_close(c);
        return;
    }
    r->c = c;
    r->l = c->l;
    c->req = r;
    c->state = SL__C_REQ;
    c->nrequests++;
    w->requests++;
    sl__metrics_req_start(c, r, &w->head);
    sl__reqid_assign(c, r, &w->head);
    c->parse_prev = 0;
    sl_timer_cancel(&w->wheel, &c->rtimer);
    /* intercept routes (server/route_act.c): answered here, or the app;
     * `source` judges the client a trusted proxy named */
    proxy_headers(c, r, &w->head);
    struct sl_route_hit hit;
    sl__route_lookup(r, &w->head, &hit);
    r->route = hit.route;
    int err = setup_request(c, r, &w->head, head_len, sl__route_max_body(c, &hit));
    if (!err && w->head.upgrade)
        err = sl__ws_handshake(c, r, &w->head); /* only acts on Upgrade: websocket */
    if (err == -EBADMSG || err == -EPROTONOSUPPORT) {
        sl__resp_core_error(c, err == -EBADMSG ? 400 : 426);
        return;
    }
    if (err) {
        sl__resp_core_error(c, err == -EMSGSIZE ? 413 : 400);
        return;
    }
    if (sl__limits_expired(c))
        c->close_after = true; /* this response says Connection: close */
    if (sl__limits_request(r, &w->head) || sl__route_answer(r, &w->head, &hit)) {
        c->again = true;
        return;
    }
    r->app_holds = true;
    sl__timer_arm(c, &r->atimer, c->l->cfg->timeouts.app_ms);
    w->head_req = r;
    w->ops->on_request(w->app, r);
    w->head_req = NULL;
    c->again = true; /* carry on in REQ: read the body, or the next request */
}

static int parse_head(struct sl_conn *c)
{
    struct sl_worker *w = c->w;
    w->head.headers = w->hdrs;
    w->head.nheaders = w->max_hdrs;
    int rc = sl_h1_parse_request(c->rbuf, c->rlen, c->parse_prev, &c->l->h1, &w->head);
    if (rc == SL_H1_INCOMPLETE)
        c->parse_prev = c->rlen;
    return rc;
}

/* The first byte of a new request starts its header timer (a fresh
 * connection's has run since accept). */
static void become_head(struct sl_conn *c)
{
    c->state = SL__C_HEAD;
    if (c->nrequests > 0)
        sl__timer_arm(c, &c->rtimer, c->l->cfg->timeouts.header_ms);
}

/* ---- PROXY protocol header ------------------------------------------------ */

/* The header is read and taken: the connection speaks for its source. */
static int proxy_done(struct sl_conn *c, const struct sl_proxy_info *pi)
{
    struct sl__listener *l = c->l;
    if (!pi->local && pi->addr_len <= sizeof(c->peer)) {
        memcpy(&c->peer, &pi->src, pi->addr_len);
        c->peer_len = (uint8_t)pi->addr_len;
        memcpy(&c->local, &pi->dst, pi->addr_len);
        c->local_len = (uint8_t)pi->addr_len;
        c->local_known = !l->is_unix;
    }
    c->proxy_ssl = pi->ssl;
    c->need_proxy = false;
    if (!sl__limits_conn_open(c))
        return -EUSERS; /* over limits.max_connections_per_ip: closed */
    if (!l->tp->open)
        return 0;
    c->tp = l->tp; /* TLS: the handshake starts with the next bytes */
    if (!(c->tp_ctx = l->tp->open(c->fd, l->tp_arg)))
        return -ENOMEM;
    c->hs_pending = true;
    sl__timer_arm(c, &c->rtimer, l->cfg->timeouts.handshake_ms);
    return 0;
}

static void proxy_reject(struct sl_conn *c, const char *why)
{
    char client[64];
    /* Said at most once a second (a flood of them is one line with a count). */
    uint64_t n = sl_log_every_due(&c->w->proxy_warn, sl_clock_ms());
    sl__conn_client(c, client, sizeof(client));
    if (n == 1)
        sl_log(SL_LOG_WARNING, "proxy: closing connection from %s on %s: %s", client,
               c->l->cfg->label ? c->l->cfg->label : c->l->cfg->name, why);
    else if (n > 1)
        sl_log(SL_LOG_WARNING,
               "proxy: closing connection from %s on %s: %s (%llu such closes since the last "
               "such warning)",
               client, c->l->cfg->label ? c->l->cfg->label : c->l->cfg->name, why,
               (unsigned long long)n);
    c->w->proxy_rejects++;
    sl_metrics_reject(sl__metrics_l(c), SL_METRICS_REJECT_PROXY_PROTOCOL);
    sl__conn_close(c);
}

/*
 * Reads the PROXY header without taking a byte past it: the socket is
 * peeked, the header parsed, and exactly its length received, so what
 * follows (a TLS ClientHello, a request) stays for the transport. Returns
 * true once the connection may go on to its first request.
 */
static bool proxy_step(struct sl_conn *c)
{
    const enum sl_proxy_protocol mode = c->l->cfg->proxy.protocol;
    unsigned accept = mode == SL_PROXY_PROTO_V1   ? SL_PROXY_V1
                      : mode == SL_PROXY_PROTO_V2 ? SL_PROXY_V2
                                                  : SL_PROXY_V1 | SL_PROXY_V2;
    while (c->readable) {
        if (rbuf_get(c) < 0) {
            sl__conn_close(c);
            return false;
        }
        size_t cap = sl__conn_rcap(c);
        ssize_t n = recv(c->fd, c->rbuf, cap, MSG_PEEK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->readable = false;
            break;
        }
        if (n <= 0) {
            sl__conn_close(c); /* EOF or error before the header: nothing to say */
            return false;
        }
        struct sl_proxy_info pi;
        int rc = sl_proxy_parse(c->rbuf, (size_t)n, accept, &pi);
        if (rc == SL_PROXY_INCOMPLETE && (size_t)n == cap && rbuf_grow(c) == 0)
            continue; /* a long v2 header: peek again into the large buffer */
        if (rc == SL_PROXY_INCOMPLETE && (size_t)n < cap) {
            c->readable = false; /* the rest comes with the next edge */
            if (c->peer_eof) {
                proxy_reject(c, "connection closed inside the PROXY header");
                return false;
            }
            break;
        }
        if (rc < 0) {
            proxy_reject(c, rc == SL_PROXY_INCOMPLETE ? "header too long" : sl_proxy_strerror(rc));
            return false;
        }
        if (recv(c->fd, c->rbuf, (size_t)rc, 0) != rc || proxy_done(c, &pi) < 0) {
            sl__conn_close(c);
            return false;
        }
        rbuf_put(c);
        return true; /* c->readable stays: the request may be there already */
    }
    if (c->peer_eof) {
        sl__conn_close(c);
        return false;
    }
    rbuf_put(c);
    return false;
}

static void head_step(struct sl_conn *c)
{
    if (c->need_proxy && !proxy_step(c))
        return;
    shift_leftover(c);
    for (;;) {
        if (c->rlen > 0) {
            if (c->state == SL__C_IDLE)
                become_head(c);
            int rc = parse_head(c);
            if (rc > 0) {
                start_request(c, (size_t)rc);
                return;
            }
            if (rc != SL_H1_INCOMPLETE) {
                sl_metrics_reject(sl__metrics_l(c), SL_METRICS_REJECT_PARSE_ERROR);
                sl__resp_core_error(c, sl_h1_error_status(rc));
                return;
            }
            if (c->rlen == sl__conn_rcap(c) && rbuf_grow(c) < 0) {
                sl__resp_core_error(c, 431);
                return;
            }
        }
        if (!c->readable)
            break;
        if (rbuf_get(c) < 0) {
            sl__conn_close(c);
            return;
        }
        ssize_t n = rbuf_read(c);
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            sl__conn_close(c); /* EOF (clean between requests) or error */
            return;
        }
    }
    if (c->peer_eof) {
        sl__conn_close(c); /* the rest of the head will never come */
        return;
    }
    if (c->rlen == 0)
        rbuf_put(c); /* idle: hold no buffer */
}

/* ---- driving -------------------------------------------------------------- */

static void step(struct sl_conn *c)
{
    switch (c->state) {
    case SL__C_IDLE:
    case SL__C_HEAD:
        head_step(c);
        break;
    case SL__C_REQ:
        req_step(c);
        break;
    case SL__C_LINGER:
        linger_step(c);
        break;
    case SL__C_WS:
        sl__ws_step(c);
        break;
    default:
        break;
    }
}

void sl__conn_process(struct sl_conn *c)
{
    if (c->state == SL__C_DEAD)
        return;
    if (c->busy) {
        c->again = true;
        return;
    }
    unsigned steps = 0;
    c->busy = true;
    do {
        c->again = false;
        step(c);
    } while (c->again && c->state != SL__C_DEAD && ++steps < STEP_BUDGET);
    c->busy = false;
    if (c->again && c->state != SL__C_DEAD) {
        c->again = false;
        sl__worker_defer(c);
    }
}

void sl__conn_io(struct sl_conn *c, uint32_t events)
{
    if (c->tp->events)
        events = c->tp->events(c->tp_ctx, events);
    if (events & (EPOLLERR | EPOLLHUP)) {
        /* During a TLS handshake, read what arrived before the reset first:
         * a client that refused our certificate sends its alert, then
         * closes with our flight unread (RST). The failure is counted by
         * what the alert says, else as the client gone ("closed"). */
        if (c->hs_pending) {
            c->readable = c->peer_eof = true;
            sl__conn_process(c);
            if (c->state == SL__C_DEAD)
                return;
        }
        sl__conn_lost(c);
        return;
    }
    if (events & EPOLLIN)
        c->readable = true;
    if (events & EPOLLRDHUP)
        c->peer_eof = c->readable = true;
    if ((events & EPOLLOUT) && c->wblocked) {
        c->wblocked = false;
        sl__out_ready(c);
        if (c->state == SL__C_DEAD)
            return;
    }
    sl__conn_process(c);
}

/* ---- for ws_conn.c ------------------------------------------------------- */

int sl__conn_rbuf_get(struct sl_conn *c)
{
    return rbuf_get(c);
}

void sl__conn_rbuf_put(struct sl_conn *c)
{
    rbuf_put(c);
}

ssize_t sl__conn_rbuf_read(struct sl_conn *c)
{
    return rbuf_read(c);
}

void sl__conn_linger(struct sl_conn *c)
{
    close_linger(c);
}
