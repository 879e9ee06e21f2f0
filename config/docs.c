/*
 * docs: the Markdown reference (docs/config.md) and the JSON Schema, both
 * generated from the schema table so they cannot drift from the code.
 */
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

/* ---- shared ------------------------------------------------------------------ */

/* Parses a key's default (a scratch context: defaults never fail). */
static struct sl__node *default_of(struct sl__cx *cx, const struct sl__key *k)
{
    return k->def ? sl__default_node(cx, k) : NULL;
}

static bool has_required(const struct sl__section *sec)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (sec->keys[i].flags & SL__REQUIRED)
            return true;
    return false;
}

static const char *oneof_names(const struct sl__section *sec, char *buf, size_t cap)
{
    size_t o = 0, total = 0, seen = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sec->nkeys; i++)
        total += (sec->keys[i].flags & SL__ONEOF) != 0;
    for (size_t i = 0; i < sec->nkeys && o < cap; i++) {
        if (!(sec->keys[i].flags & SL__ONEOF))
            continue;
        seen++;
        o += (size_t)snprintf(buf + o, cap - o, "%s`%s`",
                              seen == 1       ? ""
                              : seen == total ? " or "
                                              : ", ",
                              sec->keys[i].name);
    }
    return buf;
}

/* ---- Markdown ------------------------------------------------------------------ */

static const char intro[] =
    "# Configuration reference\n"
    "\n"
    "<!-- Generated from config/schema.c by `saltare --docs > docs/config.md`. Do not edit:\n"
    "     //tests:config_test fails when this file and the schema disagree. -->\n"
    "\n"
    "saltare is configured by one YAML file, compiled once at startup:\n"
    "\n"
    "    saltare -c saltare.yaml\n"
    "\n"
    "## Loading\n"
    "\n"
    "- **Overlays.** `-c base.yaml -c prod.yaml` merges the files in order: mappings merge key\n"
    "  by key, scalars override, lists replace, and `null` resets a key (or a whole section)\n"
    "  to its default.\n"
    "- **`--set key.path=value`** (repeatable) applies after every file. The value is read as\n"
    "  YAML (`--set limits.max_body=2MiB`, `--set 'app.path=[/srv/a, /srv/b]'`, an empty\n"
    "  value is null). Missing mappings are created; a number indexes a list\n"
    "  (`--set listeners.0.tcp=:9000`) and one past the end appends an item.\n"
    "- **Environment variables.** `${VAR}` and `${VAR:-default}` are replaced anywhere inside\n"
    "  a value (several per value are fine; keys are never expanded). The default is used when\n"
    "  VAR is unset or empty; a VAR that is unset without a default is an error. `$${` is a\n"
    "  literal `${`. Expansion happens after merging and before typing, so `workers: ${N}`\n"
    "  is an integer, and an unquoted value that expands to nothing is null.\n"
    "- **Relative paths** are relative to the working directory saltare starts in.\n"
    "- **Errors** are reported all at once, one per line, and saltare exits with status 78:\n"
    "\n"
    "      prod.yaml:12:5: limits.max_body: expected a size like \"1MiB\", got \"lots\"\n"
    "      prod.yaml:3:1: timeout: unknown key, did you mean \"timeouts\"?\n"
    "      --set workers=lots: workers: expected an integer from 0 to 1024, got \"lots\"\n"
    "      prod.yaml:4:13: workers: expected an integer from 0 to 1024, got \"x\" (from ${N})\n"
    "\n"
    "- **`saltare -t`** compiles the config and also checks the file system (paths exist,\n"
    "  socket directories exist, the access log is writable) without binding or importing;\n"
    "  **`--print-config`** prints the effective config, every key, in a form that reads back\n"
    "  to the same config; **`--schema`** prints a JSON Schema (draft 2020-12) for editors.\n"
    "\n";

static void md_types(FILE *out)
{
    static const struct sl__type *const types[] = {
        &sl__type_bool,    &sl__type_int,  &sl__type_enum,     &sl__type_string,
        &sl__type_header,  &sl__type_path, &sl__type_sockpath, &sl__type_duration,
        &sl__type_size,    &sl__type_addr, &sl__type_target,   &sl__type_mode,
        &sl__type_logdest,
    };
    fputs("## Value types\n\n| Type | Written as |\n| --- | --- |\n", out);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        fprintf(out, "| %s | %s |\n", types[i]->name, types[i]->doc);
    fputs("\nA value of any type may be quoted: `\"5s\"` and `5s` are the same duration.\n\n", out);
}

static void md_type(FILE *out, const struct sl__key *k)
{
    switch (k->shape) {
    case SL__SCALAR:
        fputs(k->type->name, out);
        break;
    case SL__LIST:
        fprintf(out, "list of %s", k->type->name);
        break;
    case SL__SECTION:
        fputs("mapping", out);
        break;
    case SL__SECTIONS:
        fputs("list of mappings", out);
        break;
    }
}

static void md_default(FILE *out, const struct sl__key *k)
{
    if (k->flags & SL__REQUIRED)
        fputs("**required**", out);
    else if (k->flags & SL__INHERIT)
        fputs("inherited", out);
    else if (k->def)
        fprintf(out, "`%s`", k->def);
    else if (k->shape == SL__SECTION)
        fputs("(see below)", out);
}

static void md_allowed(FILE *out, const struct sl__key *k)
{
    char buf[256] = "";
    if (k->shape == SL__SCALAR || k->shape == SL__LIST)
        k->type->allowed(k, buf, sizeof(buf));
    fputs(buf, out);
    if ((k->shape == SL__LIST || k->shape == SL__SECTIONS) && (k->min_items || k->max_items)) {
        fprintf(out, "%s", buf[0] ? "; " : "");
        if (k->max_items)
            fprintf(out, "%zu to %zu items", k->min_items, k->max_items);
        else if (k->min_items)
            fprintf(out, "at least %zu item%s", k->min_items, k->min_items == 1 ? "" : "s");
    }
}

static void md_row(FILE *out, const struct sl__section *sec, const struct sl__key *k,
                   const char *prefix)
{
    char names[256];
    fprintf(out, "| `%s%s` | ", prefix, k->name);
    md_type(out, k);
    fputs(" | ", out);
    md_default(out, k);
    fputs(" | ", out);
    md_allowed(out, k);
    fprintf(out, " | %s", k->doc);
    if (k->flags & SL__ONEOF)
        fprintf(out, " Give exactly one of %s.", oneof_names(sec, names, sizeof(names)));
    if (k->requires)
        fprintf(out, " Only with `%s`.", k->requires);
    if ((k->shape == SL__SECTION && !(k->flags & SL__INHERIT)) || k->shape == SL__SECTIONS) {
        /* GitHub's heading anchor: the heading without its punctuation. */
        fprintf(out, " See [`%s%s`](#", prefix, k->name);
        for (const char *c = k->section->name; *c; c++)
            if (*c != '[' && *c != ']' && *c != '.')
                fputc(*c, out);
        fputs(").", out);
    }
    fputs(" |\n", out);
}

static void md_table(FILE *out, const struct sl__section *sec, const char *prefix)
{
    if (sec->nkeys == 0) { /* routes[].app, routes[].health */
        fputs("No keys: write `{}`.\n\n", out);
        return;
    }
    fputs("| Key | Type | Default | Allowed | Description |\n"
          "| --- | --- | --- | --- | --- |\n",
          out);
    for (size_t i = 0; i < sec->nkeys; i++)
        md_row(out, sec, &sec->keys[i], prefix);
    fputc('\n', out);
}

/* One "###" part per section, each followed by the sections inside it
 * (inherited ones are documented where they are declared). */
static void md_subsections(FILE *out, const struct sl__section *sec, const char *parent)
{
    char prefix[256];
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct sl__key *k = &sec->keys[i];
        if ((k->shape != SL__SECTION && k->shape != SL__SECTIONS) || (k->flags & SL__INHERIT))
            continue;
        fprintf(out, "### %s\n\n%s\n\n", k->section->name, k->section->doc);
        snprintf(prefix, sizeof(prefix), "%s%s%s.", parent, k->name,
                 k->shape == SL__SECTIONS ? "[]" : "");
        md_table(out, k->section, prefix);
        md_subsections(out, k->section, prefix);
    }
}

static void md_sections(FILE *out, const struct sl__section *root)
{
    fputs("## Keys\n\n### Top level\n\n", out);
    md_table(out, root, "");
    md_subsections(out, root, "");
}

void sl_cfg_print_docs(FILE *out)
{
    fputs(intro, out);
    md_types(out);
    md_sections(out, &sl__schema_root);
}

/* ---- JSON Schema -------------------------------------------------------------------- */

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* A default as JSON: the YAML node, with plain scalars typed as YAML's core
 * schema would type them. */
static void json_node(FILE *out, const struct sl__node *n)
{
    int64_t iv;
    bool bv;
    switch (n->kind) {
    case SL__NODE_SCALAR:
        if (sl__node_is_null(n))
            fputs("null", out);
        else if (n->plain && sl__parse_int(n->str, &iv) == 0)
            fprintf(out, "%lld", (long long)iv);
        else if (n->plain && sl__parse_bool(n->str, &bv) == 0)
            fputs(bv ? "true" : "false", out);
        else
            json_string(out, n->str);
        break;
    case SL__NODE_SEQ:
        fputc('[', out);
        for (size_t i = 0; i < n->n; i++) {
            fputs(i ? ", " : "", out);
            json_node(out, n->vals[i]);
        }
        fputc(']', out);
        break;
    case SL__NODE_MAP:
        fputc('{', out);
        for (size_t i = 0; i < n->n; i++) {
            fputs(i ? ", " : "", out);
            json_string(out, n->keys[i]->str);
            fputs(": ", out);
            json_node(out, n->vals[i]);
        }
        fputc('}', out);
        break;
    }
}

static void json_section(FILE *out, struct sl__cx *cx, const struct sl__section *sec, int indent,
                         bool nullable);

/* A scalar's schema; values not free text may also be "${VAR}" strings. */
static void json_scalar(FILE *out, const struct sl__key *k)
{
    if (k->type->text) {
        k->type->json(out, k);
        return;
    }
    fputs("{\"anyOf\": [", out);
    k->type->json(out, k);
    fputs(", {\"$ref\": \"#/$defs/interpolated\"}]}", out);
}

static void json_key(FILE *out, struct sl__cx *cx, const struct sl__key *k, int indent)
{
    const struct sl__node *def = default_of(cx, k);
    fprintf(out, "{\n%*s\"description\": ", indent + 2, "");
    json_string(out, k->doc);
    if (def) {
        fprintf(out, ",\n%*s\"default\": ", indent + 2, "");
        json_node(out, def);
    }
    fprintf(out, ",\n%*s\"allOf\": [", indent + 2, "");
    switch (k->shape) {
    case SL__SCALAR:
        json_scalar(out, k);
        break;
    case SL__LIST:
    case SL__SECTIONS:
        fprintf(out, "{\"type\": [\"array\", \"null\"], \"minItems\": %zu, ", k->min_items);
        if (k->max_items)
            fprintf(out, "\"maxItems\": %zu, ", k->max_items);
        fputs("\"items\": ", out);
        if (k->shape == SL__LIST)
            json_scalar(out, k);
        else
            json_section(out, cx, k->section, indent + 4, false);
        fputc('}', out);
        break;
    case SL__SECTION:
        json_section(out, cx, k->section, indent + 4,
                     !has_required(k->section) || (k->flags & SL__INHERIT));
        break;
    }
    fprintf(out, "]\n%*s}", indent, "");
}

static void json_required(FILE *out, const struct sl__section *sec, int indent)
{
    size_t n = 0;
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct sl__key *k = &sec->keys[i];
        if (!(k->flags & SL__REQUIRED) && !(k->shape == SL__SECTION && has_required(k->section)))
            continue;
        if (n++ == 0)
            fprintf(out, ",\n%*s\"required\": [", indent, "");
        else
            fputs(", ", out);
        fprintf(out, "\"%s\"", k->name);
    }
    if (n)
        fputc(']', out);
}

/* ONEOF keys: exactly one present; `requires`: only with its sibling. */
static void json_constraints(FILE *out, const struct sl__section *sec, int indent)
{
    size_t n = 0;
    for (size_t i = 0; i < sec->nkeys; i++) {
        if (!(sec->keys[i].flags & SL__ONEOF))
            continue;
        if (n++ == 0)
            fprintf(out, ",\n%*s\"oneOf\": [", indent, "");
        else
            fputs(", ", out);
        fprintf(out, "{\"required\": [\"%s\"]}", sec->keys[i].name);
    }
    if (n)
        fputc(']', out);
    n = 0;
    for (size_t i = 0; i < sec->nkeys; i++) {
        if (!sec->keys[i].requires)
            continue;
        if (n++ == 0)
            fprintf(out, ",\n%*s\"dependentRequired\": {", indent, "");
        else
            fputs(", ", out);
        fprintf(out, "\"%s\": [\"%s\"]", sec->keys[i].name, sec->keys[i].requires);
    }
    if (n)
        fputc('}', out);
}

/* `head`: extra members at the start of the object (the root's $schema). */
static void json_object(FILE *out, struct sl__cx *cx, const struct sl__section *sec, int indent,
                        bool nullable, const char *head)
{
    fprintf(out, "{\n%s%*s\"type\": %s,\n%*s\"additionalProperties\": false,\n%*s\"properties\": {",
            head, indent + 2, "", nullable ? "[\"object\", \"null\"]" : "\"object\"", indent + 2,
            "", indent + 2, "");
    for (size_t i = 0; i < sec->nkeys; i++) {
        fprintf(out, "%s\n%*s\"%s\": ", i ? "," : "", indent + 4, "", sec->keys[i].name);
        json_key(out, cx, &sec->keys[i], indent + 4);
    }
    fprintf(out, "\n%*s}", indent + 2, "");
    json_required(out, sec, indent + 2);
    json_constraints(out, sec, indent + 2);
    fprintf(out, "\n%*s}", indent, "");
}

static void json_section(FILE *out, struct sl__cx *cx, const struct sl__section *sec, int indent,
                         bool nullable)
{
    json_object(out, cx, sec, indent, nullable, "");
}

void sl_cfg_print_schema(FILE *out)
{
    struct sl__cx cx = {0};
    json_object(
        out, &cx, &sl__schema_root, 0, false,
        "  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n"
        "  \"title\": \"saltare configuration\",\n"
        "  \"$defs\": {\"interpolated\": {\"type\": \"string\", \"pattern\": \"\\\\$\\\\{\"}},\n");
    fputc('\n', out);
    sl__arena_release(&cx.tmp);
}
