/*
 * libFuzzer target for server/proxy: the PROXY protocol parser and the
 * forwarding-header reader. Build and run with `tools/fuzz.sh proxy [seconds]`.
 *
 * The first input byte picks what to exercise; the rest is the input. Every
 * slice is copied into an allocation of exactly its size, so ASan catches any
 * read past `len`. Invariants checked:
 * - sl_proxy_parse: a documented result; a header length within the input;
 *   every shorter prefix of a header is "incomplete"; bytes after a header
 *   do not change the verdict; borrowed TLV spans lie inside the header;
 * - sl_proxy_from_headers (the input split into field lines, the value of each
 *   line's first byte naming the field): the host and the X-Forwarded-Prefix
 *   it returns lie inside a field value, the prefix passes
 *   sl_proxy_prefix_ok; an address it returns is IPv4 or IPv6;
 * - sl_proxy_parse_addr never reads outside its input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/proxy.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static char *dup_exact(const uint8_t *p, size_t n)
{
    char *b = calloc(n ? n : 1, 1);
    CHECK(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

static int parse_copy(const uint8_t *p, size_t n, unsigned accept, struct sl_proxy_info *pi)
{
    char *b = dup_exact(p, n);
    int rc = sl_proxy_parse(b, n, accept, pi);
    if (rc > 0) {
        CHECK((size_t)rc <= n);
        CHECK(!pi->alpn || (pi->alpn >= b && pi->alpn + pi->alpn_len <= b + rc));
        CHECK(!pi->authority ||
              (pi->authority >= b && pi->authority + pi->authority_len <= b + rc));
        CHECK(pi->version == 1 || pi->version == 2);
        CHECK(pi->local || pi->src.sa.sa_family == AF_INET || pi->src.sa.sa_family == AF_INET6);
    }
    free(b);
    return rc;
}

static void fuzz_parse(const uint8_t *data, size_t size, unsigned accept)
{
    struct sl_proxy_info pi;
    int rc = parse_copy(data, size, accept, &pi);
    CHECK(rc > 0 || (rc <= SL_PROXY_INCOMPLETE && rc >= SL_PROXY_E_CRC));
    if (rc <= 0)
        return;
    /* Prefixes (a few, to stay fast) are incomplete; the header alone gives the same. */
    for (size_t i = 0; i < (size_t)rc; i += 1 + (size_t)rc / 16)
        CHECK(parse_copy(data, i, accept, &pi) == SL_PROXY_INCOMPLETE);
    CHECK(parse_copy(data, (size_t)rc, accept, &pi) == rc);
}

static const char *const names[] = {"forwarded",         "x-forwarded-for", "x-forwarded-proto",
                                    "x-forwarded-host",  "x-real-ip",       "host",
                                    "x-forwarded-prefix"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static void fuzz_headers(const uint8_t *data, size_t size)
{
    static const struct sl_cidr cidrs[] = {
        {.family = AF_INET, .bits = 8, .addr = {10}},
        {.family = AF_INET6, .bits = 128, .addr = {[15] = 1}},
    };
    const struct sl_proxy_config cfg = {.cidrs = {.items = cidrs, .n = 2}, .headers = true};
    struct sl_h1_header hs[16];
    char *b = dup_exact(data, size);
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < 16; i++) {
        if (i < size && b[i] != '\n')
            continue;
        if (i > start) {
            const char *name = names[(unsigned char)b[start] % NNAMES];
            hs[n++] = (struct sl_h1_header){name, strlen(name), b + start + 1, i - start - 1};
        }
        start = i + 1;
    }
    struct sl_h1_request req = {.headers = hs, .nheaders = n};
    struct sl_proxy_origin o;
    sl_proxy_from_headers(&cfg, &req, &o);
    CHECK(!o.host || (o.host >= b && o.host + o.host_len <= b + size));
    CHECK(!o.has_client || o.client.sa.sa_family == AF_INET || o.client.sa.sa_family == AF_INET6);
    CHECK(o.scheme <= SL_PROXY_SCHEME_HTTPS);
    CHECK(!o.prefix || (o.prefix >= b && o.prefix + o.prefix_len <= b + size));
    CHECK(!o.prefix || o.prefix_len == 0 || sl_proxy_prefix_ok(o.prefix, o.prefix_len));
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned mode = data[0] % 4;
    data++, size--;
    if (mode < 3) {
        fuzz_parse(data, size, mode + 1); /* v1, v2, both */
    } else {
        fuzz_headers(data, size);
        union sl_proxy_addr a;
        socklen_t len;
        char *b = dup_exact(data, size);
        sl_proxy_parse_addr(b, size, &a, &len);
        free(b);
    }
    return 0;
}
