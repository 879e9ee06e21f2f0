/*
 * ws_deflate: permessage-deflate negotiation and zlib (see ws_deflate.h).
 */
#include "server/ws_deflate.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ---- negotiation ---------------------------------------------------------- */

/* A cursor over one header field value. */
struct cur {
    const char *p, *end;
};

static bool is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static void skip_ows(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* A token at the cursor: its length (0 when none). */
static size_t take_token(struct cur *c, const char **tok)
{
    *tok = c->p;
    while (c->p < c->end && is_tchar((unsigned char)*c->p))
        c->p++;
    return (size_t)(c->p - *tok);
}

/*
 * A parameter value, token or quoted-string, unquoted into val (at most
 * cap - 1 bytes kept; longer ones are reported as cap, which no caller
 * accepts). Returns its length, or -1 when malformed.
 */
static long take_value(struct cur *c, char *val, size_t cap)
{
    size_t n = 0;
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return -1; /* unterminated */
            char ch = *c->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (c->p >= c->end)
                    return -1;
                ch = *c->p++;
            }
            if ((unsigned char)ch < 0x20 && ch != '\t')
                return -1;
            if (n < cap - 1)
                val[n] = ch;
            n++;
        }
    } else {
        const char *t;
        n = take_token(c, &t);
        if (n == 0)
            return -1;
        memcpy(val, t, n < cap - 1 ? n : cap - 1);
    }
    if (n >= cap)
        n = cap;
    else
        val[n] = '\0';
    return (long)n;
}

/* Window bits: a decimal 8..15 without leading zeros (RFC 7692 7.1.2). */
static int window_bits(const char *v, long n)
{
    if (n == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

enum { P_SNCT = 1, P_CNCT = 2, P_SMWB = 4, P_CMWB = 8 };

/* Checks one parameter of a permessage-deflate offer into *m; false
 * declines the offer. */
static bool offer_param(const char *name, size_t nlen, const char *val, long vlen, unsigned *seen,
                        struct sl_ws_pmd *m)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {{"server_no_context_takeover", P_SNCT},
                 {"client_no_context_takeover", P_CNCT},
                 {"server_max_window_bits", P_SMWB},
                 {"client_max_window_bits", P_CMWB}};
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i].name) == nlen && strncasecmp(name, known[i].name, nlen) == 0)
            bit = known[i].bit;
    if (!bit || (*seen & bit))
        return false; /* unknown or repeated (RFC 7692 7: decline) */
    *seen |= bit;
    switch (bit) {
    case P_SNCT:
    case P_CNCT:
        return vlen < 0; /* flags take no value */
    case P_SMWB: {
        int b = vlen < 0 ? -1 : window_bits(val, vlen);
        if (b < 0)
            return false; /* a value is required */
        m->server_bits = (uint8_t)b;
        m->server_bits_named = true;
        return true;
    }
    default: /* P_CMWB: no value (the client can be told one), or 8..15 */
        return vlen < 0 || window_bits(val, vlen) >= 0;
    }
}

/*
 * Parses one extension element at the cursor, up to the comma that ends it
 * or the end. Returns 1 for an acceptable permessage-deflate offer (in *m),
 * 0 for anything else well formed, -1 when the grammar breaks.
 */
static int offer_one(struct cur *c, struct sl_ws_pmd *m)
{
    const char *ext;
    size_t elen = take_token(c, &ext);
    if (elen == 0)
        return -1;
    bool pmd = elen == 18 && strncasecmp(ext, "permessage-deflate", 18) == 0, ok = pmd;
    unsigned seen = 0;
    m->server_bits = 15;
    m->server_bits_named = false;
    for (;;) {
        skip_ows(c);
        if (c->p >= c->end || *c->p == ',')
            return ok ? 1 : 0;
        if (*c->p != ';')
            return -1;
        c->p++;
        skip_ows(c);
        const char *name;
        size_t nlen = take_token(c, &name);
        if (nlen == 0)
            return -1;
        skip_ows(c);
        char val[8];
        long vlen = -1;
        if (c->p < c->end && *c->p == '=') {
            c->p++;
            skip_ows(c);
            if ((vlen = take_value(c, val, sizeof(val))) < 0)
                return -1;
        }
        if (ok && !offer_param(name, nlen, val, vlen, &seen, m))
            ok = false;
    }
}

bool sl_ws_pmd_offer(const char *v, size_t n, struct sl_ws_pmd *out)
{
    struct cur c = {v, v + n};
    for (;;) {
        skip_ows(&c);
        while (c.p < c.end && (*c.p == ',' || *c.p == ' ' || *c.p == '\t'))
            c.p++; /* empty list elements are allowed (RFC 9110 5.6.1) */
        if (c.p >= c.end)
            return false;
        int rc = offer_one(&c, out);
        if (rc > 0)
            return true;
        if (rc < 0)
            return false;
    }
}

size_t sl_ws_pmd_response(const struct sl_ws_pmd *m, char out[SL_WS_PMD_RESPONSE_MAX])
{
    static const char base[] =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    size_t n = sizeof(base) - 1;
    memcpy(out, base, n);
    if (m->server_bits_named) {
        static const char smwb[] = "; server_max_window_bits=";
        memcpy(out + n, smwb, sizeof(smwb) - 1);
        n += sizeof(smwb) - 1;
        if (m->server_bits >= 10)
            out[n++] = '1';
        out[n++] = (char)('0' + m->server_bits % 10);
    }
    return n;
}

/* ---- buffers --------------------------------------------------------------- */

int sl_ws_buf_reserve(struct sl_ws_buf *b, size_t more, size_t max)
{
    size_t need = b->len + more;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    if (max && cap > max)
        cap = max;
    if (cap < need)
        cap = need;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

void sl_ws_buf_release(struct sl_ws_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- inflate ------------------------------------------------------------------- */

struct sl_ws_inflater {
    z_stream z;
    bool ended; /* the deflate stream's final block was seen */
};

static atomic_size_t inflaters_live;

struct sl_ws_inflater *sl_ws_inflater_new(void)
{
    struct sl_ws_inflater *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    if (inflateInit2(&z->z, -15) != Z_OK) {
        free(z);
        return NULL;
    }
    atomic_fetch_add_explicit(&inflaters_live, 1, memory_order_relaxed);
    return z;
}

void sl_ws_inflater_free(struct sl_ws_inflater *z)
{
    if (!z)
        return;
    inflateEnd(&z->z);
    free(z);
    atomic_fetch_sub_explicit(&inflaters_live, 1, memory_order_relaxed);
}

void sl_ws_inflater_reset(struct sl_ws_inflater *z)
{
    inflateReset(&z->z);
    z->ended = false;
}

size_t sl_ws_inflaters_live(void)
{
    return atomic_load_explicit(&inflaters_live, memory_order_relaxed);
}

/* Inflates in[0..n) into out until the input is used up and zlib has no
 * more output pending. */
static int inflate_run(struct sl_ws_inflater *z, const uint8_t *in, size_t n, struct sl_ws_buf *out,
                       size_t max)
{
    z->z.next_in = (Bytef *)in;
    z->z.avail_in = (uInt)n;
    for (;;) {
        if (z->ended)
            return z->z.avail_in ? -EBADMSG : 0; /* bytes past the final block */
        if (max && out->len >= max) {
            /* Full: one more byte of output means the message is too big. */
            uint8_t probe;
            z->z.next_out = &probe;
            z->z.avail_out = 1;
            int rc = inflate(&z->z, Z_SYNC_FLUSH);
            if (z->z.avail_out == 0)
                return -EMSGSIZE;
            if (rc == Z_STREAM_END)
                z->ended = true;
            else if (rc != Z_OK && rc != Z_BUF_ERROR)
                return rc == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
            if (z->z.avail_in == 0 || rc == Z_BUF_ERROR)
                return z->ended && z->z.avail_in ? -EBADMSG : 0;
            continue;
        }
        size_t room = max ? max - out->len : 0;
        size_t want = out->cap - out->len >= 1024 ? out->cap - out->len : 16384;
        if (max && want > room)
            want = room;
        if (sl_ws_buf_reserve(out, want, max) < 0)
            return -ENOMEM;
        size_t avail = out->cap - out->len;
        if (max && avail > room)
            avail = room;
        if (avail > UINT32_MAX)
            avail = UINT32_MAX;
        z->z.next_out = out->data + out->len;
        z->z.avail_out = (uInt)avail;
        int rc = inflate(&z->z, Z_SYNC_FLUSH);
        out->len += avail - z->z.avail_out;
        if (rc == Z_STREAM_END)
            z->ended = true;
        else if (rc == Z_BUF_ERROR)
            return 0; /* no progress possible: input used up, nothing pending */
        else if (rc != Z_OK)
            return rc == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
        if (z->z.avail_in == 0 && z->z.avail_out != 0)
            return 0; /* all input taken, output not full: nothing pending */
    }
}

int sl_ws_inflate(struct sl_ws_inflater *z, const uint8_t *in, size_t n, bool fin,
                  struct sl_ws_buf *out, size_t max)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xFF, 0xFF};
    while (n > UINT32_MAX) {
        int rc = inflate_run(z, in, UINT32_MAX, out, max);
        if (rc < 0)
            return rc;
        in += UINT32_MAX;
        n -= UINT32_MAX;
    }
    int rc = n ? inflate_run(z, in, n, out, max) : 0;
    if (rc == 0 && fin && !z->ended)
        rc = inflate_run(z, tail, sizeof(tail), out, max);
    return rc;
}

/* ---- deflate -------------------------------------------------------------------- */

struct sl_ws_deflater {
    z_stream z;
    unsigned bits; /* of the initialised stream; 0 = none */
    uint8_t *scratch;
    size_t cap;
};

#define SCRATCH_KEEP (64u << 10)

struct sl_ws_deflater *sl_ws_deflater_new(void)
{
    return calloc(1, sizeof(struct sl_ws_deflater));
}

void sl_ws_deflater_free(struct sl_ws_deflater *d)
{
    if (!d)
        return;
    if (d->bits)
        deflateEnd(&d->z);
    free(d->scratch);
    free(d);
}

void sl_ws_deflater_trim(struct sl_ws_deflater *d)
{
    if (d && d->cap > SCRATCH_KEEP) {
        free(d->scratch);
        d->scratch = NULL;
        d->cap = 0;
    }
}

/* A stream with `bits` of window, fresh (no context). */
static int deflater_ready(struct sl_ws_deflater *d, unsigned bits)
{
    if (d->bits == bits)
        return deflateReset(&d->z) == Z_OK ? 0 : -ENOMEM;
    if (d->bits) {
        deflateEnd(&d->z);
        d->bits = 0;
    }
    memset(&d->z, 0, sizeof(d->z));
    if (deflateInit2(&d->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)bits, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -ENOMEM;
    d->bits = bits;
    return 0;
}

int sl_ws_deflate(struct sl_ws_deflater *d, unsigned bits, const uint8_t *in, size_t n,
                  const uint8_t **out, size_t *out_len)
{
    if (bits < 9 || bits > 15 || n > UINT32_MAX - 1024)
        return -EINVAL;
    if (deflater_ready(d, bits) < 0)
        return -ENOMEM;
    /* deflateBound does not count the sync flush's empty block (5 bytes). */
    size_t need = deflateBound(&d->z, (uLong)n) + 16;
    if (need > d->cap) {
        free(d->scratch);
        d->cap = 0;
        if (!(d->scratch = malloc(need)))
            return -ENOMEM;
        d->cap = need;
    }
    d->z.next_in = (Bytef *)in;
    d->z.avail_in = (uInt)n;
    d->z.next_out = d->scratch;
    d->z.avail_out = (uInt)d->cap;
    int rc = deflate(&d->z, Z_SYNC_FLUSH);
    if (rc != Z_OK || d->z.avail_in != 0 || d->z.avail_out == 0)
        return -ENOMEM; /* cannot happen with a deflateBound-sized buffer */
    size_t len = d->cap - d->z.avail_out;
    /* A sync flush ends with an empty stored block, 00 00 FF FF: RFC 7692
     * 7.2.1 removes it. */
    if (len < 4 || memcmp(d->scratch + len - 4, "\x00\x00\xff\xff", 4) != 0)
        return -EINVAL;
    *out = d->scratch;
    *out_len = len - 4;
    return 0;
}
