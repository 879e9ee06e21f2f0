/*
 * interp: ${VAR}, ${VAR:-default} and the $${ escape inside scalar values.
 *
 * Runs on the merged tree, after --set and before any value is typed, so
 * "${PORT}" can become an integer and only values that survive the overlays
 * need their variables. Keys are never interpolated.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = sl__xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool is_name_start(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || !is_name_start(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_name_start(s[i]) && !(s[i] >= '0' && s[i] <= '9'))
            return false;
    return true;
}

/* Valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF)? */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], need, min, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            need = 1, min = 0x80, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            need = 2, min = 0x800, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            need = 3, min = 0x10000, cp = c & 0x07;
        else
            return false;
        if (n - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* Remembers "${NAME}" once in the list of variables used. */
static void note_used(struct buf *used, const char *name, size_t n)
{
    char tag[300];
    int len = snprintf(tag, sizeof(tag), "${%.*s}", (int)(n < 256 ? n : 256), name);
    if (used->p) {
        for (const char *p = used->p; (p = strstr(p, tag)) != NULL; p += len)
            if (p[len] == '\0' || p[len] == ',')
                return;
        put(used, ", ", 2);
    }
    put(used, tag, (size_t)len);
}

/* Expands the ${...} whose inner text is s[0..n). Returns 0, or -1 with err. */
static int expand(struct sl__cx *cx, const char *s, size_t n, struct buf *out, struct buf *used,
                  char *err, size_t errcap)
{
    const char *sep = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ':' && s[i + 1] == '-') {
            sep = s + i;
            break;
        }
    size_t namelen = sep ? (size_t)(sep - s) : n;
    if (!valid_name(s, namelen)) {
        char q[SL__QUOTE_MAX], whole[300];
        snprintf(whole, sizeof(whole), "${%.*s}", (int)(n < 256 ? n : 256), s);
        sl__quote(whole, strlen(whole), q, sizeof(q));
        snprintf(err, errcap, "expected a variable like ${NAME} or ${NAME:-default}, got %s", q);
        return -1;
    }
    char *name = sl__arena_strndup(&cx->tmp, s, namelen);
    const char *value = cx->getenv_fn ? cx->getenv_fn(name) : getenv(name);
    if (sep && (value == NULL || *value == '\0')) {
        put(out, sep + 2, n - namelen - 2);
    } else if (value == NULL) {
        snprintf(err, errcap, "environment variable %s is not set and has no default", name);
        return -1;
    } else {
        put(out, value, strlen(value));
    }
    note_used(used, name, namelen);
    return 0;
}

char *sl__interp(struct sl__cx *cx, const char *s, size_t len, size_t *outlen, const char **used,
                 char *err, size_t errcap)
{
    struct buf out = {0}, vars = {0};
    char *result = NULL;

    put(&out, "", 0);
    for (size_t i = 0; i < len;) {
        if (len - i >= 3 && memcmp(s + i, "$${", 3) == 0) {
            put(&out, "${", 2);
            i += 3;
        } else if (len - i >= 2 && memcmp(s + i, "${", 2) == 0) {
            const char *end = memchr(s + i + 2, '}', len - i - 2);
            if (end == NULL) {
                snprintf(err, errcap, "unterminated \"${\" (write \"$${\" for a literal \"${\")");
                goto out;
            }
            size_t n = (size_t)(end - (s + i + 2));
            if (expand(cx, s + i + 2, n, &out, &vars, err, errcap) < 0)
                goto out;
            i += n + 3;
        } else {
            put(&out, s + i, 1);
            i++;
        }
    }
    if (vars.p && !valid_utf8((const unsigned char *)out.p, out.len)) {
        snprintf(err, errcap, "expected UTF-8 text, got invalid bytes from the environment");
        goto out;
    }
    result = sl__arena_strndup(&cx->tmp, out.p, out.len);
    *outlen = out.len;
    *used = vars.p ? sl__arena_strndup(&cx->tmp, vars.p, vars.len) : NULL;
out:
    free(out.p);
    free(vars.p);
    return result;
}

static void interp_scalar(struct sl__cx *cx, struct sl__node *n, const char *path)
{
    char err[400];
    size_t len;
    const char *used;
    if (n->len < 2 || memmem(n->str, n->len, "${", 2) == NULL)
        return;
    char *s = sl__interp(cx, n->str, n->len, &len, &used, err, sizeof(err));
    if (s == NULL) {
        sl__error(cx, n, path, "%s", err);
        n->bad = true;
        return;
    }
    n->str = s;
    n->len = len;
    n->env = used;
}

void sl__interp_tree(struct sl__cx *cx, struct sl__node *n, const char *path)
{
    switch (n->kind) {
    case SL__NODE_SCALAR:
        interp_scalar(cx, n, path);
        break;
    case SL__NODE_MAP:
        for (size_t i = 0; i < n->n; i++)
            sl__interp_tree(cx, n->vals[i], sl__path_join(cx, path, n->keys[i]->str));
        break;
    case SL__NODE_SEQ:
        for (size_t i = 0; i < n->n; i++)
            sl__interp_tree(cx, n->vals[i], sl__path_index(cx, path, i));
        break;
    }
}
