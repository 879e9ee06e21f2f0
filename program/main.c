/*
 * main: argv -> config -> listeners -> workers -> run. The program layer:
 * the only file that knows config/, server/ and python/ (the layers and a
 * request's path through the files: docs/architecture.md).
 *
 * Exit codes: 0 clean, 78 config error (EX_CONFIG), 3 app startup failure,
 * 1 otherwise.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "python/bridge.h"
#include "program/pidfile.h"
#include "program/privdrop.h"
#include "server/listen.h"
#include "base/log.h"
#include "server/notify.h"
#include "server/tls.h"

#define SL_VERSION "0.1.0"
#define MAX_ARGS 64       /* -c files and --set overrides, each */
#define LOG_DRAIN_MS 2000 /* at exit, how long a slow log consumer may hold us */

struct cli {
    struct sl_cfg_source sources[MAX_ARGS + 1];
    size_t nsources;
    const char *sets[MAX_ARGS];
    size_t nsets;
    const char *target; /* quick start: module:attr */
    const char *host;
    const char *port;
    const char *workers;
    char *quick_yaml; /* heap, sized from the arguments */
    bool test_only, print_config, schema, docs;
};

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
    "Exit status: 0 clean, 78 config error, 3 app startup failure, 1 otherwise.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "saltare: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see saltare --help)\n");
    return SL_EX_CONFIG;
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

static int parse_args(struct cli *cli, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if ((v = opt_value(argc, argv, &i, "-c")) || (v = opt_value(argc, argv, &i, "--config"))) {
            if (*v == '\0')
                return usage_error("%s needs a file", a);
            if (cli->nsources == MAX_ARGS)
                return usage_error("too many %s files", "-c");
            cli->sources[cli->nsources++] = (struct sl_cfg_source){.name = v};
        } else if ((v = opt_value(argc, argv, &i, "--set"))) {
            if (strchr(v, '=') == NULL)
                return usage_error("--set needs KEY=VALUE, got \"%s\"", v);
            if (cli->nsets == MAX_ARGS)
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
            exit(0);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
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
static int add_quick_start(struct cli *cli)
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
        return 1;
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

static const struct sl_config *load_config(const struct cli *cli)
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
    if (cfg == NULL)
        sl_diags_print(&d, stderr);
    sl_diags_release(&d);
    return cfg;
}

/* process.raise_nofile: the soft fd limit up to the hard one. */
static void raise_nofile(const struct sl_config *cfg)
{
    struct rlimit rl;
    if (!cfg->process.raise_nofile || getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
        rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        sl_log(SL_LOG_WARNING, "process.raise_nofile: %s", strerror(errno));
    else
        sl_log(SL_LOG_INFO, "open file limit raised from %llu to %llu", (unsigned long long)was,
               (unsigned long long)rl.rlim_max);
}

static void announce(const struct sl_config *cfg, unsigned workers)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct sl_listener_config *l = &cfg->listeners[i];
        const char *label = l->label ? l->label : "";
        if (l->kind == SL_LISTENER_TCP)
            sl_log(SL_LOG_INFO, "serving %s on %s://%s%s%s%s", cfg->app.target,
                   l->tls.cert ? "https" : "http", l->name, *label ? " (" : "", label,
                   *label ? ")" : "");
        else
            sl_log(SL_LOG_INFO, "serving %s on unix:%s%s%s%s", cfg->app.target, l->path,
                   *label ? " (" : "", label, *label ? ")" : "");
    }
    sl_log(SL_LOG_INFO, "%u worker%s", workers, workers == 1 ? "" : "s");
}

/* ---- multi-worker master ------------------------------------------------ */

static volatile sig_atomic_t stop_signals;
static volatile sig_atomic_t reopen_signals; /* SIGUSR2: workers reopen their logs */

static void on_reopen_signal(int sig)
{
    (void)sig;
    reopen_signals++;
    sl_log_reopen_request(); /* the master's own error-log file */
}

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_signals++;
}

/* Only there so that sigsuspend() returns when a worker exits. */
static void on_child(int sig)
{
    (void)sig;
}

/*
 * The master keeps SIGTERM, SIGINT and SIGCHLD blocked and takes them only
 * inside sigsuspend()/ppoll(), so a signal can never land between checking
 * stop_signals and going to sleep (it would be forwarded to nobody). Forked
 * workers inherit the block: a signal sent to a worker before the bridge
 * installed its handlers stays pending instead of being lost to the
 * master's handler or killing the worker. Each handler runs with all three
 * blocked, so none interrupts another. *open receives the mask to wait
 * with. Returns 0 or -errno (logged).
 */
static int master_signals(sigset_t *open)
{
    struct sigaction stop = {.sa_handler = on_stop_signal}, child = {.sa_handler = on_child},
                     reopen = {.sa_handler = on_reopen_signal};
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGUSR2);
    stop.sa_mask = child.sa_mask = reopen.sa_mask = set;
    if (sigprocmask(SIG_BLOCK, &set, open) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
        sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGCHLD, &child, NULL) < 0 ||
        sigaction(SIGUSR2, &reopen, NULL) < 0) {
        int err = errno;
        sl_log(SL_LOG_ERROR, "cannot set up the master's signals: %s", strerror(err));
        return -err;
    }
    sigdelset(open, SIGTERM);
    sigdelset(open, SIGINT);
    sigdelset(open, SIGCHLD);
    sigdelset(open, SIGUSR2);
    return 0;
}

/* Sleeps `ms` milliseconds, less if a stop signal comes. */
static void backoff_sleep(unsigned ms, const sigset_t *open)
{
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L)
        end.tv_sec++, end.tv_nsec -= 1000000000L;
    while (!stop_signals) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct timespec left = {end.tv_sec - now.tv_sec, end.tv_nsec - now.tv_nsec};
        if (left.tv_nsec < 0)
            left.tv_sec--, left.tv_nsec += 1000000000L;
        if (left.tv_sec < 0)
            return;
        ppoll(NULL, 0, &left, open); /* any signal ends it early: look again */
    }
}

static void forward_signal(const pid_t *pids, unsigned n, int sig)
{
    for (unsigned i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], sig);
}

/*
 * A fresh worker's process state. The group and the parent-death signal are
 * best effort (a failure is logged: the worker still serves, it only loses
 * that protection); the signal dispositions are not: a worker that cannot
 * set them exits 1.
 */
static int worker_main(const struct sl_config *cfg, const int *fds, pid_t master)
{
    sigset_t child;

    /* Its own process group: a Ctrl-C at the terminal reaches only the
     * master, which forwards one SIGTERM (two would mean "abort"). */
    if (setpgid(0, 0) < 0)
        sl_log(SL_LOG_WARNING, "setpgid: %s; a terminal Ctrl-C also reaches this worker",
               strerror(errno));
    sl_notify_forked();
    /* A master killed outright (SIGKILL, a crash) must not leave orphans
     * serving on its sockets: they drain as if it had sent SIGTERM. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        sl_log(SL_LOG_WARNING, "prctl(PR_SET_PDEATHSIG): %s; this worker outlives a killed master",
               strerror(errno));
    if (getppid() != master)
        raise(SIGTERM); /* it died before prctl: pending until handled */
    /* Not the master's handlers. SIGTERM and SIGINT stay blocked (pending,
     * never lost) until the bridge installs its own; SIGCHLD is the app's. */
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    if (signal(SIGTERM, SIG_DFL) == SIG_ERR || signal(SIGINT, SIG_DFL) == SIG_ERR ||
        signal(SIGCHLD, SIG_DFL) == SIG_ERR || sigprocmask(SIG_UNBLOCK, &child, NULL) < 0) {
        sl_log(SL_LOG_ERROR, "worker signals: %s", strerror(errno));
        return 1;
    }
    return sl_py_serve(cfg, fds);
}

/* Forks one worker into pids[i]. Returns 0 or -errno. */
static int spawn(const struct sl_config *cfg, const int *fds, pid_t *pids, unsigned i)
{
    pid_t master = getpid();
    pid_t pid = sl_py_fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int rc = worker_main(cfg, fds, master);
        sl_log_drain(LOG_DRAIN_MS);
        _exit(rc);
    }
    pids[i] = pid;
    return 0;
}

/* Records a reaped worker; returns its slot or -1. */
static int reap(pid_t *pids, unsigned n, pid_t pid)
{
    for (unsigned i = 0; i < n; i++)
        if (pids[i] == pid) {
            pids[i] = 0;
            return (int)i;
        }
    return -1;
}

/* Sleeps until a signal, or until a worker reports it is ready (sd_notify). */
static void wait_event(const sigset_t *open)
{
    struct pollfd pfd = {.fd = sl_notify_pipe_fd(), .events = POLLIN};
    if (pfd.fd < 0) {
        sigsuspend(open);
        return;
    }
    if (ppoll(&pfd, 1, NULL, open) > 0)
        sl_notify_collect();
}

/*
 * Runs N workers until a stop signal drains them. A worker that dies
 * unexpectedly is respawned after a back-off that doubles while it keeps
 * crashing (up to 10 s); each crash is reported. The first worker exit status
 * other than 0 that happens during startup (3: app failed) stops everything.
 */
static int supervise(const struct sl_config *cfg, const int *fds, unsigned n)
{
    pid_t pids[1024] = {0};
    unsigned alive = 0, backoff_ms = 100;
    int rc = 0, forwarded = 0, reopened = 0;
    sigset_t open;

    if (master_signals(&open) < 0)
        return 1;
    for (unsigned i = 0; i < n; i++) {
        if (spawn(cfg, fds, pids, i) < 0) {
            perror("saltare: fork");
            stop_signals = 1;
            break;
        }
        alive++;
    }
    while (alive > 0) {
        int status;
        pid_t pid;
        if (stop_signals)
            sl_notify_stopping();
        while (forwarded < stop_signals)
            forward_signal(pids, n, SIGTERM), forwarded++; /* 2nd: workers abort */
        while (reopened < reopen_signals)
            forward_signal(pids, n, SIGUSR2), reopened++; /* log reopen */
        pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0) {
            wait_event(&open); /* a stop signal, a worker exit or a worker ready */
            continue;
        }
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        int slot = reap(pids, n, pid);
        if (slot < 0)
            continue;
        alive--;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (stop_signals) {
            if (code != 0 && rc == 0)
                rc = code;
            continue;
        }
        if (code == SL_EX_APP) {
            sl_log(SL_LOG_ERROR, "worker %d failed to start the app; stopping", (int)pid);
            rc = SL_EX_APP;
            stop_signals = 1;
            continue;
        }
        sl_log(SL_LOG_ERROR, "worker %d exited with status %d; respawning in %u ms", (int)pid, code,
               backoff_ms);
        backoff_sleep(backoff_ms, &open);
        backoff_ms = backoff_ms < 10000 ? backoff_ms * 2 : 10000;
        if (!stop_signals && spawn(cfg, fds, pids, (unsigned)slot) == 0)
            alive++;
    }
    return rc;
}

static int serve(const struct sl_config *cfg)
{
    struct sl_listen_set set;
    int *fds, rc;
    unsigned workers = cfg->workers;

    if (workers == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        workers = ncpu > 0 ? (unsigned)ncpu : 1;
    }
    if (workers > 1024)
        workers = 1024;
    sl_log_set_level(cfg->log.level);
    if (strcmp(cfg->log.error, "stderr") != 0 && sl_log_open_error(cfg->log.error) < 0)
        return 1;
    /* SIGUSR2 (log reopen) before anything listens: a rotation racing the
     * start must not kill us. The master later forwards it instead. */
    if (sl_log_reopen_on(SIGUSR2) < 0)
        sl_log(SL_LOG_WARNING, "cannot handle SIGUSR2: %s", strerror(errno));
    raise_nofile(cfg);
    if (sl_listen_open_all(cfg, &set) < 0)
        return 1;
    cfg = &set.cfg; /* systemd items expanded to the sockets passed */
    fds = set.fds;
    if (cfg->process.pid_file && (rc = 1) && sl_pidfile_write(cfg->process.pid_file) < 0)
        goto out_close;
    if (sl_tls_init(cfg) < 0) { /* before fork: workers share ticket keys */
        rc = SL_EX_CONFIG;
        goto out_close;
    }
    /* Bound and keys read, the app not yet imported. No such user: 78. */
    if ((rc = sl_privdrop(cfg)) < 0) {
        rc = rc == -ENOENT ? SL_EX_CONFIG : 1;
        goto out_close;
    }
    sl_notify_init(workers == 1 ? 0 : workers);
    sl_notify("STATUS=starting: importing the app");
    rc = sl_py_init(cfg);
    if (rc != 0)
        goto out_close;
    announce(cfg, workers);
    rc = workers == 1 ? sl_py_serve(cfg, fds) : supervise(cfg, fds, workers);
    sl_py_fini();
out_close:
    sl_tls_fini();
    sl_listen_close_set(&set);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    const struct sl_config *cfg;
    int rc;

    if (argc == 1) {
        fputs(usage, stderr);
        return SL_EX_CONFIG;
    }
    if ((rc = parse_args(&cli, argc, argv)) != 0)
        return rc;
    if (cli.schema) {
        sl_cfg_print_schema(stdout);
        return 0;
    }
    if (cli.docs) {
        sl_cfg_print_docs(stdout);
        return 0;
    }
    if ((rc = add_quick_start(&cli)) != 0)
        return rc;
    if (cli.nsources == 0)
        return usage_error("%s", "nothing to serve: give -c FILE or MODULE:ATTR");
    cfg = load_config(&cli);
    if (cfg == NULL) {
        free(cli.quick_yaml);
        return SL_EX_CONFIG;
    }
    if (cli.print_config) {
        sl_cfg_print(cfg, stdout);
        rc = 0;
    } else if (cli.test_only) {
        printf("configuration OK\n");
        rc = 0;
    } else {
        rc = serve(cfg);
    }
    sl_cfg_free(cfg);
    free(cli.quick_yaml);
    sl_log_drain(LOG_DRAIN_MS);
    return rc;
}
