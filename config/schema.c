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
#include <stddef.h>
#include <string.h>
#include <netinet/in.h>

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
    {.name = "shutdown",
     TIMEOUT(shutdown_ms),
     .def = "30s",
     .doc = "On SIGTERM/SIGINT, how long in-flight requests may take to finish before the "
            "remaining connections are closed."},
};

static const struct sl__section timeouts_section = {
    .name = "timeouts",
    .keys = timeouts_keys,
    .nkeys = ARRAY_LEN(timeouts_keys),
    .size = sizeof(struct sl_timeouts),
    .doc = "Timeouts, per connection. `0` disables one.",
};

/* ---- limits -------------------------------------------------------------- */

#define LIMIT(member) FIELD(struct sl_limits, member)

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
};

static const struct sl__section limits_section = {
    .name = "limits",
    .keys = limits_keys,
    .nkeys = ARRAY_LEN(limits_keys),
    .size = sizeof(struct sl_limits),
    .doc = "Resource limits.",
};

/* ---- listeners ----------------------------------------------------------- */

#define LISTENER(member) FIELD(struct sl_listener_config, member)

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
     .doc = "Listen on a Unix domain socket at this path (its directory must exist)."},
    {.name = "mode",
     LISTENER(mode),
     .type = &sl__type_mode,
     .def = "null",
     .flags = SL__NULLABLE,
     .requires = "unix",
     .doc = "Permissions of the Unix socket file, e.g. `\"0660\"`."},
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
     .section = &timeouts_section,
     .flags = SL__INHERIT,
     .inherit = offsetof(struct sl_config, timeouts),
     .doc = "Overrides of the global `timeouts` for this listener; keys not set here inherit "
            "the global value."},
};

/* Derives what the listener's kind implies from the key given. */
static void listener_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                            const char *path)
{
    struct sl_listener_config *l = obj;
    (void)cx, (void)map, (void)path;
    if (l->kind == SL_LISTENER_TCP && l->name != NULL) {
        int rc = sl__parse_addr(l->name, &l->addr, &l->addrlen);
        (void)rc; /* already validated by the address type */
    } else if (l->kind == SL_LISTENER_UNIX && l->path != NULL) {
        l->name = l->path;
    }
}

static const struct sl__section listener_section = {
    .name = "listeners[]",
    .keys = listener_keys,
    .nkeys = ARRAY_LEN(listener_keys),
    .size = sizeof(struct sl_listener_config),
    .kind_offset = offsetof(struct sl_listener_config, kind),
    .finish = listener_finish,
    .doc = "One item of `listeners`: exactly one of `tcp` or `unix`, plus options.",
};

/* ---- app, http, log -------------------------------------------------------- */

#define APP(member) FIELD(struct sl_app_config, member)

static const char *const lifespan_names[] = {"auto", "on", "off", NULL};
static const char *const loop_names[] = {"auto", "asyncio", "uvloop", NULL};
static const char *const level_names[] = {"debug", "info", "warning", "error", NULL};

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
};

/* Splits the target into module and attribute (validated by its type). */
static void app_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    struct sl_app_config *app = obj;
    size_t colon;
    (void)map, (void)path;
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

static const struct sl__key http_keys[] = {
    {.name = "server_header",
     SUBFIELD(http, server_header),
     .type = &sl__type_header,
     .def = "\"saltare\"",
     .doc = "Value of the `Server` response header; `\"\"` sends none."},
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
     .doc = "Access log: one line per request."},
    {.name = "level",
     SUBFIELD(log, level),
     .type = &sl__type_enum,
     .names = level_names,
     .def = "info",
     .doc = "Least severe message written to stderr."},
};

static const struct sl__section log_section = {
    .name = "log",
    .keys = log_keys,
    .nkeys = ARRAY_LEN(log_keys),
    .size = sizeof(((struct sl_config *)0)->log),
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
            const char *key = cfg->listeners[i].kind == SL_LISTENER_TCP ? "tcp" : "unix";
            const struct sl__node *item =
                items && items->kind == SL__NODE_SEQ && i < items->n ? items->vals[i] : NULL;
            const struct sl__node *at = sl__map_get(item, key);
            sl__error(cx, at ? at : item,
                      sl__path_join(cx, sl__path_index(cx, "listeners", i), key),
                      "duplicate listener, same address as listeners.%zu", j);
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
