/*
 * diag: collecting errors during a load and rendering them, one line each:
 *
 *     FILE:LINE:COL: key.path: what was expected, what was found
 *
 * Errors are collected unsorted while the stages run, then sorted by origin
 * (sources in order, then --set arguments) and position, so the output reads
 * top to bottom whatever order the compiler visited the keys in.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

#define ERRS_KEPT 4096 /* per load, before sorting; more are only counted */

struct sl__err {
    int rank;
    uint32_t line, col;
    size_t seq;
    char *text; /* malloc'd */
};

void sl_diags_init(struct sl_diags *d)
{
    memset(d, 0, sizeof(*d));
}

void sl_diags_release(struct sl_diags *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->items[i].text);
    for (size_t i = 0; i < d->nwarnings; i++)
        free(d->warnings[i].text);
    sl_diags_init(d);
}

void sl_diags_print(const struct sl_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->count; i++)
        fprintf(out, "%s\n", d->items[i].text);
    if (d->dropped)
        fprintf(out, "(%zu more error%s)\n", d->dropped, d->dropped == 1 ? "" : "s");
}

void sl_diags_print_warnings(const struct sl_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->nwarnings; i++)
        fprintf(out, "%s\n", d->warnings[i].text);
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *s = sl__xrealloc(NULL, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

static void push(struct sl__cx *cx, const struct sl__origin *o, uint32_t line, uint32_t col,
                 char *text)
{
    if (cx->warning) {
        if (cx->nwarns == SL_DIAG_MAX) {
            free(text);
            return;
        }
        cx->warns[cx->nwarns++] = text;
        return;
    }
    if (cx->nerrs == ERRS_KEPT) {
        free(text);
        cx->lost++;
        return;
    }
    if (cx->nerrs == cx->caperrs) {
        cx->caperrs = cx->caperrs ? cx->caperrs * 2 : 16;
        cx->errs = sl__xrealloc(cx->errs, cx->caperrs * sizeof(*cx->errs));
    }
    cx->errs[cx->nerrs++] = (struct sl__err){
        .rank = o ? o->rank : -1, .line = line, .col = col, .seq = cx->seq++, .text = text};
}

/* A message holds values from the input (and the environment): escape
 * what would break the one-line format, whatever the caller formatted. */
static char *one_line(char *msg)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        n += *p < 0x20 || *p == 0x7f;
    if (n == 0)
        return msg;
    char *out = sl__xrealloc(NULL, strlen(msg) + 4 * n + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '\n')
            o += sprintf(o, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            o += sprintf(o, "\\x%02x", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    free(msg);
    return out;
}

static void verror(struct sl__cx *cx, const struct sl__origin *o, uint32_t line, uint32_t col,
                   const char *path, const char *env, const char *fmt, va_list ap)
{
    char *msg = one_line(vformat(fmt, ap)), *where, *text;
    if (o == NULL)
        where = format("saltare");
    else if (o->is_set)
        where = format("--set %s", o->name);
    else if (line == 0)
        where = format("%s", o->name);
    else
        where = format("%s:%u:%u", o->name, line, col);
    text = format("%s: %s%s%s%s%s%s", where, path && *path ? path : "", path && *path ? ": " : "",
                  msg, env ? " (from " : "", env ? env : "", env ? ")" : "");
    free(where);
    free(msg);
    push(cx, o, line, col, text);
}

void sl__error(struct sl__cx *cx, const struct sl__node *at, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (at)
        verror(cx, at->origin, at->line, at->col, path, at->env, fmt, ap);
    else
        verror(cx, NULL, 0, 0, path, NULL, fmt, ap);
    va_end(ap);
}

void sl__warn(struct sl__cx *cx, const struct sl__node *at, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cx->warning = true;
    verror(cx, at->origin, at->line, at->col, path, NULL, fmt, ap);
    cx->warning = false;
    va_end(ap);
}

void sl__error_at(struct sl__cx *cx, const struct sl__origin *o, uint32_t line, uint32_t col,
                  const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(cx, o, line, col, path, NULL, fmt, ap);
    va_end(ap);
}

static int cmp_err(const void *pa, const void *pb)
{
    const struct sl__err *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void sl__errors_flush(struct sl__cx *cx, struct sl_diags *d)
{
    if (cx->nerrs)
        qsort(cx->errs, cx->nerrs, sizeof(*cx->errs), cmp_err);
    for (size_t i = 0; i < cx->nerrs; i++) {
        if (d->count < SL_DIAG_MAX) {
            d->items[d->count++].text = cx->errs[i].text;
        } else {
            free(cx->errs[i].text);
            d->dropped++;
        }
    }
    d->dropped += cx->lost;
    free(cx->errs);
    cx->errs = NULL;
    cx->nerrs = cx->caperrs = cx->lost = 0;
}

/* Key names come from the input: escape what would break the one-line
 * format and shorten what would drown it. */
static const char *printable_name(struct sl__cx *cx, const char *name)
{
    size_t len = strlen(name), o = 0;
    char *buf = sl__arena_alloc(&cx->tmp, (len < 80 ? len : 80) * 4 + 4);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (i == 80) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f)
            o += (size_t)sprintf(buf + o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return buf;
}

const char *sl__path_join(struct sl__cx *cx, const char *path, const char *name)
{
    name = printable_name(cx, name);
    if (path == NULL || *path == '\0')
        return name;
    return sl__arena_printf(&cx->tmp, "%s.%s", path, name);
}

const char *sl__path_index(struct sl__cx *cx, const char *path, size_t i)
{
    return sl__arena_printf(&cx->tmp, "%s.%zu", path, i);
}
