/*
 * req: the request side of server.h (head, addresses, body streaming) and
 * the req object's lifetime.
 *
 * A req is held by its conn until the exchange is over and by the app until
 * sl_req_release(); it returns to the worker's free list (no malloc per
 * request) when neither holds it and no event for it is queued.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server/metrics_internal.h"
#include "server/route_internal.h"
#include "server/server_internal.h"

/*
 * timeouts.app ran out while the app still had not ended its response: the
 * client gets a 504 or what the app gave and a close (sl__resp_fail), and
 * the app is told to stop (SL_REQ_CANCEL), even when the client already left:
 * a task nobody waits for should not run forever.
 */
static void app_timer_fired(struct sl_timer *t)
{
    struct sl_req *r = sl_container_of(t, struct sl_req, atimer);
    if (!r->app_holds)
        return;
    r->w->app_timeouts++;
    sl_metrics_timeout((size_t)(r->l - r->w->ls), SL_METRICS_TIMEOUT_APP);
    if (r->c && !r->gone && !r->ended)
        sl__resp_fail(r, 504);
    r->disc_sent = true; /* CANCEL says more than DISCONNECT would */
    sl__worker_queue_event(r, SL__EV_CANCEL);
}

struct sl_req *sl__req_new(struct sl_worker *w)
{
    struct sl_req *r = w->req_free;
    if (r) {
        w->req_free = r->evnext;
    } else {
        r = malloc(sizeof(*r));
        if (!r)
            return NULL;
        r->all_next = w->req_all;
        w->req_all = r;
    }
    struct sl_req *all_next = r->all_next;
    memset(r, 0, sizeof(*r));
    r->all_next = all_next;
    r->w = w;
    sl_timer_init(&r->atimer, app_timer_fired);
    return r;
}

void sl__req_maybe_free(struct sl_req *r)
{
    if (r->app_holds || r->c || r->queued || r->in_free)
        return;
    sl__ws_req_clear(r);
    r->in_free = true;
    sl__limits_request_end(r);
    r->evnext = r->w->req_free;
    r->w->req_free = r;
}

void sl__req_detach(struct sl_req *r)
{
    sl__route_file_close(r);
    sl__resp_drop_head(r);
    if (r->c) {
        r->c->req = NULL;
        r->c = NULL;
    }
    sl__req_maybe_free(r);
}

void sl__req_free_all(struct sl_worker *w)
{
    while (w->req_all) {
        struct sl_req *r = w->req_all;
        w->req_all = r->all_next;
        sl__ws_req_clear(r);
        free(r);
    }
    w->req_free = NULL;
}

const struct sl_h1_request *sl_req_head(const struct sl_req *r)
{
    return r->w->head_req == r ? &r->w->head : NULL;
}

const struct sockaddr *sl_req_peer(const struct sl_req *r, socklen_t *len)
{
    const struct sl_conn *c = r->c;
    if (c && r->fwd_client_len) { /* proxy.headers named the client */
        if (len)
            *len = r->fwd_client_len;
        return &r->fwd_client.sa;
    }
    if (!c || !c->peer_len) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = c->peer_len;
    return &c->peer.sa;
}

/* getsockname once per connection, and only if the app asks. */
const struct sockaddr *sl_req_local(const struct sl_req *r, socklen_t *len)
{
    struct sl_conn *c = r->c;
    if (len)
        *len = 0;
    if (!c || c->l->is_unix)
        return NULL;
    if (!c->local_known) {
        socklen_t n = sizeof(c->local);
        if (getsockname(c->fd, &c->local.sa, &n) < 0 || n > sizeof(c->local))
            return NULL;
        c->local_len = (uint8_t)n;
        c->local_known = true;
    }
    if (len)
        *len = c->local_len;
    return &c->local.sa;
}

bool sl_req_is_unix(const struct sl_req *r)
{
    return r->l && r->l->is_unix;
}

const char *sl_req_unix_path(const struct sl_req *r)
{
    return sl_req_is_unix(r) ? r->l->cfg->path : NULL;
}

int sl_req_forwarded_scheme(const struct sl_req *r)
{
    if (r->fwd_scheme)
        return r->fwd_scheme;
    return r->c && r->c->proxy_ssl ? 2 : 0;
}

bool sl_req_forwarded_prefix(const struct sl_req *r, const char **prefix, size_t *len)
{
    const struct sl_conn *c = r->c;
    if (!c || !c->rbuf || !r->fwd_prefix)
        return false;
    *prefix = c->rbuf + r->fwd_prefix_off;
    *len = r->fwd_prefix_len;
    return true;
}

bool sl_req_forwarded_host(const struct sl_req *r, const char **host, size_t *len, int *port)
{
    const struct sl_conn *c = r->c;
    if (!c || !c->rbuf || !r->fwd_host_len)
        return false;
    const char *h = c->rbuf + r->fwd_host_off;
    size_t n = r->fwd_host_len, name = n;
    *port = 0;
    /* "name:port" or "[v6]:port": the port is what follows the last colon
     * after any bracket. */
    const char *rb = memchr(h, ']', n);
    const char *from = rb ? rb : h;
    const char *colon = memrchr(from, ':', n - (size_t)(from - h));
    if (colon && (rb || !memchr(h, ':', (size_t)(colon - h)))) {
        int p = 0;
        size_t digits = n - (size_t)(colon + 1 - h);
        for (size_t i = 0; i < digits && p <= 65535; i++) {
            char ch = colon[1 + i];
            if (ch < '0' || ch > '9')
                return false;
            p = p * 10 + (ch - '0');
        }
        if (digits == 0 || p > 65535)
            return false;
        *port = p;
        name = (size_t)(colon - h);
    }
    if (name == 0)
        return false;
    *host = h;
    *len = name;
    return true;
}

const struct sl_route_config *sl_req_route(const struct sl_req *r)
{
    return r->route;
}

void sl_req_set_data(struct sl_req *r, void *data)
{
    r->data = data;
}

void *sl_req_data(const struct sl_req *r)
{
    return r->data;
}

/* RFC 9110 10.1.1: the interim 100 goes out only when the app actually
 * asks for a body the client is holding back, and never after a response
 * started. */
static int send_continue(struct sl_conn *c, struct sl_req *r)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {.iov_base = (void *)line, .iov_len = sizeof(line) - 1};
    r->continue_sent = true;
    if (sl__out_write(c, &iov, 1) < 0) {
        sl__conn_lost(c);
        return -EPIPE;
    }
    return 0;
}

int sl_req_body_peek(struct sl_req *r, const char **data, size_t *len, bool *done)
{
    *data = NULL;
    *len = 0;
    *done = false;
    if (r->body_err)
        return r->body_err;
    struct sl_conn *c = r->c;
    if (!c || r->gone || r->finished)
        return -EPIPE;
    size_t avail = r->body_end - r->body_pos;
    *data = c->rbuf + r->body_pos;
    *len = avail;
    *done = r->body_complete && avail == 0;
    if (avail || r->body_complete)
        return 0;
    if (r->expect && !r->continue_sent && !r->started && r->body_total == 0 &&
        send_continue(c, r) < 0) {
        *data = NULL;
        return -EPIPE;
    }
    /* The app now waits: SL_REQ_BODY wakes it, the body timeout bounds it. */
    r->body_waiting = true;
    if (!sl_timer_armed(&c->rtimer))
        sl__timer_arm(c, &c->rtimer, sl__route_body_ms(r));
    if (c->rpaused)
        sl__worker_kick(c);
    return 0;
}

void sl_req_body_consume(struct sl_req *r, size_t n)
{
    struct sl_conn *c = r->c;
    if (!c || r->gone || r->finished)
        return;
    size_t avail = r->body_end - r->body_pos;
    r->body_pos += (uint32_t)(n < avail ? n : avail);
    /* Reading stopped on a full buffer: resume once half of it is free. */
    if (c->rpaused && r->body_end - r->body_pos <= sl__conn_rcap(c) / 2)
        sl__worker_kick(c);
}

/*
 * The app lets go. An exchange it never answered gets a 500 (nothing of the
 * response committed) or what the app gave and a close, so no client waits
 * forever on an app that forgot a request.
 */
void sl_req_release(struct sl_req *r)
{
    if (!r->app_holds)
        return;
    sl_timer_cancel(&r->w->wheel, &r->atimer);
    if (r->c && r->c->state == SL__C_WS)
        sl__ws_release(r); /* an open WebSocket closes with 1000 */
    else if (r->c && !r->gone && !r->ended && r->file_fd <= 0) /* a file body goes on alone */
        sl__resp_fail(r, 500);
    r->app_holds = false;
    sl__req_maybe_free(r);
}
