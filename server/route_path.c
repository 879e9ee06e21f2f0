/*
 * route_path: decoding and dot-segment removal of request paths for the
 * route matcher. The output is built segment by segment: a decoded '/'
 * (from "%2f") is a separator like any other, because the app is given the
 * decoded path and routes on it.
 */
#include "server/route_path.h"

#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The byte at p[*i] decoded; *i moves past it. */
static char next_byte(const char *p, size_t n, size_t *i)
{
    int hi, lo;
    if (p[*i] == '%' && *i + 2 < n && (hi = hexval((unsigned char)p[*i + 1])) >= 0 &&
        (lo = hexval((unsigned char)p[*i + 2])) >= 0) {
        *i += 3;
        return (char)(hi << 4 | lo);
    }
    return p[(*i)++];
}

/* Drops the last segment of out[0..*m), which ends in '/', keeping the
 * root: "/a/b/" -> "/a/", "/" -> "/". */
static void pop_segment(const char *out, size_t *m)
{
    if (*m <= 1)
        return;
    size_t k = *m - 1; /* the trailing '/'; out[0] is '/', so k stops at 1 */
    while (out[k - 1] != '/')
        k--;
    *m = k;
}

long sl_route_path_normalize(const char *p, size_t n, char *out)
{
    size_t i = 1, m = 1;
    if (n == 0 || p[0] != '/')
        return -1;
    out[0] = '/';
    while (i < n) {
        /* One segment: decoded bytes up to the next decoded '/'. out[0..m)
         * ends with '/' here. */
        size_t seg = m;
        bool slash = false;
        while (i < n) {
            char c = next_byte(p, n, &i);
            if (c == '/') {
                slash = true;
                break;
            }
            out[m++] = c;
        }
        size_t len = m - seg;
        if (len == 1 && out[seg] == '.') {
            m = seg;
        } else if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            m = seg;
            pop_segment(out, &m);
        } else if (len > 0 && slash) {
            out[m++] = '/';
        }
    }
    out[m] = '\0';
    return (long)m;
}

bool sl_route_path_match(const char *path, size_t len, const char *pat, size_t pat_len, bool prefix,
                         size_t *rest_off)
{
    if (!prefix)
        return len == pat_len && memcmp(path, pat, len) == 0;
    if (len < pat_len || memcmp(path, pat, pat_len) != 0)
        return false;
    if (rest_off)
        *rest_off = pat_len;
    return true;
}
