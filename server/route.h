/*
 * route: intercept routes, matched once per request head and (except
 * `app`) answered in C before any Python runs.
 *
 * The table is config's (struct sl_route_list, compiled and immutable);
 * matching allocates nothing. The path is matched in its normalised form
 * (server/route_path.h); the host without its port, in any case; the client
 * against the route's `source` CIDRs.
 */
#ifndef SL_SERVER_ROUTE_H
#define SL_SERVER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"
#include "server/h1.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sl_route_hit {
    const struct sl_route_config *route; /* NULL: no route matched (the app) */
    bool forbidden;   /* the route matched but `source` refuses the client: 403 */
    const char *path; /* the normalised path (in the caller's scratch); NULL if
                         the target has none ("*") */
    size_t path_len;
    size_t rest_off; /* prefix routes: where {rest} starts in `path` */
};

/*
 * Finds the first route of `t` that matches the request head `h` from
 * `client` (the proxied client when a trusted proxy named one; NULL or
 * AF_UNIX for a Unix-socket client). `scratch` has room for
 * h->path_len + 1 bytes and receives the normalised path. A `preflight`
 * route only matches CORS preflight requests (sl_route_is_preflight): any
 * other request falls through to the routes after it.
 */
void sl_route_find(const struct sl_route_list *t, const struct sl_h1_request *h,
                   const struct sockaddr *client, char *scratch, struct sl_route_hit *hit);

/* OPTIONS with Origin and Access-Control-Request-Method. */
bool sl_route_is_preflight(const struct sl_h1_request *h);

/* `host` as in a Host header ("Example.COM:8080", "[::1]:80"). */
bool sl_route_host_match(const struct sl_route_config *r, const char *host, size_t len);

/* Whether `client` (NULL or AF_UNIX: a Unix-socket peer) may use the route
 * (`source`; none = everyone). An IPv4-mapped IPv6 client is matched as
 * IPv4. */
bool sl_route_source_match(const struct sl_route_config *r, const struct sockaddr *client);

#ifdef __cplusplus
}
#endif

#endif
