/*
 * limits: the limits that count per client address (limits.rate,
 * limits.concurrency, limits.max_connections_per_ip) and the connection
 * lifetime. The counts live in the worker's client table
 * (server/client_table.h), made the first time a limit needs it: with
 * these limits off, a connection or request costs a few compares.
 */
#include <string.h>

#include "server/cidr.h"
#include "server/client_table.h"
#include "server/metrics_internal.h"
#include "server/proxy.h"
#include "server/route_internal.h"

static struct sl_client_table *table(struct sl_worker *w)
{
    if (!w->clients)
        w->clients = sl_client_table_new(SL_CLIENT_TABLE_SLOTS);
    return w->clients; /* NULL (out of memory): limits let everyone through */
}

/* The entry of (client, scope); 0 when there is none to count on (no
 * address, no memory, a full table): the client then goes uncounted. */
static uint32_t entry(struct sl_worker *w, const struct sockaddr *client, const void *scope)
{
    unsigned char key[16];
    if (!sl_cidr_key(client, key) || !table(w))
        return 0;
    return sl_client_get(w->clients, key, scope);
}

bool sl__limits_conn_open(struct sl_conn *c)
{
    const struct sl_limits *lim = &c->l->cfg->limits;
    const struct sl_proxy_config *p = &c->l->cfg->proxy;
    if (lim->max_connections_per_ip == 0 || c->peer_len == 0)
        return true;
    if (p->headers && sl_proxy_trusted(p, &c->peer.sa))
        return true; /* a proxy: it carries many clients */
    uint32_t id = entry(c->w, &c->peer.sa, lim);
    if (id == 0)
        return true;
    if (!sl_client_hold(c->w->clients, id, SL_CLIENT_CONNS, lim->max_connections_per_ip)) {
        c->w->conn_ip_rejects++;
        sl_metrics_reject(sl__metrics_l(c), SL_METRICS_REJECT_PER_IP);
        return false;
    }
    c->client_id = id;
    return true;
}

void sl__limits_conn_close(struct sl_conn *c)
{
    if (c->client_id)
        sl_client_put(c->w->clients, c->client_id, SL_CLIENT_CONNS);
    c->client_id = 0;
}

/* The route's rate when it has one, else the listener's; *scope names
 * whose bucket it is. */
static const struct sl_rate *rate_of(const struct sl_req *r, const void **scope)
{
    const struct sl_route_config *rt = r->route;
    if (rt && rt->limits.rate.per_sec != SL_ROUTE_INHERIT) {
        *scope = rt;
        return &rt->limits.rate;
    }
    *scope = &r->l->cfg->limits;
    return &r->l->cfg->limits.rate;
}

static uint32_t concurrency_of(const struct sl_req *r, const void **scope)
{
    const struct sl_route_config *rt = r->route;
    if (rt && rt->limits.concurrency != SL_ROUTE_INHERIT) {
        *scope = rt;
        return rt->limits.concurrency;
    }
    *scope = &r->l->cfg->limits;
    return r->l->cfg->limits.concurrency;
}

bool sl__limits_request(struct sl_req *r, const struct sl_h1_request *h)
{
    struct sl_worker *w = r->w;
    const void *rscope, *cscope;
    const struct sl_rate *rate = rate_of(r, &rscope);
    uint32_t cap = concurrency_of(r, &cscope);
    if (rate->per_sec == 0 && cap == 0)
        return false;
    const struct sockaddr *client = sl__req_client(r);
    uint32_t id;
    if (rate->per_sec && (id = entry(w, client, rscope)) != 0) {
        uint32_t wait_ms = sl_client_take(w->clients, id, rate, w->now_ms);
        if (wait_ms) {
            w->rate_rejects++;
            if (r->c)
                sl_metrics_reject(sl__metrics_l(r->c), SL_METRICS_REJECT_RATE);
            sl__route_refuse(r, 429, (wait_ms + 999) / 1000);
            return true;
        }
    }
    /* A WebSocket would count as in flight for as long as it is open. */
    if (cap && !h->upgrade && (id = entry(w, client, cscope)) != 0) {
        if (!sl_client_hold(w->clients, id, SL_CLIENT_INFLIGHT, cap)) {
            w->concurrency_rejects++;
            if (r->c)
                sl_metrics_reject(sl__metrics_l(r->c), SL_METRICS_REJECT_CONCURRENCY);
            sl__route_refuse(r, 503, 1);
            return true;
        }
        r->client_id = id;
    }
    return false;
}

void sl__limits_request_end(struct sl_req *r)
{
    if (r->client_id)
        sl_client_put(r->w->clients, r->client_id, SL_CLIENT_INFLIGHT);
    r->client_id = 0;
}

bool sl__limits_expired(const struct sl_conn *c)
{
    uint32_t life = c->l->cfg->limits.max_connection_lifetime_ms;
    return life && c->w->now_ms - c->born_ms >= life;
}

uint32_t sl__limits_idle_ms(const struct sl_conn *c, uint32_t keep_alive_ms)
{
    uint32_t life = c->l->cfg->limits.max_connection_lifetime_ms;
    if (life == 0)
        return keep_alive_ms;
    uint64_t age = c->w->now_ms - c->born_ms;
    uint32_t left = age >= life ? 1 : (uint32_t)(life - age);
    return keep_alive_ms && keep_alive_ms < left ? keep_alive_ms : left;
}
