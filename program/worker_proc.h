/*
 * worker_proc: one worker process, from fork to exit. It sets up its
 * process state (own process group, dies with the master, title, signals),
 * imports the app unless the master preloaded it, then serves
 * (python/bridge.h): lifespan startup, "ready" to the master, requests,
 * drain on SIGTERM.
 */
#ifndef SL_PROGRAM_WORKER_PROC_H
#define SL_PROGRAM_WORKER_PROC_H

#include <sys/types.h>

#include "program/master.h"

/* In the child, right after fork. Never returns: exits with the worker's
 * status (program/exit.h). */
_Noreturn void sl_worker_proc_run(struct sl_master *m, unsigned slot, pid_t master);

#endif
