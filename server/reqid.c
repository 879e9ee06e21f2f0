/*
 * reqid: http.request_id. Each request gets an id: the client's own when
 * trusted and well formed, else 128 random bits as 32 hex digits from a
 * per-worker xoshiro256** generator seeded once from getrandom(2), so no
 * request costs a syscall. The id is not a secret (it is sent back and
 * logged); it must only not collide, which 128 bits from a well-seeded
 * generator ensure.
 */
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "server/server_internal.h"

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(uint64_t s[4])
{
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* splitmix64: spreads a weak fallback seed over the whole state. */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sl__reqid_seed(struct sl_worker *w)
{
    uint64_t *s = w->rng;
    if (getrandom(s, 4 * sizeof(*s), 0) == (ssize_t)(4 * sizeof(*s)) && (s[0] | s[1] | s[2] | s[3]))
        return;
    /* No entropy (a very old kernel): pid and clocks, never all zero. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x =
        (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^ sl_clock_us();
    for (int i = 0; i < 4; i++)
        s[i] = splitmix(&x);
}

/* 1..64 bytes of letters, digits and -_.:+/=@ (UUIDs, traceparent, base64). */
static bool id_ok(const char *v, size_t n)
{
    if (n == 0 || n > SL__RID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("-_.:+/=@", c))))
            return false;
    }
    return true;
}

void sl__reqid_assign(struct sl_conn *c, struct sl_req *r, const struct sl_h1_request *h)
{
    const struct sl_request_id_config *cfg = &c->w->cfg->http.request_id;
    if (c->w->cfg->http.server_timing && !r->t_start_us)
        r->t_start_us = sl_clock_us();
    if (!cfg->header)
        return;
    if (cfg->trust_incoming) {
        size_t n = strlen(cfg->header);
        for (size_t i = 0; i < h->nheaders; i++) {
            const struct sl_h1_header *f = &h->headers[i];
            if (f->name_len == n && strncasecmp(f->name, cfg->header, n) == 0) {
                if (id_ok(f->value, f->value_len)) {
                    memcpy(r->rid, f->value, f->value_len);
                    r->rid_len = (uint8_t)f->value_len;
                    return;
                }
                break; /* the first one decides: a bad one is replaced */
            }
        }
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {next(c->w->rng), next(c->w->rng)};
    for (int i = 0; i < 32; i++)
        r->rid[i] = hex[(v[i / 16] >> (4 * (i % 16))) & 15];
    r->rid_len = 32;
}

const char *sl_req_request_id(const struct sl_req *r, size_t *len)
{
    *len = r->rid_len;
    return r->rid_len ? r->rid : NULL;
}
