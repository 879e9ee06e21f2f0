/*
 * print: sl_cfg_print(), the effective config as YAML.
 *
 * Every key is printed in schema order, defaults included, in canonical form
 * (sizes and durations in their largest exact unit, strings double-quoted),
 * so the output compiles back to an identical config. A listener's inherited
 * sections print only the keys that differ from the global section: that
 * compiles back to the same values and keeps the output readable.
 */
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

static const void *at(const void *obj, size_t offset)
{
    return (const char *)obj + offset;
}

static int kind_of(const struct sl__section *sec, const void *obj)
{
    return *(const int *)at(obj, sec->kind_offset);
}

static const struct sl__key *sibling(const struct sl__section *sec, const char *name)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (strcmp(sec->keys[i].name, name) == 0)
            return &sec->keys[i];
    return NULL;
}

static bool wanted(const struct sl__section *sec, const struct sl__key *k, const void *obj,
                   const void *base);

/* Whether any key of section obj differs from base (same struct type). */
static bool differs(const struct sl__section *sec, const void *obj, const void *base)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (wanted(sec, &sec->keys[i], obj, base))
            return true;
    return false;
}

/* Two scalar lists with equal items (an inherited one shares the array). */
static bool same_list(const struct sl__key *k, const void *obj, const void *base)
{
    const char *a = *(const char *const *)at(obj, k->offset);
    const char *b = *(const char *const *)at(base, k->offset);
    size_t n = *(const size_t *)at(obj, k->count);
    if (n != *(const size_t *)at(base, k->count))
        return false;
    for (size_t i = 0; a != b && i < n; i++)
        if (!k->type->equal(k, a + i * k->item_size, b + i * k->item_size))
            return false;
    return true;
}

/* Whether key k of obj prints: its kind is the one chosen, and (inside an
 * inherited section, base != NULL) its value differs from the inherited one. */
static bool wanted(const struct sl__section *sec, const struct sl__key *k, const void *obj,
                   const void *base)
{
    if ((k->flags & SL__ONEOF) && kind_of(sec, obj) != k->kind)
        return false;
    if (k->requires) {
        const struct sl__key *s = sibling(sec, k->requires);
        if (s && kind_of(sec, obj) != s->kind)
            return false;
    }
    if (k->flags & SL__INHERIT)
        return false; /* decided by print_section against the global section */
    if (base == NULL)
        return true;
    if (k->shape == SL__SCALAR)
        return !k->type->equal(k, at(obj, k->offset), at(base, k->offset));
    if (k->shape == SL__SECTION)
        return differs(k->section, at(obj, k->offset), at(base, k->offset));
    if (k->shape == SL__LIST)
        return !same_list(k, obj, base);
    return true; /* lists of sections inside inherited sections: always printed */
}

static void print_section(FILE *out, const struct sl_config *cfg, const struct sl__section *sec,
                          const void *obj, const void *base, int indent, bool item);

static void print_list(FILE *out, const struct sl_config *cfg, const struct sl__key *k,
                       const void *obj, int indent)
{
    const char *items = *(const char *const *)at(obj, k->offset);
    size_t n = *(const size_t *)at(obj, k->count);
    if (n == 0) {
        fputs(" []\n", out);
        return;
    }
    if (k->shape == SL__LIST) {
        fputs(" [", out);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : "", out);
            k->type->print(out, k, items + i * k->item_size);
        }
        fputs("]\n", out);
        return;
    }
    fputc('\n', out);
    for (size_t i = 0; i < n; i++)
        print_section(out, cfg, k->section, items + i * k->section->size, NULL, indent + 4, true);
}

static void print_key(FILE *out, const struct sl_config *cfg, const struct sl__key *k,
                      const void *obj, const void *base, int indent)
{
    fprintf(out, "%s:", k->name);
    switch (k->shape) {
    case SL__SCALAR:
        fputc(' ', out);
        k->type->print(out, k, at(obj, k->offset));
        fputc('\n', out);
        break;
    case SL__LIST:
    case SL__SECTIONS:
        print_list(out, cfg, k, obj, indent);
        break;
    case SL__SECTION:
        fputc('\n', out);
        if (k->flags & SL__INHERIT)
            base = at(cfg, k->inherit);
        else
            base = base ? at(base, k->offset) : NULL;
        print_section(out, cfg, k->section, at(obj, k->offset), base, indent + 2, false);
        break;
    }
}

/* Prints the keys of a section at `indent`; a list item's first key gets
 * the "- " in the two columns before it. */
static void print_section(FILE *out, const struct sl_config *cfg, const struct sl__section *sec,
                          const void *obj, const void *base, int indent, bool item)
{
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct sl__key *k = &sec->keys[i];
        if (k->shape == SL__SECTION && k->section->present &&
            !k->section->present(at(obj, k->offset)))
            continue;
        if ((k->flags & SL__INHERIT) && k->shape == SL__SECTIONS) {
            /* an inherited list prints only when the item replaced it */
            if (*(const void *const *)at(obj, k->offset) ==
                    *(const void *const *)at(cfg, k->inherit) &&
                *(const size_t *)at(obj, k->count) ==
                    *(const size_t *)at(cfg, k->inherit + (k->count - k->offset)))
                continue;
        } else if (k->flags & SL__INHERIT) {
            if (!differs(k->section, at(obj, k->offset), at(cfg, k->inherit)))
                continue;
        } else if (!wanted(sec, k, obj, base)) {
            continue;
        }
        if (item) {
            fprintf(out, "%*s- ", indent - 2, "");
            item = false;
        } else {
            fprintf(out, "%*s", indent, "");
        }
        print_key(out, cfg, k, obj, base, indent);
    }
}

void sl_cfg_print(const struct sl_config *cfg, FILE *out)
{
    print_section(out, cfg, &sl__schema_root, cfg, NULL, 0, false);
}
