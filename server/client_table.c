/*
 * client_table: a fixed-size hash table with an LRU list over a slab of
 * entries, indexed by 32-bit ids (0 = none) so that links are 4 bytes.
 */
#include "server/client_table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct entry {
    unsigned char addr[16];
    const void *scope;
    uint64_t tokens_m;   /* milli-tokens in the bucket */
    uint64_t refill_ms;  /* when tokens_m was last brought up to date; 0 = never (full) */
    uint32_t conns;      /* SL_CLIENT_CONNS held */
    uint32_t inflight;   /* SL_CLIENT_INFLIGHT held */
    uint32_t hnext;      /* hash chain */
    uint32_t prev, next; /* LRU list, most recent first; free list on `next` */
};

struct sl_client_table {
    struct entry *e; /* e[1..slots]; e[0] unused so that id 0 means none */
    uint32_t *heads; /* hash heads, nheads = power of two */
    uint32_t slots, nheads, used;
    uint32_t lru_head, lru_tail;
    uint32_t free_head; /* never-used slots are handed out in order first */
    uint32_t fresh;     /* next never-used slot */
    uint64_t seed;      /* keyed hash: clients cannot aim at one chain */
    uint64_t untracked;
};

struct sl_client_table *sl_client_table_new(uint32_t slots)
{
    struct sl_client_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->slots = slots;
    t->nheads = 1;
    while (t->nheads < slots)
        t->nheads <<= 1;
    /* calloc of this size maps fresh zero pages: untouched slots cost nothing */
    t->e = calloc((size_t)slots + 1, sizeof(*t->e));
    t->heads = calloc(t->nheads, sizeof(*t->heads));
    if (!t->e || !t->heads) {
        sl_client_table_free(t);
        return NULL;
    }
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15u;
    t->fresh = 1;
    return t;
}

void sl_client_table_free(struct sl_client_table *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->heads);
    free(t);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0xff51afd7ed558ccdu;
    return h ^ (h >> 32);
}

static uint32_t bucket(const struct sl_client_table *t, const unsigned char addr[16],
                       const void *scope)
{
    uint64_t a, b, h = t->seed;
    memcpy(&a, addr, 8);
    memcpy(&b, addr + 8, 8);
    h = mix(mix(mix(h, a), b), (uint64_t)(uintptr_t)scope);
    return (uint32_t)h & (t->nheads - 1);
}

static void lru_unlink(struct sl_client_table *t, uint32_t id)
{
    struct entry *x = &t->e[id];
    if (x->prev)
        t->e[x->prev].next = x->next;
    else
        t->lru_head = x->next;
    if (x->next)
        t->e[x->next].prev = x->prev;
    else
        t->lru_tail = x->prev;
    x->prev = x->next = 0;
}

static void lru_push(struct sl_client_table *t, uint32_t id)
{
    struct entry *x = &t->e[id];
    x->prev = 0;
    x->next = t->lru_head;
    if (t->lru_head)
        t->e[t->lru_head].prev = id;
    t->lru_head = id;
    if (!t->lru_tail)
        t->lru_tail = id;
}

static void hash_unlink(struct sl_client_table *t, uint32_t id)
{
    uint32_t *p = &t->heads[bucket(t, t->e[id].addr, t->e[id].scope)];
    while (*p != id)
        p = &t->e[*p].hnext;
    *p = t->e[id].hnext;
}

/* A slot for a new entry: never used, else the least recently used entry
 * that holds nothing. Entries that hold something are moved to the front
 * as they are passed, so the next scan starts on others. 0 = none. */
static uint32_t take_slot(struct sl_client_table *t)
{
    if (t->fresh <= t->slots)
        return t->fresh++;
    for (uint32_t i = 0; i < SL_CLIENT_EVICT_SCAN && t->lru_tail; i++) {
        uint32_t id = t->lru_tail;
        lru_unlink(t, id);
        if (t->e[id].conns == 0 && t->e[id].inflight == 0) {
            hash_unlink(t, id);
            t->used--;
            return id;
        }
        lru_push(t, id);
    }
    return 0;
}

uint32_t sl_client_get(struct sl_client_table *t, const unsigned char addr[16], const void *scope)
{
    uint32_t b = bucket(t, addr, scope);
    for (uint32_t id = t->heads[b]; id; id = t->e[id].hnext) {
        struct entry *x = &t->e[id];
        if (x->scope == scope && memcmp(x->addr, addr, 16) == 0) {
            if (t->lru_head != id) {
                lru_unlink(t, id);
                lru_push(t, id);
            }
            return id;
        }
    }
    uint32_t id = take_slot(t);
    if (!id) {
        t->untracked++;
        return 0;
    }
    struct entry *x = &t->e[id];
    *x = (struct entry){.scope = scope, .hnext = t->heads[b]};
    memcpy(x->addr, addr, 16);
    t->heads[b] = id;
    lru_push(t, id);
    t->used++;
    return id;
}

uint32_t sl_client_take(struct sl_client_table *t, uint32_t id, const struct sl_rate *rate,
                        uint64_t now_ms)
{
    struct entry *x = &t->e[id];
    uint64_t per_sec = rate->per_sec, cap = (uint64_t)(rate->burst ? rate->burst : per_sec) * 1000;
    if (x->refill_ms == 0) {
        x->tokens_m = cap;
    } else if (now_ms > x->refill_ms) {
        uint64_t add = (now_ms - x->refill_ms) * per_sec; /* per_sec milli-tokens a ms */
        x->tokens_m = x->tokens_m + add > cap ? cap : x->tokens_m + add;
    }
    x->refill_ms = now_ms ? now_ms : 1;
    if (x->tokens_m >= 1000) {
        x->tokens_m -= 1000;
        return 0;
    }
    return (uint32_t)((1000 - x->tokens_m + per_sec - 1) / per_sec);
}

bool sl_client_hold(struct sl_client_table *t, uint32_t id, enum sl_client_count which,
                    uint32_t cap)
{
    uint32_t *n = which == SL_CLIENT_CONNS ? &t->e[id].conns : &t->e[id].inflight;
    if (*n >= cap)
        return false;
    (*n)++;
    return true;
}

void sl_client_put(struct sl_client_table *t, uint32_t id, enum sl_client_count which)
{
    uint32_t *n = which == SL_CLIENT_CONNS ? &t->e[id].conns : &t->e[id].inflight;
    if (*n > 0)
        (*n)--;
}

uint32_t sl_client_table_used(const struct sl_client_table *t)
{
    return t->used;
}

uint64_t sl_client_table_untracked(const struct sl_client_table *t)
{
    return t->untracked;
}
