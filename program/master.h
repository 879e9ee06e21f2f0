/*
 * master: the supervising process. There is always one, even with one
 * worker: it binds the listeners, imports the app when app.preload is on,
 * forks the workers, knows each worker's state from the messages they send
 * (server/notify.h), respawns crashed ones with back-off, recycles them
 * (process.max_requests, process.max_rss), and acts on signals:
 *
 *   SIGTERM/SIGINT  drain and stop; a second one kills the workers (exit 1)
 *   SIGHUP          reload by re-exec (program/reload.c)
 *   SIGUSR2         reopen log files (forwarded to the workers)
 *   SIGTTIN/SIGTTOU one worker more / less
 *
 * How a worker process is set up: program/worker_proc.c. The design of the
 * reload, step by step: docs/architecture.md.
 */
#ifndef SL_PROGRAM_MASTER_H
#define SL_PROGRAM_MASTER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "program/cli.h"
#include "program/privdrop.h"
#include "server/listen.h"

#define SL_MASTER_MAX_WORKERS 1024
/* Workers of the current generation, the old one still draining, replacements. */
#define SL_MASTER_MAX_PROCS (3 * SL_MASTER_MAX_WORKERS)

enum sl_wstate {
    SL_W_STARTING, /* forked; no "ready" yet */
    SL_W_READY,    /* lifespan startup done, accepting */
    SL_W_DRAINING, /* told to stop (SIGTERM sent): finishing in-flight work */
};

/* One worker process the master knows about. */
struct sl_wproc {
    pid_t pid;     /* 0 = a free entry */
    unsigned slot; /* "worker K", 1-based */
    unsigned gen;  /* the generation (master image) that forked it */
    enum sl_wstate state;
    uint64_t started_ms, ready_ms; /* CLOCK_MONOTONIC */
    unsigned rss_strikes;          /* consecutive samples over process.max_rss */
    const char *recycle;           /* why it is to be replaced, or NULL */
    bool startup_killed;           /* killed for timeouts.startup */
    pid_t replaces;                /* a recycling replacement: the pid it retires when ready */
};

/* Per worker slot: the respawn schedule. */
struct sl_slot {
    uint64_t respawn_at_ms; /* 0 = nothing scheduled */
    unsigned backoff_ms;    /* the next delay after a crash; reset by a healthy run */
};

#define SL_MASTER_CRASH_RING 64

struct sl_master {
    struct sl_cli *cli;
    char **argv;                  /* a copy of the original argv, for the re-exec */
    char exe[4096];               /* the binary to re-exec (a path: a new file there is used) */
    const struct sl_config *cfg;  /* as compiled; NULL after a re-exec whose config failed */
    const struct sl_config *wcfg; /* what workers serve: &set.cfg (systemd items expanded) */
    struct sl_listen_set set;
    bool have_set;
    bool tls_on;
    bool preload;            /* the app is imported here, before fork */
    struct sl_privdrop priv; /* process.user/group: applied in each worker after fork */
    unsigned gen;
    unsigned target; /* workers wanted */
    int chan[2];     /* the workers' messages: read end, write end */
    struct sl_wproc w[SL_MASTER_MAX_PROCS];
    struct sl_slot slots[SL_MASTER_MAX_WORKERS + 1];
    bool gen_ready;   /* every slot of this generation had a ready worker */
    bool gen_failed;  /* this generation could not start; the old one serves on */
    bool hup_pending; /* SIGHUP while the generation starts: reload once it serves */
    bool stopping;
    bool killed;                /* second signal */
    uint64_t stop_deadline_ms;  /* 0 = none */
    uint64_t reload_started_ms; /* SIGHUP time (before the exec); 0 = first start */
    uint64_t next_rss_ms;
    uint64_t crashes[SL_MASTER_CRASH_RING]; /* times of the last crashes (ring) */
    unsigned ncrashes;
    uint64_t crash_loop_logged_ms;
    int rc;
    sigset_t open; /* the mask to wait with: master signals unblocked */
};

/*
 * Runs the master with `cfg` (takes ownership; NULL only after a re-exec
 * whose config no longer compiles: the adopted workers keep serving until
 * the next SIGHUP). Returns the exit status.
 */
int sl_master_run(struct sl_master *m, const struct sl_config *cfg);

/* Blocks the master's signals and installs their handlers. Call first
 * thing: a signal before that is pending, never lost. Returns 0 or -errno. */
int sl_master_signals(struct sl_master *m);

/* ---- shared between the program files ---------------------------------- */

/* Forks a worker of the current generation into `slot`; `replaces`: the
 * pid it retires once ready (recycling), or 0. Returns the entry or NULL. */
struct sl_wproc *sl__master_spawn(struct sl_master *m, unsigned slot, pid_t replaces);

/* A free entry, zeroed, or NULL. */
struct sl_wproc *sl__master_entry_new(struct sl_master *m);

uint64_t sl__master_now_ms(void);

#endif
