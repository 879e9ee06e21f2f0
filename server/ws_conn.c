/*
 * ws_conn: WebSockets on a connection (RFC 6455): the opening handshake,
 * then frames in and out, the closing handshake.
 *
 *   REQ (ws handshake checked) --sl_ws_accept--> WS --close handshake done,
 *   or a protocol error--> LINGER (conn.c) --EOF/timeout--> DEAD
 *
 * Reading: frames are parsed from the read buffer (server/ws.c) and the
 * message is assembled in a heap buffer of the connection (bounded by
 * websocket.max_message), inflated on the way when permessage-deflate is on
 * (server/ws_deflate.c). Complete messages queue for the app, on its req (so
 * that those received before the peer's close still reach it once the
 * connection is gone); when websocket.max_queue of them wait, or they hold
 * max_message bytes, no more bytes are read, so a slow app pushes back on
 * the client through TCP. Control frames are handled as they come (a ping is
 * answered at once). An idle WebSocket holds no read buffer, no message
 * buffer and no zlib state: only its parser state.
 *
 * Closing: when the peer closes, its code is echoed and TCP closed (the
 * server closes first, RFC 6455 7.1.1); on a protocol violation the core
 * sends the code and closes; when the app closes, the core waits up to
 * SL__LINGER_MS for the peer's close frame. The app hears the end once
 * (SL_REQ_DISCONNECT) and reads the code with sl_ws_close_code.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "server/metrics_internal.h"
#include "server/server_internal.h"
#include "server/ws.h"
#include "server/ws_deflate.h"

/* A received message waiting for the app (on its req's ws_q list). */
struct sl__ws_msg {
    struct sl__ws_msg *next;
    uint8_t *data; /* malloc'd; NULL when empty */
    size_t len;
    bool text;
};

struct sl__ws {
    struct sl_ws_parser p;
    struct sl_ws_buf in;        /* the message being assembled (inflated) */
    struct sl_ws_inflater *zin; /* only while a compressed message arrives */
    struct sl_ws_utf8 utf8;     /* validates inflated text */
    struct sl__ws_msg *q_tail;  /* last of the req's ws_q */
    size_t q_bytes;             /* bytes waiting in ws_q */
    uint32_t q_n, max_queue;    /* messages waiting in ws_q, and the limit */
    uint8_t pmd_bits;           /* permessage-deflate: our window bits; 0 = off,
                                 * 8 = on but never compress */
    bool in_text : 1;           /* the message being assembled is text */
    bool waiting : 1;           /* the app found nothing: wake it (SL_REQ_BODY) */
    bool close_sent : 1;        /* our close frame is queued or out */
    bool ended : 1;             /* the app has been told it is over */
    bool finish : 1;            /* close TCP once the output queue is flushed */
    bool pinged : 1;            /* a keepalive ping is unanswered since ping_ms */
    bool out_full : 1;          /* reading paused: our output is above the high-water mark */
    uint64_t rx_ms;             /* when bytes last arrived (worker clock) */
    uint64_t ping_ms;           /* when the keepalive ping went out */
    /* The access-log line, written when the socket ends. */
    uint16_t code; /* close code sent or received first; 0 = none (1006) */
    bool log_on;
    uint32_t path_len, ua_len;
    char *log_text; /* path then User-Agent, copied at accept; malloc'd */
    uint64_t t_start_us;
    uint64_t msgs_in, msgs_out;
    uint64_t bytes_in, bytes_out; /* message bytes, as the app sees them (inflated) */
};

/* Reading pauses while the app has this much waiting. */
static bool queue_full(const struct sl__ws *ws)
{
    return ws->q_n >= ws->max_queue || (ws->p.max_message && ws->q_bytes >= ws->p.max_message);
}

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- handshake ------------------------------------------------------------ */

/* Whether the comma-separated list v[0..n) holds `tok` (any case). */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

/*
 * The first acceptable permessage-deflate offer among the
 * Sec-WebSocket-Extensions fields, in order (RFC 6455 9.1: several fields
 * are one list), as sl_req.ws_pmd; 0 when none.
 */
static uint8_t pmd_choose(const struct sl_h1_request *h)
{
    struct sl_ws_pmd m;
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct sl_h1_header *f = &h->headers[i];
        if (sl_h1_name_is(f, "sec-websocket-extensions", 24) &&
            sl_ws_pmd_offer(f->value, f->value_len, &m))
            return (uint8_t)(m.server_bits | (m.server_bits_named ? 0x10 : 0));
    }
    return 0;
}

/*
 * Checks an upgrade request (RFC 6455 4.2.1). Returns 0 (a WebSocket
 * handshake: r->ws set; or no WebSocket upgrade at all: served as plain
 * HTTP), -EBADMSG (400: a body, a missing or bad key) or -EPROTONOSUPPORT
 * (426: a version other than 13).
 */
int sl__ws_handshake(struct sl_conn *c, struct sl_req *r, const struct sl_h1_request *h)
{
    const struct sl_h1_header *key = NULL, *version = NULL;
    bool websocket = false, two_keys = false;
    if (h->method_len != 3 || memcmp(h->method, "GET", 3) != 0 || h->minor_version < 1)
        return 0; /* RFC 9110 7.8: an Upgrade the server does not act on is ignored */
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct sl_h1_header *f = &h->headers[i];
        if (sl_h1_name_is(f, "upgrade", 7))
            websocket |= has_token(f->value, f->value_len, "websocket");
        else if (sl_h1_name_is(f, "sec-websocket-key", 17))
            two_keys |= key != NULL, key = f; /* a second key is as bad as none */
        else if (sl_h1_name_is(f, "sec-websocket-version", 21))
            version = f;
    }
    if (!websocket)
        return 0;
    if (!version || version->value_len != 2 || memcmp(version->value, "13", 2) != 0)
        return -EPROTONOSUPPORT;
    if (h->chunked || h->content_length > 0)
        return -EBADMSG;
    if (!key || two_keys || !sl_ws_key_ok(key->value, key->value_len))
        return -EBADMSG;
    r->ws = true;
    r->ws_key_off = (uint32_t)(key->value - c->rbuf);
    r->ws_pmd = 0;
    if (c->l->cfg->websocket.compression == SL_WS_COMPRESSION_DEFLATE)
        r->ws_pmd = pmd_choose(h);
    return 0;
}

bool sl_req_is_websocket(const struct sl_req *r)
{
    return r->ws;
}

/* base64(SHA-1(key + GUID)) into out (28 characters and a NUL). */
static void accept_value(const char *key, char out[29])
{
    unsigned char in[24 + sizeof(ws_guid) - 1], md[SHA_DIGEST_LENGTH];
    memcpy(in, key, 24);
    memcpy(in + 24, ws_guid, sizeof(ws_guid) - 1);
    SHA1(in, sizeof(in), md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!sl_h1_is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* Headers the core writes itself on a 101. */
static bool core_owned(const struct sl_h1_header *f)
{
    return sl_h1_name_is(f, "connection", 10) || sl_h1_name_is(f, "upgrade", 7) ||
           sl_h1_name_is(f, "sec-websocket-accept", 20) || sl_h1_name_is(f, "content-length", 14) ||
           sl_h1_name_is(f, "transfer-encoding", 17) ||
           /* the core implements the extensions: an app cannot */
           sl_h1_name_is(f, "sec-websocket-extensions", 24);
}

static char *put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Formats the 101 head into a malloc'd buffer; returns its length or -errno. */
static ssize_t format_101(struct sl_conn *c, struct sl_req *r, const char *proto,
                          const struct sl_h1_header *h, size_t n, char **out)
{
    static const char l1[] = "HTTP/1.1 101 Switching Protocols\r\n",
                      l2[] = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
                      lp[] = "\r\nSec-WebSocket-Protocol: ",
                      le[] = "\r\nSec-WebSocket-Extensions: ";
    struct sl_worker *w = c->w;
    char acc[29], ext[SL_WS_PMD_RESPONSE_MAX];
    size_t plen = proto ? strlen(proto) : 0, elen = 0;
    if (r->ws_pmd) {
        struct sl_ws_pmd m = {.server_bits = r->ws_pmd & 0x0F,
                              .server_bits_named = r->ws_pmd & 0x10};
        elen = sl_ws_pmd_response(&m, ext);
    }
    size_t total = sizeof(l1) + SL_DATE_LINE_LEN + w->server_line_len + sizeof(l2) + 28 +
                   sizeof(lp) + plen + sizeof(le) + elen + 4;
    for (size_t i = 0; i < n; i++) {
        if (!sl_h1_header_ok(h[i].name, h[i].name_len, h[i].value, h[i].value_len))
            return -EINVAL;
        total += h[i].name_len + h[i].value_len + 4;
    }
    if (proto && !is_token(proto))
        return -EINVAL;
    char *b = malloc(total), *p = b;
    if (!b)
        return -ENOMEM;
    accept_value(c->rbuf + r->ws_key_off, acc);
    p = put(p, l1, sizeof(l1) - 1);
    p = put(p, sl_date_line(&w->date), SL_DATE_LINE_LEN);
    if (w->server_line)
        p = put(p, w->server_line, w->server_line_len);
    p = put(p, l2, sizeof(l2) - 1);
    p = put(p, acc, 28);
    if (proto) {
        p = put(p, lp, sizeof(lp) - 1);
        p = put(p, proto, plen);
    }
    if (elen) {
        p = put(p, le, sizeof(le) - 1);
        p = put(p, ext, elen);
    }
    p = put(p, "\r\n", 2);
    for (size_t i = 0; i < n; i++) {
        if (core_owned(&h[i]))
            continue;
        p = put(p, h[i].name, h[i].name_len);
        p = put(p, ": ", 2);
        p = put(p, h[i].value, h[i].value_len);
        p = put(p, "\r\n", 2);
    }
    p = put(p, "\r\n", 2);
    *out = b;
    return p - b;
}

/* Keeps what the access-log line at the socket's end needs from the head
 * (path and User-Agent, cut to sane lengths). */
static void log_prepare(struct sl_conn *c, struct sl_req *r, struct sl__ws *ws)
{
    r->logged = true; /* not as an HTTP exchange: one line when the socket ends */
    if (!sl_access_log_on(&c->w->alog))
        return;
    uint32_t plen = r->path_off == UINT32_MAX ? 0 : r->path_len;
    plen = plen > 4096 ? 4096 : plen;
    uint32_t ulen = r->ua_len > 1024 ? 1024 : r->ua_len;
    ws->log_text = malloc(plen + ulen + 1);
    if (!ws->log_text)
        return;
    memcpy(ws->log_text, plen ? c->rbuf + r->path_off : "/", plen ? plen : 1);
    ws->path_len = plen ? plen : 1;
    memcpy(ws->log_text + ws->path_len, c->rbuf + r->ua_off, ulen);
    ws->ua_len = ulen;
    ws->t_start_us = r->t_start_us;
    ws->log_on = true;
}

void sl__ws_log(struct sl_conn *c)
{
    struct sl__ws *ws = c->ws;
    if (!ws->log_on)
        return;
    ws->log_on = false;
    char client[64];
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    sl__conn_client(c, client, sizeof(client));
    struct sl_access_entry e = {
        .time_ms = (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000,
        .client = client,
        .method = "GET",
        .method_len = 3,
        .path = ws->log_text,
        .path_len = ws->path_len,
        .status = 101,
        .bytes = ws->bytes_out,
        .latency_us = ws->t_start_us ? sl_clock_us() - ws->t_start_us : 0,
        .user_agent = ws->ua_len ? ws->log_text + ws->path_len : NULL,
        .user_agent_len = ws->ua_len,
        .ws = true,
        .ws_close = ws->code ? ws->code : SL_WS_CLOSE_ABNORMAL,
        .ws_messages_in = ws->msgs_in,
        .ws_messages_out = ws->msgs_out,
        .ws_bytes_in = ws->bytes_in,
    };
    sl_access_log_write(&c->w->alog, &e);
}

int sl_ws_accept(struct sl_req *r, const char *subprotocol, const struct sl_h1_header *h, size_t n)
{
    struct sl_conn *c = r->c;
    if (r->gone || !c)
        return -EPIPE;
    if (!r->ws || r->started || c->state != SL__C_REQ)
        return -EPROTO;
    char *head;
    ssize_t len = format_101(c, r, subprotocol, h, n, &head);
    if (len < 0)
        return (int)len;
    struct sl__ws *ws = calloc(1, sizeof(*ws));
    if (!ws) {
        free(head);
        return -ENOMEM;
    }
    sl_ws_parser_init(&ws->p);
    ws->p.max_message = c->l->cfg->websocket.max_message;
    ws->max_queue = c->l->cfg->websocket.max_queue ? c->l->cfg->websocket.max_queue : 1;
    ws->pmd_bits = r->ws_pmd & 0x0F;
    ws->p.rsv1_ok = ws->pmd_bits != 0;
    c->ws = ws;
    ws->rx_ms = sl__worker_now(c->w);
    r->started = true;
    r->status = 101;
    log_prepare(c, r, ws); /* the head is still in rbuf: copy before frames reuse it */
    sl__metrics_req_end(c, r, sl_clock_us()); /* the HTTP exchange (101) ends, a WebSocket opens */
    sl_metrics_ws_open(sl__metrics_l(c), +1);
    sl_timer_cancel(&c->w->wheel, &r->atimer);
    sl_timer_cancel(&c->w->wheel, &c->rtimer);
    c->state = SL__C_WS;
    /* Bytes after the handshake are frames. */
    c->rlen -= r->raw_pos;
    memmove(c->rbuf, c->rbuf + r->raw_pos, c->rlen);
    c->rstart = c->parse_prev = 0;
    struct iovec iov = {head, (size_t)len};
    int rc = sl__out_write(c, &iov, 1);
    free(head);
    if (rc < 0) {
        r->disc_sent = true;
        sl__conn_lost(c);
        return -EPIPE;
    }
    sl__timer_arm(c, &c->rtimer, c->l->cfg->websocket.ping_interval_ms);
    sl__worker_kick(c);
    if (c->w->draining) /* the drain passed this conn while it was a request */
        sl__ws_going_away(c);
    return 0;
}

/* ---- the end --------------------------------------------------------------- */

/* Tells the app (once) that the WebSocket is over, with `code`. */
static void ws_end(struct sl_conn *c, unsigned code)
{
    struct sl__ws *ws = c->ws;
    struct sl_req *r = c->req;
    if (!ws->code)
        ws->code = (uint16_t)code;
    if (ws->ended || !r)
        return;
    ws->ended = true;
    ws->waiting = false;
    r->ws_code = (uint16_t)code;
    if (r->app_holds && !r->disc_sent) {
        r->disc_sent = true;
        sl__worker_queue_event(r, SL__EV_DISCONNECT);
    }
}

/* The closing handshake is done (or failed): close TCP once our output,
 * the close frame included, is flushed. */
static void ws_finish(struct sl_conn *c)
{
    if (c->out_head) {
        c->ws->finish = true;                        /* sl__ws_after_write lingers once it is out */
        sl__timer_arm(c, &c->rtimer, SL__LINGER_MS); /* bounded: then a plain close */
        return;
    }
    sl__conn_linger(c);
}

/* Writes one unfragmented frame. Returns 0 or -errno (connection broken:
 * the caller closes it). */
static int ws_write(struct sl_conn *c, unsigned op, const void *data, size_t len)
{
    uint8_t head[10];
    size_t hn = sl_ws_frame_head(head, op, true, len);
    struct iovec iov[2] = {{head, hn}, {(void *)data, len}};
    int rc = sl__out_write(c, iov, len ? 2 : 1);
    return rc < 0 ? rc : 0;
}

/* The connection broke (EOF without a close, a failed write). */
static void ws_lost(struct sl_conn *c)
{
    ws_end(c, SL_WS_CLOSE_ABNORMAL);
    sl__conn_lost(c);
}

/* Sends a close frame with `code` (no code for 1005). Returns 0 or -EPIPE
 * (and the connection is closed). */
static int send_close(struct sl_conn *c, unsigned code, const char *reason, size_t len)
{
    uint8_t pl[SL_WS_CONTROL_MAX];
    size_t n = 0;
    c->ws->close_sent = true;
    if (code != SL_WS_CLOSE_NO_STATUS) {
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        if (len)
            memcpy(pl + 2, reason, len);
        n = 2 + len;
    }
    if (ws_write(c, SL_WS_OP_CLOSE, pl, n) < 0) {
        ws_lost(c);
        return -EPIPE;
    }
    return 0;
}

/* Our side closes (the app, its release, a drain): wait for the peer's
 * close frame, a short while. */
static int close_from_us(struct sl_conn *c, unsigned code, const char *reason, size_t len)
{
    if (send_close(c, code, reason, len) < 0)
        return -EPIPE;
    sl__timer_arm(c, &c->rtimer, SL__LINGER_MS);
    return 0;
}

void sl__ws_release(struct sl_req *r)
{
    struct sl_conn *c = r->c;
    c->ws->ended = true; /* the app is gone: nobody to tell */
    if (!c->ws->code && !c->ws->close_sent)
        c->ws->code = SL_WS_CLOSE_NORMAL;
    if (!c->ws->close_sent)
        close_from_us(c, SL_WS_CLOSE_NORMAL, NULL, 0);
}

void sl__ws_going_away(struct sl_conn *c)
{
    unsigned code = atomic_load_explicit(&c->w->restarting, memory_order_relaxed)
                        ? SL_WS_CLOSE_RESTART
                        : SL_WS_CLOSE_GOING_AWAY;
    if (c->ws->close_sent)
        return;
    ws_end(c, code);
    close_from_us(c, code, NULL, 0);
}

void sl__ws_after_write(struct sl_conn *c)
{
    struct sl__ws *ws = c->ws;
    if (!ws)
        return;
    if (ws->finish && !c->out_head) {
        sl__conn_linger(c);
        return;
    }
    if (ws->out_full && c->out_bytes < SL__LOW_WATER) {
        ws->out_full = false;
        sl__worker_kick(c);
    }
}

void sl__ws_free(struct sl_conn *c)
{
    if (!c->ws)
        return;
    sl_ws_buf_release(&c->ws->in);
    sl_ws_inflater_free(c->ws->zin);
    free(c->ws->log_text);
    free(c->ws);
    c->ws = NULL;
}

/*
 * The read timer of an open WebSocket (not closing: then it is the close
 * timeout). Keepalive: a peer silent for ping_interval gets a ping; one that
 * sends nothing within ping_timeout after it is gone (1006). Activity only
 * stamps rx_ms; the timer re-arms itself from it, so a busy socket costs no
 * timer work per read. Returns false when the connection must close.
 */
bool sl__ws_timer(struct sl_conn *c)
{
    struct sl__ws *ws = c->ws;
    const struct sl_websocket *cfg = &c->l->cfg->websocket;
    uint64_t now = sl__worker_now(c->w);
    if (ws->close_sent || ws->finish)
        return false;
    if (queue_full(ws)) {
        /* Reading is paused for the app: the peer's pongs would not be
         * seen. It sent a message lately; wait for the app instead. */
        ws->pinged = false;
        ws->rx_ms = now;
        sl__timer_arm(c, &c->rtimer, cfg->ping_interval_ms);
        return true;
    }
    if (ws->pinged && ws->rx_ms < ws->ping_ms) {
        if (cfg->ping_timeout_ms && now - ws->ping_ms >= cfg->ping_timeout_ms) {
            sl_metrics_timeout(sl__metrics_l(c), SL_METRICS_TIMEOUT_WEBSOCKET);
            ws_end(c, SL_WS_CLOSE_ABNORMAL);
            return false;
        }
    } else {
        ws->pinged = false;
    }
    uint64_t idle = now - ws->rx_ms;
    if (!ws->pinged && idle >= cfg->ping_interval_ms) {
        if (ws_write(c, SL_WS_OP_PING, NULL, 0) < 0) {
            ws_end(c, SL_WS_CLOSE_ABNORMAL);
            return false;
        }
        ws->pinged = true;
        ws->ping_ms = now;
    }
    uint64_t next = ws->pinged ? (cfg->ping_timeout_ms ? cfg->ping_timeout_ms - (now - ws->ping_ms)
                                                       : cfg->ping_interval_ms)
                               : cfg->ping_interval_ms - idle;
    sl__timer_arm(c, &c->rtimer, (uint32_t)(next ? next : 1));
    return true;
}

/* ---- reading ---------------------------------------------------------------- */

/* Fails the WebSocket from the reading side: `code` to the app and the
 * peer, then TCP closed once it is out. */
static void read_fail(struct sl_conn *c, unsigned code)
{
    ws_end(c, code);
    if (!c->ws->close_sent && send_close(c, code, NULL, 0) < 0)
        return;
    ws_finish(c);
}

/* Appends a run of an uncompressed message. Returns 0 or -ENOMEM. */
static int msg_append(struct sl__ws *ws, const uint8_t *p, size_t n)
{
    if (sl_ws_buf_reserve(&ws->in, n, ws->p.max_message) < 0)
        return -ENOMEM;
    if (n)
        memcpy(ws->in.data + ws->in.len, p, n);
    ws->in.len += n;
    return 0;
}

/*
 * Inflates a run of a compressed message (RFC 7692) and checks the text it
 * yields. No client context takeover was negotiated, so no inflater
 * outlives a message: one that arrives whole in one run uses the worker's;
 * one that arrives in pieces gets its own from its first run to its last.
 * Returns 0 or the close code to fail with.
 */
static unsigned msg_inflate(struct sl_conn *c, const struct sl_ws_event *ev)
{
    struct sl__ws *ws = c->ws;
    struct sl_worker *w = c->w;
    struct sl_ws_inflater *z = ws->zin;
    if (ev->first)
        sl_ws_utf8_init(&ws->utf8);
    if (!z && ev->first && ev->fin) {
        /* The whole message in one run (the usual small message): the
         * worker's inflater, reset, does it; the socket allocates nothing. */
        if (!w->ws_inflater && !(w->ws_inflater = sl_ws_inflater_new()))
            return SL_WS_CLOSE_INTERNAL;
        z = w->ws_inflater;
        sl_ws_inflater_reset(z);
    } else if (!z) {
        if (!(z = ws->zin = sl_ws_inflater_new()))
            return SL_WS_CLOSE_INTERNAL;
    }
    size_t from = ws->in.len;
    int rc = sl_ws_inflate(z, ev->data, ev->len, ev->fin, &ws->in, ws->p.max_message);
    if (rc == -EMSGSIZE)
        return SL_WS_CLOSE_TOO_BIG; /* a zip bomb stops at max_message */
    if (rc == -EBADMSG)
        return SL_WS_CLOSE_BAD_DATA;
    if (rc < 0)
        return SL_WS_CLOSE_INTERNAL;
    if (ev->opcode == SL_WS_OP_TEXT &&
        (!sl_ws_utf8_feed(&ws->utf8, ws->in.data + from, ws->in.len - from) ||
         (ev->fin && !sl_ws_utf8_complete(&ws->utf8))))
        return SL_WS_CLOSE_BAD_DATA;
    if (ev->fin && ws->zin) {
        sl_ws_inflater_free(ws->zin); /* no zlib state between messages */
        ws->zin = NULL;
    }
    return 0;
}

/* The assembled message joins the app's queue (the req owns it). Returns
 * 0 or -ENOMEM. */
static int msg_queue(struct sl_conn *c, struct sl_req *r)
{
    struct sl__ws *ws = c->ws;
    struct sl__ws_msg *m = malloc(sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->data = ws->in.data;
    m->len = ws->in.len;
    m->text = ws->in_text;
    ws->in.data = NULL;
    ws->in.len = ws->in.cap = 0;
    if (r->ws_q)
        ws->q_tail->next = m;
    else
        r->ws_q = m;
    ws->q_tail = m;
    ws->q_n++;
    ws->q_bytes += m->len;
    return 0;
}

/* A DATA event: payload appended (inflated), and a complete message queued
 * for the app. Returns false when parsing must stop. */
static bool on_data(struct sl_conn *c, const struct sl_ws_event *ev)
{
    struct sl__ws *ws = c->ws;
    struct sl_req *r = c->req;
    if (ws->close_sent || ws->ended || !r)
        return true; /* closing, or nobody to read it: data is dropped */
    unsigned fail = 0;
    size_t before = ws->in.len;
    if (ev->compressed)
        fail = msg_inflate(c, ev);
    else if (msg_append(ws, ev->data, ev->len) < 0)
        fail = SL_WS_CLOSE_INTERNAL;
    ws->in_text = ev->opcode == SL_WS_OP_TEXT;
    ws->bytes_in += ws->in.len - before;
    if (!fail && ev->fin && msg_queue(c, r) < 0)
        fail = SL_WS_CLOSE_INTERNAL;
    if (fail) {
        read_fail(c, fail);
        return false;
    }
    if (!ev->fin)
        return true;
    ws->msgs_in++;
    sl_metrics_ws_message(sl__metrics_l(c), false);
    if (ws->waiting && r->app_holds) {
        ws->waiting = false;
        sl__worker_queue_event(r, SL__EV_BODY);
    }
    return !queue_full(ws);
}

/* Keeps the peer's close reason for websocket.disconnect (on the req: the
 * app may read it after the connection is gone). */
static void keep_reason(struct sl_conn *c, const struct sl_ws_event *ev)
{
    struct sl_req *r = c->req;
    if (!r || c->ws->ended || !ev->len || r->ws_reason)
        return;
    if ((r->ws_reason = malloc(ev->len))) {
        memcpy(r->ws_reason, ev->data, ev->len);
        r->ws_reason_len = (uint8_t)ev->len;
    }
}

/* Handles one parser event. Returns false when parsing must stop (the
 * app's queue is full, or the WebSocket is over). */
static bool on_frame_event(struct sl_conn *c, const struct sl_ws_event *ev)
{
    struct sl__ws *ws = c->ws;
    switch (ev->type) {
    case SL_WS_EV_DATA:
        return on_data(c, ev);
    case SL_WS_EV_PING:
        if (!ws->close_sent && ws_write(c, SL_WS_OP_PONG, ev->data, ev->len) < 0) {
            ws_lost(c);
            return false;
        }
        return true;
    case SL_WS_EV_PONG:
        return true;
    case SL_WS_EV_CLOSE:
        keep_reason(c, ev);
        ws_end(c, ev->code);
        if (!ws->close_sent && send_close(c, ev->code, NULL, 0) < 0)
            return false;
        ws_finish(c);
        return false;
    case SL_WS_EV_ERROR:
    default:
        read_fail(c, ev->code);
        return false;
    }
}

/* Parses the buffered bytes until they run out or parsing must stop; the
 * bytes not consumed move to the front of the buffer. */
static void ws_parse(struct sl_conn *c)
{
    struct sl__ws *ws = c->ws;
    size_t pos = 0;
    bool go = true;
    while (go && pos < c->rlen && !queue_full(ws)) {
        struct sl_ws_event ev;
        pos += sl_ws_parse(&ws->p, (uint8_t *)c->rbuf + pos, c->rlen - pos, &ev);
        if (ev.type != SL_WS_EV_MORE)
            go = on_frame_event(c, &ev);
        if (c->state != SL__C_WS)
            return;
        if (ev.type == SL_WS_EV_CLOSE || ev.type == SL_WS_EV_ERROR)
            go = false;
    }
    c->rlen -= (uint32_t)pos;
    if (c->rlen && pos)
        memmove(c->rbuf, c->rbuf + pos, c->rlen);
}

void sl__ws_step(struct sl_conn *c)
{
    struct sl__ws *ws = c->ws;
    for (;;) {
        if (c->rlen) {
            ws_parse(c);
            if (c->state != SL__C_WS)
                return;
        }
        if (queue_full(ws) || ws->finish || sl_ws_parser_done(&ws->p) || !c->readable)
            break;
        /* A peer that sends (pings, or messages an app echoes) but does not
         * read would grow our output without bound: stop reading it. */
        if (c->out_bytes > SL__HIGH_WATER) {
            ws->out_full = true;
            break;
        }
        if (sl__conn_rbuf_get(c) < 0) {
            ws_lost(c);
            return;
        }
        ssize_t n = sl__conn_rbuf_read(c);
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            ws_lost(c); /* EOF or reset without a close frame */
            return;
        }
        ws->rx_ms = sl__worker_now(c->w);
    }
    if (c->rlen == 0)
        sl__conn_rbuf_put(c); /* idle: hold no buffer */
}

/* ---- the app's calls --------------------------------------------------------- */

int sl_ws_recv(struct sl_req *r, const void **data, size_t *len, bool *text)
{
    struct sl_conn *c = r->c;
    *data = NULL;
    *len = 0;
    *text = false;
    if (!r->ws || !r->started)
        return -EPROTO;
    struct sl__ws_msg *m = r->ws_q;
    if (m) { /* even after the end: what arrived before the close is the app's */
        *data = m->data ? m->data : (const uint8_t *)"";
        *len = m->len;
        *text = m->text;
        return 1;
    }
    if (!c || c->state != SL__C_WS || c->ws->ended)
        return -EPIPE;
    c->ws->waiting = true;
    return 0;
}

void sl_ws_consume(struct sl_req *r)
{
    struct sl__ws_msg *m = r->ws_q;
    if (!m)
        return;
    r->ws_q = m->next;
    struct sl_conn *c = r->c;
    if (c && c->ws) {
        struct sl__ws *ws = c->ws;
        bool was_full = queue_full(ws);
        ws->q_n--;
        ws->q_bytes -= m->len;
        if (!r->ws_q)
            ws->q_tail = NULL;
        if (was_full && !queue_full(ws) && c->state == SL__C_WS)
            sl__worker_kick(c); /* reading resumes */
    }
    free(m->data);
    free(m);
}

void sl__ws_req_clear(struct sl_req *r)
{
    while (r->ws_q) {
        struct sl__ws_msg *m = r->ws_q;
        r->ws_q = m->next;
        free(m->data);
        free(m);
    }
    free(r->ws_reason);
    r->ws_reason = NULL;
    r->ws_reason_len = 0;
}

const char *sl_ws_close_reason(const struct sl_req *r, size_t *len)
{
    *len = r->ws_reason_len;
    return r->ws_reason ? r->ws_reason : "";
}

/*
 * Compresses a message with the worker's deflater (made on first use; no
 * context is kept between messages, so one serves every socket). On
 * success *data and *len name the compressed payload, in the deflater's
 * scratch (valid until the next message), and *z is set; a message that
 * does not shrink is left as it is. Returns 0 or -ENOMEM.
 */
static int deflate_message(struct sl_conn *c, const void **data, size_t *len, bool *z)
{
    struct sl_worker *w = c->w;
    const uint8_t *out;
    size_t out_len;
    if (!w->ws_deflater && !(w->ws_deflater = sl_ws_deflater_new()))
        return -ENOMEM;
    int rc = sl_ws_deflate(w->ws_deflater, c->ws->pmd_bits, *data, *len, &out, &out_len);
    if (rc == -EINVAL)
        return 0; /* over 4 GiB: sent as it is */
    if (rc < 0)
        return -ENOMEM;
    if (out_len < *len) {
        *data = out;
        *len = out_len;
        *z = true;
    }
    return 0;
}

int sl_ws_send(struct sl_req *r, bool text, const void *data, size_t len)
{
    struct sl_conn *c = r->c;
    if (!r->ws || !r->started)
        return -EPROTO;
    if (!c || c->state != SL__C_WS || c->ws->close_sent)
        return -EPIPE;
    bool z = false;
    size_t app_len = len;
    if (c->ws->pmd_bits >= 9 && len >= SL_WS_DEFLATE_MIN) {
        int rc = deflate_message(c, &data, &len, &z);
        if (rc < 0)
            return rc;
    }
    uint8_t head[10];
    size_t hn = sl_ws_frame_head(head, text ? SL_WS_OP_TEXT : SL_WS_OP_BINARY, true, len);
    if (z)
        head[0] |= 0x40; /* RSV1: a compressed message (RFC 7692 6) */
    struct iovec iov[2] = {{head, hn}, {(void *)data, len}};
    /* Batched like HTTP responses: an app's sends of one loop turn leave
     * together (sl_worker_set_batching). */
    int rc = sl__out_send(c, iov, len ? 2 : 1);
    if (z)
        sl_ws_deflater_trim(r->w->ws_deflater); /* copied out: a large scratch goes */
    if (rc < 0) {
        r->disc_sent = true;
        ws_lost(c);
        return -EPIPE;
    }
    c->ws->msgs_out++;
    sl_metrics_ws_message(sl__metrics_l(c), true);
    c->ws->bytes_out += app_len;
    if (c->out_bytes > SL__HIGH_WATER) {
        r->want_drain = true;
        return 1;
    }
    return 0;
}

int sl_ws_close(struct sl_req *r, unsigned code, const char *reason, size_t len)
{
    struct sl_conn *c = r->c;
    if (!r->ws || !r->started)
        return -EPROTO;
    if (!sl_ws_close_code_ok(code) || len > SL_WS_CONTROL_MAX - 2 ||
        (len && !sl_ws_utf8_valid((const uint8_t *)reason, len)))
        return -EINVAL;
    if (!c || c->state != SL__C_WS || c->ws->close_sent)
        return -EPIPE;
    ws_end(c, code);
    return close_from_us(c, code, reason, len);
}

unsigned sl_ws_close_code(const struct sl_req *r)
{
    return r->ws_code ? r->ws_code : SL_WS_CLOSE_ABNORMAL;
}
