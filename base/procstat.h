/*
 * procstat: what /proc says about a process, for the master's recycling
 * (process.max_rss), the metrics page and SIGUSR1's stats lines; and
 * giving back the text pages startup touched.
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

/*
 * Drops this process's page-table entries for the executable's read-only
 * segments (text, rodata), so that code run only at startup stops counting
 * in its Pss; what runs again is faulted back from the page cache. Skipped
 * under a debugger. Shared libraries are left alone.
 */
void sl_proc_release_text(void);

#ifdef __cplusplus
}
#endif

#endif
