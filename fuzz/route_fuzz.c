/*
 * libFuzzer target for server/route_path: the path normaliser that intercept
 * routes match on. Build and run with `tools/fuzz.sh route [seconds]`.
 *
 * The input is a request path (a '/' is put in front when it lacks one).
 * Invariants checked on the normalised output O:
 * - it starts with '/', is no longer than the input, and is NUL-terminated;
 * - it has no empty, "." or ".." segment, so no encoding of ".." can walk
 *   out of a prefix after matching;
 * - every encoding of the same decoded path normalises to the same O: O
 *   itself with every byte percent-encoded (upper or lower case hex, '/'
 *   as "%2F") gives O back, so the route matched never depends on how the
 *   client encoded the path;
 * - a prefix match agrees with a plain comparison, and the rest it gives
 *   lies inside O.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/route_path.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* No empty, "." or ".." segment in o[0..n) (which starts with '/'). */
static void check_segments(const char *o, size_t n)
{
    size_t i = 1;
    while (i < n) {
        const char *slash = memchr(o + i, '/', n - i);
        size_t len = slash ? (size_t)(slash - (o + i)) : n - i;
        CHECK(len > 0 || !slash);
        CHECK(!(len == 1 && o[i] == '.'));
        CHECK(!(len == 2 && o[i] == '.' && o[i + 1] == '.'));
        i += len + 1;
    }
}

/* Every byte of o after its first '/' as %XX. */
static size_t encode_all(const char *o, size_t n, char *out, int upper)
{
    const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    size_t m = 0;
    out[m++] = '/';
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)o[i];
        out[m++] = '%';
        out[m++] = hex[c >> 4];
        out[m++] = hex[c & 15];
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* an exact-size copy, so ASan sees any read past the end */
    size_t n = size + (size == 0 || data[0] != '/');
    char *in = malloc(n), *out = malloc(n + 1), *enc = malloc(3 * n + 1),
         *again = malloc(3 * n + 2);
    in[0] = '/';
    memcpy(in + (n - size), data, size);

    long len = sl_route_path_normalize(in, n, out);
    CHECK(len >= 1 && (size_t)len <= n);
    CHECK(out[0] == '/' && out[len] == '\0');
    check_segments(out, (size_t)len);

    for (int upper = 0; upper < 2; upper++) {
        size_t m = encode_all(out, (size_t)len, enc, upper);
        long len2 = sl_route_path_normalize(enc, m, again);
        CHECK(len2 == len && memcmp(again, out, (size_t)len) == 0);
    }

    /* prefix matching against the input's first segment as a pattern */
    const char *slash = memchr(out + 1, '/', (size_t)len - 1);
    if (slash) {
        size_t plen = (size_t)(slash - out) + 1, rest = 0;
        CHECK(sl_route_path_match(out, (size_t)len, out, plen, true, &rest));
        CHECK(rest == plen && rest <= (size_t)len);
        CHECK(!sl_route_path_match(out, plen - 1, out, plen, true, &rest));
    }
    CHECK(sl_route_path_match(out, (size_t)len, out, (size_t)len, false, NULL));

    free(in);
    free(out);
    free(enc);
    free(again);
    return 0;
}
