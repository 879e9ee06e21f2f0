/*
 * schema: every config key, declared once.
 *
 * Parsing, validation, defaults, --print-config, the JSON Schema and
 * docs/config.md are all generated from these tables. To add a key: add a
 * field to struct sl_config (config.h) and one line here; a new section is a
 * new table plus one SL__SECTION line in its parent. A section that listener
 * items may override (limits, timeouts, later intercepts) is declared once
 * and used twice: globally, and in listener_keys with SL__INHERIT.
 *
 * Defaults are YAML text parsed by the same code as the user's values, so
 * they are documented and printed exactly as a user would write them.
 */
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "config/config_internal.h"

/* offset and size of a field of `type` */
#define FIELD(type, member) .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)
/* a field of an anonymous struct member of sl_config (http, log) */
#define SUBFIELD(sect, member)                                                                     \
    .offset = offsetof(struct sl_config, sect.member) - offsetof(struct sl_config, sect),          \
    .size = sizeof(((struct sl_config *)0)->sect.member)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define SECOND 1000
#define DAY (24 * 3600 * SECOND)

/* ---- timeouts ------------------------------------------------------------ */

#define TIMEOUT(member) FIELD(struct sl_timeouts, member), .type = &sl__type_duration, .max = DAY

static const struct sl__key timeouts_keys[] = {
    {.name = "header",
     TIMEOUT(header_ms),
     .def = "5s",
     .doc = "From a connection's (or a keep-alive request's) first byte to the end of the "
            "request head; 408 and close after it."},
    {.name = "handshake",
     TIMEOUT(handshake_ms),
     .def = "10s",
     .doc = "TLS listeners: from accept (or the end of the PROXY header) to the end of the "
            "TLS handshake; a client still handshaking is closed (logged at `info`). The "
            "`header` timeout starts when the handshake is done."},
    {.name = "keep_alive",
     TIMEOUT(keep_alive_ms),
     .def = "5s",
     .doc = "How long an idle keep-alive connection is kept between requests."},
    {.name = "body",
     TIMEOUT(body_ms),
     .def = "30s",
     .doc = "Longest wait for the next piece of a request body."},
    {.name = "write",
     TIMEOUT(write_ms),
     .def = "30s",
     .doc = "Longest time a response write may make no progress (slow reader)."},
    {.name = "app",
     TIMEOUT(app_ms),
     .def = "0",
     .doc = "Longest time the app may take, from the request head to the end of its response. "
            "When it runs out the request's task is cancelled and the client gets 504, or, if "
            "part of the response was already given, what was given and then a closed "
            "connection. `0` (the default) = no limit."},
    {.name = "shutdown",
     TIMEOUT(shutdown_ms),
     .def = "30s",
     .doc = "On SIGTERM/SIGINT, how long in-flight requests may take to finish before the "
            "remaining connections are closed."},
    /* Last: global only, listeners' `timeouts` use every key but this one. */
    {.name = "startup",
     TIMEOUT(startup_ms),
     .def = "1m",
     .doc = "Global only. How long a worker may take from its start (the app import when "
            "`app.preload` is off, then lifespan startup) to \"ready\"; a worker still starting "
            "then is killed. With `app.preload` it bounds the import in the master too (it "
            "raises `TimeoutError` in the import). At start that is exit status 3; on a reload "
            "(SIGHUP) or a respawn the old workers keep serving. `0` = no limit."},
};

static const struct sl__section timeouts_section = {
    .name = "timeouts",
    .keys = timeouts_keys,
    .nkeys = ARRAY_LEN(timeouts_keys),
    .size = sizeof(struct sl_timeouts),
    .doc = "Timeouts, per connection. `0` disables one.",
};

/* A listener's overrides: the same keys but the last, `startup` (process-wide). */
static const struct sl__section listener_timeouts_section = {
    .name = "timeouts",
    .keys = timeouts_keys,
    .nkeys = ARRAY_LEN(timeouts_keys) - 1,
    .size = sizeof(struct sl_timeouts),
    .doc = "Timeouts, per connection. `0` disables one.",
};

/* ---- limits -------------------------------------------------------------- */

#define LIMIT(member) FIELD(struct sl_limits, member)

static const struct sl__key rate_keys[] = {
    {.name = "per_sec",
     FIELD(struct sl_rate, per_sec),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000,
     .def = "0",
     .doc = "Requests a second each client address may make on average. `0` = no rate limit."},
    {.name = "burst",
     FIELD(struct sl_rate, burst),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000,
     .def = "0",
     .doc = "Requests a client may make at once after a quiet spell (the bucket's size). "
            "`0` = `per_sec`."},
};

static const struct sl__section rate_section = {
    .name = "limits.rate",
    .keys = rate_keys,
    .nkeys = ARRAY_LEN(rate_keys),
    .size = sizeof(struct sl_rate),
    .doc = "A token bucket per client address (the client as `proxy` trusts it), per worker: "
           "each request takes a token, `per_sec` tokens come back a second, at most `burst` "
           "are kept. A request finding none gets `429` with `Retry-After` (seconds until "
           "the next token). Counted before any route action, so a route with "
           "`limits: {rate: {per_sec: 0}}` exempts its requests (a health check).",
};

static const struct sl__key limits_keys[] = {
    {.name = "max_body",
     LIMIT(max_body),
     .type = &sl__type_size,
     .max = 1ll << 40,
     .def = "1MiB",
     .doc = "Largest request body accepted; larger ones get 413. `0` = no limit."},
    {.name = "max_header_bytes",
     LIMIT(max_header_bytes),
     .type = &sl__type_size,
     .min = 8 << 10,
     .max = 64 << 10,
     .def = "16KiB",
     .doc = "Largest request line plus headers; larger ones get 431."},
    {.name = "max_request_target",
     LIMIT(max_request_target),
     .type = &sl__type_size,
     .min = 256,
     .max = 64 << 10,
     .def = "8KiB",
     .doc = "Longest request-target (the URI in the request line); longer ones get 414. It is "
            "part of the head too: at most `max_header_bytes` minus 64 bytes takes effect, so "
            "that a long URI is always answered 414, never 431."},
    {.name = "max_headers",
     LIMIT(max_headers),
     .type = &sl__type_int,
     .min = 1,
     .max = 10000,
     .def = "100",
     .doc = "Most header fields in one request; more get 431."},
    {.name = "max_connections",
     LIMIT(max_connections),
     .type = &sl__type_int,
     .min = 1,
     .max = 1000000,
     .def = "1024",
     .doc = "Open connections per worker; beyond it new connections are accepted and closed "
            "at once."},
    {.name = "max_keepalive_requests",
     LIMIT(max_keepalive_requests),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000000,
     .def = "1000",
     .doc = "Requests served on one connection before it is closed. `0` = unlimited."},
    {.name = "max_connections_per_ip",
     LIMIT(max_connections_per_ip),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000,
     .def = "0",
     .doc = "Open connections per client address, per worker; beyond it new connections are "
            "accepted and closed at once (counted). The address is the peer's, or the PROXY "
            "header's source once it is read (`proxy.protocol`); peers whose forwarding "
            "headers are believed (`proxy.headers`) are not capped, as they carry many clients. "
            "Unix-socket peers without a PROXY header have no address and are not capped. "
            "`0` = no cap."},
    {.name = "concurrency",
     LIMIT(concurrency),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000,
     .def = "0",
     .doc = "Requests in flight per client address, per worker (the client as `proxy` "
            "trusts it); one more gets `503` with `Retry-After: 1`. `0` = no cap."},
    {.name = "max_connection_lifetime",
     LIMIT(max_connection_lifetime_ms),
     .type = &sl__type_duration,
     .max = 30ll * DAY,
     .def = "0",
     .doc = "A connection older than this is closed between requests: the response in "
            "progress is finished with `Connection: close`, an idle one is closed at once. "
            "WebSockets are not cut. `0` = no limit."},
    {.name = "rate",
     LIMIT(rate),
     .shape = SL__SECTION,
     .section = &rate_section,
     .doc = "Requests per client address (a token bucket)."},
};

static const struct sl__section limits_section = {
    .name = "limits",
    .keys = limits_keys,
    .nkeys = ARRAY_LEN(limits_keys),
    .size = sizeof(struct sl_limits),
    .doc = "Resource limits. Those per client address (`rate`, `concurrency`, "
           "`max_connections_per_ip`) are counted per worker, in a table of 8192 clients "
           "(64 bytes each plus its hash index: at most 544 KiB per worker, allocated when a "
           "limit first needs it). When it is full the least recently seen client with "
           "nothing open is forgotten (it starts again with a full bucket); clients with open "
           "connections or requests are never forgotten. With N workers a client may get up "
           "to N times a limit, as the kernel spreads its connections.",
};

/* ---- routes (checks and derived fields: config/route.c) ------------------------ */

#define ROUTE(member) FIELD(struct sl_route_config, member)
#define RETURN(member) FIELD(struct sl_route_return, member)
#define REDIRECT(member) FIELD(struct sl_route_redirect, member)
#define PREFLIGHT(member) FIELD(struct sl_route_preflight, member)
#define STRLIST(strct, member, n)                                                                  \
    .shape = SL__LIST, .type = &sl__type_string, .count = offsetof(strct, n),                      \
    .item_size = sizeof(const char *)

static const struct sl__key return_keys[] = {
    {.name = "status",
     RETURN(status),
     .type = &sl__type_int,
     .min = 200,
     .max = 599,
     .def = "200",
     .doc = "Status code of the response."},
    {.name = "body",
     RETURN(body),
     .type = &sl__type_string,
     .def = "\"\"",
     .doc = "Body of the response, sent as written (HEAD requests get none)."},
    {.name = "content_type",
     RETURN(content_type),
     .type = &sl__type_string,
     .def = "\"text/plain; charset=utf-8\"",
     .doc = "Content-Type of the body; `\"\"` sends none. Not sent with an empty body."},
    {.name = "headers",
     RETURN(headers),
     STRLIST(struct sl_route_return, headers, nheaders),
     .max_items = 32,
     .def = "[]",
     .doc = "More response headers, each `\"Name: value\"` (`\"Retry-After: 120\"`). "
            "Content-Length, Transfer-Encoding, Connection and Content-Type are the "
            "server's."},
};

static const struct sl__section return_section = {
    .name = "routes[].return",
    .keys = return_keys,
    .nkeys = ARRAY_LEN(return_keys),
    .size = sizeof(struct sl_route_return),
    .finish = sl__route_return_finish,
    .doc = "A fixed response made by the server: a favicon `204`, a `robots.txt`, a "
           "maintenance `503` with `Retry-After`.",
};

static const struct sl__key redirect_keys[] = {
    {.name = "to",
     REDIRECT(to),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Location of the redirect (required): a URL or a path. Placeholders: `{rest}` is "
            "the part of the path matched by the route's `/*` (percent-encoded again, "
            "without a leading `/`), `{query}` the query string as received, `{?query}` the "
            "same with a `?` before it when there is one and nothing otherwise."},
    {.name = "status",
     REDIRECT(status),
     .type = &sl__type_int,
     .min = 301,
     .max = 308,
     .def = "302",
     .doc = "`301`, `302`, `303`, `307` or `308`."},
};

static const struct sl__section redirect_section = {
    .name = "routes[].redirect",
    .keys = redirect_keys,
    .nkeys = ARRAY_LEN(redirect_keys),
    .size = sizeof(struct sl_route_redirect),
    .doc = "A redirect made by the server (no body).",
};

static const struct sl__key preflight_keys[] = {
    {.name = "origins",
     PREFLIGHT(origins),
     STRLIST(struct sl_route_preflight, origins, norigins),
     .max_items = 256,
     .def = "[]",
     .doc = "Origins allowed (required, at least one): exact, like "
            "`\"https://app.example.com\"`, or `\"*\"` for any. The allowed origin is echoed "
            "in Access-Control-Allow-Origin (with `Vary: Origin`)."},
    {.name = "methods",
     PREFLIGHT(methods),
     STRLIST(struct sl_route_preflight, methods, nmethods),
     .min_items = 1,
     .max_items = 32,
     .def = "[\"GET\", \"HEAD\", \"POST\"]",
     .doc = "Methods allowed in Access-Control-Request-Method (case-sensitive)."},
    {.name = "headers",
     PREFLIGHT(headers),
     STRLIST(struct sl_route_preflight, headers, nheaders),
     .max_items = 64,
     .def = "[]",
     .doc = "Request headers allowed in Access-Control-Request-Headers (any case); `\"*\"` "
            "allows any."},
    {.name = "max_age",
     PREFLIGHT(max_age_ms),
     .type = &sl__type_duration,
     .max = DAY,
     .def = "0",
     .doc = "Access-Control-Max-Age (whole seconds); `0` sends none."},
    {.name = "credentials",
     PREFLIGHT(credentials),
     .type = &sl__type_bool,
     .def = "false",
     .doc = "Send `Access-Control-Allow-Credentials: true`."},
};

static const struct sl__section preflight_section = {
    .name = "routes[].preflight",
    .keys = preflight_keys,
    .nkeys = ARRAY_LEN(preflight_keys),
    .size = sizeof(struct sl_route_preflight),
    .finish = sl__route_preflight_finish,
    .doc = "Answers CORS preflight requests (OPTIONS with Origin and "
           "Access-Control-Request-Method) without the app: `204` when the origin, method "
           "and headers are allowed, `403` when not. Any other request falls through to the "
           "next route.",
};

#define FILES(member) FIELD(struct sl_route_files, member)

static const char *const fallback_names[] = {"none", "app", NULL};

static const struct sl__key files_keys[] = {
    {.name = "root",
     FILES(root),
     .type = &sl__type_path,
     .def = "null",
     .flags = SL__NULLABLE | SL__CHECK_DIR,
     .doc = "Directory served (required). The part of the path the route's `/*` matched "
            "(the whole path for a route without one) names a file below it. Nothing outside "
            "it is ever opened (openat2 RESOLVE_BENEATH): relative symbolic links are followed "
            "while they stay below it; absolute ones and those leaving it answer 404."},
    {.name = "index",
     FILES(index),
     .type = &sl__type_string,
     .def = "\"index.html\"",
     .doc = "File served for a directory; `\"\"` = none. Directories are never listed."},
    {.name = "fallback",
     FILES(fallback),
     .type = &sl__type_enum,
     .names = fallback_names,
     .def = "none",
     .doc = "A missing file: `none` answers 404, `app` hands the request to the app."},
    {.name = "cache",
     FILES(cache_ms),
     .type = &sl__type_duration,
     .max = 30ll * DAY, /* uint32_t ms */
     .def = "0",
     .doc = "`Cache-Control: max-age` sent with files (whole seconds); `0` sends none."},
    {.name = "precompressed",
     FILES(precompressed),
     .type = &sl__type_bool,
     .def = "false",
     .doc = "Serve `NAME.br` or `NAME.gz` next to a file when the client's Accept-Encoding "
            "takes it (with Content-Encoding and `Vary: Accept-Encoding`)."},
};

static const struct sl__section files_section = {
    .name = "routes[].files",
    .keys = files_keys,
    .nkeys = ARRAY_LEN(files_keys),
    .size = sizeof(struct sl_route_files),
    .doc = "Static files with sendfile(2) (TLS: SSL_sendfile with kTLS, else read and write): GET "
           "and HEAD "
           "(others get 405), ETag and Last-Modified with 304 for If-None-Match and "
           "If-Modified-Since, one byte range (206, 416), types from /etc/mime.types.",
};

static const struct sl__section app_action_section = {
    .name = "routes[].app",
    .size = 0,
    .doc = "Hands the request to the ASGI app (what a request no route matches gets): a route "
           "with `app: {}` only sets `limits`, `timeouts` or `source` for its requests.",
};

static const struct sl__key tracemalloc_keys[] = {
    {.name = "top",
     .offset = 0, /* within the tracemalloc struct */
     .size = sizeof(uint32_t),
     .type = &sl__type_int,
     .min = 1,
     .max = 1000,
     .def = "20",
     .doc = "How many allocation sites (file and line) to list, largest first."},
};

static const struct sl__section tracemalloc_section = {
    .name = "routes[].tracemalloc",
    .keys = tracemalloc_keys,
    .nkeys = ARRAY_LEN(tracemalloc_keys),
    .size = sizeof(((struct sl_route_config *)0)->tracemalloc),
    .doc = "The Python heap as `tracemalloc` sees it, as text: the current and peak traced "
           "size, then the `top` allocation sites by size. Answered by the worker that got the "
           "request, without calling the app; GET and HEAD only (others get 405). Tracing "
           "(`tracemalloc.start()`) starts at startup, before the app is imported, only when a "
           "route has this action: it costs memory and time on every allocation, so keep such "
           "a route behind `source`.",
};

static const struct sl__section health_section = {
    .name = "routes[].health",
    .size = 0,
    .doc = "`200 ok` while the worker serves (it exists only once lifespan startup is "
           "complete), `503 draining` once it drains (shutdown, reload), so load balancers "
           "take it out.",
};

#define RLIMIT(member)                                                                             \
    .offset = offsetof(struct sl_route_config, limits.member) -                                    \
              offsetof(struct sl_route_config, limits),                                            \
    .size = sizeof(((struct sl_route_config *)0)->limits.member)

/* per_sec given whenever rate is: a rate without one would silently inherit. */
static void route_rate_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                              const char *path)
{
    const struct sl_rate *rt = obj;
    if (map && rt->per_sec == SL_ROUTE_INHERIT && !sl__map_get(map, "per_sec"))
        sl__error(cx, map, sl__path_join(cx, path, "per_sec"),
                  "missing required key, expected an integer from 0 to 1000000 or null");
}

static const struct sl__key route_rate_keys[] = {
    {.name = "per_sec",
     FIELD(struct sl_rate, per_sec),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Requests a second per client address on this route (its own bucket); `0` = "
            "none; null = the listener's rate (and bucket)."},
    {.name = "burst",
     FIELD(struct sl_rate, burst),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000,
     .def = "0",
     .doc = "The bucket's size; `0` = `per_sec`."},
};

static const struct sl__section route_rate_section = {
    .name = "routes[].limits.rate",
    .keys = route_rate_keys,
    .nkeys = ARRAY_LEN(route_rate_keys),
    .size = sizeof(struct sl_rate),
    .finish = route_rate_finish,
    .doc = "A token bucket of this route's own, like `limits.rate`.",
};

static const struct sl__section metrics_section = {
    .name = "routes[].metrics",
    .size = 0,
    .doc = "The whole instance's metrics (every worker summed, from a registry in shared "
           "memory), in the Prometheus text format 0.0.4, or OpenMetrics 1.0 when the Accept "
           "header asks for `application/openmetrics-text`. Any method is answered like GET "
           "(HEAD without the body). Put it on its own listener (`127.0.0.1:9100`, a Unix "
           "socket) or restrict it with `source`. Request durations are a histogram with the "
           "buckets 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10 s and +Inf; "
           "the full list of metrics is in README.md (Metrics).",
};

static const struct sl__key route_limits_keys[] = {
    {.name = "max_body",
     RLIMIT(max_body),
     .type = &sl__type_size,
     .max = 1ll << 40,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Largest request body on this route (413 above it); null = the listener's."},
    {.name = "concurrency",
     RLIMIT(concurrency),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Requests in flight per client address on this route (counted apart from the "
            "listener's); `0` = no cap; null = the listener's cap (and count)."},
    {.name = "rate",
     RLIMIT(rate),
     .shape = SL__SECTION,
     .section = &route_rate_section,
     .doc = "This route's own request rate."},
};

static bool route_limits_present(const void *obj)
{
    const struct sl_route_config *r =
        (const void *)((const char *)obj - offsetof(struct sl_route_config, limits));
    return r->limits.max_body != SL_ROUTE_INHERIT_SIZE ||
           r->limits.concurrency != SL_ROUTE_INHERIT || r->limits.rate.per_sec != SL_ROUTE_INHERIT;
}

static const struct sl__section route_limits_section = {
    .name = "routes[].limits",
    .keys = route_limits_keys,
    .nkeys = ARRAY_LEN(route_limits_keys),
    .size = sizeof(((struct sl_route_config *)0)->limits),
    .present = route_limits_present,
    .doc = "Limits for this route's requests, overriding the listener's.",
};

static const struct sl__key route_timeouts_keys[] = {
    {.name = "body",
     .offset = 0, /* within the timeouts struct */
     .size = sizeof(uint32_t),
     .type = &sl__type_duration,
     .max = DAY,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Longest wait for the next piece of a request body; null = the listener's."},
    {.name = "write",
     .offset = sizeof(uint32_t), /* within the timeouts struct */
     .size = sizeof(uint32_t),
     .type = &sl__type_duration,
     .max = DAY,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Longest time a response write may make no progress; null = the listener's."},
};

static bool route_timeouts_present(const void *obj)
{
    const uint32_t *ms = obj; /* body, write */
    return ms[0] != SL_ROUTE_INHERIT_MS || ms[1] != SL_ROUTE_INHERIT_MS;
}

static const struct sl__section route_timeouts_section = {
    .name = "routes[].timeouts",
    .keys = route_timeouts_keys,
    .nkeys = ARRAY_LEN(route_timeouts_keys),
    .size = sizeof(((struct sl_route_config *)0)->timeouts),
    .present = route_timeouts_present,
    .doc = "Timeouts for this route's requests, overriding the listener's.",
};

#define ACTION(member, sect, k)                                                                    \
    ROUTE(member), .shape = SL__SECTION, .section = &sect, .flags = SL__ONEOF, .kind = k

static const struct sl__key route_keys[] = {
    {.name = "name",
     ROUTE(name),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "A name, written as `route` in the access log line of each request it matched."},
    {.name = "path",
     ROUTE(path),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Path to match: exact (`/healthz`) or a prefix (`/static/*`: `/static/` and "
            "below, not `/static`). Requests match on their path percent-decoded, with `//` "
            "merged and `.`/`..` segments removed, so the pattern is written in that form; a "
            "`..` that leaves a prefix leaves its route. null = any path."},
    {.name = "methods",
     ROUTE(methods),
     STRLIST(struct sl_route_config, methods, nmethods),
     .max_items = 32,
     .def = "[]",
     .doc = "Methods to match (case-sensitive); `[]` = any."},
    {.name = "host",
     ROUTE(host),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Host to match, from the Host header without its port, in any case: exact "
            "(`api.example.com`, `[::1]`) or `*.example.com` (one or more labels before "
            "`.example.com`, not `example.com` itself). null = any."},
    {.name = "source",
     ROUTE(source),
     STRLIST(struct sl_route_config, source, nsource),
     .max_items = 256,
     .def = "[]",
     .doc = "Who may use the route: CIDRs (`10.0.0.0/8`, `fd00::/8`), addresses, and `unix` "
            "(clients of Unix-socket listeners). A request that matches the route from "
            "anywhere else gets `403`. The client is the one `proxy` trusts: the address a "
            "trusted proxy's headers name, or a PROXY header's source (on a Unix listener too, "
            "where `unix` then no longer matches). IPv4 clients of an IPv6 listener "
            "(`::ffff:a.b.c.d`) match IPv4 entries. `[]` = everyone."},
    {.name = "app", ACTION(action, app_action_section, SL_ROUTE_APP), .doc = "The ASGI app."},
    {.name = "return", ACTION(ret, return_section, SL_ROUTE_RETURN), .doc = "A fixed response."},
    {.name = "redirect",
     ACTION(redirect, redirect_section, SL_ROUTE_REDIRECT),
     .doc = "A redirect."},
    {.name = "health", ACTION(action, health_section, SL_ROUTE_HEALTH), .doc = "A health check."},
    {.name = "preflight",
     ACTION(preflight, preflight_section, SL_ROUTE_PREFLIGHT),
     .doc = "CORS preflight."},
    {.name = "files", ACTION(files, files_section, SL_ROUTE_FILES), .doc = "Static files."},
    {.name = "tracemalloc",
     ACTION(tracemalloc, tracemalloc_section, SL_ROUTE_TRACEMALLOC),
     .doc = "Top Python allocations (tracemalloc)."},
    {.name = "metrics",
     ACTION(action, metrics_section, SL_ROUTE_METRICS),
     .doc = "Prometheus metrics."},
    {.name = "limits",
     ROUTE(limits),
     .shape = SL__SECTION,
     .section = &route_limits_section,
     .doc = "Per-route limits."},
    {.name = "timeouts",
     ROUTE(timeouts),
     .shape = SL__SECTION,
     .section = &route_timeouts_section,
     .doc = "Per-route timeouts."},
};

static const struct sl__section route_section = {
    .name = "routes[]",
    .keys = route_keys,
    .nkeys = ARRAY_LEN(route_keys),
    .size = sizeof(struct sl_route_config),
    .kind_offset = offsetof(struct sl_route_config, action),
    .finish = sl__route_finish,
    .doc = "One intercept route: match keys (all given must hold), exactly one action, and "
           "optional `limits`/`timeouts`. Routes are tried in order; the first that matches "
           "decides, and a request no route matches goes to the app. A route that an earlier "
           "one of the same table always takes first (its methods, host and path all within "
           "the earlier one's) can never match: `-t` and startup warn with both positions. "
           "`source` does not let requests through to later routes; a `preflight` route does, "
           "for all but preflight requests.",
};

#define ROUTES(strct)                                                                              \
    .offset = offsetof(strct, routes.items), .size = sizeof(((strct *)0)->routes.items),           \
    .shape = SL__SECTIONS, .section = &route_section, .count = offsetof(strct, routes.n),          \
    .item_size = sizeof(struct sl_route_config), .max_items = 1024

/* ---- websocket ----------------------------------------------------------- */

static const char *const ws_compression_names[] = {"deflate", "off", NULL};

static const struct sl__key websocket_keys[] = {
    {.name = "max_message",
     FIELD(struct sl_websocket, max_message),
     .type = &sl__type_size,
     .min = 125,
     .max = 1ll << 30,
     .def = "1MiB",
     .doc = "Largest WebSocket message received (fragments summed); a longer one closes the "
            "socket with code 1009, refused from its frame head before its payload is read."},
    {.name = "ping_interval",
     FIELD(struct sl_websocket, ping_interval_ms),
     .type = &sl__type_duration,
     .max = DAY,
     .def = "20s",
     .doc = "A WebSocket from which nothing arrived for this long gets a ping. `0` = no "
            "keepalive pings."},
    {.name = "ping_timeout",
     FIELD(struct sl_websocket, ping_timeout_ms),
     .type = &sl__type_duration,
     .max = DAY,
     .def = "20s",
     .doc = "When nothing at all arrives within this long after a keepalive ping, the "
            "connection is closed and the app gets `websocket.disconnect` with 1006. `0` = "
            "never."},
    {.name = "max_queue",
     FIELD(struct sl_websocket, max_queue),
     .type = &sl__type_int,
     .min = 1,
     .max = 1024,
     .def = "16",
     .doc = "Received WebSocket messages that may wait for the app; when this many wait, or "
            "when those waiting hold `max_message` bytes or more, no more bytes are read from "
            "that socket until the app receives one (backpressure through TCP). At most "
            "about `max_queue` messages and 2 x `max_message` bytes wait per socket."},
    {.name = "compression",
     FIELD(struct sl_websocket, compression),
     .type = &sl__type_enum,
     .names = ws_compression_names,
     .def = "deflate",
     .doc = "`deflate` accepts the client's permessage-deflate offer (RFC 7692), always "
            "answering with `server_no_context_takeover` and `client_no_context_takeover` so "
            "that no zlib state outlives a message: an idle socket holds none. `off` declines "
            "every offer (no `Sec-WebSocket-Extensions` in the 101)."},
};

static const struct sl__section websocket_section = {
    .name = "websocket",
    .keys = websocket_keys,
    .nkeys = ARRAY_LEN(websocket_keys),
    .size = sizeof(struct sl_websocket),
    .doc = "WebSocket (RFC 6455) settings.",
};
/* ---- proxy ------------------------------------------------------------------- */

#define PROXY(member) FIELD(struct sl_proxy_config, member)

static const char *const proxy_protocol_names[] = {"off", "v1", "v2", "auto", NULL};

static const struct sl__key proxy_keys[] = {
    {.name = "trusted",
     PROXY(trusted),
     .shape = SL__LIST,
     .type = &sl__type_string,
     .count = offsetof(struct sl_proxy_config, ntrusted),
     .item_size = sizeof(const char *),
     .max_items = 1024,
     .def = "[]",
     .doc = "Peers that may speak for the client: IPv4 or IPv6 addresses or CIDR ranges "
            "(`10.0.0.0/8`, `::1`, `fd00::/8`), and `unix` for Unix-socket peers. Only their "
            "`headers` are believed, and each hop of `X-Forwarded-For`/`Forwarded` listed "
            "here is skipped when looking for the client."},
    {.name = "headers",
     PROXY(headers),
     .type = &sl__type_bool,
     .def = "false",
     .doc = "Take the client from trusted peers' headers: `Forwarded` (RFC 7239) when "
            "present, else `X-Forwarded-For` (the right-most address not in `trusted`), "
            "`X-Forwarded-Proto` and `X-Forwarded-Host`, else `X-Real-IP`. They set the ASGI "
            "scope's `client`, `scheme` and `server` and the access log's client. Headers "
            "from other peers are passed to the app untouched and never used."},
    {.name = "protocol",
     PROXY(protocol),
     .type = &sl__type_enum,
     .names = proxy_protocol_names,
     .def = "off",
     .doc = "Require a PROXY protocol header (HAProxy's `send-proxy` = `v1`, "
            "`send-proxy-v2` = `v2`, `auto` = either) first on every connection: its source "
            "address replaces the peer's everywhere; v2's SSL TLV makes the scheme `https`. "
            "A connection without a valid one within `timeouts.header` is closed, logged "
            "and counted. It applies to every peer: `trusted` does not limit it."},
};

/* Compiles `trusted` into address ranges. */
static void proxy_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    struct sl_proxy_config *p = obj;
    sl__cidr_list(cx, map, "trusted", p->trusted, p->ntrusted, path, &p->cidrs);
    if (p->headers && p->ntrusted == 0)
        sl__error(cx, sl__map_get(map, "headers") ? sl__map_get(map, "headers") : map,
                  sl__path_join(cx, path, "headers"),
                  "needs \"trusted\" (whose headers to believe)");
}

static const struct sl__section proxy_section = {
    .name = "proxy",
    .keys = proxy_keys,
    .nkeys = ARRAY_LEN(proxy_keys),
    .size = sizeof(struct sl_proxy_config),
    .finish = proxy_finish,
    .doc = "Running behind a proxy or load balancer: whose word to take for the real client "
           "address and scheme.",
};

/* ---- end proxy ---------------------------------------------------------------- */

/* ---- listeners ----------------------------------------------------------- */

#define LISTENER(member) FIELD(struct sl_listener_config, member)
#define TLS(member) FIELD(struct sl_tls_config, member)
#define SNI(member) FIELD(struct sl_tls_sni, member)

static const char *const tls_version_names[] = {"1.2", "1.3", NULL};
static const char *const verify_names[] = {"off", "optional", "required", NULL};

static const struct sl__key sni_keys[] = {
    {.name = "names",
     SNI(names),
     .shape = SL__LIST,
     .type = &sl__type_string,
     .count = offsetof(struct sl_tls_sni, nnames),
     .item_size = sizeof(const char *),
     .min_items = 1,
     .max_items = 256,
     .flags = SL__REQUIRED,
     .doc = "Server names this certificate answers for: exact (`api.example.com`) or one "
            "wildcard label (`*.example.com`)."},
    {.name = "cert",
     SNI(cert),
     .type = &sl__type_path,
     .flags = SL__REQUIRED | SL__CHECK_READ,
     .doc = "Certificate chain (PEM, leaf first)."},
    {.name = "key",
     SNI(key),
     .type = &sl__type_path,
     .flags = SL__REQUIRED | SL__CHECK_READ,
     .doc = "Private key (PEM) of `cert`."},
};

/* A server name pattern: DNS labels, optionally "*." first. */
static bool sni_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (strncmp(s, "*.", 2) == 0)
        s += 2, len -= 2;
    if (len == 0 || len > 253)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* -t: asks the program to load TLS material; errors point at the key. */
static void check_tls(struct sl__cx *cx, const struct sl__node *map, const char *path, int what,
                      const char *name, const char *file, const char *keyname, const char *key)
{
    char why[512];
    if (cx->check_tls == NULL || file == NULL)
        return;
    /* An unreadable file is already reported by its key's file check. */
    if (what != SL_TLS_CHECK_CIPHERS && what != SL_TLS_CHECK_CIPHERSUITES &&
        (access(file, R_OK) != 0 || (key && access(key, R_OK) != 0)))
        return;
    int rc = cx->check_tls(what, file, key, why, sizeof(why));
    if (rc == 0)
        return;
    const char *at = rc == -2 ? keyname : name;
    const struct sl__node *n = sl__map_get(map, at);
    sl__error(cx, n ? n : map, sl__path_join(cx, path, at), "%s: %s", rc == -2 ? key : file, why);
}

static void pair_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    const struct sl_tls_pair *p = obj;
    if (p->cert && p->key)
        check_tls(cx, map, path, SL_TLS_CHECK_CERT_KEY, "cert", p->cert, "key", p->key);
}

static void sni_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    const struct sl_tls_sni *e = obj;
    if (e->cert && e->key)
        check_tls(cx, map, path, SL_TLS_CHECK_CERT_KEY, "cert", e->cert, "key", e->key);
    const struct sl__node *names = sl__map_get(map, "names");
    for (size_t i = 0; i < e->nnames; i++) {
        if (e->names[i] == NULL || sni_name_ok(e->names[i]))
            continue; /* NULL: its value failed (${UNSET}), already reported */
        const struct sl__node *at =
            names && names->kind == SL__NODE_SEQ && i < names->n ? names->vals[i] : map;
        sl__error(cx, at, sl__path_index(cx, sl__path_join(cx, path, "names"), i),
                  "expected a host name like \"api.example.com\" or \"*.example.com\", got \"%s\"",
                  e->names[i]);
    }
}

static const struct sl__section sni_section = {
    .name = "listeners[].tls.sni[]",
    .keys = sni_keys,
    .nkeys = ARRAY_LEN(sni_keys),
    .size = sizeof(struct sl_tls_sni),
    .finish = sni_finish,
    .doc = "One certificate chosen by the name the client asks for (SNI).",
};

#define PAIR(member) FIELD(struct sl_tls_pair, member)

static const struct sl__key pair_keys[] = {
    {.name = "cert",
     PAIR(cert),
     .type = &sl__type_path,
     .flags = SL__REQUIRED | SL__CHECK_READ,
     .doc = "Certificate chain (PEM, leaf first)."},
    {.name = "key",
     PAIR(key),
     .type = &sl__type_path,
     .flags = SL__REQUIRED | SL__CHECK_READ,
     .doc = "Private key (PEM) of `cert`."},
};

static void pair_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path);

static const struct sl__section pair_section = {
    .name = "listeners[].tls.extra_certs[]",
    .keys = pair_keys,
    .nkeys = ARRAY_LEN(pair_keys),
    .size = sizeof(struct sl_tls_pair),
    .finish = pair_finish,
    .doc = "One more certificate and key for the listener, of another key type.",
};

static const struct sl__key tls_keys[] = {
    {.name = "cert",
     TLS(cert),
     .type = &sl__type_path,
     .def = "null",
     .flags = SL__NULLABLE | SL__CHECK_READ,
     .doc = "Certificate chain (PEM, leaf first). Setting it turns TLS on for the listener."},
    {.name = "key",
     TLS(key),
     .type = &sl__type_path,
     .def = "null",
     .flags = SL__NULLABLE | SL__CHECK_READ,
     .doc = "Private key (PEM) of `cert`."},
    {.name = "extra_certs",
     TLS(extra_certs),
     .shape = SL__SECTIONS,
     .section = &pair_section,
     .count = offsetof(struct sl_tls_config, nextra_certs),
     .item_size = sizeof(struct sl_tls_pair),
     .max_items = 4,
     .def = "[]",
     .doc = "Certificates of other key types served beside `cert` (an RSA one beside an "
            "ECDSA one): each client gets the one its signature algorithms prefer."},
    {.name = "min_version",
     TLS(min_version),
     .type = &sl__type_enum,
     .names = tls_version_names,
     .def = "\"1.2\"",
     .doc = "Oldest TLS version accepted. Older clients fail the handshake."},
    {.name = "ciphers",
     TLS(ciphers),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "TLS 1.2 cipher list in OpenSSL syntax; null = forward-secret AEAD suites only "
            "(Mozilla's intermediate list: ECDHE/DHE with AES-GCM or ChaCha20-Poly1305)."},
    {.name = "ciphersuites",
     TLS(ciphersuites),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "TLS 1.3 cipher suites in OpenSSL syntax; null = OpenSSL's default."},
    {.name = "alpn",
     TLS(alpn),
     .shape = SL__LIST,
     .type = &sl__type_string,
     .count = offsetof(struct sl_tls_config, nalpn),
     .item_size = sizeof(const char *),
     .max_items = 8,
     .def = "[\"http/1.1\"]",
     .doc = "Protocols offered by ALPN, in preference order (`http/1.1` today). `[]` "
            "disables ALPN."},
    {.name = "session_cache",
     TLS(session_cache),
     .type = &sl__type_int,
     .min = 0,
     .max = 10000000,
     .def = "20480",
     .doc = "Sessions kept for resumption by session ID, per worker; `0` = none."},
    {.name = "session_tickets",
     TLS(session_tickets),
     .type = &sl__type_bool,
     .def = "true",
     .doc = "Resumption by session tickets. Ticket keys are made once at start and shared by "
            "all workers, and rotated every 12 hours (the previous key still decrypts)."},
    {.name = "ktls",
     TLS(ktls),
     .type = &sl__type_bool,
     .def = "false",
     .doc = "Kernel TLS: OpenSSL hands the session's keys to the kernel's `tls` module after "
            "the handshake, so records are made and read in the kernel. Needs OpenSSL 3 built "
            "with kTLS and the kernel's `tls` module; without them connections silently use "
            "OpenSSL's own records. `-t` and startup warn when either is missing; whether a "
            "connection got it is logged at `debug` level. Not measured yet (no `tls` "
            "module where saltare was benchmarked)."},
    {.name = "sni",
     TLS(sni),
     .shape = SL__SECTIONS,
     .section = &sni_section,
     .count = offsetof(struct sl_tls_config, nsni),
     .item_size = sizeof(struct sl_tls_sni),
     .max_items = 1024,
     .def = "[]",
     .doc = "Certificates chosen by SNI; a client naming none of them (or no name) gets "
            "`cert`."},
    {.name = "client_ca",
     TLS(client_ca),
     .type = &sl__type_path,
     .def = "null",
     .flags = SL__NULLABLE | SL__CHECK_READ,
     .doc = "CA certificates (PEM) client certificates must chain to (mTLS)."},
    {.name = "verify_client",
     TLS(verify_client),
     .type = &sl__type_enum,
     .names = verify_names,
     .def = "off",
     .doc = "Client certificates: `off` never asks; `optional` asks, and a client without "
            "one is served; `required` refuses the handshake without a valid one. With "
            "`optional`, an invalid certificate also fails the handshake."},
    {.name = "verify_depth",
     TLS(verify_depth),
     .type = &sl__type_int,
     .min = 0,
     .max = 100,
     .def = "10",
     .doc = "Intermediate CAs allowed in a client chain."},
    {.name = "crl",
     TLS(crl),
     .type = &sl__type_path,
     .def = "null",
     .flags = SL__NULLABLE | SL__CHECK_READ,
     .doc = "Revocation lists (PEM) checked for every certificate of a client chain; a CA "
            "without a CRL in the file fails the check."},
};

static bool tls_present(const void *obj)
{
    return ((const struct sl_tls_config *)obj)->cert != NULL;
}

/* Keys that only mean something with others. */
static void tls_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    const struct sl_tls_config *t = obj;
    if (map == NULL)
        return;
    /* Without cert the section is not printed: nothing else may be set. */
    for (size_t i = 0; t->cert == NULL && i < map->n; i++) {
        const struct sl__node *v = map->vals[i];
        bool known = false;
        for (size_t j = 0; j < ARRAY_LEN(tls_keys); j++)
            known |= strcmp(tls_keys[j].name, map->keys[i]->str) == 0;
        if (!known || sl__node_is_null(v) || (v->kind == SL__NODE_SEQ && v->n == 0))
            continue;
        sl__error(cx, map->keys[i], sl__path_join(cx, path, map->keys[i]->str),
                  "needs \"cert\" as well (TLS is on only with a certificate)");
    }
    if (t->cert && t->key == NULL)
        sl__error(cx, map, sl__path_join(cx, path, "key"), "missing required key, expected a path");
    if (t->client_ca == NULL) {
        if (t->verify_client != SL_VERIFY_OFF)
            sl__error(cx, sl__map_get(map, "verify_client"),
                      sl__path_join(cx, path, "verify_client"), "needs \"client_ca\"");
        if (t->crl)
            sl__error(cx, sl__map_get(map, "crl"), sl__path_join(cx, path, "crl"),
                      "needs \"client_ca\"");
    }
    if (t->cert && t->key)
        check_tls(cx, map, path, SL_TLS_CHECK_CERT_KEY, "cert", t->cert, "key", t->key);
    check_tls(cx, map, path, SL_TLS_CHECK_CA, "client_ca", t->client_ca, NULL, NULL);
    check_tls(cx, map, path, SL_TLS_CHECK_CRL, "crl", t->crl, NULL, NULL);
    check_tls(cx, map, path, SL_TLS_CHECK_CIPHERS, "ciphers", t->ciphers, NULL, NULL);
    check_tls(cx, map, path, SL_TLS_CHECK_CIPHERSUITES, "ciphersuites", t->ciphersuites, NULL,
              NULL);
    if (t->ktls && t->cert && cx->check_tls) { /* only warns */
        char why[8];
        cx->check_tls(SL_TLS_CHECK_KTLS, sl__path_join(cx, path, "ktls"), NULL, why, sizeof(why));
    }
    const struct sl__node *alpn = sl__map_get(map, "alpn");
    for (size_t i = 0; i < t->nalpn; i++)
        if (strcmp(t->alpn[i], "http/1.1") != 0)
            sl__error(cx, alpn && alpn->kind == SL__NODE_SEQ && i < alpn->n ? alpn->vals[i] : map,
                      sl__path_index(cx, sl__path_join(cx, path, "alpn"), i),
                      "expected \"http/1.1\" (the protocol served), got \"%s\"", t->alpn[i]);
}

static const struct sl__section tls_section = {
    .name = "listeners[].tls",
    .keys = tls_keys,
    .nkeys = ARRAY_LEN(tls_keys),
    .size = sizeof(struct sl_tls_config),
    .finish = tls_finish,
    .present = tls_present,
    .doc = "TLS for one listener (OpenSSL 3). Without `cert` the listener is plain. The "
           "handshake must finish within the listener's `timeouts.handshake`; a client that "
           "sends plain HTTP to a TLS listener is disconnected without an answer (logged "
           "once, at info level, with its address). The app sees `scheme: https` and "
           "`scope[\"extensions\"][\"tls\"]` (ASGI TLS extension).",
};

static const struct sl__key listener_keys[] = {
    {.name = "tcp",
     LISTENER(name),
     .type = &sl__type_addr,
     .flags = SL__ONEOF,
     .kind = SL_LISTENER_TCP,
     .doc = "Listen on this TCP address."},
    {.name = "unix",
     LISTENER(path),
     .type = &sl__type_sockpath,
     .flags = SL__ONEOF | SL__CHECK_PARENT,
     .kind = SL_LISTENER_UNIX,
     .doc = "Listen on a Unix domain socket at this path (its directory must exist). A "
            "stale socket file is replaced; one a live process accepts on is an error. "
            "`\"@name\"` is an abstract socket (no file)."},
    {.name = "fd",
     LISTENER(fd),
     .type = &sl__type_int,
     .min = 0,
     .max = 1 << 20,
     .flags = SL__ONEOF,
     .kind = SL_LISTENER_FD,
     .doc = "Serve on this inherited file descriptor, already bound and listening (TCP or "
            "Unix)."},
    {.name = "systemd",
     LISTENER(systemd),
     .type = &sl__type_string,
     .flags = SL__ONEOF,
     .kind = SL_LISTENER_SYSTEMD,
     .doc = "Serve on the sockets systemd passed (socket activation) whose "
            "`FileDescriptorName=` is this; `true` takes every passed socket no other "
            "listener claims. No such socket is a startup error."},
    {.name = "name",
     LISTENER(label),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "A name for the listener in logs; null = its address."},
    {.name = "backlog",
     LISTENER(backlog),
     .type = &sl__type_int,
     .min = 1,
     .max = 1 << 20,
     .def = "1024",
     .doc = "Length of the queue of connections not yet accepted; capped (with a warning) "
            "by `net.core.somaxconn`. Sockets passed in (`fd`, `systemd`) keep theirs."},
    {.name = "reuseport",
     LISTENER(reuseport),
     .type = &sl__type_bool,
     .def = "false",
     .requires = "tcp",
     .doc = "Set SO_REUSEPORT, so other processes may bind the same address."},
    {.name = "mode",
     LISTENER(mode),
     .type = &sl__type_mode,
     .def = "null",
     .flags = SL__NULLABLE,
     .requires = "unix",
     .doc = "Permissions of the Unix socket file, e.g. `\"0660\"`."},
    {.name = "owner",
     LISTENER(owner),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .requires = "unix",
     .doc = "Owner of the Unix socket file: a user name or a numeric uid; null = leave."},
    {.name = "group",
     LISTENER(group),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .requires = "unix",
     .doc = "Group of the Unix socket file: a group name or a numeric gid; null = leave."},
    {.name = "limits",
     LISTENER(limits),
     .shape = SL__SECTION,
     .section = &limits_section,
     .flags = SL__INHERIT,
     .inherit = offsetof(struct sl_config, limits),
     .doc = "Overrides of the global `limits` for this listener; keys not set here inherit "
            "the global value."},
    {.name = "timeouts",
     LISTENER(timeouts),
     .shape = SL__SECTION,
     .section = &listener_timeouts_section,
     .flags = SL__INHERIT,
     .inherit = offsetof(struct sl_config, timeouts),
     .doc = "Overrides of the global `timeouts` for this listener; keys not set here inherit "
            "the global value."},
    {.name = "websocket",
     LISTENER(websocket),
     .shape = SL__SECTION,
     .section = &websocket_section,
     .flags = SL__INHERIT,
     .inherit = offsetof(struct sl_config, websocket),
     .doc = "Overrides of the global `websocket` section for this listener; keys not set here "
            "inherit the global value."},
    {.name = "tls",
     LISTENER(tls),
     .shape = SL__SECTION,
     .section = &tls_section,
     .doc = "TLS (and mTLS) on this listener."},
    {.name = "routes",
     ROUTES(struct sl_listener_config),
     .flags = SL__INHERIT,
     .inherit = offsetof(struct sl_config, routes),
     .doc = "This listener's intercept routes, replacing the global `routes` (not merged "
            "with them); not set = the global ones."},
    {.name = "proxy",
     LISTENER(proxy),
     .shape = SL__SECTION,
     .section = &proxy_section,
     .flags = SL__INHERIT,
     .inherit = offsetof(struct sl_config, proxy),
     .doc = "Overrides of the global `proxy` for this listener (`protocol` is usually set "
            "here); keys not set here inherit the global value."},
};

/* An abstract Unix socket has no file to set a mode or owner on. */
static void check_abstract(struct sl__cx *cx, const struct sl__node *map,
                           const struct sl_listener_config *l, const char *path)
{
    static const char *const file_keys[] = {"mode", "owner", "group"};
    for (size_t i = 0; i < ARRAY_LEN(file_keys); i++) {
        const struct sl__node *v = sl__map_get(map, file_keys[i]);
        if (v && !sl__node_is_null(v))
            sl__error(cx, v, sl__path_join(cx, path, file_keys[i]),
                      "an abstract socket (\"@...\") has no file to apply it to");
    }
    (void)l;
}

/* Derives what the listener's kind implies from the key given. */
static void listener_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                            const char *path)
{
    struct sl_listener_config *l = obj;
    if (l->kind == SL_LISTENER_TCP && l->name != NULL) {
        int rc = sl__parse_addr(l->name, &l->addr, &l->addrlen);
        (void)rc; /* already validated by the address type */
    } else if (l->kind == SL_LISTENER_UNIX && l->path != NULL) {
        l->name = l->path;
        if (l->path[0] == '@')
            check_abstract(cx, map, l, path);
    } else if (l->kind == SL_LISTENER_FD && sl__map_get(map, "fd")) {
        l->name = sl__arena_printf(cx->out, "fd:%d", l->fd);
    } else if (l->kind == SL_LISTENER_SYSTEMD && l->systemd != NULL) {
        bool all = strcmp(l->systemd, "true") == 0;
        if (!all && (l->systemd[0] == '\0' || strlen(l->systemd) > 255 ||
                     strchr(l->systemd, ':') != NULL)) {
            sl__error(cx, sl__map_get(map, "systemd"), sl__path_join(cx, path, "systemd"),
                      "expected true or a FileDescriptorName (1 to 255 bytes, no \":\"), "
                      "got \"%s\"",
                      l->systemd);
        }
        l->name = sl__arena_printf(cx->out, "systemd:%s", all ? "*" : l->systemd);
    }
}

static const struct sl__section listener_section = {
    .name = "listeners[]",
    .keys = listener_keys,
    .nkeys = ARRAY_LEN(listener_keys),
    .size = sizeof(struct sl_listener_config),
    .kind_offset = offsetof(struct sl_listener_config, kind),
    .finish = listener_finish,
    .doc = "One item of `listeners`: exactly one of `tcp`, `unix`, `fd` or `systemd`, plus "
           "options.",
};

/* ---- tcp, process ------------------------------------------------------------ */

#define TCPOPT(member) FIELD(struct sl_tcp_config, member)

static const struct sl__key keepalive_keys[] = {
    {.name = "idle",
     TCPOPT(keepalive_idle_ms),
     .type = &sl__type_duration,
     .min = 0,
     .max = 32767 * SECOND,
     .def = "0",
     .doc = "Idle time before the first keep-alive probe; `0` = no probes (SO_KEEPALIVE "
            "off). Whole seconds."},
    {.name = "interval",
     TCPOPT(keepalive_interval_ms),
     .type = &sl__type_duration,
     .min = 0,
     .max = 32767 * SECOND,
     .def = "0",
     .doc = "Time between probes; `0` = the kernel's default. Whole seconds."},
    {.name = "count",
     TCPOPT(keepalive_count),
     .type = &sl__type_int,
     .min = 0,
     .max = 127,
     .def = "0",
     .doc = "Unanswered probes before the connection is dropped; `0` = the kernel's "
            "default."},
};

/* Keep-alive fields live in the tcp struct: a section over the same object. */
static const struct sl__section keepalive_section = {
    .name = "tcp.keepalive",
    .keys = keepalive_keys,
    .nkeys = ARRAY_LEN(keepalive_keys),
    .size = sizeof(struct sl_tcp_config),
    .doc = "TCP keep-alive probes on client connections.",
};

static const struct sl__key tcp_keys[] = {
    {.name = "nodelay",
     TCPOPT(nodelay),
     .type = &sl__type_bool,
     .def = "true",
     .doc = "TCP_NODELAY: send small writes at once (no Nagle delay)."},
    {.name = "keepalive",
     .offset = 0,
     .size = sizeof(struct sl_tcp_config),
     .shape = SL__SECTION,
     .section = &keepalive_section,
     .doc = "TCP keep-alive probes."},
    {.name = "user_timeout",
     TCPOPT(user_timeout_ms),
     .type = &sl__type_duration,
     .min = 0,
     .max = DAY,
     .def = "0",
     .doc = "TCP_USER_TIMEOUT: drop a connection whose sent data stays unacknowledged this "
            "long; `0` = the kernel's default."},
    {.name = "fastopen",
     TCPOPT(fastopen),
     .type = &sl__type_int,
     .min = 0,
     .max = 65535,
     .def = "0",
     .doc = "TCP Fast Open queue length on listening sockets; `0` = off."},
    {.name = "defer_accept",
     TCPOPT(defer_accept_ms),
     .type = &sl__type_duration,
     .min = 0,
     .max = 3600 * SECOND,
     .def = "0",
     .doc = "TCP_DEFER_ACCEPT: wake the server for a connection only once it sent data (or "
            "after this long); `0` = off. Whole seconds."},
};

static const struct sl__section tcp_section = {
    .name = "tcp",
    .keys = tcp_keys,
    .nkeys = ARRAY_LEN(tcp_keys),
    .size = sizeof(struct sl_tcp_config),
    .doc = "Options of TCP sockets, for every TCP listener (set on the listening socket; "
           "accepted connections inherit them).",
};

static const struct sl__key process_keys[] = {
    {.name = "raise_nofile",
     SUBFIELD(process, raise_nofile),
     .type = &sl__type_bool,
     .def = "false",
     .doc = "Raise the soft open-file limit to the hard limit at start (logged)."},
    {.name = "max_requests",
     SUBFIELD(process, max_requests),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000000,
     .def = "0",
     .doc = "Replace a worker after it served this many requests (plus its jitter): a new "
            "worker starts, and the old one drains only once the new one is ready. `0` = "
            "never."},
    {.name = "max_requests_jitter",
     SUBFIELD(process, max_requests_jitter),
     .type = &sl__type_int,
     .min = 0,
     .max = 1000000000,
     .def = "0",
     .doc = "Each worker adds a random 0 to this many requests to `max_requests`, so workers "
            "started together are not all replaced at once."},
    {.name = "max_rss",
     SUBFIELD(process, max_rss),
     .type = &sl__type_size,
     .min = 0,
     .max = 1ll << 40,
     .def = "0",
     .doc = "Replace a worker whose resident memory stays above this size for 3 samples in a "
            "row (sampled every second), one worker at a time, the new one ready before the "
            "old one drains. `0` = never."},
    {.name = "crash_limit",
     SUBFIELD(process, crash_limit),
     .type = &sl__type_int,
     .min = 1,
     .max = 10000,
     .def = "5",
     .doc = "This many unexpected worker exits within `crash_window` are logged as a crash "
            "loop (at `error`); the master keeps respawning with back-off while the other "
            "workers serve."},
    {.name = "crash_window",
     SUBFIELD(process, crash_window_ms),
     .type = &sl__type_duration,
     .min = SECOND,
     .max = DAY,
     .def = "1m",
     .doc = "The window `crash_limit` counts crashes in."},
    {.name = "user",
     SUBFIELD(process, user),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "Run as this user (a name or a numeric uid) once the listeners are bound and "
            "the TLS keys read: its uid, its primary group (unless `group` is given) and its "
            "supplementary groups; getting root back is checked to fail. Needs root (or the "
            "user itself). `-t` checks that a named user exists. null = keep the starting "
            "user."},
    {.name = "group",
     SUBFIELD(process, group),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "With `user`: run with this group (a name or a numeric gid) instead of the "
            "user's primary group. Not allowed without `user`: a root process that only "
            "changes its group keeps every privilege."},
    {.name = "pid_file",
     SUBFIELD(process, pid_file),
     .type = &sl__type_path,
     .def = "null",
     .flags = SL__NULLABLE | SL__CHECK_WRITE,
     .doc = "Write the master's PID to this file (atomically: a temporary file renamed) once "
            "the listeners are bound; removed at a clean exit, kept across a SIGHUP reload "
            "(same PID). A file naming a dead process is replaced; one naming a running "
            "saltare is an error (exit 1). null = none."},
};

/* -t: the user or group must exist (a number need not: a bare uid/gid). */
static void check_account(struct sl__cx *cx, const struct sl__node *n, const char *path, bool group)
{
    const char *name = n->kind == SL__NODE_SCALAR ? n->str : NULL;
    if (name == NULL || name[0] == '\0' || strspn(name, "0123456789") == strlen(name))
        return;
    if (group ? getgrnam(name) == NULL : getpwnam(name) == NULL)
        sl__error(cx, n, path, "expected a %s that exists on this system, got \"%s\"",
                  group ? "group" : "user", name);
}

/* `group` alone would leave a root process root. */
static void process_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                           const char *path)
{
    const struct sl__node *g = map ? sl__map_get(map, "group") : NULL;
    const struct sl__node *u = map ? sl__map_get(map, "user") : NULL;
    bool has_g = g && !sl__node_is_null(g) && !g->bad, has_u = u && !sl__node_is_null(u);
    (void)obj;
    if (has_g && !has_u)
        sl__error(cx, g, sl__path_join(cx, path, "group"),
                  "needs process.user too (changing only the group of a root process drops "
                  "no privilege)");
    if (!cx->check_files)
        return;
    if (has_u && !u->bad)
        check_account(cx, u, sl__path_join(cx, path, "user"), false);
    if (has_g && has_u)
        check_account(cx, g, sl__path_join(cx, path, "group"), true);
}

static const struct sl__section process_section = {
    .name = "process",
    .keys = process_keys,
    .nkeys = ARRAY_LEN(process_keys),
    .size = sizeof(((struct sl_config *)0)->process),
    .finish = process_finish,
    .doc = "Process-wide settings.",
};

/* ---- app, http, log -------------------------------------------------------- */

#define APP(member) FIELD(struct sl_app_config, member)

static const char *const lifespan_names[] = {"auto", "on", "off", NULL};
static const char *const loop_names[] = {"auto", "asyncio", "uvloop", NULL};
static const char *const preload_names[] = {"auto", "on", "off", NULL};
static const char *const level_names[] = {"debug", "info", "warning", "error", NULL};
static const char *const access_format_names[] = {"json", "combined", "custom", NULL};
static const char *const time_format_names[] = {"rfc3339", "unix", NULL};
/* Fields of an access-log line (base/log.c renders them). */
static const char *const access_fields[] = {
    "time",     "client",    "method",   "path",       "query",   "status",
    "bytes_in", "bytes_out", "duration", "user_agent", "referer", "listener",
    "pid",      "protocol",  "tls",      "request_id", NULL};

static const struct sl__key app_keys[] = {
    {.name = "target",
     APP(target),
     .type = &sl__type_target,
     .flags = SL__REQUIRED,
     .doc = "The ASGI application: `module:attribute`, imported after `path` is prepended to "
            "`sys.path`."},
    {.name = "path",
     APP(path),
     .shape = SL__LIST,
     .type = &sl__type_path,
     .count = offsetof(struct sl_app_config, npath),
     .item_size = sizeof(const char *),
     .def = "[]",
     .flags = SL__CHECK_EXISTS,
     .doc = "Directories prepended to `sys.path`, in order."},
    {.name = "venv",
     APP(venv),
     .type = &sl__type_path,
     .def = "null",
     .flags = SL__NULLABLE | SL__CHECK_DIR,
     .doc = "A virtual environment directory whose packages the app uses; null = none."},
    {.name = "lifespan",
     APP(lifespan),
     .type = &sl__type_enum,
     .names = lifespan_names,
     .def = "auto",
     .doc = "ASGI lifespan protocol: `on` requires the app to support it, `off` never sends "
            "it, `auto` tries and carries on if the app does not support it."},
    {.name = "loop",
     APP(loop),
     .type = &sl__type_enum,
     .names = loop_names,
     .def = "auto",
     .doc = "Event loop: `auto` uses uvloop when it can be imported, else asyncio."},
    {.name = "root_path",
     APP(root_path),
     .type = &sl__type_string,
     .def = "\"\"",
     .doc = "The path the app is mounted at behind a proxy that strips it (`/api`): the "
            "scope's `root_path`, and put back in front of `path` and `raw_path` (ASGI: "
            "`path` includes `root_path`). `X-Forwarded-Prefix` from a trusted proxy "
            "(`proxy.headers`) overrides it per request. `\"\"` = mounted at the root."},
    {.name = "preload",
     APP(preload),
     .type = &sl__type_enum,
     .names = preload_names,
     .def = "auto",
     .doc = "`on`: the master imports the app, runs `gc.freeze()` and forks the workers, "
            "which share the imported pages. `off`: each worker imports the app itself (a "
            "crashed worker's state is never inherited; more memory). `auto`: `on` when "
            "`workers` is more than 1."},
};

/* app.root_path: "" or "/" and path characters, no trailing slash. */
static bool root_path_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return true;
    if (s[0] != '/' || s[n - 1] == '/' || n > 1024)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-._~!$&'()*+,;=:@/", *p)))
            return false;
    return true;
}

/* Splits the target into module and attribute (validated by its type). */
static void app_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    struct sl_app_config *app = obj;
    size_t colon;
    if (app->root_path && !root_path_ok(app->root_path)) {
        const struct sl__node *at = sl__map_get(map, "root_path");
        sl__error(cx, at ? at : map, sl__path_join(cx, path, "root_path"),
                  "expected \"\" or a path like \"/api\" (no trailing slash, no %%-escapes), "
                  "got \"%.100s\"",
                  app->root_path);
    }
    if (app->target == NULL || sl__parse_target(app->target, &colon) < 0)
        return;
    app->module = sl__arena_strndup(cx->out, app->target, colon);
    app->attr = app->target + colon + 1;
}

static const struct sl__section app_section = {
    .name = "app",
    .keys = app_keys,
    .nkeys = ARRAY_LEN(app_keys),
    .size = sizeof(struct sl_app_config),
    .finish = app_finish,
    .doc = "The Python application.",
};

/* ---- http.request_id ---- */
static const struct sl__key request_id_keys[] = {
    {.name = "header",
     FIELD(struct sl_request_id_config, header),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "The header that carries the id (`X-Request-ID`); null = no request ids. Each "
            "request gets one: 32 hex digits (128 random bits), or the client's own with "
            "`trust_incoming`. It is sent back in this response header (unless the app sets "
            "it), given to the app as `scope[\"extensions\"][\"request_id\"]` (a str) and "
            "logged as `request_id`."},
    {.name = "trust_incoming",
     FIELD(struct sl_request_id_config, trust_incoming),
     .type = &sl__type_bool,
     .def = "false",
     .doc = "Reuse the id a request brings in `header` when it is 1 to 64 characters of "
            "letters, digits and `-_.:+/=@`; any other value is replaced by a fresh id."},
};

/* The header name is a token (RFC 9110 5.1) and not one the core owns. */
static void request_id_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                              const char *path)
{
    const struct sl_request_id_config *rid = obj;
    const char *h = rid->header;
    if (h == NULL)
        return;
    bool ok = *h != 0 && strlen(h) <= 64;
    for (const char *p = h; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr("!#$%&'*+-.^_`|~", *p) != NULL;
    static const char *const owned[] = {"content-length", "transfer-encoding", "connection", "date",
                                        "server",         "server-timing",     "host"};
    for (size_t i = 0; ok && i < ARRAY_LEN(owned); i++)
        ok = strcasecmp(h, owned[i]) != 0;
    const struct sl__node *at = sl__map_get(map, "header");
    if (!ok)
        sl__error(cx, at ? at : map, sl__path_join(cx, path, "header"),
                  "expected a header name like \"X-Request-ID\" (a token of at most 64 "
                  "characters, not one the server sets itself), got \"%.64s\"",
                  h);
}

static const struct sl__section request_id_section = {
    .name = "http.request_id",
    .keys = request_id_keys,
    .nkeys = ARRAY_LEN(request_id_keys),
    .size = sizeof(struct sl_request_id_config),
    .finish = request_id_finish,
    .doc = "Request ids, for tracing one request through logs and services.",
};
/* ---- end http.request_id ---- */

static const struct sl__key http_keys[] = {
    {.name = "server_header",
     SUBFIELD(http, server_header),
     .type = &sl__type_header,
     .def = "\"saltare\"",
     .doc = "Value of the `Server` response header; `\"\"` sends none."},
    {.name = "request_id",
     SUBFIELD(http, request_id),
     .shape = SL__SECTION,
     .section = &request_id_section,
     .doc = "Request ids."},
    {.name = "server_timing",
     SUBFIELD(http, server_timing),
     .type = &sl__type_bool,
     .def = "false",
     .doc = "Add `Server-Timing: app;dur=MS` to the app's responses: milliseconds from the "
            "request head to the app's response start (not on responses of intercept routes)."},
};

static const struct sl__section http_section = {
    .name = "http",
    .keys = http_keys,
    .nkeys = ARRAY_LEN(http_keys),
    .size = sizeof(((struct sl_config *)0)->http),
    .doc = "HTTP protocol options.",
};

static const struct sl__key log_keys[] = {
    {.name = "access",
     SUBFIELD(log, access),
     .type = &sl__type_logdest,
     .def = "off",
     .flags = SL__NULLABLE | SL__CHECK_WRITE,
     .doc = "Access log: one line per request. A file is opened for append (whole lines, "
            "so workers never interleave) and reopened by its path on SIGUSR2 (logrotate "
            "without copytruncate: move it, then signal the master). A failing file (a full "
            "disk) is reported once and loses lines; serving goes on."},
    {.name = "error",
     SUBFIELD(log, error),
     .type = &sl__type_logdest,
     .def = "stderr",
     .flags = SL__NULLABLE | SL__CHECK_WRITE,
     .doc = "Error log: `stderr` or a file opened for append and reopened on SIGUSR2 like "
            "`access`. Python tracebacks go there; what an app prints to `sys.stderr` stays on "
            "stderr. `off` is not accepted: errors are always written somewhere."},
    {.name = "level",
     SUBFIELD(log, level),
     .type = &sl__type_enum,
     .names = level_names,
     .def = "info",
     .doc = "Least severe message written to stderr."},
    {.name = "access_format",
     SUBFIELD(log, access_format),
     .type = &sl__type_enum,
     .names = access_format_names,
     .def = "json",
     .doc = "`json`: one object per line with `time`, `client`, `method`, `path`, `query`, "
            "`status`, `bytes_in` (request body), `bytes_out` (response body), `duration` "
            "(seconds, head received to response sent), `user_agent`, `referer` (null when "
            "absent), `listener`, `pid` and `tls` (`TLSv1.3`, null on plain connections), "
            "and `request_id` with `http.request_id`. "
            "`combined`: Apache/nginx combined format "
            "(GoAccess, fail2ban): `client - - [time] \"request line\" status bytes "
            "\"referer\" \"user agent\"`. `custom`: `access_template`. Requests the "
            "core answered itself (400, 408, 413, 431...) carry the method and path when the "
            "request line was read."},
    {.name = "access_template",
     SUBFIELD(log, access_template),
     .type = &sl__type_string,
     .def = "null",
     .flags = SL__NULLABLE,
     .doc = "With `access_format: custom`, the line: text with `$field` for the fields "
            "`json` lists (plus `protocol`, e.g. `HTTP/1.1`), `$$` for a dollar sign; values "
            "are escaped as in `combined` (`\\xNN`), `-` when empty."},
    {.name = "time_format",
     SUBFIELD(log, time_format),
     .type = &sl__type_enum,
     .names = time_format_names,
     .def = "rfc3339",
     .doc = "Access-log times: `rfc3339` (UTC, milliseconds: `2026-01-02T03:04:05.678Z`) or "
            "`unix` (seconds since the epoch with milliseconds, a number in JSON)."},
};

/* Checks the access template's field names, and that custom has one. */
static void log_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    const char *t =
        *(const char *const *)((const char *)obj + offsetof(struct sl_config, log.access_template) -
                               offsetof(struct sl_config, log));
    int format = *(const int *)((const char *)obj + offsetof(struct sl_config, log.access_format) -
                                offsetof(struct sl_config, log));
    const struct sl__node *at = sl__map_get(map, "access_template");
    const char *err =
        *(const char *const *)((const char *)obj + offsetof(struct sl_config, log.error) -
                               offsetof(struct sl_config, log));
    if (err == NULL)
        sl__error(cx, sl__map_get(map, "error") ? sl__map_get(map, "error") : map,
                  sl__path_join(cx, path, "error"), "expected \"stderr\" or a file path, got off");
    if (format == SL_ACCESS_CUSTOM && t == NULL)
        sl__error(cx, sl__map_get(map, "access_format") ? sl__map_get(map, "access_format") : map,
                  sl__path_join(cx, path, "access_template"),
                  "needs \"access_template\" (access_format is custom)");
    for (const char *p = t; p && (p = strchr(p, '$')) != NULL;) {
        size_t n = 0;
        if (p[1] == '$') {
            p += 2;
            continue;
        }
        while ((p[1 + n] >= 'a' && p[1 + n] <= 'z') || p[1 + n] == '_')
            n++;
        bool known = false;
        for (size_t i = 0; access_fields[i] && !known; i++)
            known = strlen(access_fields[i]) == n && strncmp(access_fields[i], p + 1, n) == 0;
        if (!known)
            sl__error(cx, at ? at : map, sl__path_join(cx, path, "access_template"),
                      "unknown field \"$%.*s\", expected one of: time, client, method, path, "
                      "query, status, bytes_in, bytes_out, duration, user_agent, referer, "
                      "listener, pid, protocol, tls, request_id (or $$)",
                      (int)(n < 40 ? n : 40), p + 1);
        p += 1 + n;
    }
}

static const struct sl__section log_section = {
    .name = "log",
    .keys = log_keys,
    .nkeys = ARRAY_LEN(log_keys),
    .size = sizeof(((struct sl_config *)0)->log),
    .finish = log_finish,
    .doc = "Logging.",
};

static const struct sl__key python_keys[] = {
    {.name = "optimize",
     SUBFIELD(python, optimize),
     .type = &sl__type_int,
     .min = 0,
     .max = 2,
     .def = "0",
     .doc = "Optimisation level of the embedded interpreter, as `python -O` / `-OO`: `1` "
            "drops `assert` statements and `if __debug__:` blocks, `2` also drops docstrings "
            "(breaks code that reads `__doc__`). Python then needs `.opt-1.pyc` / "
            "`.opt-2.pyc` files, which Debian does not ship: without them every module is "
            "compiled from source at each start, slower and (measured) using more memory than "
            "`2` saves. Precompile them once, e.g. `python3 -OO -m compileall` over the "
            "stdlib and the app's packages, or point `PYTHONPYCACHEPREFIX` at a writable "
            "directory."},
};

static const struct sl__section python_section = {
    .name = "python",
    .keys = python_keys,
    .nkeys = ARRAY_LEN(python_keys),
    .size = sizeof(((struct sl_config *)0)->python),
    .doc = "The embedded Python interpreter.",
};

/* ---- the top level ----------------------------------------------------------- */

#define CFG(member) FIELD(struct sl_config, member)

static const struct sl__key root_keys[] = {
    {.name = "app",
     CFG(app),
     .shape = SL__SECTION,
     .section = &app_section,
     .doc = "The Python application."},
    {.name = "workers",
     CFG(workers),
     .type = &sl__type_int,
     .min = 0,
     .max = 1024,
     .def = "1",
     .doc = "Worker processes; `0` = one per online CPU."},
    {.name = "routes",
     ROUTES(struct sl_config),
     .def = "[]",
     .doc = "Intercept routes: requests answered or shaped by the server before the app "
            "(listeners may replace them)."},
    {.name = "listeners",
     CFG(listeners),
     .shape = SL__SECTIONS,
     .section = &listener_section,
     .count = offsetof(struct sl_config, nlisteners),
     .item_size = sizeof(struct sl_listener_config),
     .min_items = 1,
     .max_items = 256,
     .def = "[{tcp: \"127.0.0.1:8000\"}]",
     .doc = "Where to accept connections."},
    {.name = "timeouts",
     CFG(timeouts),
     .shape = SL__SECTION,
     .section = &timeouts_section,
     .doc = "Timeouts (listeners may override them)."},
    {.name = "limits",
     CFG(limits),
     .shape = SL__SECTION,
     .section = &limits_section,
     .doc = "Resource limits (listeners may override them)."},
    {.name = "websocket",
     CFG(websocket),
     .shape = SL__SECTION,
     .section = &websocket_section,
     .doc = "WebSocket settings (listeners may override them)."},
    {.name = "tcp",
     CFG(tcp),
     .shape = SL__SECTION,
     .section = &tcp_section,
     .doc = "TCP socket options."},
    {.name = "proxy",
     CFG(proxy),
     .shape = SL__SECTION,
     .section = &proxy_section,
     .doc = "Proxy awareness (listeners may override it)."},
    {.name = "process",
     CFG(process),
     .shape = SL__SECTION,
     .section = &process_section,
     .doc = "Process-wide settings."},
    {.name = "http",
     CFG(http),
     .shape = SL__SECTION,
     .section = &http_section,
     .doc = "HTTP protocol options."},
    {.name = "log", CFG(log), .shape = SL__SECTION, .section = &log_section, .doc = "Logging."},
    {.name = "python",
     CFG(python),
     .shape = SL__SECTION,
     .section = &python_section,
     .doc = "The embedded Python interpreter."},
};

static bool same_listener(const struct sl_listener_config *a, const struct sl_listener_config *b)
{
    if (a->kind != b->kind || a->name == NULL || b->name == NULL)
        return false;
    if (a->kind == SL_LISTENER_UNIX)
        return strcmp(a->path, b->path) == 0;
    if (a->kind == SL_LISTENER_FD)
        return a->fd == b->fd;
    if (a->kind == SL_LISTENER_SYSTEMD)
        return strcmp(a->systemd, b->systemd) == 0;
    if (a->addrlen != b->addrlen)
        return false;
    if (a->addr.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;
        return x->sin_port != 0 && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;
    return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* Two listeners on one address would fail at bind time: say so now. */
static void root_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    const struct sl_config *cfg = obj;
    const struct sl__node *items = sl__map_get(map, "listeners");
    (void)path;
    for (size_t i = 1; i < cfg->nlisteners; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!same_listener(&cfg->listeners[i], &cfg->listeners[j]))
                continue;
            static const char *const keys[] = {"tcp", "unix", "fd", "systemd"};
            const char *key = keys[cfg->listeners[i].kind];
            const struct sl__node *item =
                items && items->kind == SL__NODE_SEQ && i < items->n ? items->vals[i] : NULL;
            const struct sl__node *at = sl__map_get(item, key);
            sl__error(cx, at ? at : item,
                      sl__path_join(cx, sl__path_index(cx, "listeners", i), key),
                      "duplicate listener, same %s as listeners.%zu",
                      cfg->listeners[i].kind == SL_LISTENER_SYSTEMD ? "name" : "address", j);
            break;
        }
    }
}

const struct sl__section sl__schema_root = {
    .name = "",
    .keys = root_keys,
    .nkeys = ARRAY_LEN(root_keys),
    .size = sizeof(struct sl_config),
    .finish = root_finish,
    .doc = "",
};
