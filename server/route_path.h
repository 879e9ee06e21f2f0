/*
 * route_path: the request path as intercept routes see it.
 *
 * Dependency-free (fuzzed alone: fuzz/route_fuzz.c). Routes match the
 * decoded, normalised path, the form an ASGI app is given plus dot-segment
 * removal, so that no encoding of a path ("%2e%2e", "%2f", "//") can reach
 * a route's prefix from outside it or leave it from inside.
 */
#ifndef SL_SERVER_ROUTE_PATH_H
#define SL_SERVER_ROUTE_PATH_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Normalises the origin-form path p[0..n) into out (room for n + 1 bytes;
 * NUL-terminated; may not overlap p):
 *   1. "%XX" is decoded (as python/scope.c does for scope["path"]: a '%'
 *      not followed by two hex digits stays as it is);
 *   2. runs of '/' become one (nginx's merge_slashes);
 *   3. "." and ".." segments are removed (RFC 3986 5.2.4); ".." at the root
 *      stays at the root. A trailing "." or ".." leaves a trailing '/'.
 * Returns the output length, or -1 when p does not start with '/' (the
 * asterisk-form "*" of OPTIONS, or garbage): such a request matches no route
 * that has a `path`.
 */
long sl_route_path_normalize(const char *p, size_t n, char *out);

/* Whether `path` (normalised) matches the pattern: exact, or a prefix that
 * ends in '/' (the compiled form of a "/static/" + "*" pattern, which matches "/static/"
 * and everything below it, not "/static"). On a prefix match *rest_off is
 * where the part matched by '*' starts. */
bool sl_route_path_match(const char *path, size_t len, const char *pat, size_t pat_len, bool prefix,
                         size_t *rest_off);

#ifdef __cplusplus
}
#endif

#endif
