/*
 * main: argv -> config -> the master. The program layer is the only one
 * that knows config/, server/ and python/ (the layers and a request's path
 * through the files: docs/architecture.md). Where things happen:
 *
 *   program/cli.c          the command line, compiling the config
 *   program/master.c       supervising the workers, signals, stop
 *   program/reload.c       SIGHUP: reload by re-exec
 *   program/worker_proc.c  one worker process, from fork to exit
 *   program/proctitle.c    what ps shows
 *   program/exit.h         the exit statuses
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "config/config.h"
#include "program/cli.h"
#include "program/exit.h"
#include "program/master.h"
#include "program/proctitle.h"
#include "program/reload.h"
#include "server/notify.h"

#define LOG_DRAIN_MS 2000 /* at exit, how long a slow log consumer may hold us */

/* A copy of argv: the original strings become the process title, and the
 * copy is what a reload re-executes with. */
static char **argv_copy(int argc, char **argv)
{
    char **copy = calloc((size_t)argc + 1, sizeof(*copy));
    for (int i = 0; copy && i < argc; i++)
        if ((copy[i] = strdup(argv[i])) == NULL)
            return NULL; /* exiting: nothing to free */
    return copy;
}

/* The master's logging: level and file (SIGUSR2 reopens it). */
static int log_setup(const struct sl_config *cfg)
{
    sl_log_set_level(cfg->log.level);
    if (strcmp(cfg->log.error, "stderr") != 0 && sl_log_open_error(cfg->log.error) < 0)
        return -1;
    return 0;
}

static int serve_with(struct sl_master *m, struct sl_cli *cli, int argc, char **argv)
{
    const struct sl_config *cfg;
    bool reexec;
    int err, rc;

    /* First: a SIGTERM from now on waits, pending, for the master's loop. */
    if ((rc = sl_master_signals(m)) < 0) {
        fprintf(stderr, "saltare: cannot set up the master's signals: %s\n", strerror(-rc));
        return SL_EXIT_FAILURE;
    }
    reexec = sl_reload_adopt(m, &err);
    if (err < 0)
        return SL_EXIT_FAILURE;
    sl_proctitle_init(argc, argv);
    /* After a re-exec the errors go to the log, the old workers serve on. */
    cfg = sl_cli_load_config(cli, reexec);
    if (cfg == NULL && !reexec)
        return SL_EXIT_CONFIG;
    if (cfg != NULL && log_setup(cfg) < 0 && !reexec) {
        sl_cfg_free(cfg);
        return SL_EXIT_FAILURE;
    }
    sl_notify_init();
    rc = sl_master_run(m, cfg);
    sl_cfg_free(cfg);
    return rc;
}

static int serve(struct sl_cli *cli, int argc, char **argv, char **args)
{
    struct sl_master *m = calloc(1, sizeof(*m));
    int rc;

    if (m == NULL) {
        perror("saltare");
        return SL_EXIT_FAILURE;
    }
    m->cli = cli;
    m->argv = args;
    rc = serve_with(m, cli, argc, argv);
    free(m);
    return rc;
}

static void args_free(int argc, char **args)
{
    for (int i = 0; args && i < argc; i++)
        free(args[i]);
    free(args);
}

int main(int argc, char **argv)
{
    struct sl_cli cli = {0};
    const struct sl_config *cfg;
    char **args;
    int rc;

    if (argc == 1) {
        sl_cli_usage(stderr);
        return SL_EXIT_CONFIG;
    }
    if ((args = argv_copy(argc, argv)) == NULL) {
        perror("saltare");
        return SL_EXIT_FAILURE;
    }
    if ((rc = sl_cli_parse(&cli, argc, args)) != 0) {
        /* nothing */
    } else if (cli.schema) {
        sl_cfg_print_schema(stdout);
    } else if (cli.docs) {
        sl_cfg_print_docs(stdout);
    } else if (cli.print_config || cli.test_only) {
        if ((cfg = sl_cli_load_config(&cli, false)) == NULL) {
            rc = SL_EXIT_CONFIG;
        } else {
            if (cli.print_config)
                sl_cfg_print(cfg, stdout);
            else
                printf("configuration OK\n");
            sl_cfg_free(cfg);
        }
    } else {
        rc = serve(&cli, argc, argv, args);
    }
    sl_cli_release(&cli);
    args_free(argc, args);
    sl_log_drain(LOG_DRAIN_MS);
    return rc;
}
