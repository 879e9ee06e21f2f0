/*
 * route: what the schema's route tables (schema.c, "routes") cannot say by
 * type alone. The finish functions check the match keys and the chosen
 * action's settings, and derive the forms the server matches on at request
 * time (path pattern, lowercase host pattern, parsed CIDRs), so that nothing
 * is parsed per request.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config_internal.h"

/* The node of list key `name`'s item i, or the map (for positions). */
static const struct sl__node *item_at(const struct sl__node *map, const char *name, size_t i)
{
    const struct sl__node *l = sl__map_get(map, name);
    if (l && l->kind == SL__NODE_SEQ && i < l->n)
        return l->vals[i];
    return l ? l : map;
}

static const struct sl__node *key_at(const struct sl__node *map, const char *name)
{
    const struct sl__node *n = sl__map_get(map, name);
    return n ? n : map;
}

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* Header value text: visible ASCII, obs-text, space and tab. */
static bool is_field_text(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* ---- path ------------------------------------------------------------------------- */

/*
 * A route path is written in the form it matches: decoded and normalised
 * (no "%", no empty, "." or ".." segment), so that what is written is what
 * matches. "/x/\*" (a trailing star) is the prefix "/x/".
 */
static bool path_ok(const char *s, size_t *pat_len, bool *prefix)
{
    size_t len = strlen(s);
    *prefix = len >= 2 && strcmp(s + len - 2, "/*") == 0;
    *pat_len = *prefix ? len - 1 : len;
    if (s[0] != '/')
        return false;
    for (size_t i = 0; i < *pat_len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '%' || c == '?' || c == '#' || c == '*')
            return false;
        if (c != '/' || i + 1 == *pat_len)
            continue;
        /* the segment after this '/' */
        const char *seg = s + i + 1;
        size_t n = strcspn(seg, "/");
        if (seg + n > s + *pat_len)
            n = (size_t)(s + *pat_len - seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
    }
    return true;
}

static void finish_path(struct sl__cx *cx, const struct sl__node *map, struct sl_route_config *r,
                        const char *path)
{
    if (r->path == NULL)
        return;
    if (!path_ok(r->path, &r->path_pat_len, &r->path_prefix)) {
        sl__error(cx, key_at(map, "path"), sl__path_join(cx, path, "path"),
                  "expected an exact path like \"/healthz\" or a prefix like \"/static/*\", "
                  "decoded, without \"//\", \".\" or \"..\" segments, got \"%s\"",
                  r->path);
        return;
    }
    r->path_pat = r->path;
}

/* ---- host ------------------------------------------------------------------------- */

/* "api.example.com", "*.example.com" (one or more labels), "127.0.0.1" or
 * "[::1]"; lowercased into the pattern. */
static void finish_host(struct sl__cx *cx, const struct sl__node *map, struct sl_route_config *r,
                        const char *path)
{
    if (r->host == NULL)
        return;
    const char *s = r->host;
    bool wild = strncmp(s, "*.", 2) == 0, ok = true;
    size_t len = strlen(s), label = 0;
    if (!wild && s[0] == '[') {
        char buf[64];
        struct in6_addr a6;
        ok = len >= 3 && len - 2 < sizeof(buf) && s[len - 1] == ']';
        if (ok) {
            memcpy(buf, s + 1, len - 2);
            buf[len - 2] = '\0';
            ok = inet_pton(AF_INET6, buf, &a6) == 1;
        }
    } else {
        for (const char *p = wild ? s + 2 : s; ok && *p; p++) {
            char c = *p;
            if (c == '.') {
                ok = label > 0;
                label = 0;
            } else {
                ok = (isalnum((unsigned char)c) || c == '-' || c == '_') && ++label <= 63;
            }
        }
        ok = ok && label > 0 && len <= 255;
    }
    if (!ok) {
        sl__error(cx, key_at(map, "host"), sl__path_join(cx, path, "host"),
                  "expected a host like \"api.example.com\", \"*.example.com\" or \"[::1]\" "
                  "(no port), got \"%s\"",
                  s);
        return;
    }
    char *pat = sl__arena_strndup(cx->out, wild ? s + 1 : s, wild ? len - 1 : len);
    for (char *p = pat; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->host_pat = pat;
    r->host_pat_len = strlen(pat);
    r->host_wild = wild;
}

/* ---- source ----------------------------------------------------------------------- */

static void finish_methods(struct sl__cx *cx, const struct sl__node *map, const char *key,
                           const char *const *m, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (m[i] && !is_token(m[i])) /* NULL: a failed value, already reported */
            sl__error(cx, item_at(map, key, i), sl__path_index(cx, sl__path_join(cx, path, key), i),
                      "expected an HTTP method like \"GET\" (a token), got \"%s\"", m[i]);
}

/* ---- actions ---------------------------------------------------------------------- */

/* Headers the core owns (framing) or that have their own key. */
static bool header_reserved(const char *name, size_t len)
{
    static const char *const owned[] = {"content-length", "transfer-encoding", "connection",
                                        "content-type"};
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (strlen(owned[i]) == len && strncasecmp(owned[i], name, len) == 0)
            return true;
    return false;
}

void sl__route_return_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                             const char *path)
{
    struct sl_route_return *ret = obj;
    for (size_t i = 0; i < ret->nheaders; i++) {
        if (ret->headers[i] == NULL) /* a failed value, already reported */
            continue;
        const char *h = ret->headers[i], *colon = strchr(h, ':');
        char *name = colon ? sl__arena_strndup(&cx->tmp, h, (size_t)(colon - h)) : NULL;
        const char *ipath = sl__path_index(cx, sl__path_join(cx, path, "headers"), i);
        if (!name || !is_token(name) || !is_field_text(colon + 1))
            sl__error(cx, item_at(map, "headers", i), ipath,
                      "expected a header like \"Retry-After: 120\" (a token, \":\", text "
                      "without control characters), got \"%s\"",
                      h);
        else if (header_reserved(name, strlen(name)))
            sl__error(cx, item_at(map, "headers", i), ipath, "\"%s\" is set by the server%s", name,
                      strcasecmp(name, "content-type") == 0 ? " (use content_type)" : "");
    }
    if (ret->content_type && !is_field_text(ret->content_type)) /* NULL: failed, reported */
        sl__error(cx, key_at(map, "content_type"), sl__path_join(cx, path, "content_type"),
                  "expected a header value without control characters");
}

static void check_to(struct sl__cx *cx, const struct sl__node *rmap,
                     const struct sl_route_config *r, const char *rpath);

/* {rest}, {query} and {?query} only; {rest} needs a prefix path. */
static void finish_redirect(struct sl__cx *cx, const struct sl__node *map,
                            const struct sl_route_config *r, const char *path)
{
    const struct sl__node *rmap = sl__map_get(map, "redirect");
    const struct sl_route_redirect *rd = &r->redirect;
    const char *rpath = sl__path_join(cx, path, "redirect");
    if (rmap && rmap->kind != SL__NODE_MAP && !sl__node_is_null(rmap))
        return; /* reported */
    if (rd->to == NULL)
        sl__error(cx, rmap ? rmap : map, sl__path_join(cx, rpath, "to"),
                  "missing required key, expected a URL or a path");
    else
        check_to(cx, rmap && rmap->kind == SL__NODE_MAP ? rmap : map, r, rpath);
    int s = rd->status;
    if (s != 0 && s != 301 && s != 302 && s != 303 && s != 307 && s != 308)
        sl__error(cx, key_at(rmap && rmap->kind == SL__NODE_MAP ? rmap : map, "status"),
                  sl__path_join(cx, rpath, "status"), "expected 301, 302, 303, 307 or 308, got %d",
                  s);
}

static void check_to(struct sl__cx *cx, const struct sl__node *rmap,
                     const struct sl_route_config *r, const char *rpath)
{
    const struct sl_route_redirect *rd = &r->redirect;
    const struct sl__node *at = key_at(rmap, "to");
    const char *tpath = sl__path_join(cx, rpath, "to");
    bool ok =
        rd->to[0] != '\0' && is_field_text(rd->to) && !strchr(rd->to, ' ') && !strchr(rd->to, '\t');
    for (const char *p = rd->to; ok && (p = strchr(p, '{')); p++) {
        if (strncmp(p, "{rest}", 6) == 0 && !r->path_prefix) {
            sl__error(cx, at, tpath, "{rest} needs a prefix path like \"/old/*\"");
            return;
        }
        ok = strncmp(p, "{rest}", 6) == 0 || strncmp(p, "{query}", 7) == 0 ||
             strncmp(p, "{?query}", 8) == 0;
    }
    if (!ok)
        sl__error(cx, at, tpath,
                  "expected a URL or a path without spaces or control characters, with only "
                  "the placeholders {rest}, {query} and {?query}, got \"%s\"",
                  rd->to);
}

/* "*", or scheme "://" host [":" port] without a path. */
static bool origin_ok(const char *s)
{
    if (strcmp(s, "*") == 0)
        return true;
    const char *sep = strstr(s, "://");
    if (sep == NULL || sep == s || sep[3] == '\0')
        return false;
    for (const char *p = s; p < sep; p++)
        if (!isalnum((unsigned char)*p) && !strchr("+-.", *p))
            return false;
    for (const char *p = sep + 3; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-._:[]", *p))
            return false;
    return true;
}

void sl__route_preflight_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                                const char *path)
{
    struct sl_route_preflight *pf = obj;
    for (size_t i = 0; i < pf->norigins; i++)
        if (pf->origins[i] && !origin_ok(pf->origins[i])) /* NULL: failed, reported */
            sl__error(cx, item_at(map, "origins", i),
                      sl__path_index(cx, sl__path_join(cx, path, "origins"), i),
                      "expected an origin like \"https://app.example.com\" or \"*\", got \"%s\"",
                      pf->origins[i]);
    finish_methods(cx, map, "methods", pf->methods, pf->nmethods, path);
    for (size_t i = 0; i < pf->nheaders; i++)
        if (pf->headers[i] && !is_token(pf->headers[i])) /* NULL: failed, reported */
            sl__error(cx, item_at(map, "headers", i),
                      sl__path_index(cx, sl__path_join(cx, path, "headers"), i),
                      "expected a header name or \"*\", got \"%s\"", pf->headers[i]);
    size_t len = 1;
    for (size_t i = 0; i < pf->nmethods; i++)
        len += (pf->methods[i] ? strlen(pf->methods[i]) : 0) + 2;
    char *line = sl__arena_alloc(cx->out, len);
    for (size_t i = 0; i < pf->nmethods; i++)
        strcat(strcat(line, i ? ", " : ""), pf->methods[i] ? pf->methods[i] : "");
    pf->methods_line = line;
}

void sl__route_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path)
{
    struct sl_route_config *r = obj;
    finish_path(cx, map, r, path);
    finish_host(cx, map, r, path);
    sl__cidr_list(cx, map, "source", r->source, r->nsource, path, &r->cidrs);
    finish_methods(cx, map, "methods", r->methods, r->nmethods, path);
    if (r->action == SL_ROUTE_REDIRECT && sl__map_get(map, "redirect"))
        finish_redirect(cx, map, r, path);
    const struct sl__node *files = sl__map_get(map, "files");
    if (r->action == SL_ROUTE_FILES && files && r->files.root == NULL)
        sl__error(cx, files, sl__path_join(cx, sl__path_join(cx, path, "files"), "root"),
                  "missing required key, expected a path");
    if (r->action == SL_ROUTE_FILES && files && r->files.index && strchr(r->files.index, '/'))
        sl__error(cx, key_at(files, "index"),
                  sl__path_join(cx, sl__path_join(cx, path, "files"), "index"),
                  "expected a file name without \"/\", got \"%s\"", r->files.index);
    const struct sl__node *pf = sl__map_get(map, "preflight");
    if (r->action == SL_ROUTE_PREFLIGHT && pf && r->preflight.norigins == 0)
        sl__error(cx, pf, sl__path_join(cx, sl__path_join(cx, path, "preflight"), "origins"),
                  "missing required key, expected a list of origins");
}

/* ---- unreachable routes ------------------------------------------------------------ */

static bool methods_cover(const struct sl_route_config *a, const struct sl_route_config *b)
{
    if (a->nmethods == 0)
        return true;
    if (b->nmethods == 0)
        return false;
    for (size_t i = 0; i < b->nmethods; i++) {
        bool found = false;
        for (size_t j = 0; j < a->nmethods && !found; j++)
            found = strcmp(a->methods[j], b->methods[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Patterns are lowercase; a wildcard's is its suffix ".example.com". */
static bool host_cover(const struct sl_route_config *a, const struct sl_route_config *b)
{
    if (a->host_pat == NULL)
        return true;
    if (b->host_pat == NULL)
        return false;
    if (!a->host_wild)
        return !b->host_wild && strcmp(a->host_pat, b->host_pat) == 0;
    size_t min = b->host_wild ? a->host_pat_len : a->host_pat_len + 1;
    return b->host_pat_len >= min &&
           strcmp(b->host_pat + b->host_pat_len - a->host_pat_len, a->host_pat) == 0;
}

static bool path_cover(const struct sl_route_config *a, const struct sl_route_config *b)
{
    if (a->path_pat == NULL)
        return true;
    if (b->path_pat == NULL)
        return false;
    if (!a->path_prefix)
        return !b->path_prefix && a->path_pat_len == b->path_pat_len &&
               memcmp(a->path_pat, b->path_pat, a->path_pat_len) == 0;
    return b->path_pat_len >= a->path_pat_len &&
           memcmp(a->path_pat, b->path_pat, a->path_pat_len) == 0;
}

/* Every request `b` matches is matched by `a` first. A preflight route lets
 * all but preflight requests fall through; `source` never does (403). */
static bool shadows(const struct sl_route_config *a, const struct sl_route_config *b)
{
    if (a->action == SL_ROUTE_PREFLIGHT && b->action != SL_ROUTE_PREFLIGHT)
        return false;
    return methods_cover(a, b) && host_cover(a, b) && path_cover(a, b);
}

static void check_table(struct sl__cx *cx, const struct sl__node *seq, const char *path,
                        const struct sl_route_list *t)
{
    if (seq == NULL || seq->kind != SL__NODE_SEQ || seq->n != t->n)
        return;
    for (size_t i = 1; i < t->n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!shadows(&t->items[j], &t->items[i]))
                continue;
            const struct sl__node *at = seq->vals[j];
            sl__warn(cx, seq->vals[i], sl__path_index(cx, path, i),
                     "unreachable: every request it matches is taken first by %s at %s:%u:%u",
                     sl__path_index(cx, path, j), at->origin ? at->origin->name : "?", at->line,
                     at->col);
            break;
        }
    }
}

void sl__routes_check(struct sl__cx *cx, const struct sl__node *root, const struct sl_config *cfg)
{
    check_table(cx, sl__map_get(root, "routes"), "routes", &cfg->routes);
    const struct sl__node *ls = sl__map_get(root, "listeners");
    for (size_t i = 0; ls && ls->kind == SL__NODE_SEQ && i < ls->n && i < cfg->nlisteners; i++) {
        const struct sl__node *own = sl__map_get(ls->vals[i], "routes");
        if (own) /* else it uses the global table, checked above */
            check_table(cx, own, sl__path_join(cx, sl__path_index(cx, "listeners", i), "routes"),
                        &cfg->listeners[i].routes);
    }
}
