/*
 * route: matching a request head against the compiled route table.
 * Cheap checks first (method, host), the path only when a route has one
 * and normalised at most once per request, the source last: a route that
 * matches a refused client answers 403 instead of falling through, so that
 * a restricted path never reaches the app from elsewhere.
 */
#include "server/route.h"

#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "server/cidr.h"
#include "server/route_path.h"

static bool name_is(const struct sl_h1_header *h, const char *lower)
{
    return sl_h1_name_is(h, lower, strlen(lower));
}

static const struct sl_h1_header *find_header(const struct sl_h1_request *h, const char *lower)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (name_is(&h->headers[i], lower))
            return &h->headers[i];
    return NULL;
}

bool sl_route_is_preflight(const struct sl_h1_request *h)
{
    return h->method_len == 7 && memcmp(h->method, "OPTIONS", 7) == 0 && find_header(h, "origin") &&
           find_header(h, "access-control-request-method");
}

static bool method_match(const struct sl_route_config *r, const struct sl_h1_request *h)
{
    if (r->nmethods == 0)
        return true;
    for (size_t i = 0; i < r->nmethods; i++)
        if (strlen(r->methods[i]) == h->method_len &&
            memcmp(r->methods[i], h->method, h->method_len) == 0)
            return true;
    return false;
}

bool sl_route_host_match(const struct sl_route_config *r, const char *host, size_t len)
{
    if (r->host_pat == NULL)
        return true;
    if (host == NULL)
        return false;
    if (len > 0 && host[0] == '[') { /* IPv6 literal: up to ']' */
        const char *end = memchr(host, ']', len);
        if (end == NULL)
            return false;
        len = (size_t)(end - host) + 1;
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon)
            len = (size_t)(colon - host);
    }
    if (len > 1 && host[len - 1] == '.') /* the absolute form "example.com." */
        len--;
    if (!r->host_wild)
        return len == r->host_pat_len && strncasecmp(host, r->host_pat, len) == 0;
    /* ".example.com" with at least one byte of label before it */
    return len > r->host_pat_len &&
           strncasecmp(host + len - r->host_pat_len, r->host_pat, r->host_pat_len) == 0;
}

bool sl_route_source_match(const struct sl_route_config *r, const struct sockaddr *client)
{
    return r->nsource == 0 || sl_cidr_contains(&r->cidrs, client);
}

/* Normalises the path into scratch on first use. False when the target
 * has no path a route can match. */
static bool path_ready(const struct sl_h1_request *h, char *scratch, struct sl_route_hit *hit,
                       bool *done)
{
    if (!*done) {
        long n = h->path ? sl_route_path_normalize(h->path, h->path_len, scratch) : -1;
        hit->path = n >= 0 ? scratch : NULL;
        hit->path_len = n >= 0 ? (size_t)n : 0;
        *done = true;
    }
    return hit->path != NULL;
}

void sl_route_find(const struct sl_route_list *t, const struct sl_h1_request *h,
                   const struct sockaddr *client, char *scratch, struct sl_route_hit *hit)
{
    bool normalised = false, preflight = false, preflight_known = false;
    *hit = (struct sl_route_hit){0};
    for (size_t i = 0; i < t->n; i++) {
        const struct sl_route_config *r = &t->items[i];
        size_t rest = 0;
        if (!method_match(r, h) || !sl_route_host_match(r, h->host, h->host_len))
            continue;
        if (r->path_pat && (!path_ready(h, scratch, hit, &normalised) ||
                            !sl_route_path_match(hit->path, hit->path_len, r->path_pat,
                                                 r->path_pat_len, r->path_prefix, &rest)))
            continue;
        if (r->action == SL_ROUTE_FILES)
            path_ready(h, scratch, hit, &normalised); /* files need it */
        if (r->action == SL_ROUTE_PREFLIGHT) {
            if (!preflight_known)
                preflight = sl_route_is_preflight(h), preflight_known = true;
            if (!preflight)
                continue;
        }
        hit->route = r;
        hit->rest_off = rest;
        hit->forbidden = !sl_route_source_match(r, client);
        return;
    }
}
