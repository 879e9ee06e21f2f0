/*
 * libFuzzer target for server/ws_deflate: the permessage-deflate offer
 * parser, the bounded inflater and deflate round trips. Build and run with
 * `tools/fuzz.sh ws_deflate [seconds]`.
 *
 * The first input byte picks the mode (its low two bits) and a parameter
 * (the rest); the other bytes are the input, copied into an allocation of
 * exactly its size so ASan catches any read past it. Invariants checked:
 * - offer: an accepted offer has window bits 8..15, its response fits
 *   SL_WS_PMD_RESPONSE_MAX and is accepted again when offered back;
 * - inflate: the output never exceeds the limit; the result is one of 0,
 *   -EMSGSIZE, -EBADMSG; feeding the input whole, one byte at a time or in
 *   two pieces, or to a reused inflater after sl_ws_inflater_reset, gives
 *   the same result and output;
 * - round trip: whatever is deflated (window 9..15) inflates back to itself.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/ws_deflate.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static uint8_t *copy(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    CHECK(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

static void fuzz_offer(const uint8_t *data, size_t size)
{
    char *v = (char *)copy(data, size);
    struct sl_ws_pmd m;
    if (sl_ws_pmd_offer(v, size, &m)) {
        CHECK(m.server_bits >= 8 && m.server_bits <= 15);
        char out[SL_WS_PMD_RESPONSE_MAX];
        size_t n = sl_ws_pmd_response(&m, out);
        CHECK(n <= SL_WS_PMD_RESPONSE_MAX);
        struct sl_ws_pmd again;
        char *r = (char *)copy((const uint8_t *)out, n);
        CHECK(sl_ws_pmd_offer(r, n, &again) && again.server_bits == m.server_bits);
        free(r);
    }
    free(v);
}

/* Inflates data in pieces of `step` (the last one fin); returns the result
 * code, the output in *out (caller frees). */
static int inflate_steps(const uint8_t *data, size_t size, size_t step, size_t max,
                         struct sl_ws_buf *out)
{
    struct sl_ws_inflater *z = sl_ws_inflater_new();
    CHECK(z);
    memset(out, 0, sizeof(*out));
    int rc = 0;
    size_t off = 0;
    do {
        size_t n = step < size - off ? step : size - off;
        uint8_t *piece = copy(data + off, n);
        off += n;
        rc = sl_ws_inflate(z, piece, n, off == size, out, max);
        free(piece);
        CHECK(!max || out->len <= max);
    } while (rc == 0 && off < size);
    sl_ws_inflater_free(z);
    CHECK(rc == 0 || rc == -EMSGSIZE || rc == -EBADMSG);
    return rc;
}

static void fuzz_inflate(const uint8_t *data, size_t size, unsigned param)
{
    static const size_t limits[4] = {0, 1, 125, 65536};
    size_t max = limits[param & 3];
    struct sl_ws_buf a, b;
    int ra = inflate_steps(data, size, size ? size : 1, max, &a);
    int rb = inflate_steps(data, size, 1, max, &b);
    CHECK(ra == rb);
    /* Same bytes out up to the point where both stopped. */
    if (ra == 0)
        CHECK(a.len == b.len && (!a.len || memcmp(a.data, b.data, a.len) == 0));
    sl_ws_buf_release(&b);
    /* A reused inflater, reset whatever the previous input did to it (as a
     * worker's is), behaves like a fresh one. */
    static struct sl_ws_inflater *reused;
    if (!reused)
        CHECK((reused = sl_ws_inflater_new()));
    sl_ws_inflater_reset(reused);
    uint8_t *all = copy(data, size);
    int rr = sl_ws_inflate(reused, all, size, true, &b, max);
    CHECK(rr == ra);
    if (rr == 0)
        CHECK(b.len == a.len && (!a.len || memcmp(a.data, b.data, a.len) == 0));
    free(all);
    sl_ws_buf_release(&b);
    size_t cut = size ? (size_t)(param >> 2) * size / 63 : 0;
    if (cut && cut < size) {
        struct sl_ws_inflater *z = sl_ws_inflater_new();
        struct sl_ws_buf c = {0};
        CHECK(z);
        uint8_t *p1 = copy(data, cut), *p2 = copy(data + cut, size - cut);
        int rc = sl_ws_inflate(z, p1, cut, false, &c, max);
        if (rc == 0)
            rc = sl_ws_inflate(z, p2, size - cut, true, &c, max);
        CHECK(rc == ra);
        if (rc == 0)
            CHECK(c.len == a.len && (!a.len || memcmp(a.data, c.data, a.len) == 0));
        free(p1);
        free(p2);
        sl_ws_buf_release(&c);
        sl_ws_inflater_free(z);
    }
    sl_ws_buf_release(&a);
}

static void fuzz_roundtrip(const uint8_t *data, size_t size, unsigned param)
{
    static struct sl_ws_deflater *d; /* kept across inputs, as a worker keeps it */
    if (!d)
        CHECK((d = sl_ws_deflater_new()));
    unsigned bits = 9 + param % 7;
    const uint8_t *out;
    size_t len;
    uint8_t *in = copy(data, size);
    CHECK(sl_ws_deflate(d, bits, in, size, &out, &len) == 0);
    struct sl_ws_buf back;
    CHECK(inflate_steps(out, len, len ? len : 1, 0, &back) == 0);
    CHECK(back.len == size && (!size || memcmp(back.data, data, size) == 0));
    sl_ws_buf_release(&back);
    sl_ws_deflater_trim(d);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    data++, size--;
    switch (sel & 3) {
    case 0:
        fuzz_offer(data, size);
        break;
    case 1:
    case 2:
        fuzz_inflate(data, size, sel >> 2);
        break;
    default:
        fuzz_roundtrip(data, size, sel >> 2);
        break;
    }
    return 0;
}
