/*
 * config internals shared between the files of config/ (and its tests).
 *
 * The pipeline of sl_cfg_load():
 *
 *     sources --yaml.c--> node trees --merge (tree.c)--> one tree
 *             --set.c--> --set overrides --interp.c--> ${VAR} expanded
 *             --load.c + schema.c + types.c--> struct sl_config (arena)
 *
 * Nodes keep where they came from (file:line:col, or the --set argument) so
 * every diagnostic can point at its source. All nodes live in a scratch arena
 * released when sl_cfg_load() returns; the compiled config lives in its own
 * arena released by sl_cfg_free().
 */
#ifndef SL_CONFIG_CONFIG_INTERNAL_H
#define SL_CONFIG_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- arena.c: bump allocation, freed as a whole ------------------------- */

struct sl__chunk;

struct sl__arena {
    struct sl__chunk *head;
};

/* Zeroed, max_align_t-aligned memory living until sl__arena_release().
 * Out of memory is fatal (abort): config is compiled once at startup. */
void *sl__arena_alloc(struct sl__arena *a, size_t n);
char *sl__arena_strndup(struct sl__arena *a, const char *s, size_t n);
char *sl__arena_printf(struct sl__arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sl__arena_release(struct sl__arena *a);

/* Like malloc/realloc but aborts on failure. */
void *sl__xrealloc(void *p, size_t n);

/* ---- tree.c: the generic YAML document tree ---------------------------- */

/* Where a node came from: a file (or in-memory source), or a --set argument. */
struct sl__origin {
    const char *name; /* file name, or the whole --set argument */
    int rank;         /* sort order of diagnostics: sources, then sets */
    bool is_set;      /* positions are meaningless: name the origin alone */
};

enum sl__node_kind { SL__NODE_SCALAR, SL__NODE_MAP, SL__NODE_SEQ };

struct sl__node {
    enum sl__node_kind kind;
    const struct sl__origin *origin;
    uint32_t line, col; /* 1-based; 0 when the origin has no positions */
    /* SL__NODE_SCALAR */
    char *str;       /* NUL-terminated; may hold inner NULs (len says) */
    size_t len;      /* bytes in str */
    bool plain;      /* unquoted: "", ~ and null mean null */
    bool bad;        /* an error about it is already reported */
    const char *env; /* "${A}, ${B}" when interpolated, else NULL */
    /* SL__NODE_MAP: keys[i] (scalars) -> vals[i]; SL__NODE_SEQ: vals[i] */
    struct sl__node **keys, **vals;
    size_t n, cap;
};

struct sl__node *sl__node_new(struct sl__arena *a, enum sl__node_kind kind,
                              const struct sl__origin *o, uint32_t line, uint32_t col);
struct sl__node *sl__node_scalar(struct sl__arena *a, const struct sl__origin *o, uint32_t line,
                                 uint32_t col, const char *s, size_t len, bool plain);
/* Appends to a map (key != NULL) or a sequence (key == NULL). */
void sl__node_append(struct sl__arena *a, struct sl__node *n, struct sl__node *key,
                     struct sl__node *val);
/* The value slot for `key` in a map, or NULL. */
struct sl__node **sl__node_lookup(struct sl__node *map, const char *key);
bool sl__node_is_null(const struct sl__node *n);
/* "a mapping", "a list", "null", or the quoted scalar (truncated) into buf. */
const char *sl__node_describe(const struct sl__node *n, char *buf, size_t cap);
/* Writes s quoted for a message: escaped control characters, about 60
 * bytes of it then "...". A buffer of SL__QUOTE_MAX holds any result. */
#define SL__QUOTE_MAX 256
void sl__quote(const char *s, size_t len, char *buf, size_t cap);
/* Deep copy (for YAML aliases). Returns NULL when more than *budget nodes
 * would be created; *budget is decremented by the nodes created. */
struct sl__node *sl__node_copy(struct sl__arena *a, const struct sl__node *n, size_t *budget);
/*
 * Overlays `src` on `dst`: maps merge key by key (recursively), anything else
 * replaces (scalars override, lists replace, null resets). Returns the merged
 * node: `dst` modified in place, or `src`.
 */
struct sl__node *sl__node_merge(struct sl__arena *a, struct sl__node *dst, struct sl__node *src);

/* ---- diag.c: collecting errors ----------------------------------------- */

struct sl__err;

/* The compile context shared by every stage. */
struct sl__cx {
    struct sl__arena tmp; /* nodes, paths: released at the end of the load */
    struct sl__arena *out;
    struct sl_config *root; /* the config being compiled (for inheritance) */
    const char *(*getenv_fn)(const char *name);
    bool check_files;
    int (*check_tls)(int what, const char *file, const char *key, char *err, size_t errcap);
    bool fatal; /* a source could not be read or parsed: do not compile */
    struct sl__err *errs;
    size_t nerrs, caperrs, lost;
    size_t seq;
    bool warning;             /* sl__warn is formatting: push to warns */
    char *warns[SL_DIAG_MAX]; /* in the order found */
    size_t nwarns;
};

/*
 * Records one error about node `at` (NULL: no position) under key `path`
 * (NULL or "": none). Rendered as "ORIGIN: path: message[ (from ${X})]"
 * where ORIGIN is "file:line:col" or the --set argument.
 */
void sl__error(struct sl__cx *cx, const struct sl__node *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same form, as a warning: the config still compiles (sl_diags.warnings). */
void sl__warn(struct sl__cx *cx, const struct sl__node *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same, with an explicit position instead of a node. */
void sl__error_at(struct sl__cx *cx, const struct sl__origin *o, uint32_t line, uint32_t col,
                  const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Sorts the errors by origin and position and moves them into `d`. */
void sl__errors_flush(struct sl__cx *cx, struct sl_diags *d);
/* "a.b" + "c" -> "a.b.c" in the scratch arena. */
const char *sl__path_join(struct sl__cx *cx, const char *path, const char *name);
const char *sl__path_index(struct sl__cx *cx, const char *path, size_t i);

/* ---- yaml.c: text -> node tree ----------------------------------------- */

#define SL__MAX_DEPTH 64        /* nesting of mappings and lists */
#define SL__MAX_NODES 100000    /* per document, aliases expanded */
#define SL__MAX_FILE (16 << 20) /* bytes */

/*
 * Parses one document. Returns its root (a null scalar for an empty
 * document), or NULL with cx->fatal set when the text is not YAML. Errors
 * that leave a usable tree (duplicate keys: the first is kept; unknown
 * anchors and tags: the node is marked bad) are reported and the root is
 * still returned. `text` need not be NUL-terminated.
 */
struct sl__node *sl__yaml_parse(struct sl__cx *cx, const struct sl__origin *o, const char *text,
                                size_t len);
/* Reads and parses a source: its text, or the file it names. */
struct sl__node *sl__yaml_load(struct sl__cx *cx, const struct sl__origin *o,
                               const struct sl_cfg_source *src);

/* ---- set.c / interp.c ---------------------------------------------------- */

/* Applies one "key.path=value" to the tree rooted at *root (a map). */
void sl__set_apply(struct sl__cx *cx, struct sl__node **root, const struct sl__origin *o);
/* Expands ${VAR}, ${VAR:-default} and $${ in every scalar value. */
void sl__interp_tree(struct sl__cx *cx, struct sl__node *n, const char *path);
/*
 * Expands one string. Returns the result in the scratch arena, or NULL with
 * an error message in err. `*used` gets "${A}, ${B}" (NULL when no variable
 * was used).
 */
char *sl__interp(struct sl__cx *cx, const char *s, size_t len, size_t *outlen, const char **used,
                 char *err, size_t errcap);

/* ---- types.c: value types ------------------------------------------------ */

/* Value parsers, pure: 0 on success, -1 on a malformed value, -2 when well
 * formed but out of what the C field can hold. */
int sl__parse_bool(const char *s, bool *out);
int sl__parse_int(const char *s, int64_t *out);
int sl__parse_duration(const char *s, uint64_t *ms);
int sl__parse_size(const char *s, uint64_t *bytes);
int sl__parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* "pkg.mod:attr.sub": *colon is the offset of ':' */
int sl__parse_target(const char *s, size_t *colon);
int sl__parse_mode(const char *s, int *mode);
/* Canonical forms: "5s", "250ms", "0"; "1MiB", "1500", "0". */
void sl__format_duration(uint64_t ms, char *buf, size_t cap);
void sl__format_size(uint64_t bytes, char *buf, size_t cap);
/* Writes s as a YAML double-quoted scalar that reads back as s (escapes
 * control and non-printable characters, and "${" as "$${"). */
void sl__print_quoted(FILE *out, const char *s);

/* ---- the schema (schema.c) ------------------------------------------------ */

struct sl__key;

/* A scalar value type. Each reports its own errors through sl__error. */
struct sl__type {
    const char *name; /* in the docs' Type column: "duration" */
    const char *doc;  /* how values are written, for the docs */
    bool text;        /* free text: a "${VAR}" value is valid as written */
    /* Parses scalar `n` (never a map or a list) into the field `dst`.
     * Returns 0, or -1 after reporting an error. */
    int (*parse)(struct sl__cx *cx, const struct sl__key *k, const struct sl__node *n,
                 const char *path, void *dst);
    /* What a valid value looks like: "a duration like \"5s\"". */
    void (*expect)(const struct sl__key *k, char *buf, size_t cap);
    /* Allowed values or range for the docs ("" = anything). */
    void (*allowed)(const struct sl__key *k, char *buf, size_t cap);
    /* Writes the value as a YAML scalar that parses back to it. */
    void (*print)(FILE *out, const struct sl__key *k, const void *src);
    bool (*equal)(const struct sl__key *k, const void *a, const void *b);
    /* Writes this value's JSON Schema (an object). */
    void (*json)(FILE *out, const struct sl__key *k);
    /* The file path in the value for check_files, or NULL (none). */
    const char *(*path_of)(const void *src);
};

extern const struct sl__type sl__type_bool, sl__type_int, sl__type_string, sl__type_header,
    sl__type_enum, sl__type_duration, sl__type_size, sl__type_addr, sl__type_sockpath,
    sl__type_path, sl__type_target, sl__type_mode, sl__type_logdest;

enum sl__shape {
    SL__SCALAR,   /* one value of `type` at `offset` */
    SL__LIST,     /* list of `type`: pointer at `offset`, size_t count at `count` */
    SL__SECTION,  /* a mapping compiled into struct `section` at `offset` */
    SL__SECTIONS, /* list of mappings: array of `section` structs, like SL__LIST */
};

enum {
    SL__REQUIRED = 1 << 0,     /* no default: must be given */
    SL__NULLABLE = 1 << 1,     /* null is a value (NULL pointer, -1) */
    SL__INHERIT = 1 << 2,      /* SL__SECTION: unset keys take sl_config's `inherit` */
    SL__ONEOF = 1 << 3,        /* exactly one ONEOF key per section; sets the kind */
    SL__CHECK_DIR = 1 << 4,    /* check_files: an existing directory */
    SL__CHECK_EXISTS = 1 << 5, /* check_files: exists */
    SL__CHECK_PARENT = 1 << 6, /* check_files: its directory exists */
    SL__CHECK_WRITE = 1 << 7,  /* check_files: writable, or creatable in its directory */
    SL__CHECK_READ = 1 << 8,   /* check_files: a readable file */
};

struct sl__section;

struct sl__key {
    const char *name;
    enum sl__shape shape;
    const struct sl__type *type; /* SL__SCALAR, SL__LIST (of the items) */
    size_t offset, size;         /* the field in the enclosing struct */
    size_t count;                /* SL__LIST, SL__SECTIONS: offset of the size_t count */
    size_t item_size;            /* SL__LIST: bytes per item */
    const struct sl__section *section;
    size_t inherit;              /* SL__INHERIT: offset of the struct in sl_config */
    const char *def;             /* default as YAML text; NULL = required/inherited/none */
    int64_t min, max;            /* range of integers, sizes, durations (ms) */
    size_t min_items, max_items; /* SL__LIST, SL__SECTIONS (max 0 = unlimited) */
    const char *const *names;    /* enum values, in the C enum's order, NULL-terminated */
    int kind;                    /* SL__ONEOF: the section's kind when this key is given */
    const char *requires;        /* only valid with this ONEOF sibling */
    unsigned flags;
    const char *doc;
};

struct sl__section {
    const char *name; /* in the docs: "limits", "listeners[]" */
    const struct sl__key *keys;
    size_t nkeys;
    size_t size;        /* sizeof the C struct */
    size_t kind_offset; /* int field set from the ONEOF key given */
    /* Derives fields and checks what spans keys. `map` may be NULL. */
    void (*finish)(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path);
    /* NULL, or whether the compiled section is in use: --print-config omits
     * one that is not (its keys then all hold their defaults). */
    bool (*present)(const void *obj);
    const char *doc;
};

extern const struct sl__section sl__schema_root;

/* ---- cidr.c: address ranges ------------------------------------------------------ */

/* Parses "10.0.0.0/8", "192.168.1.7", "fd00::/8" or "::1". Returns 0, -1
 * when malformed, -2 when bits past the prefix length are set (c then holds
 * the range with them cleared). */
int sl__cidr_parse(const char *s, struct sl_cidr *c);

/* Compiles list key `key` of `map` (items[0..n), as compiled) into `out`,
 * reporting each bad entry at its position; "unix" sets out->unix_ok. */
void sl__cidr_list(struct sl__cx *cx, const struct sl__node *map, const char *key,
                   const char *const *items, size_t n, const char *path, struct sl_cidr_list *out);

/* ---- route.c: finish functions of the route tables -------------------------- */

void sl__route_finish(struct sl__cx *cx, const struct sl__node *map, void *obj, const char *path);
/* Warns about routes no request can reach (an earlier route of the same
 * table matches every request they match). Runs on a config without errors. */
void sl__routes_check(struct sl__cx *cx, const struct sl__node *root, const struct sl_config *cfg);
void sl__route_return_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                             const char *path);
void sl__route_preflight_finish(struct sl__cx *cx, const struct sl__node *map, void *obj,
                                const char *path);

/* ---- load.c -------------------------------------------------------------- */

/* The value node given for `name` in `map` (NULL if none or not a map). */
const struct sl__node *sl__map_get(const struct sl__node *map, const char *name);
/* Parses a key's default text (a bug if it fails). */
struct sl__node *sl__default_node(struct sl__cx *cx, const struct sl__key *k);

#ifdef __cplusplus
}
#endif

#endif
