/*
 * tree: the generic document tree every source is parsed into, and the
 * overlay merge (maps merge, everything else replaces).
 */
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

struct sl__node *sl__node_new(struct sl__arena *a, enum sl__node_kind kind,
                              const struct sl__origin *o, uint32_t line, uint32_t col)
{
    struct sl__node *n = sl__arena_alloc(a, sizeof(*n));
    n->kind = kind;
    n->origin = o;
    n->line = line;
    n->col = col;
    return n;
}

struct sl__node *sl__node_scalar(struct sl__arena *a, const struct sl__origin *o, uint32_t line,
                                 uint32_t col, const char *s, size_t len, bool plain)
{
    struct sl__node *n = sl__node_new(a, SL__NODE_SCALAR, o, line, col);
    n->str = sl__arena_strndup(a, s, len);
    n->len = len;
    n->plain = plain;
    return n;
}

/* Grows by doubling inside the arena: the old arrays stay until release,
 * which is fine for config-sized documents. */
void sl__node_append(struct sl__arena *a, struct sl__node *n, struct sl__node *key,
                     struct sl__node *val)
{
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 4;
        struct sl__node **vals = sl__arena_alloc(a, cap * sizeof(*vals));
        if (n->n)
            memcpy(vals, n->vals, n->n * sizeof(*vals));
        n->vals = vals;
        if (n->kind == SL__NODE_MAP) {
            struct sl__node **keys = sl__arena_alloc(a, cap * sizeof(*keys));
            if (n->n)
                memcpy(keys, n->keys, n->n * sizeof(*keys));
            n->keys = keys;
        }
        n->cap = cap;
    }
    if (n->kind == SL__NODE_MAP)
        n->keys[n->n] = key;
    n->vals[n->n++] = val;
}

static struct sl__node **lookup_n(struct sl__node *map, const char *key, size_t len)
{
    if (map == NULL || map->kind != SL__NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->len == len && memcmp(map->keys[i]->str, key, len) == 0)
            return &map->vals[i];
    return NULL;
}

struct sl__node **sl__node_lookup(struct sl__node *map, const char *key)
{
    return lookup_n(map, key, strlen(key));
}

bool sl__node_is_null(const struct sl__node *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (n->kind != SL__NODE_SCALAR || !n->plain)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(n->str, nulls[i]) == 0 && n->len == strlen(nulls[i]))
            return true;
    return false;
}

/* Quotes a scalar for a message: escapes what would break the line, and
 * truncates long values (the position already says where it is). */
void sl__quote(const char *s, size_t len, char *buf, size_t cap)
{
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 60 && (c & 0xc0) != 0x80) { /* not inside a UTF-8 sequence */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            buf[o++] = '\\';
            buf[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

const char *sl__node_describe(const struct sl__node *n, char *buf, size_t cap)
{
    if (n->kind == SL__NODE_MAP)
        return "a mapping";
    if (n->kind == SL__NODE_SEQ)
        return n->n ? "a list" : "an empty list";
    if (sl__node_is_null(n))
        return "null";
    sl__quote(n->str, n->len, buf, cap);
    return buf;
}

struct sl__node *sl__node_copy(struct sl__arena *a, const struct sl__node *n, size_t *budget)
{
    if (*budget == 0)
        return NULL;
    --*budget;
    struct sl__node *c = sl__node_new(a, n->kind, n->origin, n->line, n->col);
    if (n->kind == SL__NODE_SCALAR) {
        c->str = n->str; /* scalars are replaced, never edited in place */
        c->len = n->len;
        c->plain = n->plain;
        c->bad = n->bad;
        return c;
    }
    for (size_t i = 0; i < n->n; i++) {
        struct sl__node *v = sl__node_copy(a, n->vals[i], budget);
        if (v == NULL)
            return NULL;
        sl__node_append(a, c, n->kind == SL__NODE_MAP ? n->keys[i] : NULL, v);
    }
    return c;
}

struct sl__node *sl__node_merge(struct sl__arena *a, struct sl__node *dst, struct sl__node *src)
{
    if (dst == NULL || dst->kind != SL__NODE_MAP || src->kind != SL__NODE_MAP)
        return src;
    for (size_t i = 0; i < src->n; i++) {
        struct sl__node *k = src->keys[i];
        struct sl__node **slot = lookup_n(dst, k->str, k->len);
        if (slot == NULL) {
            sl__node_append(a, dst, k, src->vals[i]);
            continue;
        }
        /* The key's position now points at the latest source naming it. */
        dst->keys[slot - dst->vals] = k;
        *slot = sl__node_merge(a, *slot, src->vals[i]);
    }
    return dst;
}
