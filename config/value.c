/*
 * value: the pure value parsers and formatters behind the schema's types
 * (string in, value out; no allocation, no diagnostics), and the YAML
 * double-quoted printer that --print-config relies on to round-trip strings.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>

#include "config/config_internal.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Unsigned decimal at s; *end after the digits. -1: none, -2: overflow. */
static int parse_digits(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    int rc = 0;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            rc = -2;
        else
            v = v * 10 + d;
    }
    *end = p;
    *out = v;
    return p == s ? -1 : rc;
}

int sl__parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False",
                                                                              "FALSE"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

int sl__parse_int(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    const char *end;
    uint64_t v;
    int rc = parse_digits(s + neg, &end, &v);
    if (rc == -1 || *end != '\0')
        return -1;
    if (rc == -2 || v > (uint64_t)INT64_MAX + neg)
        return -2;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

struct unit {
    const char *name;
    uint64_t mul;
};

static const struct unit duration_units[] = {
    {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}, {NULL, 0}};

static const struct unit size_units[] = {{"TiB", 1ull << 40},
                                         {"GiB", 1ull << 30},
                                         {"MiB", 1ull << 20},
                                         {"KiB", 1ull << 10},
                                         {"TB", 1000000000000ull},
                                         {"GB", 1000000000},
                                         {"MB", 1000000},
                                         {"KB", 1000},
                                         {"B", 1},
                                         {"", 1},
                                         {NULL, 0}};

/* digits + one of `units`. -1 malformed, -2 overflow, -3 digits without a unit. */
static int parse_with_unit(const char *s, const struct unit *units, bool unit_required,
                           uint64_t *out)
{
    const char *end;
    uint64_t v;
    int rc = parse_digits(s, &end, &v);
    if (rc == -1)
        return -1;
    if (*end == '\0' && unit_required) {
        if (rc != 0 || v != 0)
            return -3;
        *out = 0;
        return 0;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (strcmp(end, u->name) != 0)
            continue;
        if (rc == -2 || (v && u->mul > UINT64_MAX / v))
            return -2;
        *out = v * u->mul;
        return 0;
    }
    return -1;
}

int sl__parse_duration(const char *s, uint64_t *ms)
{
    return parse_with_unit(s, duration_units, true, ms);
}

int sl__parse_size(const char *s, uint64_t *bytes)
{
    return parse_with_unit(s, size_units, false, bytes);
}

/* The largest unit (above 1) that divides v exactly, else v + `ones`. */
static void format_with_unit(uint64_t v, const struct unit *units, const char *ones, char *buf,
                             size_t cap)
{
    if (v == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (u->mul > 1 && v % u->mul == 0) {
            snprintf(buf, cap, "%" PRIu64 "%s", v / u->mul, u->name);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64 "%s", v, ones);
}

void sl__format_duration(uint64_t ms, char *buf, size_t cap)
{
    format_with_unit(ms, duration_units, "ms", buf, cap);
}

void sl__format_size(uint64_t bytes, char *buf, size_t cap)
{
    format_with_unit(bytes, size_units, "", buf, cap);
}

/* "65535" -> 65535; -1 malformed, -2 above 65535. */
static int parse_port(const char *s, in_port_t *port)
{
    const char *end;
    uint64_t v;
    int rc = parse_digits(s, &end, &v);
    if (rc == -1 || *end != '\0')
        return -1;
    if (rc == -2 || v > 65535)
        return -2;
    *port = htons((uint16_t)v);
    return 0;
}

static int parse_v6(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *close = strchr(s, ']');
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    char host[INET6_ADDRSTRLEN + 1];
    size_t n;

    if (close == NULL || close[1] != ':')
        return -1;
    n = (size_t)(close - (s + 1));
    if (n == 0 || n >= sizeof(host))
        return -1;
    memcpy(host, s + 1, n);
    host[n] = '\0';
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
        return -1;
    a->sin6_family = AF_INET6;
    *len = sizeof(*a);
    return parse_port(close + 2, &a->sin6_port);
}

int sl__parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    const char *colon = strrchr(s, ':');
    char host[INET_ADDRSTRLEN + 1];
    size_t n;

    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[')
        return parse_v6(s, ss, len);
    if (colon == NULL)
        return -1;
    n = (size_t)(colon - s);
    if (n >= sizeof(host))
        return -1;
    memcpy(host, s, n);
    host[n] = '\0';
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    if (n && inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return -1;
    *len = sizeof(*a);
    return parse_port(colon + 1, &a->sin_port);
}

/* A dotted name of ASCII identifiers: "a", "pkg.mod", "_x.y2". */
static const char *dotted_name(const char *s)
{
    for (;;) {
        if (!(*s == '_' || ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z')))
            return NULL;
        while (*s == '_' || is_digit(*s) || ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z'))
            s++;
        if (*s != '.')
            return s;
        s++;
    }
}

int sl__parse_target(const char *s, size_t *colon)
{
    const char *end = dotted_name(s);
    if (end == NULL || *end != ':')
        return -1;
    *colon = (size_t)(end - s);
    end = dotted_name(end + 1);
    return end && *end == '\0' ? 0 : -1;
}

int sl__parse_mode(const char *s, int *mode)
{
    int v = 0;
    size_t n = 0;
    if (s[0] == '0' && s[1] == 'o')
        s += 2;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '7' || n == 5)
            return -1;
        v = v * 8 + (s[n] - '0');
    }
    if (n == 0)
        return -1;
    if (v > 0777)
        return -2;
    *mode = v;
    return 0;
}

/* ---- printing YAML scalars ------------------------------------------------ */

/* Decodes one UTF-8 sequence; returns its length, or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    size_t need;
    uint32_t min;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0)
        need = 1, min = 0x80, *cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        need = 2, min = 0x800, *cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        need = 3, min = 0x10000, *cp = s[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = *cp << 6 | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return need + 1;
}

/* Printable as-is inside a YAML double-quoted scalar (per libyaml's reader,
 * which also folds the Unicode line separators). */
static bool yaml_printable(uint32_t cp)
{
    if (cp >= 0x20 && cp <= 0x7e)
        return cp != '"' && cp != '\\';
    if (cp < 0xa0)
        return false;
    if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
        return false;
    return cp < 0xd800 || cp >= 0xe000;
}

void sl__print_quoted(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    while (*s) {
        uint32_t cp;
        size_t n = utf8_decode(s, &cp);
        if (n == 0) { /* never from libyaml or the checked environment */
            fprintf(out, "\\x%02x", *s++);
            continue;
        }
        if (cp == '$' && s[1] == '{')
            fputs("$$", out); /* the "{" follows as itself */
        else if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (char)cp);
        else if (cp == '\n')
            fputs("\\n", out);
        else if (cp == '\t')
            fputs("\\t", out);
        else if (yaml_printable(cp))
            fwrite(s, 1, n, out);
        else if (cp < 0x100)
            fprintf(out, "\\x%02x", (unsigned)cp);
        else
            fprintf(out, "\\u%04x", (unsigned)cp);
        s += n;
    }
    fputc('"', out);
}
