/*
 * load: sl_cfg_load(), the pipeline, and the schema-driven compiler that
 * turns the merged tree into struct sl_config.
 *
 * The compiler walks the schema, not the tree: every declared key is either
 * given, defaulted, inherited or reported missing, and every key in the tree
 * that the schema does not know is reported with the nearest known name.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"

/* The compiled config and the arena holding it (and itself). */
struct box {
    struct sl__arena arena;
    struct sl_config cfg;
};

static void compile_section(struct sl__cx *cx, const struct sl__section *sec,
                            const struct sl__node *node, const struct sl__node *where, void *obj,
                            const char *path, bool inherited);

const struct sl__node *sl__map_get(const struct sl__node *map, const char *name)
{
    struct sl__node **slot = sl__node_lookup((struct sl__node *)map, name);
    return slot ? *slot : NULL;
}

struct sl__node *sl__default_node(struct sl__cx *cx, const struct sl__key *k)
{
    static const struct sl__origin origin = {.name = "<default>", .rank = INT_MAX};
    struct sl__node *n = sl__yaml_parse(cx, &origin, k->def, strlen(k->def));
    assert(n != NULL && "schema defaults must be valid YAML");
    return n;
}

static void *field(void *obj, size_t offset)
{
    return (char *)obj + offset;
}

/* ---- check_files ----------------------------------------------------------- */

static int check_error(struct sl__cx *cx, const struct sl__node *n, const char *path,
                       const char *want, const char *file, int err)
{
    char got[SL__QUOTE_MAX];
    sl__quote(file, strlen(file), got, sizeof(got));
    sl__error(cx, n, path, "expected %s, got %s (%s)", want, got, strerror(err));
    return -1;
}

/* The directory part of `file`, in the scratch arena. */
static const char *dir_of(struct sl__cx *cx, const char *file)
{
    char *copy = sl__arena_strndup(&cx->tmp, file, strlen(file));
    return dirname(copy);
}

static int check_dir(struct sl__cx *cx, const struct sl__node *n, const char *path,
                     const char *want, const char *file, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return check_error(cx, n, path, want, file, errno);
    if (!S_ISDIR(st.st_mode))
        return check_error(cx, n, path, want, file, ENOTDIR);
    return 0;
}

/* What `saltare -t` can verify without serving: never binds or imports. */
static int check_path(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                      const char *path, const char *file)
{
    struct stat st;
    if ((k->flags & SL__CHECK_DIR))
        return check_dir(cx, n, path, "an existing directory", file, file);
    if ((k->flags & SL__CHECK_EXISTS) && stat(file, &st) < 0)
        return check_error(cx, n, path, "an existing path", file, errno);
    if (k->flags & SL__CHECK_READ) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return check_error(cx, n, path, "a readable file", file, errno);
        int isdir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
        close(fd);
        if (isdir)
            return check_error(cx, n, path, "a readable file", file, EISDIR);
    }
    if (k->flags & SL__CHECK_PARENT)
        return check_dir(cx, n, path, "a path in an existing directory", file, dir_of(cx, file));
    if (k->flags & SL__CHECK_WRITE) {
        if (access(file, F_OK) == 0) {
            if (access(file, W_OK) < 0)
                return check_error(cx, n, path, "a writable file", file, errno);
        } else if (access(dir_of(cx, file), W_OK | X_OK) < 0) {
            return check_error(cx, n, path, "a file in a writable directory", file, errno);
        }
    }
    return 0;
}

/* ---- values ------------------------------------------------------------------ */

static void expected(struct sl__cx *cx, const struct sl__node *n, const char *path,
                     const char *want)
{
    char got[SL__QUOTE_MAX];
    sl__error(cx, n, path, "expected %s, got %s", want, sl__node_describe(n, got, sizeof(got)));
}

static void compile_scalar(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                           const char *path, void *dst)
{
    char want[256];
    if (n->bad)
        return;
    k->type->expect(k, want, sizeof(want));
    if (n->kind != SL__NODE_SCALAR || (sl__node_is_null(n) && !(k->flags & SL__NULLABLE))) {
        expected(cx, n, path, want);
        return;
    }
    if (memchr(n->str, '\0', n->len)) {
        expected(cx, n, path, "text without NUL characters");
        return;
    }
    if (k->type->parse(cx, k, n, path, dst) < 0 || !cx->check_files || !k->type->path_of)
        return;
    const char *file = k->type->path_of(dst);
    if (file && (k->flags & (SL__CHECK_DIR | SL__CHECK_EXISTS | SL__CHECK_PARENT | SL__CHECK_WRITE |
                             SL__CHECK_READ)))
        check_path(cx, k, n, path, file);
}

/* Checks a list's node and length; returns its item count, or -1. */
static long list_items(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                       const char *path)
{
    size_t count = n->kind == SL__NODE_SEQ ? n->n : 0;
    if (n->bad)
        return -1;
    if (n->kind != SL__NODE_SEQ && !sl__node_is_null(n)) {
        expected(cx, n, path, "a list");
        return -1;
    }
    if (count < k->min_items) {
        char got[SL__QUOTE_MAX];
        sl__error(cx, n, path, "expected at least %zu item%s, got %s", k->min_items,
                  k->min_items == 1 ? "" : "s", sl__node_describe(n, got, sizeof(got)));
        return -1;
    }
    if (k->max_items && count > k->max_items) {
        sl__error(cx, n, path, "expected at most %zu items, got %zu", k->max_items, count);
        return -1;
    }
    return (long)count;
}

static void compile_list(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                         const char *path, void *obj)
{
    long count = list_items(cx, k, n, path);
    size_t size = k->shape == SL__LIST ? k->item_size : k->section->size;
    if (count < 0)
        return;
    char *items = count ? sl__arena_alloc(cx->out, (size_t)count * size) : NULL;
    for (long i = 0; i < count; i++) {
        const struct sl__node *item = n->vals[i];
        const char *ipath = sl__path_index(cx, path, (size_t)i);
        if (k->shape == SL__LIST)
            compile_scalar(cx, k, item, ipath, items + (size_t)i * size);
        else
            compile_section(cx, k->section, item, item, items + (size_t)i * size, ipath, false);
    }
    *(void **)field(obj, k->offset) = items;
    *(size_t *)field(obj, k->count) = (size_t)count;
}

/* Compiles the value `n` given (or defaulted) for key `k` of `obj`. */
static void compile_absent(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *where,
                           void *obj, const char *path);

/*
 * null resets a key to its default (docs/config.md, Loading), so an overlay
 * or a --set can undo a value. Nullable keys keep null as their value, and a
 * required key has no default: null there is reported as a wrong value.
 */
static bool resets_to_default(const struct sl__key *k, const struct sl__node *n)
{
    return k->shape != SL__SECTION && !(k->flags & (SL__NULLABLE | SL__REQUIRED)) &&
           sl__node_is_null(n);
}

static void compile_key(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                        const struct sl__node *where, void *obj, const char *path)
{
    if (resets_to_default(k, n)) {
        compile_absent(cx, k, where, obj, path);
        return;
    }
    switch (k->shape) {
    case SL__SCALAR:
        compile_scalar(cx, k, n, path, field(obj, k->offset));
        break;
    case SL__LIST:
    case SL__SECTIONS:
        compile_list(cx, k, n, path, obj);
        break;
    case SL__SECTION:
        if (k->flags & SL__INHERIT)
            memcpy(field(obj, k->offset), field(cx->root, k->inherit), k->section->size);
        compile_section(cx, k->section, n, where, field(obj, k->offset), path,
                        (k->flags & SL__INHERIT) != 0);
        break;
    }
}

/* A key the tree does not give. */
static void compile_absent(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *where,
                           void *obj, const char *path)
{
    char want[256];
    if ((k->flags & SL__INHERIT) && k->shape == SL__SECTIONS) {
        /* a list (routes): the same items and count as the global one, which
         * has the same layout (pointer at inherit, count as far after it) */
        *(void **)field(obj, k->offset) = *(void **)field(cx->root, k->inherit);
        *(size_t *)field(obj, k->count) =
            *(size_t *)field(cx->root, k->inherit + (k->count - k->offset));
    } else if (k->flags & SL__INHERIT) {
        memcpy(field(obj, k->offset), field(cx->root, k->inherit), k->section->size);
    } else if (k->flags & SL__REQUIRED) {
        k->type->expect(k, want, sizeof(want));
        sl__error(cx, where, path, "missing required key, expected %s", want);
    } else if (k->def) {
        compile_key(cx, k, sl__default_node(cx, k), where, obj, path);
    } else if (k->shape == SL__SECTION) {
        compile_section(cx, k->section, NULL, where, field(obj, k->offset), path, false);
    }
}

/* ---- unknown keys --------------------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (la >= 64 || lb >= 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = ((a[i - 1] | 0x20) == (b[j - 1] | 0x20)) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The key of `sec` nearest to `name`, or one of the same name in a
 * subsection ("max_body" at the top: "limits.max_body"). */
static const char *suggest(struct sl__cx *cx, const struct sl__section *sec, const char *name)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX, len = strlen(name);
    size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    for (size_t i = 0; i < sec->nkeys; i++) {
        size_t d = edit_distance(name, sec->keys[i].name);
        if (d <= limit && d < bestd) {
            best = sec->keys[i].name;
            bestd = d;
        }
    }
    if (best)
        return best;
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct sl__key *k = &sec->keys[i];
        if (k->shape != SL__SECTION)
            continue;
        for (size_t j = 0; j < k->section->nkeys; j++)
            if (strcmp(k->section->keys[j].name, name) == 0)
                return sl__arena_printf(&cx->tmp, "%s.%s", k->name, name);
    }
    return NULL;
}

static const struct sl__key *find_key(const struct sl__section *sec, const struct sl__node *key)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (strlen(sec->keys[i].name) == key->len && strcmp(sec->keys[i].name, key->str) == 0)
            return &sec->keys[i];
    return NULL;
}

static void report_unknown(struct sl__cx *cx, const struct sl__section *sec,
                           const struct sl__node *key, const char *path)
{
    const char *kpath = sl__path_join(cx, path, key->str), *hint = suggest(cx, sec, key->str);
    if (strcmp(key->str, "<<") == 0) {
        sl__error(cx, key, kpath,
                  "YAML merge keys are not supported, use overlays (-c) or "
                  "anchors of whole values");
        return;
    }
    if (hint) {
        sl__error(cx, key, kpath, "unknown key, did you mean \"%s\"?", hint);
        return;
    }
    if (sec->nkeys == 0) { /* e.g. a route's `app: {}` or `health: {}` */
        sl__error(cx, key, kpath, "unknown key, this section takes no keys: write {}");
        return;
    }
    char known[512] = "";
    size_t o = 0;
    for (size_t i = 0; i < sec->nkeys && o < sizeof(known); i++)
        o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                              sec->keys[i].name);
    sl__error(cx, key, kpath, "unknown key, expected one of: %s", known);
}

/* ---- sections ---------------------------------------------------------------------- */

/* Exactly one ONEOF key given: records the kind it selects. */
static void check_oneof(struct sl__cx *cx, const struct sl__section *sec,
                        const struct sl__node *map, const struct sl__node *where, void *obj,
                        const char *path)
{
    char names[256];
    size_t o = 0, total = 0, given = 0;
    const struct sl__key *chosen = NULL;
    for (size_t i = 0; i < sec->nkeys; i++)
        total += (sec->keys[i].flags & SL__ONEOF) != 0;
    if (total == 0)
        return;
    for (size_t i = 0, seen = 0; i < sec->nkeys; i++) {
        const struct sl__key *k = &sec->keys[i];
        if (!(k->flags & SL__ONEOF))
            continue;
        seen++;
        o += (size_t)snprintf(names + o, sizeof(names) - o, "%s\"%s\"",
                              seen == 1       ? ""
                              : seen == total ? " or "
                                              : ", ",
                              k->name);
        if (sl__map_get(map, k->name)) {
            given++;
            chosen = k;
        }
    }
    if (given == 1) {
        *(int *)field(obj, sec->kind_offset) = chosen->kind;
        return;
    }
    sl__error(cx, where, path, "expected exactly one of %s, got %s", names,
              given == 0 ? (total == 2 ? "neither" : "none") : (total == 2 ? "both" : "several"));
}

/* A key given without the ONEOF sibling it belongs with. */
static void check_requires(struct sl__cx *cx, const struct sl__section *sec,
                           const struct sl__node *map, const char *path)
{
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct sl__key *k = &sec->keys[i];
        const struct sl__node *v = sl__map_get(map, k->name);
        if (k->requires && v && !sl__map_get(map, k->requires))
            sl__error(cx, v, sl__path_join(cx, path, k->name), "allowed only with \"%s\"",
                      k->requires);
    }
}

/*
 * Compiles `node` (a mapping, null or absent) into `obj`. Keys absent from
 * the node get their default, or keep obj's value when `inherited`. Errors
 * about absent keys point at `where`: the mapping that should hold them.
 * Lists of sections compile last, so their items can inherit from the
 * sections compiled before them.
 */
static void compile_section(struct sl__cx *cx, const struct sl__section *sec,
                            const struct sl__node *node, const struct sl__node *where, void *obj,
                            const char *path, bool inherited)
{
    const struct sl__node *map = NULL;
    if (node && node->bad)
        return;
    if (node && node->kind != SL__NODE_MAP && !sl__node_is_null(node)) {
        expected(cx, node, path, "a mapping");
        return;
    }
    if (node) {
        where = node;
        map = node->kind == SL__NODE_MAP ? node : NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sec->nkeys; i++) {
            const struct sl__key *k = &sec->keys[i];
            if ((k->shape == SL__SECTIONS) != (pass == 1))
                continue;
            const struct sl__node *v = sl__map_get(map, k->name);
            const char *kpath = sl__path_join(cx, path, k->name);
            if (v)
                compile_key(cx, k, v, where, obj, kpath);
            else if (!inherited)
                compile_absent(cx, k, where, obj, kpath);
        }
    }
    for (size_t i = 0; map && i < map->n; i++)
        if (!find_key(sec, map->keys[i]))
            report_unknown(cx, sec, map->keys[i], path);
    check_oneof(cx, sec, map, where, obj, path);
    check_requires(cx, sec, map, path);
    if (sec->finish)
        sec->finish(cx, map, obj, path);
}

/* ---- the pipeline ---------------------------------------------------------------------- */

static struct sl__node *empty_map(struct sl__cx *cx, const struct sl__origin *o, uint32_t line,
                                  uint32_t col)
{
    return sl__node_new(&cx->tmp, SL__NODE_MAP, o, line, col);
}

/* Parses every source and merges them in order. NULL if none parsed. */
static struct sl__node *load_sources(struct sl__cx *cx, const struct sl_cfg_input *in)
{
    struct sl__node *root = NULL;
    for (size_t i = 0; i < in->nsources; i++) {
        const struct sl_cfg_source *src = &in->sources[i];
        struct sl__origin *o = sl__arena_alloc(&cx->tmp, sizeof(*o));
        o->name = src->name ? src->name : "<input>";
        o->rank = (int)i;
        struct sl__node *n = sl__yaml_load(cx, o, src);
        if (n == NULL)
            continue;
        if (sl__node_is_null(n)) {
            n = empty_map(cx, o, n->line, n->col);
        } else if (n->kind != SL__NODE_MAP) {
            char got[SL__QUOTE_MAX];
            sl__error(cx, n, NULL, "expected a mapping at the top level, got %s",
                      sl__node_describe(n, got, sizeof(got)));
            cx->fatal = true;
            continue;
        }
        root = root ? sl__node_merge(&cx->tmp, root, n) : n;
    }
    return root;
}

static void apply_sets(struct sl__cx *cx, const struct sl_cfg_input *in, struct sl__node **root)
{
    for (size_t i = 0; i < in->nsets; i++) {
        struct sl__origin *o = sl__arena_alloc(&cx->tmp, sizeof(*o));
        o->name = in->sets[i];
        o->rank = (int)(in->nsources + i);
        o->is_set = true;
        sl__set_apply(cx, root, o);
    }
}

const struct sl_config *sl_cfg_load(const struct sl_cfg_input *in, struct sl_diags *d)
{
    static const struct sl__origin cmdline = {.name = "<command line>", .rank = -1};
    struct sl__arena out = {0};
    struct box *box = sl__arena_alloc(&out, sizeof(*box));
    struct sl__cx cx = {
        .out = &out,
        .root = &box->cfg,
        .getenv_fn = in->getenv_fn,
        .check_files = in->check_files,
        .check_tls = in->check_files ? in->check_tls : NULL,
    };
    struct sl__node *root = load_sources(&cx, in);

    if (root == NULL) /* no sources, or none readable: still check the sets */
        root = empty_map(&cx, &cmdline, 0, 0);
    apply_sets(&cx, in, &root);
    if (!cx.fatal) {
        sl__interp_tree(&cx, root, "");
        compile_section(&cx, &sl__schema_root, root, root, &box->cfg, "", false);
        if (cx.nerrs == 0)
            sl__routes_check(&cx, root, &box->cfg);
    }
    bool failed = cx.nerrs > 0 || cx.lost > 0;
    sl__errors_flush(&cx, d);
    for (size_t i = 0; i < cx.nwarns; i++) {
        if (!failed)
            sl_log(SL_LOG_WARNING, "%s", cx.warns[i]);
        if (d->nwarnings < SL_DIAG_MAX)
            d->warnings[d->nwarnings++].text = cx.warns[i];
        else
            free(cx.warns[i]);
    }
    sl__arena_release(&cx.tmp);
    if (failed) {
        sl__arena_release(&out);
        return NULL;
    }
    box->arena = out;
    return &box->cfg;
}

void sl_cfg_free(const struct sl_config *cfg)
{
    if (cfg == NULL)
        return;
    struct box *box = (struct box *)((char *)cfg - offsetof(struct box, cfg));
    struct sl__arena arena = box->arena; /* the box is inside the arena */
    sl__arena_release(&arena);
}
