/*
 * route_act: the actions of intercept routes that the server answers
 * itself (return, redirect, health, preflight, and the source 403). They
 * go through the same response writer as the app's responses (sl_resp_*),
 * so framing, keep-alive, HEAD, the Date/Server headers and the access log
 * are the same.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/metrics.h"
#include "server/route_internal.h"

#define LOCATION_MAX 8192 /* bytes of a Location header we build */
#define MAX_HEADERS 40    /* return: its 32 headers and ours */

/* Normalised paths (a request-target is at most 64 KiB). One worker per
 * thread: each has its own. */
static _Thread_local char path_scratch[(64u << 10) + 1];
static _Thread_local char location[LOCATION_MAX];

const struct sockaddr *sl__req_client(const struct sl_req *r)
{
    if (r->fwd_client_len) /* proxy.headers from a trusted peer */
        return &r->fwd_client.sa;
    return r->c->peer_len ? &r->c->peer.sa : NULL; /* after a PROXY header: its source */
}

void sl__route_lookup(struct sl_req *r, const struct sl_h1_request *h, struct sl_route_hit *hit)
{
    const struct sl_route_list *t = &r->l->cfg->routes;
    if (t->n == 0 || (h->path && h->path_len >= sizeof(path_scratch))) {
        *hit = (struct sl_route_hit){0};
        return;
    }
    sl_route_find(t, h, sl__req_client(r), path_scratch, hit);
}

uint64_t sl__route_max_body(const struct sl_conn *c, const struct sl_route_hit *hit)
{
    if (hit->route && hit->route->limits.max_body != SL_ROUTE_INHERIT_SIZE)
        return hit->route->limits.max_body;
    return c->l->cfg->limits.max_body;
}

uint32_t sl__route_body_ms(const struct sl_req *r)
{
    if (r->route && r->route->timeouts.body_ms != SL_ROUTE_INHERIT_MS)
        return r->route->timeouts.body_ms;
    return r->l->cfg->timeouts.body_ms;
}

uint32_t sl__route_write_ms(const struct sl_conn *c)
{
    const struct sl_req *r = c->req;
    if (r && r->route && r->route->timeouts.write_ms != SL_ROUTE_INHERIT_MS)
        return r->route->timeouts.write_ms;
    return c->l->cfg->timeouts.write_ms;
}

static void hdr(struct sl_h1_header *v, size_t *n, const char *name, const char *value, size_t len)
{
    v[*n] = (struct sl_h1_header){
        .name = name, .name_len = strlen(name), .value = value, .value_len = len};
    (*n)++;
}

/* Sends a complete response and lets go of the req (the app never saw it). */
static void respond(struct sl_req *r, int status, struct sl_h1_header *v, size_t n,
                    const char *body, size_t len)
{
    char cl[24];
    if (status != 204 && status != 304) {
        int k = snprintf(cl, sizeof(cl), "%zu", len);
        hdr(v, &n, "Content-Length", cl, (size_t)k);
    }
    r->app_holds = true; /* what sl_req_release expects */
    if (sl_resp_start(r, status, v, n, false) == 0)
        sl_resp_body(r, body, len, false);
    else
        sl_resp_error(r, 500);
    sl_req_release(r);
}

static void respond_text(struct sl_req *r, int status, const char *text)
{
    struct sl_h1_header v[4];
    size_t n = 0;
    hdr(v, &n, "Content-Type", "text/plain; charset=utf-8", 25);
    hdr(v, &n, "Cache-Control", "no-store", 8);
    respond(r, status, v, n, text, strlen(text));
}

void sl__route_refuse(struct sl_req *r, int status, uint32_t retry_after_s)
{
    struct sl_h1_header v[4];
    size_t n = 0;
    char text[64], after[16];
    snprintf(text, sizeof(text), "%s\n", sl_h1_reason(status));
    int k = snprintf(after, sizeof(after), "%" PRIu32, retry_after_s ? retry_after_s : 1);
    hdr(v, &n, "Content-Type", "text/plain; charset=utf-8", 25);
    hdr(v, &n, "Retry-After", after, (size_t)k);
    respond(r, status, v, n, text, strlen(text));
}

void sl__route_status(struct sl_req *r, int status)
{
    struct sl_h1_header v[4];
    size_t n = 0;
    char text[64];
    snprintf(text, sizeof(text), "%s\n", sl_h1_reason(status));
    hdr(v, &n, "Content-Type", "text/plain; charset=utf-8", 25);
    if (status == 405)
        hdr(v, &n, "Allow", "GET, HEAD", 9);
    respond(r, status, v, n, text, strlen(text));
}

static void act_return(struct sl_req *r, const struct sl_route_return *ret)
{
    struct sl_h1_header v[MAX_HEADERS];
    size_t n = 0, blen = strlen(ret->body);
    if (blen && ret->content_type[0])
        hdr(v, &n, "Content-Type", ret->content_type, strlen(ret->content_type));
    for (size_t i = 0; i < ret->nheaders && n < MAX_HEADERS - 1; i++) {
        const char *h = ret->headers[i], *colon = strchr(h, ':'), *val = colon + 1;
        size_t vlen = strlen(val);
        while (*val == ' ' || *val == '\t')
            val++, vlen--;
        while (vlen && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
            vlen--;
        v[n++] = (struct sl_h1_header){
            .name = h, .name_len = (size_t)(colon - h), .value = val, .value_len = vlen};
    }
    respond(r, ret->status, v, n, ret->body, blen);
}

/* RFC 3986 pchar and '/': what {rest} keeps as it is. */
static bool keep_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@/", c));
}

struct out {
    char *p;
    size_t len, cap;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n == 0) /* s may be NULL (no query) */
        return;
    if (o->len + n > o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_encoded(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (keep_byte(c))
            put(o, s + i, 1);
        else
            put(o, e, 3);
    }
}

static void act_redirect(struct sl_req *r, const struct sl_h1_request *h,
                         const struct sl_route_hit *hit)
{
    const struct sl_route_redirect *rd = &hit->route->redirect;
    struct out o = {.p = location, .cap = sizeof(location)};
    size_t qlen = h->query ? h->query_len : 0;
    for (const char *p = rd->to; *p;) {
        if (strncmp(p, "{rest}", 6) == 0 && hit->path) {
            put_encoded(&o, hit->path + hit->rest_off, hit->path_len - hit->rest_off);
            p += 6;
        } else if (strncmp(p, "{query}", 7) == 0) {
            put(&o, h->query, qlen);
            p += 7;
        } else if (strncmp(p, "{?query}", 8) == 0) {
            if (qlen) {
                put(&o, "?", 1);
                put(&o, h->query, qlen);
            }
            p += 8;
        } else {
            put(&o, p++, 1);
        }
    }
    if (o.full) {
        respond_text(r, 414, "URI Too Long\n");
        return;
    }
    struct sl_h1_header v[2];
    size_t n = 0;
    hdr(v, &n, "Location", location, o.len);
    respond(r, rd->status, v, n, "", 0);
}

static void act_health(struct sl_req *r)
{
    if (r->w->draining)
        respond_text(r, 503, "draining\n");
    else
        respond_text(r, 200, "ok\n");
}

/* ---- CORS preflight ----------------------------------------------------------------- */

static const struct sl_h1_header *header(const struct sl_h1_request *h, const char *lower)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (sl_h1_name_is(&h->headers[i], lower, strlen(lower)))
            return &h->headers[i];
    return NULL;
}

static bool in_list(const char *const *l, size_t n, const char *s, size_t len, bool nocase)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(l[i]);
        if (k == 1 && l[i][0] == '*')
            return true;
        if (k == len && (nocase ? strncasecmp(l[i], s, len) : memcmp(l[i], s, len)) == 0)
            return true;
    }
    return false;
}

/* Every comma-separated name of Access-Control-Request-Headers allowed. */
static bool headers_allowed(const struct sl_route_preflight *pf, const struct sl_h1_header *acrh)
{
    if (acrh == NULL)
        return true;
    const char *p = acrh->value, *end = p + acrh->value_len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (p > s && !in_list(pf->headers, pf->nheaders, s, (size_t)(p - s), true))
            return false;
    }
    return true;
}

static void act_preflight(struct sl_req *r, const struct sl_h1_request *h,
                          const struct sl_route_preflight *pf)
{
    static const char vary[] = "Origin, Access-Control-Request-Method, "
                               "Access-Control-Request-Headers";
    const struct sl_h1_header *origin = header(h, "origin");
    const struct sl_h1_header *acrm = header(h, "access-control-request-method");
    const struct sl_h1_header *acrh = header(h, "access-control-request-headers");
    struct sl_h1_header v[8];
    size_t n = 0;
    char age[24];
    hdr(v, &n, "Vary", vary, sizeof(vary) - 1);
    if (!in_list(pf->origins, pf->norigins, origin->value, origin->value_len, false) ||
        !in_list(pf->methods, pf->nmethods, acrm->value, acrm->value_len, false) ||
        !headers_allowed(pf, acrh)) {
        respond(r, 403, v, n, "", 0);
        return;
    }
    hdr(v, &n, "Access-Control-Allow-Origin", origin->value, origin->value_len);
    hdr(v, &n, "Access-Control-Allow-Methods", pf->methods_line, strlen(pf->methods_line));
    if (acrh && acrh->value_len)
        hdr(v, &n, "Access-Control-Allow-Headers", acrh->value, acrh->value_len);
    if (pf->max_age_ms >= 1000) {
        int k = snprintf(age, sizeof(age), "%" PRIu32, pf->max_age_ms / 1000);
        hdr(v, &n, "Access-Control-Max-Age", age, (size_t)k);
    }
    if (pf->credentials)
        hdr(v, &n, "Access-Control-Allow-Credentials", "true", 4);
    respond(r, 204, v, n, "", 0);
}

/* The instance's metrics, in the format the Accept header asks for. */
static void act_metrics(struct sl_req *r, const struct sl_h1_request *h)
{
    const struct sl_h1_header *accept = header(h, "accept");
    enum sl_metrics_format f =
        sl_metrics_negotiate(accept ? accept->value : NULL, accept ? accept->value_len : 0);
    char *body = NULL;
    size_t len = 0;
    int rc = sl_metrics_render(f, &body, &len);
    if (rc < 0) {
        respond_text(r, 503,
                     rc == -ENOENT ? "metrics are not enabled in this process\n"
                                   : "metrics unavailable\n");
        return;
    }
    struct sl_h1_header v[4];
    size_t n = 0;
    const char *ct = sl_metrics_content_type(f);
    hdr(v, &n, "Content-Type", ct, strlen(ct));
    hdr(v, &n, "Cache-Control", "no-store", 8);
    respond(r, 200, v, n, body, len);
    free(body);
}

bool sl__route_answer(struct sl_req *r, const struct sl_h1_request *h,
                      const struct sl_route_hit *hit)
{
    const struct sl_route_config *rt = hit->route;
    if (rt == NULL)
        return false;
    if (hit->forbidden) {
        respond_text(r, 403, "Forbidden\n");
        return true;
    }
    switch (rt->action) {
    case SL_ROUTE_RETURN:
        act_return(r, &rt->ret);
        return true;
    case SL_ROUTE_REDIRECT:
        act_redirect(r, h, hit);
        return true;
    case SL_ROUTE_HEALTH:
        act_health(r);
        return true;
    case SL_ROUTE_PREFLIGHT:
        act_preflight(r, h, &rt->preflight);
        return true;
    case SL_ROUTE_FILES:
        return sl__route_files(r, h, hit);
    case SL_ROUTE_METRICS:
        act_metrics(r, h);
        return true;
    default:
        return false; /* the app */
    }
}
