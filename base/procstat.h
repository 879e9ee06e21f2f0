/*
 * procstat: what /proc says about a process, for the master's recycling
 * (process.max_rss), the metrics page and SIGUSR1's stats lines.
 */
#ifndef SL_BASE_PROCSTAT_H
#define SL_BASE_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Resident set size of `pid` (0 = this process) in bytes, from
 * /proc/PID/statm; 0 when unknown (the process is gone). */
uint64_t sl_proc_rss(pid_t pid);

#ifdef __cplusplus
}
#endif

#endif
