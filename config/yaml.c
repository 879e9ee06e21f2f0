/*
 * yaml: libyaml events -> node tree, keeping every node's position.
 *
 * libyaml's parser (not its composer) is used so duplicate keys, positions
 * and alias expansion are under our control. Aliases are expanded by copying
 * (at most SL__MAX_NODES nodes per document, so "billion laughs" inputs are an
 * error, not an allocation storm); anchors are registered only once their
 * node is complete, so an alias can never refer to its own ancestor.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config_internal.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

struct anchor {
    const char *name;
    struct sl__node *node;
};

struct builder {
    struct sl__cx *cx;
    const struct sl__origin *o;
    yaml_parser_t parser;
    const char *text;
    size_t len;
    bool fatal;    /* stop: the event stream cannot be trusted any more */
    size_t errors; /* reported for this document */
    size_t budget; /* nodes left */
    struct anchor *anchors;
    size_t nanchors, capanchors;
};

static uint32_t u32(size_t v)
{
    return v > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)v;
}

/* Line and column (1-based) of a byte offset, for reader errors. */
static void offset_position(const struct builder *b, size_t off, uint32_t *line, uint32_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < b->len; i++) {
        if (b->text[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

static void syntax_error(struct builder *b)
{
    const yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "unknown error";
    uint32_t line = u32(p->problem_mark.line + 1), col = u32(p->problem_mark.column + 1);
    char context[160] = "";

    if (p->error == YAML_MEMORY_ERROR) {
        problem = "out of memory";
    } else if (p->error == YAML_READER_ERROR) {
        offset_position(b, p->problem_offset, &line, &col);
    } else if (p->context && b->o->is_set) {
        snprintf(context, sizeof(context), " (%s)", p->context);
    } else if (p->context) {
        snprintf(context, sizeof(context), " (%s at line %zu, column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    }
    if (b->o->is_set)
        sl__error_at(b->cx, b->o, 0, 0, NULL,
                     "syntax error in the value: %s%s; quote a value that is a plain string "
                     "(key='\"...\"')",
                     problem, context);
    else
        sl__error_at(b->cx, b->o, line, col, NULL, "syntax error: %s%s", problem, context);
    b->fatal = true;
}

static bool next(struct builder *b, yaml_event_t *ev)
{
    if (b->fatal)
        return false;
    if (!yaml_parser_parse(&b->parser, ev)) {
        syntax_error(b);
        return false;
    }
    return true;
}

static void error_at_mark(struct builder *b, const yaml_mark_t *m, const char *path,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void error_at_mark(struct builder *b, const yaml_mark_t *m, const char *path,
                          const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl__error_at(b->cx, b->o, u32(m->line + 1), u32(m->column + 1), path, "%s", msg);
    b->errors++;
}

/* Counts a node against the document's budget. */
static bool spend(struct builder *b, const yaml_mark_t *m, size_t n)
{
    if (n <= b->budget) {
        b->budget -= n;
        return true;
    }
    if (!b->fatal)
        error_at_mark(b, m, NULL, "document too large: more than %d nodes (aliases expanded)",
                      SL__MAX_NODES);
    b->fatal = true;
    return false;
}

static void add_anchor(struct builder *b, const yaml_char_t *name, struct sl__node *n)
{
    if (name == NULL || n == NULL)
        return;
    if (b->nanchors == b->capanchors) {
        b->capanchors = b->capanchors ? b->capanchors * 2 : 8;
        b->anchors = sl__xrealloc(b->anchors, b->capanchors * sizeof(*b->anchors));
    }
    b->anchors[b->nanchors++] = (struct anchor){
        .name = sl__arena_strndup(&b->cx->tmp, (const char *)name, strlen((const char *)name)),
        .node = n,
    };
}

static struct sl__node *new_node(struct builder *b, enum sl__node_kind kind, const yaml_mark_t *m)
{
    return sl__node_new(&b->cx->tmp, kind, b->o, u32(m->line + 1), u32(m->column + 1));
}

static struct sl__node *null_node(struct builder *b, const yaml_mark_t *m)
{
    return sl__node_scalar(&b->cx->tmp, b->o, u32(m->line + 1), u32(m->column + 1), "", 0, true);
}

/* Stands for a node already reported: compiling skips it silently. */
static struct sl__node *bad_node(struct builder *b, const yaml_mark_t *m)
{
    struct sl__node *n = null_node(b, m);
    n->bad = true;
    return n;
}

/* Only the core schema's tags are understood; they change nothing but
 * !!str (forces a string) and !!null. */
static bool check_tag(struct builder *b, const yaml_event_t *ev, const yaml_char_t *tag,
                      const char *path, const char *const *ok)
{
    if (tag == NULL || strcmp((const char *)tag, "!") == 0)
        return true;
    for (; *ok; ok++)
        if (strncmp((const char *)tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 &&
            strcmp((const char *)tag + strlen(TAG_PREFIX), *ok) == 0)
            return true;
    error_at_mark(b, &ev->start_mark, path, "unsupported tag \"%s\"", (const char *)tag);
    return false;
}

static struct sl__node *build(struct builder *b, yaml_event_t *ev, int depth, const char *path);

static struct sl__node *build_scalar(struct builder *b, yaml_event_t *ev, const char *path)
{
    static const char *const ok[] = {"str", "null", "bool", "int", "float", NULL};
    const yaml_char_t *tag = ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    struct sl__node *n;

    if (!check_tag(b, ev, tag, path, ok))
        return bad_node(b, &ev->start_mark);
    if (tag && strcmp((const char *)tag, "!") == 0)
        plain = false;
    if (tag && strcmp((const char *)tag, TAG_PREFIX "str") == 0)
        plain = false;
    if (tag && strcmp((const char *)tag, TAG_PREFIX "null") == 0)
        return null_node(b, &ev->start_mark);
    n = sl__node_scalar(&b->cx->tmp, b->o, u32(ev->start_mark.line + 1),
                        u32(ev->start_mark.column + 1), (const char *)ev->data.scalar.value,
                        ev->data.scalar.length, plain);
    add_anchor(b, ev->data.scalar.anchor, n);
    return n;
}

static struct sl__node *build_alias(struct builder *b, yaml_event_t *ev, const char *path)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = b->nanchors; i-- > 0;) {
        if (strcmp(b->anchors[i].name, name) != 0)
            continue;
        size_t budget = b->budget;
        struct sl__node *n = sl__node_copy(&b->cx->tmp, b->anchors[i].node, &budget);
        if (n == NULL) {
            spend(b, &ev->start_mark, b->budget + 1);
            return NULL;
        }
        b->budget = budget;
        return n;
    }
    error_at_mark(b, &ev->start_mark, path, "unknown anchor \"%s\"", name);
    return bad_node(b, &ev->start_mark);
}

static struct sl__node *build_seq(struct builder *b, yaml_event_t *ev, int depth, const char *path)
{
    static const char *const ok[] = {"seq", NULL};
    struct sl__node *n = new_node(b, SL__NODE_SEQ, &ev->start_mark);
    yaml_event_t item;

    check_tag(b, ev, ev->data.sequence_start.tag, path, ok);
    while (next(b, &item)) {
        if (item.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&item);
            add_anchor(b, ev->data.sequence_start.anchor, n);
            return n;
        }
        struct sl__node *v = build(b, &item, depth, sl__path_index(b->cx, path, n->n));
        yaml_event_delete(&item);
        if (v == NULL)
            return NULL;
        sl__node_append(&b->cx->tmp, n, NULL, v);
    }
    return NULL;
}

/* Adds key -> val unless the key is already there (then it is an error). */
static void map_put(struct builder *b, struct sl__node *map, struct sl__node *key,
                    struct sl__node *val, const char *path)
{
    const char *kpath = sl__path_join(b->cx, path, key->str);
    for (size_t i = 0; i < map->n; i++) {
        const struct sl__node *k = map->keys[i];
        if (k->len == key->len && memcmp(k->str, key->str, k->len) == 0) {
            sl__error_at(b->cx, b->o, key->line, key->col, kpath,
                         "duplicate key, first defined at line %u", k->line);
            b->errors++;
            return;
        }
    }
    sl__node_append(&b->cx->tmp, map, key, val);
}

static struct sl__node *build_map(struct builder *b, yaml_event_t *ev, int depth, const char *path)
{
    static const char *const ok[] = {"map", NULL};
    struct sl__node *n = new_node(b, SL__NODE_MAP, &ev->start_mark);
    yaml_event_t kev, vev;

    check_tag(b, ev, ev->data.mapping_start.tag, path, ok);
    while (next(b, &kev)) {
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            add_anchor(b, ev->data.mapping_start.anchor, n);
            return n;
        }
        struct sl__node *k = build(b, &kev, depth, path);
        yaml_event_delete(&kev);
        if (k == NULL || !next(b, &vev))
            return NULL;
        bool keyok = k->kind == SL__NODE_SCALAR;
        const char *vpath = keyok ? sl__path_join(b->cx, path, k->str) : path;
        struct sl__node *v = build(b, &vev, depth, vpath);
        yaml_event_delete(&vev);
        if (v == NULL)
            return NULL;
        if (!keyok) {
            char buf[8];
            sl__error_at(b->cx, b->o, k->line, k->col, path, "expected a key name, got %s",
                         sl__node_describe(k, buf, sizeof(buf)));
            b->errors++;
            continue;
        }
        map_put(b, n, k, v, path);
    }
    return NULL;
}

/* Builds the node that starts with `ev` (which the caller deletes). */
static struct sl__node *build(struct builder *b, yaml_event_t *ev, int depth, const char *path)
{
    if (!spend(b, &ev->start_mark, 1))
        return NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return build_scalar(b, ev, path);
    case YAML_ALIAS_EVENT:
        return build_alias(b, ev, path);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (depth >= SL__MAX_DEPTH) {
            error_at_mark(b, &ev->start_mark, path, "nesting deeper than %d levels", SL__MAX_DEPTH);
            b->fatal = true;
            return NULL;
        }
        if (ev->type == YAML_SEQUENCE_START_EVENT)
            return build_seq(b, ev, depth + 1, path);
        return build_map(b, ev, depth + 1, path);
    default:
        /* libyaml guarantees node events here; anything else is a bug there. */
        error_at_mark(b, &ev->start_mark, path, "unexpected YAML event %d", (int)ev->type);
        b->fatal = true;
        return NULL;
    }
}

/* Expects `type` next; returns false (error reported) otherwise. */
static bool expect_event(struct builder *b, yaml_event_type_t type, yaml_event_t *ev)
{
    if (!next(b, ev))
        return false;
    if (ev->type == type)
        return true;
    yaml_event_delete(ev);
    return false;
}

static struct sl__node *parse_document(struct builder *b)
{
    yaml_event_t ev;
    struct sl__node *root;

    if (!expect_event(b, YAML_STREAM_START_EVENT, &ev))
        return NULL;
    yaml_event_delete(&ev);
    if (!next(b, &ev))
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) {
        root = null_node(b, &ev.start_mark);
        root->line = root->col = b->o->is_set ? 0 : 1;
        yaml_event_delete(&ev);
        return root;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (!next(b, &ev))
        return NULL;
    root = build(b, &ev, 0, "");
    yaml_event_delete(&ev);
    if (root == NULL || !expect_event(b, YAML_DOCUMENT_END_EVENT, &ev))
        return NULL;
    yaml_event_delete(&ev);
    if (!next(b, &ev))
        return NULL;
    if (ev.type == YAML_DOCUMENT_START_EVENT)
        error_at_mark(b, &ev.start_mark, NULL, "expected a single YAML document, got another one");
    yaml_event_delete(&ev);
    return root;
}

struct sl__node *sl__yaml_parse(struct sl__cx *cx, const struct sl__origin *o, const char *text,
                                size_t len)
{
    struct builder b = {.cx = cx, .o = o, .text = text, .len = len, .budget = SL__MAX_NODES};
    struct sl__node *root;

    if (!yaml_parser_initialize(&b.parser)) {
        sl__error_at(cx, o, 0, 0, NULL, "cannot parse: out of memory");
        cx->fatal = true;
        return NULL;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    root = parse_document(&b);
    yaml_parser_delete(&b.parser);
    free(b.anchors);
    if (b.fatal) {
        cx->fatal = true;
        return NULL;
    }
    return root;
}

/* Reads a whole file into the scratch arena. Returns 0 or -errno. */
static int read_file(struct sl__cx *cx, const char *path, char **text, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        err = -errno;
        goto out_close;
    }
    if (st.st_size > SL__MAX_FILE) {
        err = -EFBIG;
        goto out_close;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = sl__arena_alloc(&cx->tmp, cap);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = -errno;
            goto out_close;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) { /* grew since fstat (or a pipe): read on, bounded */
            if (cap > SL__MAX_FILE) {
                err = -EFBIG;
                goto out_close;
            }
            char *bigger = sl__arena_alloc(&cx->tmp, cap * 2);
            memcpy(bigger, buf, n);
            buf = bigger;
            cap *= 2;
        }
    }
    *text = buf;
    *len = n;
out_close:
    close(fd);
    return err;
}

struct sl__node *sl__yaml_load(struct sl__cx *cx, const struct sl__origin *o,
                               const struct sl_cfg_source *src)
{
    char *text = NULL;
    size_t len = 0;
    if (src->text)
        return sl__yaml_parse(cx, o, src->text, strlen(src->text));
    int err = read_file(cx, src->name, &text, &len);
    if (err < 0) {
        sl__error_at(cx, o, 0, 0, NULL, "cannot read: %s", strerror(-err));
        cx->fatal = true;
        return NULL;
    }
    return sl__yaml_parse(cx, o, text, len);
}
