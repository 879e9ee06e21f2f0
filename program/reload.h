/*
 * reload: what happens on SIGHUP. The master re-executes itself, keeping
 * its pid, its listening sockets and its workers:
 *
 *  1. compile the config again from the same -c/--set arguments; errors are
 *     logged (FILE:LINE:COL) and nothing changes;
 *  2. RELOADING=1 to systemd; the listening sockets, bound for the new
 *     config's new listeners too, are made inheritable and described in
 *     SALTARE_LISTEN_FDS (server/listen.h); the workers' message pipe and
 *     the table of live workers (pid, slot, generation, state) go into
 *     SALTARE_MASTER; the metrics registry's memfd into SALTARE_METRICS_FD
 *     (server/metrics.h: the counters go on); exec of the binary's path (a new file there is the
 *     upgrade path). If exec fails, everything is undone and logged;
 *  3. the new image (sl_reload_adopt) takes the old workers over as its
 *     children of generation N-1, starts generation N, and only when all of
 *     them are ready tells the old ones to drain (program/master.c). If
 *     generation N fails to start, the old one serves on.
 *
 * The full design: docs/architecture.md, "Reload".
 */
#ifndef SL_PROGRAM_RELOAD_H
#define SL_PROGRAM_RELOAD_H

#include <stdbool.h>

#include "program/master.h"

#define SL_RELOAD_ENV "SALTARE_MASTER"

/* SIGHUP. Returns only when the reload did not happen (config errors, exec
 * failure, all logged): the current generation keeps serving. */
void sl_reload(struct sl_master *m);

/*
 * At start: takes over the state a previous image left in SALTARE_MASTER
 * (and unsets it): the message pipe, the workers, the generation, the path
 * of the binary. Returns true for a re-exec; false for a first start, after
 * creating the pipe (m->gen 1). Returns false with *err set when the state
 * is unusable (logged).
 */
bool sl_reload_adopt(struct sl_master *m, int *err);

#endif
