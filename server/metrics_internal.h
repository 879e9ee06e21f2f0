/*
 * metrics hooks of the core: what conn.c, worker.c, req.c and ws_conn.c
 * record, each a one-line call at the place where it happens. Without a
 * registry (sl_metrics_enabled() false) each is a test and a return.
 */
#ifndef SL_SERVER_METRICS_INTERNAL_H
#define SL_SERVER_METRICS_INTERNAL_H

#include "base/clock.h"
#include "server/metrics.h"
#include "server/server_internal.h"

/* c's listener, as an index in cfg->listeners. */
static inline size_t sl__metrics_l(const struct sl_conn *c)
{
    return (size_t)(c->l - c->w->ls);
}

/* A request head is handed over: in flight from now, its clock starts. The
 * method is kept for the end (the access log keeps it too). */
static inline void sl__metrics_req_start(struct sl_conn *c, struct sl_req *r,
                                         const struct sl_h1_request *h)
{
    if (!sl_metrics_enabled())
        return;
    r->metered = true;
    r->t_start_us = sl_clock_us();
    r->method_off = (uint32_t)(h->method - c->rbuf);
    r->method_len = (uint32_t)h->method_len;
    sl_metrics_request_start(sl__metrics_l(c));
}

/* The exchange is over (or, for a WebSocket, its handshake answered) at
 * end_us (sl_clock_us): counted once, as the access log counts it (499: the
 * client left first). */
static inline void sl__metrics_req_end(struct sl_conn *c, struct sl_req *r, uint64_t end_us)
{
    if (!sl_metrics_enabled() || r->mdone)
        return;
    r->mdone = true;
    const struct sl_route_list *t = &c->l->cfg->routes;
    struct sl_metrics_exchange x = {
        .listener = sl__metrics_l(c),
        .route = r->route ? (size_t)(r->route - t->items) + 1 : 0,
        .method = c->rbuf && r->method_len ? c->rbuf + r->method_off : NULL,
        .method_len = r->method_len,
        .status = r->started && !r->head ? r->status : 499,
        .duration_us = r->t_start_us && end_us > r->t_start_us ? end_us - r->t_start_us : 0,
        .bytes_in = r->body_total,
        .bytes_out = r->no_body ? 0 : r->resp_sent,
        .started = r->metered,
    };
    sl_metrics_request_end(&x);
}

#endif
