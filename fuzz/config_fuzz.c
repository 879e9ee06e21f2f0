/*
 * libFuzzer target for the config compiler: tools/fuzz.sh config [SECONDS]
 *
 * The input is one in-memory YAML source. Comment lines "#set KEY=VALUE" in
 * it are also passed as --set arguments, so the overrides are fuzzed too.
 * Beyond "no crash, no leak, no UB", every config that compiles must print
 * to YAML that compiles again and prints identically (the --print-config
 * round trip); a difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define MAX_SETS 8

static const char *fake_getenv(const char *name)
{
    static const struct {
        const char *name, *value;
    } env[] = {
        {"PORT", "8000"}, {"EMPTY", ""},      {"HOST", "[::1]"}, {"BAD_UTF8", "\xff\xfe"},
        {"NL", "a\nb"},   {"DOLLAR", "${X}"}, {"SIZE", "1MiB"},  {"QUOTE", "\"'\\"},
    };
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
        if (strcmp(name, env[i].name) == 0)
            return env[i].value;
    return NULL;
}

/* Collects "#set ..." lines (pointers into text, lines NUL-terminated in a copy). */
static size_t find_sets(char *copy, const char **sets)
{
    size_t n = 0;
    for (char *line = copy; line && n < MAX_SETS;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "#set ", 5) == 0)
            sets[n++] = line + 5;
        line = nl ? nl + 1 : NULL;
    }
    return n;
}

static char *print_config(const struct sl_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    sl_cfg_print(cfg, f);
    fclose(f);
    return buf;
}

static const struct sl_config *load(const char *text, const char *const *sets, size_t nsets)
{
    struct sl_cfg_source src = {.name = "fuzz.yaml", .text = text};
    struct sl_cfg_input in = {
        .sources = &src,
        .nsources = 1,
        .sets = sets,
        .nsets = nsets,
        .getenv_fn = fake_getenv,
    };
    struct sl_diags d;
    sl_diags_init(&d);
    const struct sl_config *cfg = sl_cfg_load(&in, &d);
    if (cfg == NULL && d.count == 0)
        abort(); /* a failure must say why */
    for (size_t i = 0; i < d.count; i++)
        if (strchr(d.items[i].text, '\n'))
            abort(); /* one line per error */
    sl_diags_release(&d);
    return cfg;
}

static void check_round_trip(const struct sl_config *cfg)
{
    char *first = print_config(cfg);
    const struct sl_config *again = load(first, NULL, 0);
    if (again == NULL) {
        fprintf(stderr, "printed config does not compile:\n%s", first);
        abort();
    }
    char *second = print_config(again);
    if (strcmp(first, second) != 0) {
        fprintf(stderr, "print round trip differs:\n%s\n---\n%s", first, second);
        abort();
    }
    free(second);
    sl_cfg_free(again);
    free(first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sets[MAX_SETS];
    sl_log_set_level(SL_LOG_ERROR); /* warnings (unreachable routes) would flood */
    char *text = malloc(size + 1), *copy = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    memcpy(copy, text, size + 1);
    size_t nsets = find_sets(copy, sets);

    const struct sl_config *cfg = load(text, sets, nsets);
    if (cfg)
        check_round_trip(cfg);
    sl_cfg_free(cfg);
    free(copy);
    free(text);
    return 0;
}
