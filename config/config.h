/*
 * config: YAML files in, one immutable `struct sl_config` out.
 *
 * No sockets and no Python here. Every key is declared once in the schema
 * table (config/schema.c); parsing, validation, defaults, --print-config, the
 * JSON Schema and docs/config.md are all generated from that table.
 *
 * Ownership: a compiled config is one arena. Every pointer inside it (strings,
 * arrays) lives exactly as long as the config and is released by
 * sl_cfg_free(). Nothing in it changes after sl_cfg_load() returns.
 */
#ifndef SL_CONFIG_CONFIG_H
#define SL_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "base/log.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sl_lifespan { SL_LIFESPAN_AUTO, SL_LIFESPAN_ON, SL_LIFESPAN_OFF };
enum sl_loop_kind { SL_LOOP_AUTO, SL_LOOP_ASYNCIO, SL_LOOP_UVLOOP };
enum sl_preload { SL_PRELOAD_AUTO, SL_PRELOAD_ON, SL_PRELOAD_OFF };
enum sl_listener_kind { SL_LISTENER_TCP, SL_LISTENER_UNIX, SL_LISTENER_FD, SL_LISTENER_SYSTEMD };
enum sl_tls_version { SL_TLS_1_2, SL_TLS_1_3 };
enum sl_verify_client { SL_VERIFY_OFF, SL_VERIFY_OPTIONAL, SL_VERIFY_REQUIRED };

/* All durations are milliseconds; 0 means "no timeout". */
struct sl_timeouts {
    uint32_t header_ms;     /* first byte to end of request head */
    uint32_t keep_alive_ms; /* idle between requests on a kept-alive connection */
    uint32_t body_ms;       /* max gap between two reads of a request body */
    uint32_t write_ms;      /* max time a write may make no progress */
    uint32_t shutdown_ms;   /* graceful drain bound on SIGTERM/SIGINT */
    uint32_t app_ms;        /* request head to the app's end of response; 0 = no limit */
    uint32_t handshake_ms;  /* TLS: accept (or PROXY header) to handshake done */
    uint32_t startup_ms;    /* global only: a worker's start to "ready"; 0 = no limit */
};

/* A token bucket per client address: `per_sec` requests a second on
 * average, up to `burst` at once. */
struct sl_rate {
    uint32_t per_sec; /* 0 = no rate limit; routes: SL_ROUTE_INHERIT = the listener's */
    uint32_t burst;   /* 0 = per_sec */
};

struct sl_limits {
    uint64_t max_body;               /* bytes; request body ceiling (413) */
    uint32_t max_header_bytes;       /* bytes; request line + headers (431) */
    uint32_t max_request_target;     /* bytes; the URI of the request line (414) */
    uint32_t max_headers;            /* count (431) */
    uint32_t max_connections;        /* per worker; excess accepted then closed */
    uint32_t max_keepalive_requests; /* per connection; 0 = unlimited */
    /* Per client address, per worker (server/client_table.h); 0 = off. */
    uint32_t max_connections_per_ip;
    uint32_t concurrency;                /* requests in flight per client address */
    uint32_t max_connection_lifetime_ms; /* then closed between requests */
    struct sl_rate rate;
};

/* websocket.compression */
enum sl_ws_compression { SL_WS_COMPRESSION_DEFLATE, SL_WS_COMPRESSION_OFF };

/* WebSocket settings (RFC 6455); listeners may override them. */
struct sl_websocket {
    uint64_t max_message;      /* bytes; a longer message closes the socket with 1009 */
    uint32_t ping_interval_ms; /* ping a peer silent this long; 0 = never */
    uint32_t ping_timeout_ms;  /* close (1006) when nothing follows a ping this long; 0 = never */
    uint32_t max_queue;        /* received messages waiting for the app before reading pauses */
    int compression;           /* enum sl_ws_compression: permessage-deflate (RFC 7692) or not */
};

/* One `tls.sni` entry: a certificate chosen when the client's SNI matches
 * one of `names` (exact, or "*.example.com": exactly one label). */
struct sl_tls_sni {
    const char *const *names;
    size_t nnames;
    const char *cert; /* chain PEM */
    const char *key;
};

/* A certificate chain (PEM, leaf first) and its private key. */
struct sl_tls_pair {
    const char *cert;
    const char *key;
};

/* A listener's TLS; `cert` NULL = plain (no TLS). Paths are as written. */
struct sl_tls_config {
    const char *cert; /* chain PEM: leaf first */
    const char *key;
    /* More pairs of other key types (RSA beside ECDSA): OpenSSL keeps one
     * per type and serves what the client's signature algorithms allow. */
    const struct sl_tls_pair *extra_certs;
    size_t nextra_certs;
    enum sl_tls_version min_version;
    const char *ciphers;      /* TLS 1.2 cipher list; NULL = OpenSSL's default */
    const char *ciphersuites; /* TLS 1.3 suites; NULL = OpenSSL's default */
    const char *const *alpn;  /* protocols offered, in preference order */
    size_t nalpn;
    uint32_t session_cache; /* sessions cached per worker; 0 = no cache */
    bool session_tickets;
    const struct sl_tls_sni *sni;
    size_t nsni;
    const char *client_ca; /* NULL = no client certificates asked for */
    enum sl_verify_client verify_client;
    uint32_t verify_depth; /* intermediate CAs allowed in a client chain */
    const char *crl;       /* PEM CRL(s) checked against client chains; NULL = none */
    bool ktls;             /* ask OpenSSL for kernel TLS (falls back silently) */
};

/* One address range of `proxy.trusted` or a route's `source`, compiled
 * from its text (config/cidr.c); matched by server/cidr.h. */
struct sl_cidr {
    uint8_t family;   /* AF_INET or AF_INET6 */
    uint8_t bits;     /* prefix length */
    uint8_t addr[16]; /* network order, host bits zero; 4 bytes used for AF_INET */
};

/* A compiled list of ranges; the word "unix" in it sets `unix_ok`. */
struct sl_cidr_list {
    const struct sl_cidr *items;
    size_t n;
    bool unix_ok; /* Unix-socket peers (no address) are in the list */
};

/* ---- intercept routes (config/route.c) ------------------------------------ */

enum sl_route_action {
    SL_ROUTE_APP,         /* the ASGI app (with the route's limits) */
    SL_ROUTE_RETURN,      /* a fixed response */
    SL_ROUTE_REDIRECT,    /* a Location response */
    SL_ROUTE_HEALTH,      /* 200 "ok" while serving, 503 while draining */
    SL_ROUTE_PREFLIGHT,   /* CORS preflight answered in C */
    SL_ROUTE_FILES,       /* static files under a root directory */
    SL_ROUTE_TRACEMALLOC, /* top Python allocations, answered by the bridge (python/) */
    SL_ROUTE_METRICS,     /* the instance's metrics (server/metrics.c) */
};

#define SL_ROUTE_INHERIT_SIZE UINT64_MAX /* per-route limit not set */
#define SL_ROUTE_INHERIT_MS UINT32_MAX   /* per-route timeout not set */
#define SL_ROUTE_INHERIT UINT32_MAX      /* per-route count not set */

struct sl_route_return {
    int status;
    const char *body;
    const char *content_type;   /* "" = no Content-Type */
    const char *const *headers; /* "Name: value", validated */
    size_t nheaders;
};

struct sl_route_redirect {
    const char *to; /* with {rest}, {query}, {?query} placeholders */
    int status;     /* 301, 302, 303, 307 or 308 */
};

struct sl_route_preflight {
    const char *const *origins; /* exact origins; "*" = any */
    size_t norigins;
    const char *const *methods; /* allowed Access-Control-Request-Method values */
    size_t nmethods;
    const char *const *headers; /* allowed request headers (any case); "*" = any */
    size_t nheaders;
    uint32_t max_age_ms; /* 0 = no Access-Control-Max-Age */
    bool credentials;
    const char *methods_line; /* derived: "GET, POST" */
};

enum sl_files_fallback { SL_FILES_FALLBACK_NONE, SL_FILES_FALLBACK_APP };

struct sl_route_files {
    const char *root;   /* directory, as written */
    const char *index;  /* file served for a directory; "" = none */
    int fallback;       /* enum sl_files_fallback: a missing file gets 404 or the app */
    uint32_t cache_ms;  /* Cache-Control max-age; 0 = no Cache-Control */
    bool precompressed; /* serve NAME.br / NAME.gz when the client accepts them */
};

struct sl_route_config {
    const char *name; /* for logs; NULL = none */
    /* Match keys, as written (NULL / empty = any). */
    const char *path;
    const char *const *methods;
    size_t nmethods;
    const char *host;
    const char *const *source;
    size_t nsource;
    /* Derived by the compiler. */
    const char *path_pat; /* exact path, or a prefix ending in '/' */
    size_t path_pat_len;
    bool path_prefix;
    const char *host_pat; /* lowercase; for "*.x.y" the suffix ".x.y" */
    size_t host_pat_len;
    bool host_wild;
    struct sl_cidr_list cidrs; /* parsed `source` */
    /* The action (exactly one given) and its settings. */
    int action; /* enum sl_route_action */
    struct sl_route_return ret;
    struct sl_route_redirect redirect;
    struct sl_route_preflight preflight;
    struct sl_route_files files;
    struct {
        uint32_t top; /* allocation sites listed */
    } tracemalloc;
    struct {
        uint64_t max_body;    /* SL_ROUTE_INHERIT_SIZE = the listener's */
        uint32_t concurrency; /* SL_ROUTE_INHERIT = the listener's */
        struct sl_rate rate;  /* per_sec SL_ROUTE_INHERIT = the listener's */
    } limits;
    struct {
        uint32_t body_ms;  /* SL_ROUTE_INHERIT_MS = the listener's */
        uint32_t write_ms; /* SL_ROUTE_INHERIT_MS = the listener's */
    } timeouts;
};

/* An ordered route table: the first route that matches decides. */
struct sl_route_list {
    const struct sl_route_config *items;
    size_t n;
};
/* ---- proxy ---- */
enum sl_proxy_protocol { SL_PROXY_OFF, SL_PROXY_PROTO_V1, SL_PROXY_PROTO_V2, SL_PROXY_PROTO_AUTO };

/* Who may speak for the client (global, overridable per listener). */
struct sl_proxy_config {
    const char *const *trusted; /* as written: CIDRs, addresses, "unix" */
    size_t ntrusted;
    struct sl_cidr_list cidrs;       /* `trusted` compiled ("unix": cidrs.unix_ok) */
    bool headers;                    /* believe Forwarded / X-Forwarded-* / X-Real-IP from them */
    enum sl_proxy_protocol protocol; /* PROXY header required on every connection */
};
/* ---- end proxy ---- */

/*
 * One listener. `limits` and `timeouts` are already resolved: keys the
 * listener item sets override the global section, the rest inherit it at
 * compile time (never looked up per request).
 */
struct sl_listener_config {
    enum sl_listener_kind kind;
    /* What it listens on, as written: "0.0.0.0:8000", "[::1]:80", "/run/x.sock",
     * "@abstract"; "fd:3", "systemd:web", "systemd:*" (systemd: true). */
    const char *name;
    const char *label; /* the `name` key: used in logs; NULL = not given */
    uint32_t backlog;  /* listen(2) queue; capped by net.core.somaxconn */
    bool reuseport;    /* SO_REUSEPORT (TCP) */
    /* SL_LISTENER_TCP: parsed numeric address (no DNS lookups). */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* SL_LISTENER_UNIX; a path starting with '@' is an abstract socket. */
    const char *path;
    int mode;            /* file mode for the socket, -1 = leave as created */
    const char *owner;   /* user name or uid for the socket file; NULL = leave */
    const char *group;   /* group name or gid; NULL = leave */
    int fd;              /* SL_LISTENER_FD: an inherited listening socket */
    const char *systemd; /* SL_LISTENER_SYSTEMD: FileDescriptorName, or "true" = all */
    struct sl_tls_config tls;
    struct sl_limits limits;
    struct sl_timeouts timeouts;
    struct sl_route_list routes; /* its own `routes`, or the global table */
    struct sl_websocket websocket;
    struct sl_proxy_config proxy; /* resolved like limits */
};

/* Options of TCP sockets (every TCP listener; accepted sockets inherit
 * them from the listening socket). Durations in ms, 0 = kernel default/off. */
struct sl_tcp_config {
    bool nodelay;
    uint32_t keepalive_idle_ms; /* 0 = no keep-alive probes */
    uint32_t keepalive_interval_ms;
    uint32_t keepalive_count;
    uint32_t user_timeout_ms;
    uint32_t fastopen;        /* TFO queue length; 0 = off */
    uint32_t defer_accept_ms; /* wake accept only once data arrived; 0 = off */
};

/* http.request_id: a request id per request, in the scope, the
 * response and the access log. */
struct sl_request_id_config {
    const char *header;  /* the header carrying it ("X-Request-ID"); NULL = off */
    bool trust_incoming; /* reuse a valid id the client sent */
};

struct sl_app_config {
    const char *target;      /* "module:attr" as written */
    const char *module;      /* "main" */
    const char *attr;        /* "app" (may be dotted: "factory.app") */
    const char *const *path; /* prepended to sys.path, in order */
    size_t npath;
    const char *venv; /* NULL = none */
    enum sl_lifespan lifespan;
    enum sl_loop_kind loop;
    const char *root_path;   /* ASGI root_path; "" = none (no trailing slash) */
    enum sl_preload preload; /* auto: on when more than one worker */
};

struct sl_config {
    struct sl_app_config app;
    uint32_t workers; /* 0 = auto: one per online CPU */
    const struct sl_listener_config *listeners;
    size_t nlisteners;
    struct sl_timeouts timeouts;   /* global section */
    struct sl_limits limits;       /* global section */
    struct sl_websocket websocket; /* global section */
    struct sl_tcp_config tcp;
    struct sl_route_list routes;  /* global intercept routes */
    struct sl_proxy_config proxy; /* global section */
    struct {
        bool raise_nofile;            /* soft RLIMIT_NOFILE to the hard limit at start */
        uint32_t max_requests;        /* a worker is replaced after this many; 0 = never */
        uint32_t max_requests_jitter; /* plus 0..jitter, per worker */
        uint64_t max_rss;             /* bytes; replaced when over it; 0 = never */
        uint32_t crash_limit;         /* this many crashes within crash_window = a crash loop */
        uint32_t crash_window_ms;
        const char *user;     /* drop privileges to this user (name or uid); NULL = stay */
        const char *group;    /* with `user`: this group instead of the user's; NULL */
        const char *pid_file; /* the master's PID, written after binding; NULL = none */
    } process;
    struct {
        const char *server_header; /* "" = send no Server header */
        struct sl_request_id_config request_id;
        bool server_timing; /* Server-Timing: app;dur=MS on the app's responses */
    } http;
    struct {
        const char *access; /* NULL = off, "stderr", or a file path */
        const char *error;  /* "stderr" or a file path */
        enum sl_log_level level;
        enum sl_access_format access_format;
        const char *access_template; /* access_format custom: "$client $status..." */
        enum sl_time_format time_format;
    } log;
    struct {
        uint32_t optimize; /* as python -O (1) or -OO (2); 0 = neither */
    } python;
};

/*
 * Diagnostics: one per error, each rendered as one line
 *     FILE:LINE:COL: key.path: what was expected, what was found
 * or, for a value that came from --set or an environment variable,
 *     --set limits.max_body=lots: limits.max_body: expected ..., got "lots"
 * (the origin stands where the file position would).
 */
#define SL_DIAG_MAX 64 /* errors kept per run; more are counted, not kept */

struct sl_diag {
    char *text; /* the full rendered line, no trailing newline */
};

struct sl_diags {
    struct sl_diag items[SL_DIAG_MAX];
    size_t count;   /* kept */
    size_t dropped; /* beyond SL_DIAG_MAX */
    /* Warnings: the config compiles, but something in it is likely a
     * mistake (a route no request can reach). Same one-line form; also
     * logged at warning level by sl_cfg_load when it succeeds. */
    struct sl_diag warnings[SL_DIAG_MAX];
    size_t nwarnings;
};

void sl_diags_init(struct sl_diags *d);
void sl_diags_release(struct sl_diags *d);
/* Prints every error, one per line, plus a "(N more errors)" line. */
void sl_diags_print(const struct sl_diags *d, FILE *out);
/* Prints every warning, one per line. */
void sl_diags_print_warnings(const struct sl_diags *d, FILE *out);

/* One input document: a file path, or an in-memory text given a name. */
struct sl_cfg_source {
    const char *name; /* file path, or a label such as "<command line>" */
    const char *text; /* NULL = read the file `name` */
};

struct sl_cfg_input {
    const struct sl_cfg_source *sources; /* merged in order: later overrides */
    size_t nsources;
    const char *const *sets; /* "key.path=value", applied after all sources */
    size_t nsets;
    /* Environment lookup for ${VAR}; NULL = getenv(). */
    const char *(*getenv_fn)(const char *name);
    /* Also check what can be checked without serving (-t): files readable,
     * directories exist. Never binds and never imports Python. */
    bool check_files;
    /* With check_files: checks TLS material (OpenSSL lives in server/, the
     * program passes sl_tls_check). NULL = not checked. */
    int (*check_tls)(int what, const char *file, const char *key, char *err, size_t errcap);
};

/* What sl_cfg_input.check_tls is asked to check. Returns 0; -1 when `file`
 * is at fault, -2 when `key` is, with the reason in err. */
enum sl_tls_check {
    SL_TLS_CHECK_CERT_KEY,     /* file: chain PEM, key: its private key */
    SL_TLS_CHECK_CA,           /* file: CA certificates */
    SL_TLS_CHECK_CRL,          /* file: CRLs */
    SL_TLS_CHECK_CIPHERS,      /* file: a TLS 1.2 cipher list */
    SL_TLS_CHECK_CIPHERSUITES, /* file: TLS 1.3 suites */
    SL_TLS_CHECK_KTLS,         /* file: the key's path; warns when kTLS cannot work */
};

/*
 * Compiles the inputs. Returns the config (free with sl_cfg_free), or NULL
 * with at least one diagnostic in `d`. All errors found are reported, not
 * just the first.
 */
const struct sl_config *sl_cfg_load(const struct sl_cfg_input *in, struct sl_diags *d);

/* Releases the whole arena. sl_cfg_free(NULL) is a no-op. */
void sl_cfg_free(const struct sl_config *cfg);

/* Writes the effective config as YAML, every key, defaults included. Feeding
 * the output back to sl_cfg_load yields an identical config. */
void sl_cfg_print(const struct sl_config *cfg, FILE *out);

/* Writes the JSON Schema (draft 2020-12) generated from the schema table. */
void sl_cfg_print_schema(FILE *out);

/* Writes the Markdown reference (docs/config.md) generated from the table. */
void sl_cfg_print_docs(FILE *out);

#ifdef __cplusplus
}
#endif

#endif
