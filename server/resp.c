/*
 * resp: the response side of server.h (head, framing, body, trailers,
 * errors) and the connection's output queue.
 *
 * Write path: sl_resp_start only formats the head into a pooled buffer; the
 * first sl_resp_body sends head and body with one gather write through the
 * connection's transport (server/transport.h). Whatever the
 * socket does not take is copied into pooled output buffers and sent on
 * EPOLLOUT (added to the epoll mask on the first blocked write only).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/clock.h"
#include "server/route_internal.h"
#include "server/server_internal.h"

#define IOV_BATCH 64
#define MAX_EXTRA 4

/* ---- output queue -------------------------------------------------------- */

static struct sl__obuf *obuf_new(struct sl_worker *w, size_t need)
{
    bool large = need > SL__SMALL_BUF - sizeof(struct sl__obuf);
    struct sl_pool *p = large ? &w->large : &w->small;
    struct sl__obuf *b = sl_pool_get(p);
    if (!b)
        return NULL;
    *b = (struct sl__obuf){.cap = (uint32_t)(p->size - sizeof(*b)), .large = large};
    return b;
}

static void obuf_free(struct sl_worker *w, struct sl__obuf *b)
{
    sl_pool_put(b->large ? &w->large : &w->small, b);
}

static void out_push(struct sl_conn *c, struct sl__obuf *b)
{
    if (c->out_tail)
        c->out_tail->next = b;
    else
        c->out_head = b;
    c->out_tail = b;
}

/* Appends a copy of p[0..n) to the queue. */
static int out_copy(struct sl_conn *c, const char *p, size_t n)
{
    while (n) {
        struct sl__obuf *t = c->out_tail;
        if (!t || t->end == t->cap) {
            t = obuf_new(c->w, n);
            if (!t)
                return -ENOMEM;
            out_push(c, t);
        }
        size_t k = n < t->cap - t->end ? n : t->cap - t->end;
        memcpy(t->data + t->end, p, k);
        t->end += (uint32_t)k;
        c->out_bytes += k;
        p += k;
        n -= k;
    }
    return 0;
}

void sl__out_free(struct sl_conn *c)
{
    while (c->out_head) {
        struct sl__obuf *b = c->out_head;
        c->out_head = b->next;
        obuf_free(c->w, b);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
}

/* Drops n written bytes from the front of the queue. Returns what is left
 * of n once the queue is empty. */
static size_t out_consume(struct sl_conn *c, size_t n)
{
    while (n && c->out_head) {
        struct sl__obuf *b = c->out_head;
        size_t len = b->end - b->start;
        if (n < len) {
            b->start += (uint32_t)n;
            c->out_bytes -= n;
            return 0;
        }
        n -= len;
        c->out_bytes -= len;
        c->out_head = b->next;
        if (!c->out_head)
            c->out_tail = NULL;
        obuf_free(c->w, b);
    }
    return n;
}

/* Adds EPOLLOUT to the mask. Failing that, nothing would ever resume the
 * write: the caller closes the connection. Returns 0 or -errno. */
static int want_epollout(struct sl_conn *c)
{
    if (c->epout)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        int err = errno;
        sl_log(SL_LOG_ERROR, "epoll_ctl(MOD, fd %d): %s; closing the connection", c->fd,
               strerror(err));
        return -err;
    }
    c->epout = true;
    return 0;
}

int sl__out_want_write(struct sl_conn *c)
{
    return want_epollout(c);
}

/* Fills iov with the queue, then (if the whole queue fit) the extras. */
static int gather(struct sl_conn *c, struct iovec *iov, const struct iovec *ex, int nex,
                  size_t *total)
{
    int k = 0;
    struct sl__obuf *b = c->out_head;
    *total = 0;
    for (; b && k < IOV_BATCH; b = b->next) {
        iov[k] = (struct iovec){b->data + b->start, b->end - b->start};
        *total += iov[k++].iov_len;
    }
    for (int i = 0; !b && i < nex && k < IOV_BATCH; i++) {
        if (ex[i].iov_len) {
            iov[k] = ex[i];
            *total += iov[k++].iov_len;
        }
    }
    return k;
}

/*
 * Writes the queue followed by `extra` (caller-owned bytes, not queued).
 * Returns 0 when everything went out, 1 when the socket is full (the rest of
 * `extra` is now copied into the queue and EPOLLOUT armed), or a negative
 * errno (the connection is broken; the caller closes it).
 */
int sl__out_write(struct sl_conn *c, const struct iovec *extra, int nextra)
{
    struct iovec ex[MAX_EXTRA];
    int ei = 0;
    bool progress = false;
    if (nextra)
        memcpy(ex, extra, (size_t)nextra * sizeof(*ex));
    while (!c->wblocked) {
        struct iovec iov[IOV_BATCH];
        size_t total;
        int k = gather(c, iov, ex + ei, nextra - ei, &total);
        if (k == 0)
            return 0;
        ssize_t n = c->tp->writev(c->fd, c->tp_ctx, iov, k);
        if (n < 0 && n != -EAGAIN)
            return (int)n;
        size_t left = out_consume(c, n < 0 ? 0 : (size_t)n);
        progress |= n > 0;
        for (; left && ei < nextra; ei++) {
            if (left < ex[ei].iov_len) {
                ex[ei].iov_base = (char *)ex[ei].iov_base + left;
                ex[ei].iov_len -= left;
                break;
            }
            left -= ex[ei].iov_len;
        }
        while (ei < nextra && ex[ei].iov_len == 0)
            ei++;
        if (n < 0 || (size_t)n < total) {
            c->wblocked = true; /* a short write: the kernel buffer is full */
            int err = want_epollout(c);
            if (err < 0)
                return err;
        } else if (!c->out_head && ei == nextra) {
            sl_timer_cancel(&c->w->wheel, &c->wtimer);
            return 0;
        }
    }
    for (; ei < nextra; ei++)
        if (out_copy(c, ex[ei].iov_base, ex[ei].iov_len) < 0)
            return -ENOMEM;
    if (progress || !sl_timer_armed(&c->wtimer))
        sl__timer_arm(c, &c->wtimer, sl__route_write_ms(c));
    return 1;
}

/* After any write: backpressure relief and end-of-response bookkeeping. */
static void after_write(struct sl_conn *c)
{
    struct sl_req *r = c->req;
    if (!r || (c->state != SL__C_REQ && c->state != SL__C_WS))
        return;
    if (r->want_drain && c->out_bytes < SL__LOW_WATER) {
        r->want_drain = false;
        if (r->app_holds && !r->gone)
            sl__worker_queue_event(r, SL__EV_DRAIN);
    }
    if (c->state == SL__C_WS) {
        sl__ws_after_write(c);
        return;
    }
    if (r->file_fd > 0 && !c->out_head && !c->wblocked) {
        sl__route_file_pump(r); /* a files route's body: more of the file */
        return;
    }
    if (r->ended && !r->finished && !c->out_head)
        sl__conn_response_flushed(c);
}

void sl__out_ready(struct sl_conn *c)
{
    if (sl__out_write(c, NULL, 0) < 0) {
        sl__conn_lost(c);
        return;
    }
    after_write(c);
}

/* ---- response head ------------------------------------------------------- */

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* True if the comma-separated list has the token "close". */
static bool has_close(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - s == 5 && strncasecmp(v + s, "close", 5) == 0)
            return true;
    }
    return false;
}

/* What the app's headers say, and which of them the core replaces. */
struct head_facts {
    bool has_server, has_date, app_close, has_cl;
    uint64_t cl;
    size_t bytes; /* app header lines, as they will be written */
};

enum { KEEP, SKIP_FRAMING, SKIP_CL };

static int classify(const struct sl_h1_header *h)
{
    if (sl_h1_name_is(h, "connection", 10) || sl_h1_name_is(h, "transfer-encoding", 17))
        return SKIP_FRAMING; /* the core owns framing and connection reuse */
    if (sl_h1_name_is(h, "content-length", 14))
        return SKIP_CL;
    return KEEP;
}

static int scan_headers(const struct sl_h1_header *h, size_t n, struct head_facts *f)
{
    *f = (struct head_facts){0};
    for (size_t i = 0; i < n; i++) {
        if (!sl_h1_header_ok(h[i].name, h[i].name_len, h[i].value, h[i].value_len))
            return -EINVAL;
        f->bytes += h[i].name_len + h[i].value_len + 4;
        if (sl_h1_name_is(&h[i], "connection", 10)) {
            f->app_close |= has_close(h[i].value, h[i].value_len);
        } else if (sl_h1_name_is(&h[i], "content-length", 14)) {
            uint64_t v;
            if (!parse_u64(h[i].value, h[i].value_len, &v) || (f->has_cl && v != f->cl))
                return -EINVAL;
            f->has_cl = true;
            f->cl = v;
        } else if (sl_h1_name_is(&h[i], "server", 6)) {
            f->has_server = true;
        } else if (sl_h1_name_is(&h[i], "date", 4)) {
            f->has_date = true;
        }
    }
    return 0;
}

static char *put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, s) put((p), (s), sizeof(s) - 1)

static char *put_status(char *p, int status)
{
    const char *reason = sl_h1_reason(status);
    p = PUT_LIT(p, "HTTP/1.1 ");
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    return PUT_LIT(p, "\r\n");
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/*
 * The client sent `Expect: 100-continue`, got no 100 and has sent no body
 * byte: after a final response it may send the body or skip it (RFC 9110
 * 10.1.1 allows both), so the next bytes are ambiguous. Reading them as
 * body could swallow its next request (a desync); reading them as a
 * request could run its body as one. Only closing is safe.
 */
static bool body_withheld(const struct sl_req *r)
{
    return r->expect && !r->continue_sent && !r->body_complete && r->raw_pos == r->head_len;
}

/* Framing: Content-Length when declared, else chunked (1.1) or "until
 * close" (1.0); none for bodiless responses. Decides keep-alive too. */
static void decide_framing(struct sl_conn *c, struct sl_req *r, int status,
                           const struct head_facts *f, bool trailers)
{
    uint32_t max_ka = c->l->cfg->limits.max_keepalive_requests;
    r->no_body = r->head_only || status == 204 || status == 304;
    r->trailers = trailers;
    r->ka = r->req_ka && !f->app_close && !c->w->draining && !c->close_after &&
            !(max_ka && c->nrequests >= max_ka) && !body_withheld(r);
    if (r->no_body)
        return;
    if (f->has_cl && !trailers) {
        r->has_cl = true;
        r->resp_cl = f->cl;
    } else if (r->minor >= 1) {
        r->chunked = true;
    } else {
        r->ka = false; /* the body ends when the connection does */
    }
}

/* http.request_id: the header to send the id in, unless the app sent it
 * itself; NULL = none. */
static const char *rid_header(const struct sl_req *r, const struct sl_h1_header *h, size_t n)
{
    const char *name = r->rid_len ? r->w->cfg->http.request_id.header : NULL;
    size_t len = name ? strlen(name) : 0;
    for (size_t i = 0; name && i < n; i++)
        if (h[i].name_len == len && strncasecmp(h[i].name, name, len) == 0)
            return NULL;
    return name;
}

static char *put_rid(char *p, const struct sl_req *r, const char *name)
{
    p = put(p, name, strlen(name));
    p = PUT_LIT(p, ": ");
    p = put(p, r->rid, r->rid_len);
    return PUT_LIT(p, "\r\n");
}

/* http.server_timing: "Server-Timing: app;dur=12.345" on the app's
 * responses (not on those of intercept routes). */
static char *put_timing(char *p, const struct sl_req *r)
{
    uint64_t us = sl_clock_us() - r->t_start_us;
    p = PUT_LIT(p, "Server-Timing: app;dur=");
    p = put_u64(p, us / 1000);
    *p++ = '.';
    *p++ = (char)('0' + us / 100 % 10);
    *p++ = (char)('0' + us / 10 % 10);
    *p++ = (char)('0' + us % 10);
    return PUT_LIT(p, "\r\n");
}

int sl_resp_start(struct sl_req *r, int status, const struct sl_h1_header *h, size_t n,
                  bool trailers)
{
    struct head_facts f;
    if (r->gone)
        return -EPIPE;
    if (r->started)
        return -EALREADY;
    if (!r->c)
        return -EPIPE;
    if (status < 200 || status > 999 || scan_headers(h, n, &f) < 0)
        return -EINVAL;
    struct sl_conn *c = r->c;
    struct sl_worker *w = c->w;
    decide_framing(c, r, status, &f, trailers);
    bool server = w->server_line && !f.has_server;
    const char *rid = rid_header(r, h, n);
    bool timing = w->cfg->http.server_timing && r->t_start_us &&
                  (!r->route || r->route->action == SL_ROUTE_APP);
    size_t size = 16 + strlen(sl_h1_reason(status)) + SL_DATE_LINE_LEN +
                  (server ? w->server_line_len : 0) + f.bytes + 40 + 28 + 26 + 2 +
                  (rid ? strlen(rid) + 4 + r->rid_len : 0) + (timing ? 56 : 0);
    struct sl__obuf *b = obuf_new(w, size);
    if (!b)
        return -ENOMEM;
    if (size > b->cap) {
        obuf_free(w, b);
        return -EINVAL; /* a head larger than a large buffer */
    }
    char *p = put_status(b->data, status);
    if (!f.has_date)
        p = put(p, sl_date_line(&w->date), SL_DATE_LINE_LEN);
    if (server)
        p = put(p, w->server_line, w->server_line_len);
    if (rid)
        p = put_rid(p, r, rid);
    if (timing)
        p = put_timing(p, r);
    for (size_t i = 0; i < n; i++) {
        int kind = classify(&h[i]);
        /* RFC 9110 8.6: never a Content-Length on a 204 (a 304 or HEAD may
         * carry the length a GET would have had). */
        if (kind == SKIP_FRAMING ||
            (kind == SKIP_CL && ((trailers && !r->no_body) || status == 204)))
            continue;
        p = put(p, h[i].name, h[i].name_len);
        p = PUT_LIT(p, ": ");
        p = put(p, h[i].value, h[i].value_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (r->chunked)
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    if (!r->ka)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (r->minor == 0)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    p = PUT_LIT(p, "\r\n");
    b->end = (uint32_t)(p - b->data);
    r->head = b;
    r->started = true;
    r->status = (int16_t)status;
    return 0;
}

/* ---- body and end ---------------------------------------------------------- */

/* Hex chunk-size line: "1f40\r\n". */
static size_t chunk_line(char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do
        tmp[n++] = hex[len & 15];
    while ((len >>= 4) > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\r';
    out[n + 1] = '\n';
    return n + 2;
}

/*
 * Write batching (sl_worker_set_batching): an app call between polls whose
 * output stays small is queued, not written; sl_worker_flush writes it with
 * the rest of the loop turn's responses. Returns 1 when it held the bytes,
 * 0 when they must go out now, -ENOMEM.
 */
static int batch_hold(struct sl_conn *c, const struct iovec *iov, int n)
{
    struct sl_worker *w = c->w;
    size_t total = c->out_bytes;
    if (!w->batching || w->in_poll || c->wblocked)
        return 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total > SL__BATCH_MAX)
        return 0;
    for (int i = 0; i < n; i++)
        if (out_copy(c, iov[i].iov_base, iov[i].iov_len) < 0)
            return -ENOMEM;
    if (!c->batched) {
        c->batched = true;
        c->bnext = w->batch;
        w->batch = c;
    }
    return 1;
}

int sl__out_send(struct sl_conn *c, const struct iovec *iov, int n)
{
    int held = batch_hold(c, iov, n);
    if (held != 0)
        return held < 0 ? held : 0;
    return sl__out_write(c, iov, n) < 0 ? -EPIPE : 0;
}

/* The head goes to the output queue: from now on the response is the
 * client's, and a failure can only cut it short. */
static void commit_head(struct sl_conn *c, struct sl_req *r)
{
    if (!r->head)
        return;
    out_push(c, r->head);
    c->out_bytes += r->head->end;
    r->head = NULL;
}

void sl__resp_drop_head(struct sl_req *r)
{
    if (r->head) {
        obuf_free(r->w, r->head);
        r->head = NULL;
    }
}

/* Sends the iovs (after the head, if not sent yet); on a broken socket
 * closes the conn (the app hears it from the -EPIPE it is about to get). */
static int send_parts(struct sl_conn *c, struct sl_req *r, const struct iovec *iov, int n)
{
    commit_head(c, r);
    int held = batch_hold(c, iov, n);
    if (held > 0)
        return 0;
    if (held < 0 || sl__out_write(c, iov, n) < 0) {
        r->disc_sent = true;
        sl__conn_lost(c);
        return -EPIPE;
    }
    after_write(c);
    return 0;
}

int sl_resp_body(struct sl_req *r, const void *data, size_t len, bool more)
{
    static const char crlf[] = "\r\n", last[] = "0\r\n\r\n";
    struct iovec iov[MAX_EXTRA];
    char line[24];
    int n = 0;
    bool overrun = false;
    if (r->gone)
        return -EPIPE;
    if (!r->started || r->body_ended || r->file_fd > 0)
        return -EPROTO;
    struct sl_conn *c = r->c;
    if (r->no_body) {
        len = 0;
    } else if (r->has_cl && len > r->resp_cl - r->resp_sent) {
        /* More than the declared length. Nothing committed yet: refuse it
         * all, the app's failure becomes a 500. Else the bytes that fit
         * are the end of this response, and the connection closes. */
        if (r->head)
            return -EPROTO;
        len = (size_t)(r->resp_cl - r->resp_sent);
        more = false;
        overrun = true;
        c->close_after = true;
    }
    r->resp_sent += len;
    if (len && r->chunked) {
        iov[n++] = (struct iovec){line, chunk_line(line, len)};
        iov[n++] = (struct iovec){(void *)data, len};
        iov[n++] = (struct iovec){(void *)crlf, 2};
    } else if (len) {
        iov[n++] = (struct iovec){(void *)data, len};
    }
    if (!more) {
        r->body_ended = true;
        r->ended = !r->trailers;
        if (r->ended)
            sl_timer_cancel(&c->w->wheel, &r->atimer);
        if (r->chunked && !r->trailers)
            iov[n++] = (struct iovec){(void *)last, 5};
        /* Fewer bytes than declared: the client cannot find the end. */
        if (r->has_cl && r->resp_sent < r->resp_cl)
            c->close_after = true;
    }
    int rc = send_parts(c, r, iov, n);
    if (rc < 0)
        return rc;
    if (overrun)
        return -EPROTO;
    if (more && c->out_bytes > SL__HIGH_WATER) {
        r->want_drain = true;
        return 1;
    }
    return 0;
}

int sl_resp_file(struct sl_req *r, int fd, uint64_t off, uint64_t len)
{
    int rc = 0;
    if (r->gone)
        rc = -EPIPE;
    else if (!r->started || r->body_ended || r->trailers || r->file_fd > 0 ||
             (r->has_cl && !r->no_body && len != r->resp_cl - r->resp_sent))
        rc = -EPROTO;
    if (rc < 0 || r->no_body || len == 0) {
        close(fd);
        return rc < 0 ? rc : sl_resp_body(r, NULL, 0, false);
    }
    sl_timer_cancel(&r->w->wheel, &r->atimer);       /* the app's part is done */
    if ((rc = sl_resp_body(r, NULL, 0, true)) < 0) { /* the head, held or sent */
        close(fd);
        return rc;
    }
    if (r->chunked) {
        char line[24];
        if (out_copy(r->c, line, chunk_line(line, (size_t)len)) < 0) {
            close(fd);
            r->disc_sent = true;
            sl__conn_lost(r->c);
            return -EPIPE;
        }
    }
    r->resp_sent += len;
    r->file_fd = fd;
    r->file_off = off;
    r->file_left = len;
    r->file_chunked = r->chunked;
    if (!r->c->batched) /* else the batch flush writes what is queued, then pumps */
        sl__out_ready(r->c);
    return 0;
}

int sl_resp_trailers(struct sl_req *r, const struct sl_h1_header *h, size_t n)
{
    if (r->gone)
        return -EPIPE;
    if (!r->started || !r->trailers || !r->body_ended || r->ended)
        return -EPROTO;
    for (size_t i = 0; i < n; i++)
        if (!sl_h1_header_ok(h[i].name, h[i].name_len, h[i].value, h[i].value_len))
            return -EINVAL;
    struct sl_conn *c = r->c;
    int rc = 0;
    sl_timer_cancel(&c->w->wheel, &r->atimer);
    if (r->chunked) {
        rc = out_copy(c, "0\r\n", 3);
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = out_copy(c, h[i].name, h[i].name_len);
            rc = rc ? rc : out_copy(c, ": ", 2);
            rc = rc ? rc : out_copy(c, h[i].value, h[i].value_len);
            rc = rc ? rc : out_copy(c, "\r\n", 2);
        }
        rc = rc ? rc : out_copy(c, "\r\n", 2);
    }
    r->ended = true;
    if (rc < 0) {
        r->disc_sent = true;
        sl__conn_close(c);
        return -EPIPE;
    }
    return send_parts(c, r, NULL, 0);
}

/*
 * A response the core writes itself: an error with a short text body and
 * Connection: close. Creates the req when there is none (a head that did not
 * parse). The app, if it holds the req, gets -EPIPE from now on.
 */
void sl__resp_core_error(struct sl_conn *c, int status)
{
    struct sl_worker *w = c->w;
    struct sl_req *r = c->req;
    if (!r) {
        r = sl__req_new(w);
        if (!r) {
            sl__conn_close(c);
            return;
        }
        r->c = c;
        r->l = c->l;
        r->minor = 1;
        r->body_complete = true;
        r->raw_pos = c->rlen;
        sl__conn_note_line(c, r); /* access log: method and path if read */
        c->req = r;
        c->state = SL__C_REQ;
        sl_timer_cancel(&w->wheel, &c->rtimer);
    }
    if (r->head) { /* started, but none of it is the client's yet */
        sl__resp_drop_head(r);
        r->started = false;
    }
    if (r->started) {
        sl__conn_close(c);
        return;
    }
    if (status < 400 || status > 599)
        status = 500;
    const char *reason = sl_h1_reason(status);
    size_t blen = r->head_only ? 0 : strlen(reason) + 1;
    char buf[512], *p = put_status(buf, status);
    p = put(p, sl_date_line(&w->date), SL_DATE_LINE_LEN);
    if (w->server_line && w->server_line_len < 128) /* buf has room for that */
        p = put(p, w->server_line, w->server_line_len);
    p = PUT_LIT(p, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    p = put_u64(p, strlen(reason) + 1);
    p = PUT_LIT(p, "\r\nConnection: close\r\n");
    if (r->rid_len) /* buf has room: a name of 64 and an id of 64 at most */
        p = put_rid(p, r, w->cfg->http.request_id.header);
    if (status == 426) /* only the WebSocket handshake asks for an upgrade */
        p = PUT_LIT(p, "Sec-WebSocket-Version: 13\r\n");
    p = PUT_LIT(p, "\r\n");
    p = put(p, reason, blen ? blen - 1 : 0);
    p = put(p, "\n", blen ? 1 : 0);
    r->started = r->body_ended = r->ended = r->gone = true;
    r->ka = false;
    r->no_body = r->head_only;
    r->status = (int16_t)status;
    r->resp_sent = blen;
    c->close_after = true;
    struct iovec iov = {buf, (size_t)(p - buf)};
    if (sl__out_write(c, &iov, 1) < 0) {
        sl__conn_lost(c);
        return;
    }
    after_write(c);
}

/*
 * The exchange cannot complete. Nothing of the app's response committed:
 * the client gets `status`. Else what the app gave is the client's (ASGI:
 * data passed to send() is the server's to deliver): it is written, held
 * batches included, before the connection closes, as a response that
 * ends early does (close_after, linger), bounded by the write timeout.
 */
void sl__resp_fail(struct sl_req *r, int status)
{
    struct sl_conn *c = r->c;
    r->disc_sent = true;
    if (!r->started || r->head) {
        sl__resp_core_error(c, status);
        return;
    }
    r->gone = r->ended = true;
    r->ka = false;
    c->close_after = true;
    if (sl__out_write(c, NULL, 0) < 0) {
        sl__conn_lost(c);
        return;
    }
    after_write(c);
}

int sl_resp_error(struct sl_req *r, int status)
{
    if (r->gone)
        return -EPIPE;
    if (!r->c || r->ended)
        return 0; /* already answered in full: nothing left to fail */
    sl__resp_fail(r, status);
    return 0;
}
