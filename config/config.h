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

#ifdef __cplusplus
extern "C" {
#endif

#define SL_EX_CONFIG 78 /* sysexits.h EX_CONFIG: exit status on any config error */

enum sl_lifespan { SL_LIFESPAN_AUTO, SL_LIFESPAN_ON, SL_LIFESPAN_OFF };
enum sl_loop_kind { SL_LOOP_AUTO, SL_LOOP_ASYNCIO, SL_LOOP_UVLOOP };
enum sl_listener_kind { SL_LISTENER_TCP, SL_LISTENER_UNIX };
enum sl_log_level { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARNING, SL_LOG_ERROR };

/* All durations are milliseconds; 0 means "no timeout". */
struct sl_timeouts {
    uint32_t header_ms;     /* first byte to end of request head */
    uint32_t keep_alive_ms; /* idle between requests on a kept-alive connection */
    uint32_t body_ms;       /* max gap between two reads of a request body */
    uint32_t write_ms;      /* max time a write may make no progress */
    uint32_t shutdown_ms;   /* graceful drain bound on SIGTERM/SIGINT */
};

struct sl_limits {
    uint64_t max_body;               /* bytes; request body ceiling (413) */
    uint32_t max_header_bytes;       /* bytes; request line + headers (431) */
    uint32_t max_headers;            /* count (431) */
    uint32_t max_connections;        /* per worker; excess accepted then closed */
    uint32_t max_keepalive_requests; /* per connection; 0 = unlimited */
};

/*
 * One listener. `limits` and `timeouts` are already resolved: keys the
 * listener item sets override the global section, the rest inherit it at
 * compile time (never looked up per request).
 */
struct sl_listener_config {
    enum sl_listener_kind kind;
    const char *name; /* as written: "0.0.0.0:8000", "[::1]:80", "/run/x.sock" */
    /* SL_LISTENER_TCP: parsed numeric address (no DNS lookups). */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* SL_LISTENER_UNIX */
    const char *path;
    int mode; /* file mode for the socket, -1 = leave as created */
    struct sl_limits limits;
    struct sl_timeouts timeouts;
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
};

struct sl_config {
    struct sl_app_config app;
    uint32_t workers; /* 0 = auto: one per online CPU */
    const struct sl_listener_config *listeners;
    size_t nlisteners;
    struct sl_timeouts timeouts; /* global section */
    struct sl_limits limits;     /* global section */
    struct {
        const char *server_header; /* "" = send no Server header */
    } http;
    struct {
        const char *access; /* NULL = off, "stderr", or a file path */
        enum sl_log_level level;
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
};

void sl_diags_init(struct sl_diags *d);
void sl_diags_release(struct sl_diags *d);
/* Prints every diagnostic, one per line, plus a "(N more errors)" line. */
void sl_diags_print(const struct sl_diags *d, FILE *out);

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
