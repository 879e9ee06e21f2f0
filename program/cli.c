/*
 * cli: argv -> config sources -> a compiled config.
 */
#include "program/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "program/exit.h"
#include "program/version.h"
#include "server/tls.h"

static const char usage[] =
    "usage: saltare -c FILE [-c OVERLAY]... [--set KEY=VALUE]... [-t | --print-config]\n"
    "       saltare MODULE:ATTR [--host HOST] [--port PORT] [--workers N] [--set KEY=VALUE]...\n"
    "       saltare --schema | --version | --help\n"
    "\n"
    "  -c, --config FILE   YAML config; repeat to overlay (maps merge, scalars and\n"
    "                      lists replace)\n"
    "  --set KEY=VALUE     override one key after all files (listeners.0.tcp=:9000)\n"
    "  -t, --test          compile and check the config, print \"configuration OK\"\n"
    "                      or the errors; exit 0 or 78. Binds nothing.\n"
    "  --print-config      print the effective merged config (every key) as YAML\n"
    "  --schema            print the config's JSON Schema\n"
    "  --host HOST         quick start: listen address (default 127.0.0.1)\n"
    "  --port PORT         quick start: listen port (default 8000)\n"
    "  --workers N         quick start: worker processes (0 = one per CPU)\n"
    "  -V, --version       print the version\n"
    "  -h, --help          print this help\n"
    "\n"
    "Signals to the master: SIGTERM/SIGINT drain and stop (a second one stops at once),\n"
    "SIGHUP reloads (new config, app code and binary; old workers serve until the new\n"
    "ones are ready), SIGUSR2 reopens log files, SIGTTIN/SIGTTOU one worker more/less.\n"
    "\n"
    "Exit status: 0 clean, 78 config error, 3 app startup failure, 1 otherwise.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "saltare: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see saltare --help)\n");
    return SL_EXIT_CONFIG;
}

/* Takes the value of an option given as "--opt VALUE" or "--opt=VALUE". */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc)
        return "";
    return argv[++*i];
}

static int parse_args(struct sl_cli *cli, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if ((v = opt_value(argc, argv, &i, "-c")) || (v = opt_value(argc, argv, &i, "--config"))) {
            if (*v == '\0')
                return usage_error("%s needs a file", a);
            if (cli->nsources == SL_CLI_MAX_ARGS)
                return usage_error("too many %s files", "-c");
            cli->sources[cli->nsources++] = (struct sl_cfg_source){.name = v};
        } else if ((v = opt_value(argc, argv, &i, "--set"))) {
            if (strchr(v, '=') == NULL)
                return usage_error("--set needs KEY=VALUE, got \"%s\"", v);
            if (cli->nsets == SL_CLI_MAX_ARGS)
                return usage_error("too many %s overrides", "--set");
            cli->sets[cli->nsets++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--host"))) {
            cli->host = v;
        } else if ((v = opt_value(argc, argv, &i, "--port"))) {
            cli->port = v;
        } else if ((v = opt_value(argc, argv, &i, "--workers"))) {
            cli->workers = v;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--test")) {
            cli->test_only = true;
        } else if (!strcmp(a, "--print-config")) {
            cli->print_config = true;
        } else if (!strcmp(a, "--schema")) {
            cli->schema = true;
        } else if (!strcmp(a, "--docs")) {
            cli->docs = true; /* regenerates docs/config.md; not in --help */
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("saltare %s\n", SL_VERSION);
            exit(SL_EXIT_OK);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(SL_EXIT_OK);
        } else if (a[0] == '-') {
            return usage_error("unknown option \"%s\"", a);
        } else if (cli->target == NULL) {
            cli->target = a;
        } else {
            return usage_error("unexpected argument \"%s\"", a);
        }
    }
    return 0;
}

/*
 * Appends `s` YAML-escaped for a double-quoted scalar at p and returns the
 * new end: '"' and '\\' get a backslash, other control bytes become \xNN so
 * they reach the config compiler (and its error message) unchanged. At most
 * 4 * strlen(s) bytes.
 */
static char *yaml_escape(char *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *p++ = '\\', *p++ = 'x', *p++ = hex[c >> 4], *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

static char *put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/*
 * Quick start: `saltare main:app --port 8000` becomes an in-memory YAML
 * document merged after any -c files, so it builds the very same structs as
 * the equivalent file would. The buffer is sized from the arguments (each
 * escapes to at most 4x its length), so no argument is ever cut.
 */
static int add_quick_start(struct sl_cli *cli)
{
    const char *host = cli->host ? cli->host : "127.0.0.1";
    const char *port = cli->port ? cli->port : "8000";
    const char *workers = cli->workers ? cli->workers : "";
    bool bracket = strchr(host, ':') && host[0] != '[';
    char *p;

    if (!cli->target) {
        if (cli->host || cli->port || cli->workers)
            return usage_error("%s needs MODULE:ATTR", "--host/--port/--workers");
        return 0;
    }
    cli->quick_yaml =
        malloc(4 * (strlen(cli->target) + strlen(host) + strlen(port) + strlen(workers)) + 128);
    if (cli->quick_yaml == NULL) {
        perror("saltare");
        return SL_EXIT_FAILURE;
    }
    /* Like `python -m`, the quick start imports from the working directory. */
    p = put(cli->quick_yaml, "app:\n  target: \"");
    p = yaml_escape(p, cli->target);
    p = put(p, "\"\n  path: [\".\"]\nlisteners:\n  - tcp: \"");
    p = put(p, bracket ? "[" : "");
    p = yaml_escape(p, host);
    p = put(p, bracket ? "]:" : ":");
    p = yaml_escape(p, port);
    p = put(p, "\"\n");
    if (cli->workers) {
        p = put(p, "workers: \"");
        p = yaml_escape(p, workers);
        p = put(p, "\"\n");
    }
    *p = '\0';
    cli->sources[cli->nsources++] =
        (struct sl_cfg_source){.name = "<command line>", .text = cli->quick_yaml};
    return 0;
}

const struct sl_config *sl_cli_load_config(const struct sl_cli *cli, bool to_log)
{
    struct sl_diags d;
    struct sl_cfg_input in = {
        .sources = cli->sources,
        .nsources = cli->nsources,
        .sets = cli->sets,
        .nsets = cli->nsets,
        .check_files = cli->test_only,
        .check_tls = sl_tls_check, /* -t: certs and keys load and match */
    };
    const struct sl_config *cfg;

    sl_diags_init(&d);
    cfg = sl_cfg_load(&in, &d);
    if (cfg == NULL && !to_log) {
        sl_diags_print(&d, stderr);
    } else if (cfg == NULL) {
        for (size_t i = 0; i < d.count; i++)
            sl_log(SL_LOG_ERROR, "%s", d.items[i].text);
        if (d.dropped)
            sl_log(SL_LOG_ERROR, "(%zu more errors)", d.dropped);
    }
    sl_diags_release(&d);
    return cfg;
}

int sl_cli_parse(struct sl_cli *cli, int argc, char **argv)
{
    int rc = parse_args(cli, argc, argv);
    if (rc == 0 && !cli->schema && !cli->docs)
        rc = add_quick_start(cli);
    if (rc == 0 && !cli->schema && !cli->docs && cli->nsources == 0)
        rc = usage_error("%s", "nothing to serve: give -c FILE or MODULE:ATTR");
    return rc;
}

void sl_cli_usage(FILE *out)
{
    fputs(usage, out);
}

void sl_cli_release(struct sl_cli *cli)
{
    free(cli->quick_yaml);
    cli->quick_yaml = NULL;
}
