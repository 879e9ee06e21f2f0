/*
 * arena: bump allocation in chunks, released as a whole.
 *
 * A compiled config and the scratch tree of one load each live in one arena,
 * so nothing inside them is freed piecemeal and nothing can leak.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

#define CHUNK_MIN 4096

struct sl__chunk {
    struct sl__chunk *next;
    size_t used, cap;
    max_align_t data[]; /* aligned for anything */
};

void *sl__xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fputs("saltare: out of memory compiling the config\n", stderr);
        abort();
    }
    return q;
}

static size_t align_up(size_t n)
{
    size_t a = sizeof(max_align_t);
    return (n + a - 1) / a * a;
}

void *sl__arena_alloc(struct sl__arena *a, size_t n)
{
    struct sl__chunk *c = a->head;
    n = align_up(n ? n : 1);
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = sl__xrealloc(NULL, sizeof(*c) + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *sl__arena_strndup(struct sl__arena *a, const char *s, size_t n)
{
    char *p = sl__arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sl__arena_printf(struct sl__arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = sl__arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void sl__arena_release(struct sl__arena *a)
{
    struct sl__chunk *c = a->head;
    while (c != NULL) {
        struct sl__chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}
