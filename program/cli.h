/*
 * cli: the command line. Parses argv into the config sources (-c files,
 * --set overrides, the quick-start MODULE:ATTR form) and compiles them;
 * the master compiles the same sources again on SIGHUP.
 */
#ifndef SL_PROGRAM_CLI_H
#define SL_PROGRAM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

#define SL_CLI_MAX_ARGS 64 /* -c files and --set overrides, each */

struct sl_cli {
    struct sl_cfg_source sources[SL_CLI_MAX_ARGS + 1];
    size_t nsources;
    const char *sets[SL_CLI_MAX_ARGS];
    size_t nsets;
    const char *target; /* quick start: module:attr */
    const char *host;
    const char *port;
    const char *workers;
    char *quick_yaml; /* heap, sized from the arguments */
    bool test_only, print_config, schema, docs;
};

/* Parses argv (borrowed: it must outlive `cli`). --help and --version print
 * and exit 0. Returns 0, or an exit status after printing the error. */
int sl_cli_parse(struct sl_cli *cli, int argc, char **argv);

/* Prints the usage text to `out`. */
void sl_cli_usage(FILE *out);

/*
 * Compiles the config from the sources. Errors go, one line each
 * (FILE:LINE:COL: message), to stderr (`to_log` false: the command line)
 * or to the error log (`to_log` true: a reload). Returns the config (free
 * with sl_cfg_free) or NULL.
 */
const struct sl_config *sl_cli_load_config(const struct sl_cli *cli, bool to_log);

/* Frees what parsing allocated. */
void sl_cli_release(struct sl_cli *cli);

#endif
