/*
 * set: --set key.path=value, applied after every source.
 *
 * The value is parsed as YAML (a scalar or a flow collection: "2MiB",
 * "[/a, /b]", "{max_body: 2MiB}") and merged at the path like one more
 * overlay. Missing mappings along the path are created; a numeric segment
 * indexes a list ("listeners.0.tcp"), and one past the end appends. Every
 * node created here names the --set argument as its origin.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

#define MAX_INDEX 100000

/* A list index: digits only. Returns -1 if `seg` is not one. */
static long parse_index(const char *seg, size_t n)
{
    long v = 0;
    if (n == 0 || n > 6)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return -1;
        v = v * 10 + (seg[i] - '0');
    }
    return v <= MAX_INDEX ? v : -1;
}

static struct sl__node *null_here(struct sl__cx *cx, const struct sl__origin *o)
{
    return sl__node_scalar(&cx->tmp, o, 0, 0, "", 0, true);
}

/* Steps from *slot into `seg`, creating what is missing. NULL on error. */
static struct sl__node **step(struct sl__cx *cx, struct sl__node **slot, const char *seg, size_t n,
                              const char *path, const struct sl__origin *o)
{
    struct sl__node *cur = *slot;
    long idx = parse_index(seg, n);
    char q[SL__QUOTE_MAX];

    if (cur->kind == SL__NODE_SEQ) {
        if (idx < 0 || (size_t)idx > cur->n) {
            sl__quote(seg, n, q, sizeof(q));
            sl__error_at(cx, o, 0, 0, path, "expected a list index from 0 to %zu, got %s", cur->n,
                         q);
            return NULL;
        }
        if ((size_t)idx == cur->n)
            sl__node_append(&cx->tmp, cur, NULL, null_here(cx, o));
        return &cur->vals[idx];
    }
    if (cur->kind != SL__NODE_MAP) {
        /* A scalar (or nothing yet) is replaced by the container the path
         * needs: a list for an index (which must then be 0), else a mapping. */
        if (idx > 0) {
            sl__quote(seg, n, q, sizeof(q));
            sl__error_at(cx, o, 0, 0, path, "expected a list index from 0 to 0, got %s", q);
            return NULL;
        }
        cur = sl__node_new(&cx->tmp, idx == 0 ? SL__NODE_SEQ : SL__NODE_MAP, o, 0, 0);
        *slot = cur;
        if (idx == 0) {
            sl__node_append(&cx->tmp, cur, NULL, null_here(cx, o));
            return &cur->vals[0];
        }
    }
    char *key = sl__arena_strndup(&cx->tmp, seg, n);
    struct sl__node **found = sl__node_lookup(cur, key);
    if (found)
        return found;
    sl__node_append(&cx->tmp, cur, sl__node_scalar(&cx->tmp, o, 0, 0, key, n, true),
                    null_here(cx, o));
    return &cur->vals[cur->n - 1];
}

void sl__set_apply(struct sl__cx *cx, struct sl__node **root, const struct sl__origin *o)
{
    const char *arg = o->name, *eq = strchr(arg, '=');
    const char *path = "";
    char q[SL__QUOTE_MAX];

    if (eq == NULL || eq == arg) {
        sl__error_at(cx, o, 0, 0, NULL, "expected key.path=value");
        return;
    }
    for (const char *s = arg; s <= eq; s++) {
        if ((*s == '.' || *s == '=') && (s == arg || s[-1] == '.')) {
            sl__quote(arg, (size_t)(eq - arg), q, sizeof(q));
            sl__error_at(cx, o, 0, 0, NULL, "expected key.path=value, got an empty key in %s", q);
            return;
        }
    }
    struct sl__node *value = sl__yaml_parse(cx, o, eq + 1, strlen(eq + 1));
    if (value == NULL)
        return;
    struct sl__node **slot = root;
    for (const char *seg = arg; seg < eq;) {
        const char *end = memchr(seg, '.', (size_t)(eq - seg));
        size_t n = end ? (size_t)(end - seg) : (size_t)(eq - seg);
        char *name = sl__arena_strndup(&cx->tmp, seg, n);
        const char *next = sl__path_join(cx, path, name);
        slot = step(cx, slot, seg, n, next, o);
        if (slot == NULL)
            return;
        path = next;
        seg += n + (end != NULL);
    }
    *slot = sl__node_merge(&cx->tmp, *slot, value);
}
