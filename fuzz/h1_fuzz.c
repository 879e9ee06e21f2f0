/*
 * libFuzzer target for server/h1: the request-head parser and the chunked
 * decoder. Build and run with `tools/fuzz.sh h1 [seconds]`.
 *
 * The first input byte picks the split point and the body limit; the rest is
 * fed both as a request head (small and default limits) and as a chunked
 * body. Every slice is copied into an allocation of exactly its size, so
 * ASan catches any read past `len`. Invariants checked:
 * - results are one of the documented codes; spans lie inside the input;
 * - a head parsed from a prefix, or resumed with prev_len, agrees with the
 *   one-shot parse; an error on a prefix means the whole input is bad too;
 * - an unterminated head followed by a bad byte and CRLFCRLF is never
 *   "incomplete" (a complete head always gets a verdict);
 * - chunked decoding gives the same data, result and consumed count however
 *   the input is split, and never exceeds max_body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/h1.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define NHEADERS 32

static const struct sl_h1_limits small_limits = {64, 4, 16};
static const struct sl_h1_limits default_limits = {8192, NHEADERS, 4096};

struct parsed {
    struct sl_h1_header headers[NHEADERS];
    struct sl_h1_request req;
    int rc;
};

static char *dup_exact(const uint8_t *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    CHECK(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

static int parse(const char *buf, size_t len, size_t prev, const struct sl_h1_limits *lim,
                 struct parsed *out)
{
    memset(out, 0, sizeof *out);
    out->req.headers = out->headers;
    out->req.nheaders = NHEADERS;
    out->rc = sl_h1_parse_request(buf, len, prev, lim, &out->req);
    CHECK(out->rc >= 0 || out->rc == SL_H1_INCOMPLETE || out->rc == SL_H1_E_MALFORMED ||
          out->rc == SL_H1_E_TARGET_TOO_LONG || out->rc == SL_H1_E_HEAD_TOO_LARGE ||
          out->rc == SL_H1_E_NOT_IMPLEMENTED || out->rc == SL_H1_E_VERSION);
    if (out->rc < 0)
        CHECK(out->req.nheaders == NHEADERS); /* capacity kept for the retry */
    return out->rc;
}

static void check_span(const char *p, size_t n, const char *buf, size_t head)
{
    CHECK(p >= buf && n <= head && p + n <= buf + head);
}

static void check_ows_trimmed(const char *v, size_t n)
{
    if (n)
        CHECK(v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t');
}

/* A successful parse: every span inside the head, every field sane. */
static void check_request(const struct parsed *p, const char *buf, size_t len,
                          const struct sl_h1_limits *lim)
{
    const struct sl_h1_request *r = &p->req;
    size_t head = (size_t)p->rc;
    CHECK(head <= len && head <= lim->max_head);
    check_span(r->method, r->method_len, buf, head);
    check_span(r->target, r->target_len, buf, head);
    CHECK(r->method_len > 0 && r->target_len > 0 && r->target_len <= lim->max_target);
    if (!(r->path_len == 1 && r->path[0] == '/'))
        check_span(r->path, r->path_len, buf, head);
    if (r->query)
        check_span(r->query, r->query_len, buf, head);
    CHECK(r->minor_version == 0 || r->minor_version == 1);
    CHECK(r->nheaders <= lim->max_headers && r->nheaders <= NHEADERS);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct sl_h1_header *h = &r->headers[i];
        check_span(h->name, h->name_len, buf, head);
        check_span(h->value, h->value_len, buf, head);
        CHECK(sl_h1_header_ok(h->name, h->name_len, h->value, h->value_len));
        check_ows_trimmed(h->value, h->value_len);
    }
    CHECK(r->content_length >= -1);
    CHECK(!(r->chunked && r->content_length >= 0));
    CHECK(!r->chunked || r->minor_version == 1);
    CHECK(r->host || r->minor_version == 0);
    if (r->host)
        check_span(r->host, r->host_len, buf, head);
}

static void check_same(const struct parsed *a, const struct parsed *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc < 0)
        return;
    const struct sl_h1_request *x = &a->req, *y = &b->req;
    CHECK(x->method == y->method && x->method_len == y->method_len);
    CHECK(x->target == y->target && x->target_len == y->target_len);
    CHECK(x->path_len == y->path_len && memcmp(x->path, y->path, x->path_len) == 0);
    CHECK(x->query == y->query && x->query_len == y->query_len);
    CHECK(x->minor_version == y->minor_version && x->nheaders == y->nheaders);
    CHECK(memcmp(x->headers, y->headers, x->nheaders * sizeof *x->headers) == 0);
    CHECK(x->content_length == y->content_length && x->chunked == y->chunked);
    CHECK(x->keep_alive == y->keep_alive && x->expect_continue == y->expect_continue);
    CHECK(x->upgrade == y->upgrade && x->host == y->host && x->host_len == y->host_len);
}

static void fuzz_parse(const uint8_t *data, size_t len, size_t split,
                       const struct sl_h1_limits *lim)
{
    static struct parsed one, pre, resumed, closed;
    char *buf = dup_exact(data, len);
    parse(buf, len, 0, lim, &one);
    if (one.rc >= 0)
        check_request(&one, buf, len, lim);

    char *prefix = dup_exact(data, split);
    parse(prefix, split, 0, lim, &pre);
    if (pre.rc >= 0) {
        CHECK(pre.rc == one.rc);
    } else if (pre.rc == SL_H1_INCOMPLETE) {
        parse(buf, len, split, lim, &resumed);
        if (one.rc >= 0)
            check_same(&resumed, &one);
        else if (one.rc == SL_H1_INCOMPLETE)
            CHECK(resumed.rc == SL_H1_INCOMPLETE);
        else
            CHECK(resumed.rc <= SL_H1_INCOMPLETE);
    } else {
        CHECK(one.rc < SL_H1_INCOMPLETE);
    }

    if (one.rc == SL_H1_INCOMPLETE && len + 5 <= lim->max_head) {
        char *c = malloc(len + 5);
        CHECK(c);
        memcpy(c, buf, len);
        memcpy(c + len, "\x01\r\n\r\n", 5);
        CHECK(parse(c, len + 5, 0, lim, &closed) != SL_H1_INCOMPLETE);
        free(c);
    }
    free(prefix);
    free(buf);
}

struct decoded {
    int rc;
    size_t consumed, out_len;
    uint8_t *out;
};

/* Decodes data cut once at `split`, as a connection would: each call gets
 * the unconsumed rest plus the newly arrived bytes. */
static void decode(const uint8_t *data, size_t len, size_t split, uint64_t max_body,
                   struct decoded *r)
{
    struct sl_h1_chunked d = {0};
    uint8_t *pending = malloc(len ? len : 1);
    size_t plen = 0, pos = 0, cuts[2] = {split, len};
    CHECK(pending);
    d.max_body = max_body;
    r->rc = 0;
    r->consumed = r->out_len = 0;
    r->out = malloc(len ? len : 1);
    CHECK(r->out);
    for (int c = 0; c < 2 && r->rc == 0; c++) {
        memcpy(pending + plen, data + pos, cuts[c] - pos);
        plen += cuts[c] - pos;
        pos = cuts[c];
        while (plen > 0 && r->rc == 0) {
            char *b = dup_exact(pending, plen);
            size_t used = 0, off = 0, n = 0;
            r->rc = sl_h1_chunked_feed(&d, b, plen, &used, &off, &n);
            CHECK(r->rc == 0 || r->rc == 1 || r->rc == SL_H1_E_MALFORMED ||
                  r->rc == SL_H1_E_BODY_TOO_LARGE);
            CHECK(used <= plen && off <= used && n <= used - off);
            CHECK(r->rc != 0 || used > 0);
            memcpy(r->out + r->out_len, b + off, n);
            r->out_len += n;
            r->consumed += used;
            memmove(pending, pending + used, plen - used);
            plen -= used;
            free(b);
        }
    }
    CHECK(d.total == r->out_len);
    CHECK(max_body == 0 || d.total <= max_body);
    free(pending);
}

static void fuzz_chunked(const uint8_t *data, size_t len, size_t split, uint64_t max_body)
{
    struct decoded one, two;
    decode(data, len, 0, max_body, &one);
    decode(data, len, split, max_body, &two);
    CHECK(one.rc == two.rc && one.consumed == two.consumed && one.out_len == two.out_len);
    CHECK(memcmp(one.out, two.out, one.out_len) == 0);
    free(one.out);
    free(two.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    size_t split = size * sel / 255;
    fuzz_parse(data, size, split, &small_limits);
    fuzz_parse(data, size, split, &default_limits);
    fuzz_chunked(data, size, split, sel & 1 ? 0 : 16 + (sel >> 1));
    return 0;
}
