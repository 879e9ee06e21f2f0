/*
 * types: the scalar value types of the schema.
 *
 * Each type joins a pure parser (value.c) to the wording of its errors, its
 * canonical printer (value -> YAML that parses back to the same value), its
 * docs and its JSON Schema. Values are typed after interpolation; quoting
 * never changes a type ("5s" and 5s are the same).
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/un.h>

#include "config/config_internal.h"

#define HEADER_MAX 1024 /* bytes in a header value (Server) */

/* ---- helpers shared by the type vtables ------------------------------------ */

static uint64_t load_uint(const void *src, size_t size)
{
    switch (size) {
    case 1:
        return *(const uint8_t *)src;
    case 2:
        return *(const uint16_t *)src;
    case 4:
        return *(const uint32_t *)src;
    default:
        return *(const uint64_t *)src;
    }
}

static void store_uint(void *dst, size_t size, uint64_t v)
{
    switch (size) {
    case 1:
        *(uint8_t *)dst = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)dst = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)dst = (uint32_t)v;
        break;
    default:
        *(uint64_t *)dst = v;
        break;
    }
}

/* All ones in a field of `size` bytes: the null of a nullable size or
 * duration (a per-route limit that is not set). */
static uint64_t null_uint(size_t size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (size * 8)) - 1;
}

/* A nullable number given as null: stores null_uint. */
static bool store_null(const struct sl__key *k, const struct sl__node *n, void *dst)
{
    if (!(k->flags & SL__NULLABLE) || !sl__node_is_null(n))
        return false;
    store_uint(dst, k->size, null_uint(k->size));
    return true;
}

/* Reports "expected <what the type wants>, got <the node>". */
static int bad_value(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                     const char *path, const char *hint)
{
    char want[256], got[SL__QUOTE_MAX];
    k->type->expect(k, want, sizeof(want));
    sl__error(cx, n, path, "expected %s, got %s%s", want, sl__node_describe(n, got, sizeof(got)),
              hint ? hint : "");
    return -1;
}

static int out_of_range(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                        const char *path, const char *what, const char *lo, const char *hi)
{
    char got[SL__QUOTE_MAX];
    sl__error(cx, n, path, "expected %s from %s to %s, got %s", what, lo, hi,
              sl__node_describe(n, got, sizeof(got)));
    (void)k;
    return -1;
}

static const char *copy_str(struct sl__cx *cx, const struct sl__node *n)
{
    return sl__arena_strndup(cx->out, n->str, n->len);
}

static bool equal_bytes(const struct sl__key *k, const void *a, const void *b)
{
    return memcmp(a, b, k->size) == 0;
}

static bool equal_str(const struct sl__key *k, const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    (void)k;
    return x == y || (x && y && strcmp(x, y) == 0);
}

static void print_str(FILE *out, const struct sl__key *k, const void *src)
{
    const char *s = *(const char *const *)src;
    (void)k;
    if (s == NULL)
        fputs("null", out);
    else
        sl__print_quoted(out, s);
}

static const char *path_of_str(const void *src)
{
    return *(const char *const *)src;
}

static void allowed_none(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    snprintf(buf, cap, "%s", "");
}

static void expect_text(char *buf, size_t cap, const char *text)
{
    snprintf(buf, cap, "%s", text);
}

/* ---- bool ----------------------------------------------------------------- */

static int bool_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                      const char *path, void *dst)
{
    if (sl__parse_bool(n->str, dst) < 0)
        return bad_value(cx, k, n, path, NULL);
    return 0;
}

static void bool_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    expect_text(buf, cap, "true or false");
}

static void bool_print(FILE *out, const struct sl__key *k, const void *src)
{
    (void)k;
    fputs(*(const bool *)src ? "true" : "false", out);
}

static void bool_json(FILE *out, const struct sl__key *k)
{
    (void)k;
    fputs("{\"type\": \"boolean\"}", out);
}

const struct sl__type sl__type_bool = {
    .name = "bool",
    .doc = "`true` or `false` (also `True`, `TRUE`, `False`, `FALSE`).",
    .parse = bool_parse,
    .expect = bool_expect,
    .allowed = allowed_none,
    .print = bool_print,
    .equal = equal_bytes,
    .json = bool_json,
};

/* ---- integer -------------------------------------------------------------- */

static int int_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                     const char *path, void *dst)
{
    int64_t v;
    if (store_null(k, n, dst))
        return 0;
    if (sl__parse_int(n->str, &v) < 0 || v < k->min || v > k->max)
        return bad_value(cx, k, n, path, NULL);
    store_uint(dst, k->size, (uint64_t)v);
    return 0;
}

static void int_allowed(const struct sl__key *k, char *buf, size_t cap)
{
    snprintf(buf, cap, "%" PRId64 " to %" PRId64, k->min, k->max);
}

static void int_expect(const struct sl__key *k, char *buf, size_t cap)
{
    snprintf(buf, cap, "an integer from %" PRId64 " to %" PRId64 "%s", k->min, k->max,
             (k->flags & SL__NULLABLE) ? " or null" : "");
}

static int64_t load_int(const struct sl__key *k, const void *src)
{
    uint64_t v = load_uint(src, k->size);
    if (k->min >= 0 || k->size == 8)
        return (int64_t)v;
    return k->size == 4 ? (int32_t)v : k->size == 2 ? (int16_t)v : (int8_t)v;
}

static void int_print(FILE *out, const struct sl__key *k, const void *src)
{
    if ((k->flags & SL__NULLABLE) && load_uint(src, k->size) == null_uint(k->size)) {
        fputs("null", out);
        return;
    }
    fprintf(out, "%" PRId64, load_int(k, src));
}

static void int_json(FILE *out, const struct sl__key *k)
{
    fprintf(out,
            "{\"anyOf\": [{\"type\": \"integer\", \"minimum\": %" PRId64 ", \"maximum\": %" PRId64
            "}, {\"type\": \"string\", \"pattern\": \"^-?[0-9]+$\"}%s]}",
            k->min, k->max, (k->flags & SL__NULLABLE) ? ", {\"type\": \"null\"}" : "");
}

const struct sl__type sl__type_int = {
    .name = "integer",
    .doc = "A decimal integer such as `4` (quoted or not). Each key states its range.",
    .parse = int_parse,
    .expect = int_expect,
    .allowed = int_allowed,
    .print = int_print,
    .equal = equal_bytes,
    .json = int_json,
};

/* ---- enum ----------------------------------------------------------------- */

static void enum_allowed(const struct sl__key *k, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const char *const *v = k->names; *v && o < cap; v++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", v == k->names ? "" : ", ", *v);
}

static void enum_expect(const struct sl__key *k, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "one of ");
    enum_allowed(k, buf + o, cap - o);
}

static int enum_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                      const char *path, void *dst)
{
    for (int i = 0; k->names[i]; i++) {
        if (strcmp(n->str, k->names[i]) == 0) {
            *(int *)dst = i;
            return 0;
        }
    }
    return bad_value(cx, k, n, path, NULL);
}

static void enum_print(FILE *out, const struct sl__key *k, const void *src)
{
    fputs(k->names[*(const int *)src], out);
}

static void enum_json(FILE *out, const struct sl__key *k)
{
    fputs("{\"enum\": [", out);
    for (const char *const *v = k->names; *v; v++)
        fprintf(out, "%s\"%s\"", v == k->names ? "" : ", ", *v);
    fputs("]}", out);
}

const struct sl__type sl__type_enum = {
    .name = "enum",
    .doc = "One of the words listed for the key.",
    .parse = enum_parse,
    .expect = enum_expect,
    .allowed = enum_allowed,
    .print = enum_print,
    .equal = equal_bytes,
    .json = enum_json,
};

/* ---- duration (milliseconds) ------------------------------------------------ */

static void duration_allowed(const struct sl__key *k, char *buf, size_t cap)
{
    char lo[32], hi[32];
    sl__format_duration((uint64_t)k->min, lo, sizeof(lo));
    sl__format_duration((uint64_t)k->max, hi, sizeof(hi));
    snprintf(buf, cap, "%s to %s", lo, hi);
}

static void duration_expect(const struct sl__key *k, char *buf, size_t cap)
{
    expect_text(buf, cap,
                (k->flags & SL__NULLABLE) ? "a duration like \"5s\" or null"
                                          : "a duration like \"5s\"");
}

static int duration_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                          const char *path, void *dst)
{
    uint64_t ms;
    if (store_null(k, n, dst))
        return 0;
    int rc = sl__parse_duration(n->str, &ms);
    if (rc == -3)
        return bad_value(cx, k, n, path, " (add a unit: ms, s, m or h)");
    if (rc == -1)
        return bad_value(cx, k, n, path, NULL);
    if (rc == -2 || ms < (uint64_t)k->min || ms > (uint64_t)k->max) {
        char lo[32], hi[32];
        sl__format_duration((uint64_t)k->min, lo, sizeof(lo));
        sl__format_duration((uint64_t)k->max, hi, sizeof(hi));
        return out_of_range(cx, k, n, path, "a duration", lo, hi);
    }
    store_uint(dst, k->size, ms);
    return 0;
}

static void duration_print(FILE *out, const struct sl__key *k, const void *src)
{
    char buf[32];
    if ((k->flags & SL__NULLABLE) && load_uint(src, k->size) == null_uint(k->size)) {
        fputs("null", out);
        return;
    }
    sl__format_duration(load_uint(src, k->size), buf, sizeof(buf));
    fputs(buf, out);
}

static void duration_json(FILE *out, const struct sl__key *k)
{
    fputs("{\"anyOf\": [{\"const\": 0}, {\"type\": \"string\", "
          "\"pattern\": \"^(0|[0-9]+(ms|s|m|h))$\"}",
          out);
    fputs((k->flags & SL__NULLABLE) ? ", {\"type\": \"null\"}]}" : "]}", out);
}

const struct sl__type sl__type_duration = {
    .name = "duration",
    .doc = "A whole number with a unit: `250ms`, `5s`, `2m`, `1h`. `0` (no unit) means "
           "disabled. A bare number other than 0 is an error, never silently seconds.",
    .parse = duration_parse,
    .expect = duration_expect,
    .allowed = duration_allowed,
    .print = duration_print,
    .equal = equal_bytes,
    .json = duration_json,
};

/* ---- size (bytes) ------------------------------------------------------------ */

static void size_allowed(const struct sl__key *k, char *buf, size_t cap)
{
    char lo[32], hi[32];
    sl__format_size((uint64_t)k->min, lo, sizeof(lo));
    sl__format_size((uint64_t)k->max, hi, sizeof(hi));
    snprintf(buf, cap, "%s to %s", lo, hi);
}

static void size_expect(const struct sl__key *k, char *buf, size_t cap)
{
    expect_text(buf, cap,
                (k->flags & SL__NULLABLE) ? "a size like \"1MiB\" or null"
                                          : "a size like \"1MiB\"");
}

static int size_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                      const char *path, void *dst)
{
    uint64_t v;
    if (store_null(k, n, dst))
        return 0;
    int rc = sl__parse_size(n->str, &v);
    if (rc == -1)
        return bad_value(cx, k, n, path, NULL);
    if (rc == -2 || v < (uint64_t)k->min || v > (uint64_t)k->max) {
        char lo[32], hi[32];
        sl__format_size((uint64_t)k->min, lo, sizeof(lo));
        sl__format_size((uint64_t)k->max, hi, sizeof(hi));
        return out_of_range(cx, k, n, path, "a size", lo, hi);
    }
    store_uint(dst, k->size, v);
    return 0;
}

static void size_print(FILE *out, const struct sl__key *k, const void *src)
{
    char buf[32];
    if ((k->flags & SL__NULLABLE) && load_uint(src, k->size) == null_uint(k->size)) {
        fputs("null", out);
        return;
    }
    sl__format_size(load_uint(src, k->size), buf, sizeof(buf));
    fputs(buf, out);
}

static void size_json(FILE *out, const struct sl__key *k)
{
    fputs("{\"anyOf\": [{\"type\": \"integer\", \"minimum\": 0}, {\"type\": \"string\", "
          "\"pattern\": \"^[0-9]+(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$\"}",
          out);
    fputs((k->flags & SL__NULLABLE) ? ", {\"type\": \"null\"}]}" : "]}", out);
}

const struct sl__type sl__type_size = {
    .name = "size",
    .doc = "Bytes: a bare number (`512`), or a whole number with a unit: `B`, `KiB`, `MiB`, "
           "`GiB`, `TiB` (powers of 1024) or `KB`, `MB`, `GB`, `TB` (powers of 1000). "
           "Units are case-sensitive; `1M` and `1k` are errors.",
    .parse = size_parse,
    .expect = size_expect,
    .allowed = size_allowed,
    .print = size_print,
    .equal = equal_bytes,
    .json = size_json,
};

/* ---- plain string ------------------------------------------------------------- */

static int string_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                        const char *path, void *dst)
{
    (void)path;
    if ((k->flags & SL__NULLABLE) && sl__node_is_null(n))
        *(const char **)dst = NULL;
    else
        *(const char **)dst = copy_str(cx, n);
    return 0;
}

static void string_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    expect_text(buf, cap, "a string");
}

static void string_json(FILE *out, const struct sl__key *k)
{
    fputs(k->flags & SL__NULLABLE ? "{\"type\": [\"string\", \"null\"]}" : "{\"type\": \"string\"}",
          out);
}

const struct sl__type sl__type_string = {
    .text = true,
    .name = "string",
    .doc = "Text. Quote it when it could read as something else (`\"on\"`, `\"123\"`, "
           "`\"a: b\"`).",
    .parse = string_parse,
    .expect = string_expect,
    .allowed = allowed_none,
    .print = print_str,
    .equal = equal_str,
    .json = string_json,
};

/* ---- HTTP header value ----------------------------------------------------------- */

static void header_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    snprintf(buf, cap, "a header value of at most %d bytes without control characters", HEADER_MAX);
}

static int header_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                        const char *path, void *dst)
{
    if (n->len > HEADER_MAX)
        return bad_value(cx, k, n, path, NULL);
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)n->str[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return bad_value(cx, k, n, path, NULL);
    }
    *(const char **)dst = copy_str(cx, n);
    return 0;
}

static void header_json(FILE *out, const struct sl__key *k)
{
    (void)k;
    fprintf(out,
            "{\"type\": \"string\", \"maxLength\": %d, \"pattern\": \"^[^\\\\u0000-\\\\u0008"
            "\\\\u000a-\\\\u001f\\\\u007f]*$\"}",
            HEADER_MAX);
}

const struct sl__type sl__type_header = {
    .text = true,
    .name = "header value",
    .doc = "Text sent in an HTTP header: no control characters (tab allowed), at most 1024 "
           "bytes. `\"\"` sends no header.",
    .parse = header_parse,
    .expect = header_expect,
    .allowed = allowed_none,
    .print = print_str,
    .equal = equal_str,
    .json = header_json,
};

/* ---- file path -------------------------------------------------------------------- */

static void path_expect(const struct sl__key *k, char *buf, size_t cap)
{
    expect_text(buf, cap, k->flags & SL__NULLABLE ? "a path or null" : "a path");
}

static int path_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                      const char *path, void *dst)
{
    if ((k->flags & SL__NULLABLE) && sl__node_is_null(n)) {
        *(const char **)dst = NULL;
        return 0;
    }
    if (n->len == 0 || n->len >= PATH_MAX)
        return bad_value(cx, k, n, path, NULL);
    *(const char **)dst = copy_str(cx, n);
    return 0;
}

static void path_json(FILE *out, const struct sl__key *k)
{
    if (k->flags & SL__NULLABLE)
        fputs("{\"anyOf\": [{\"type\": \"string\", \"minLength\": 1}, {\"type\": \"null\"}]}", out);
    else
        fputs("{\"type\": \"string\", \"minLength\": 1}", out);
}

const struct sl__type sl__type_path = {
    .text = true,
    .name = "path",
    .doc = "A file system path, absolute or relative to the working directory saltare runs "
           "in. Checked (exists, is a directory...) only by `saltare -t`.",
    .parse = path_parse,
    .expect = path_expect,
    .allowed = allowed_none,
    .print = print_str,
    .equal = equal_str,
    .json = path_json,
    .path_of = path_of_str,
};

/* ---- unix socket path --------------------------------------------------------------- */

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static void sockpath_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    snprintf(buf, cap, "a socket path of 1 to %zu bytes", SUN_PATH_MAX);
}

static int sockpath_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                          const char *path, void *dst)
{
    if (n->len == 0 || n->len > SUN_PATH_MAX)
        return bad_value(cx, k, n, path, NULL);
    *(const char **)dst = copy_str(cx, n);
    return 0;
}

static void sockpath_json(FILE *out, const struct sl__key *k)
{
    (void)k;
    fprintf(out, "{\"type\": \"string\", \"minLength\": 1, \"maxLength\": %zu}", SUN_PATH_MAX);
}

const struct sl__type sl__type_sockpath = {
    .text = true,
    .name = "socket path",
    .doc = "A path for a Unix domain socket (at most 107 bytes, the kernel's limit).",
    .parse = sockpath_parse,
    .expect = sockpath_expect,
    .allowed = allowed_none,
    .print = print_str,
    .equal = equal_str,
    .json = sockpath_json,
    .path_of = path_of_str,
};

/* ---- listen address ------------------------------------------------------------------ */

static void addr_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    expect_text(buf, cap,
                "a numeric listen address like \"127.0.0.1:8000\", \"[::1]:8000\" or \":8000\"");
}

static int addr_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                      const char *path, void *dst)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = sl__parse_addr(n->str, &ss, &len);
    if (rc == -2) {
        char got[SL__QUOTE_MAX];
        sl__error(cx, n, path, "expected a port from 0 to 65535, got %s",
                  sl__node_describe(n, got, sizeof(got)));
        return -1;
    }
    if (rc < 0)
        return bad_value(cx, k, n, path, NULL);
    *(const char **)dst = copy_str(cx, n);
    return 0;
}

static void addr_json(FILE *out, const struct sl__key *k)
{
    (void)k;
    fputs("{\"type\": \"string\", \"pattern\": \"^([0-9.]*|\\\\[[0-9A-Fa-f:.]+\\\\]):[0-9]+$\"}",
          out);
}

const struct sl__type sl__type_addr = {
    .name = "address",
    .doc = "`HOST:PORT` with a numeric host: `127.0.0.1:8000`, `[::1]:8000` (IPv6 in "
           "brackets), `[::]:8000` (all IPv6 interfaces), or `:8000` (all IPv4 interfaces, "
           "same as `0.0.0.0:8000`). Host names are not resolved. Port 0 picks a free port "
           "and logs it: `listening on 127.0.0.1:PORT`.",
    .parse = addr_parse,
    .expect = addr_expect,
    .allowed = allowed_none,
    .print = print_str,
    .equal = equal_str,
    .json = addr_json,
};

/* ---- module:attr target ---------------------------------------------------------------- */

static void target_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    expect_text(buf, cap, "a module:attr target like \"main:app\"");
}

static int target_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                        const char *path, void *dst)
{
    size_t colon;
    if (sl__parse_target(n->str, &colon) < 0)
        return bad_value(cx, k, n, path, NULL);
    *(const char **)dst = copy_str(cx, n);
    return 0;
}

static void target_json(FILE *out, const struct sl__key *k)
{
    (void)k;
    fputs("{\"type\": \"string\", \"pattern\": \"^[A-Za-z_][A-Za-z0-9_]*(\\\\.[A-Za-z_]"
          "[A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\\\\.[A-Za-z_][A-Za-z0-9_]*)*$\"}",
          out);
}

const struct sl__type sl__type_target = {
    .name = "target",
    .doc = "`module:attribute`, both dotted ASCII identifiers: `main:app`, "
           "`pkg.api:create_app`, `svc:factory.app`.",
    .parse = target_parse,
    .expect = target_expect,
    .allowed = allowed_none,
    .print = print_str,
    .equal = equal_str,
    .json = target_json,
};

/* ---- file mode --------------------------------------------------------------------------- */

static void mode_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    expect_text(buf, cap, "an octal file mode like \"0660\"");
}

static int mode_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                      const char *path, void *dst)
{
    if (sl__node_is_null(n)) {
        *(int *)dst = -1;
        return 0;
    }
    int rc = sl__parse_mode(n->str, dst);
    if (rc == -2)
        return out_of_range(cx, k, n, path, "an octal file mode", "0", "0777");
    if (rc < 0)
        return bad_value(cx, k, n, path, NULL);
    return 0;
}

static void mode_print(FILE *out, const struct sl__key *k, const void *src)
{
    int mode = *(const int *)src;
    (void)k;
    if (mode < 0)
        fputs("null", out);
    else
        fprintf(out, "\"%04o\"", (unsigned)mode);
}

static void mode_json(FILE *out, const struct sl__key *k)
{
    (void)k;
    fputs("{\"anyOf\": [{\"type\": \"null\"}, {\"type\": \"integer\", \"minimum\": 0, "
          "\"maximum\": 777}, {\"type\": \"string\", \"pattern\": \"^(0o)?[0-7]{1,4}$\"}]}",
          out);
}

const struct sl__type sl__type_mode = {
    .name = "file mode",
    .doc = "Permission bits in octal, as for chmod: `\"0660\"`, `0660`, `660` or `0o660` all "
           "mean rw-rw----. Digits are always read as octal. `null` leaves the mode the "
           "process umask gives.",
    .parse = mode_parse,
    .expect = mode_expect,
    .allowed = allowed_none,
    .print = mode_print,
    .equal = equal_bytes,
    .json = mode_json,
};

/* ---- log destination ----------------------------------------------------------------------- */

static void logdest_expect(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    expect_text(buf, cap, "off, stderr or a file path");
}

static void logdest_allowed(const struct sl__key *k, char *buf, size_t cap)
{
    (void)k;
    expect_text(buf, cap, "off, stderr, a path");
}

static int logdest_parse(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                         const char *path, void *dst)
{
    if (sl__node_is_null(n) || strcmp(n->str, "off") == 0) {
        *(const char **)dst = NULL;
        return 0;
    }
    if (n->len == 0 || n->len >= PATH_MAX)
        return bad_value(cx, k, n, path, NULL);
    *(const char **)dst = copy_str(cx, n);
    return 0;
}

static void logdest_print(FILE *out, const struct sl__key *k, const void *src)
{
    const char *s = *(const char *const *)src;
    (void)k;
    if (s == NULL)
        fputs("off", out);
    else if (strcmp(s, "stderr") == 0)
        fputs("stderr", out);
    else
        sl__print_quoted(out, s);
}

static const char *logdest_path_of(const void *src)
{
    const char *s = *(const char *const *)src;
    return s && strcmp(s, "stderr") != 0 ? s : NULL;
}

static void logdest_json(FILE *out, const struct sl__key *k)
{
    (void)k;
    fputs("{\"anyOf\": [{\"type\": \"null\"}, {\"type\": \"string\", \"minLength\": 1}]}", out);
}

const struct sl__type sl__type_logdest = {
    .text = true,
    .name = "log destination",
    .doc = "`off` (or null), `stderr`, or a file path the log is appended to (write `./off` "
           "for a file named off).",
    .parse = logdest_parse,
    .expect = logdest_expect,
    .allowed = logdest_allowed,
    .print = logdest_print,
    .equal = equal_str,
    .json = logdest_json,
    .path_of = logdest_path_of,
};
