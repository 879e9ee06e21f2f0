/*
 * libFuzzer target for server/ws: the WebSocket frame parser and the UTF-8
 * validator. Build and run with `tools/fuzz.sh ws [seconds]`.
 *
 * The first input byte picks the settings (masking required or not, the
 * message limit, RSV1 allowed for permessage-deflate or not) and a split
 * point; the rest is the bytes a client sent.
 * Each piece is copied into an allocation of exactly its size, so ASan
 * catches any read or write past it. Invariants checked:
 * - every call makes progress or ends the stream (MORE consumes everything,
 *   CLOSE/ERROR are sticky and consume nothing more); DATA lies inside the
 *   piece; control payloads are at most 125 bytes; error codes are 1002,
 *   1007 or 1009; close codes are sendable ones or 1005;
 * - one piece, two pieces and one byte at a time give the same events
 *   (compared as a digest of types, codes and payload bytes);
 * - text messages (unless compressed) and close reasons are valid UTF-8 by
 *   an independent decoder, messages never exceed the limit; a message is
 *   compressed only when RSV1 is allowed, and all its runs say so;
 * - the incremental validator agrees with that decoder on the raw input,
 *   whole and split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/ws.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* Reference UTF-8 check: decodes each code point and checks its range. */
static int ref_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k;
        uint8_t b = p[i];
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            cp = b & 0x1F, k = 1;
        } else if ((b & 0xF0) == 0xE0) {
            cp = b & 0x0F, k = 2;
        } else if ((b & 0xF8) == 0xF0) {
            cp = b & 0x07, k = 3;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0; /* truncated */
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

struct digest {
    uint64_t h;
    int end; /* the stream ended: CLOSE or ERROR */
    uint64_t msg_len;
    int msg_op;
    bool msg_z;             /* the current message is compressed */
    struct sl_ws_utf8 text; /* the current text message, checked by ref on fin */
    uint8_t *msg;           /* the current message (for the reference check) */
    size_t msg_cap;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 1099511628211ull;
}

static void mix_int(struct digest *d, unsigned v)
{
    mix(d, &v, sizeof v);
}

static void on_event(struct digest *d, const struct sl_ws_event *ev, uint64_t max_message,
                     bool rsv1_ok)
{
    if (ev->type != SL_WS_EV_DATA) /* how a message is cut into runs depends on the reads */
        mix_int(d, ev->type);
    switch (ev->type) {
    case SL_WS_EV_DATA:
        CHECK(ev->opcode == SL_WS_OP_TEXT || ev->opcode == SL_WS_OP_BINARY);
        if (ev->first) {
            CHECK(d->msg_op == 0);
            d->msg_op = ev->opcode;
            d->msg_len = 0;
            d->msg_z = ev->compressed;
            CHECK(rsv1_ok || !ev->compressed);
        }
        CHECK(d->msg_op == ev->opcode);
        CHECK(d->msg_z == ev->compressed);
        d->msg_len += ev->len;
        CHECK(!max_message || d->msg_len <= max_message);
        if (d->msg_len > d->msg_cap) {
            d->msg_cap = d->msg_len * 2;
            d->msg = realloc(d->msg, d->msg_cap);
            CHECK(d->msg);
        }
        if (ev->len)
            memcpy(d->msg + d->msg_len - ev->len, ev->data, ev->len);
        if (ev->fin) {
            mix_int(d, ev->opcode | (d->msg_z ? 0x40u : 0u));
            mix(d, d->msg, (size_t)d->msg_len);
            if (ev->opcode == SL_WS_OP_TEXT && !d->msg_z)
                CHECK(ref_utf8(d->msg, (size_t)d->msg_len));
            d->msg_op = 0;
        }
        break;
    case SL_WS_EV_PING:
    case SL_WS_EV_PONG:
        CHECK(ev->len <= SL_WS_CONTROL_MAX);
        mix(d, ev->data, ev->len);
        break;
    case SL_WS_EV_CLOSE:
        CHECK(ev->len <= SL_WS_CONTROL_MAX - 2);
        CHECK(ev->code == SL_WS_CLOSE_NO_STATUS || sl_ws_close_code_ok(ev->code));
        CHECK(ref_utf8(ev->data, ev->len));
        mix_int(d, ev->code);
        mix(d, ev->data, ev->len);
        d->end = 1;
        break;
    case SL_WS_EV_ERROR:
        CHECK(ev->code == SL_WS_CLOSE_PROTOCOL || ev->code == SL_WS_CLOSE_BAD_DATA ||
              ev->code == SL_WS_CLOSE_TOO_BIG);
        mix_int(d, ev->code);
        d->end = 1;
        break;
    default:
        CHECK(0);
    }
}

/* Feeds one piece; returns once it is consumed or the stream ended. */
static void feed(struct sl_ws_parser *p, struct digest *d, const uint8_t *src, size_t n,
                 uint64_t max_message)
{
    if (d->end)
        return;
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf);
    if (n)
        memcpy(buf, src, n);
    size_t pos = 0;
    for (;;) {
        struct sl_ws_event ev;
        size_t used = sl_ws_parse(p, buf + pos, n - pos, &ev);
        CHECK(used <= n - pos);
        if (ev.type == SL_WS_EV_DATA)
            CHECK(ev.data >= buf + pos && ev.data + ev.len <= buf + pos + used);
        pos += used;
        if (ev.type == SL_WS_EV_MORE) {
            CHECK(pos == n);
            break;
        }
        on_event(d, &ev, max_message, p->rsv1_ok);
        if (d->end) {
            struct sl_ws_event again;
            CHECK(sl_ws_parse(p, buf + pos, n - pos, &again) == 0);
            CHECK(again.type == ev.type && again.code == ev.code);
            break;
        }
    }
    free(buf);
}

static uint64_t run(const uint8_t *data, size_t size, size_t step, bool mask, uint64_t max_message,
                    bool rsv1)
{
    struct sl_ws_parser p;
    struct digest d = {.h = 1469598103934665603ull};
    sl_ws_parser_init(&p);
    p.require_mask = mask;
    p.max_message = max_message;
    p.rsv1_ok = rsv1;
    for (size_t off = 0; off < size; off += step)
        feed(&p, &d, data + off, step < size - off ? step : size - off, max_message);
    free(d.msg);
    mix_int(&d, (unsigned)d.end);
    return d.h;
}

static void check_utf8(const uint8_t *data, size_t size, size_t cut)
{
    int want = ref_utf8(data, size);
    CHECK(sl_ws_utf8_valid(data, size) == want);
    struct sl_ws_utf8 u;
    sl_ws_utf8_init(&u);
    bool ok = sl_ws_utf8_feed(&u, data, cut) && sl_ws_utf8_feed(&u, data + cut, size - cut);
    CHECK((ok && sl_ws_utf8_complete(&u)) == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++, size--;
    static const uint64_t limits[4] = {0, 1, 125, 4096};
    bool mask = !(sel & 1);
    uint64_t max_message = limits[(sel >> 1) & 3];
    bool rsv1 = (sel >> 3) & 1; /* shares a bit with the cut: any pairing is fine */
    size_t cut = size ? (size_t)(sel >> 3) * size / 31 : 0;
    if (cut > size)
        cut = size;

    uint64_t whole = run(data, size, size ? size : 1, mask, max_message, rsv1);
    CHECK(run(data, size, 1, mask, max_message, rsv1) == whole);
    if (cut && cut < size) {
        /* Two pieces: feed [0, cut) then the rest. */
        struct sl_ws_parser p;
        struct digest d = {.h = 1469598103934665603ull};
        sl_ws_parser_init(&p);
        p.require_mask = mask;
        p.max_message = max_message;
        p.rsv1_ok = rsv1;
        feed(&p, &d, data, cut, max_message);
        feed(&p, &d, data + cut, size - cut, max_message);
        free(d.msg);
        mix_int(&d, (unsigned)d.end);
        CHECK(d.h == whole);
    }
    check_utf8(data, size, cut);
    return 0;
}
