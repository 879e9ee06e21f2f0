/*
 * pidfile: process.pid_file, the master's PID for init scripts and tools.
 *
 * Written after the listeners are bound, atomically (a temporary file in
 * the same directory renamed over the path), so a reader never sees a
 * partial file. One pid file per process: the path is remembered and the
 * file removed at exit of that process (atexit; never by a forked child,
 * never by an exec: a SIGHUP re-exec keeps the PID and writes it again).
 */
#ifndef SL_PROGRAM_PIDFILE_H
#define SL_PROGRAM_PIDFILE_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Writes getpid() to `path` ("1234\n"). A file that already names this
 * process (written before a re-exec) is kept as it is. An existing file is
 * replaced when it names no running process or a process that is not
 * saltare (its /proc/PID/exe has another name: the PID was reused); a
 * running saltare is an error. Returns 0, -EEXIST (another saltare runs),
 * or another negative errno; errors are logged naming the path.
 */
int sl_pidfile_write(const char *path);

/* Removes the file written by sl_pidfile_write if this process wrote it
 * and it still names this process. Called at exit; safe to call again. */
void sl_pidfile_remove(void);

/*
 * Reads the PID in `path`: > 0, 0 when the file does not exist, or a
 * negative errno (-EINVAL: not a PID). Exposed for tests.
 */
long sl_pidfile_read(const char *path);

#ifdef __cplusplus
}
#endif

#endif
