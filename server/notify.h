/*
 * notify: the systemd notification protocol (sd_notify(3)), without
 * libsystemd: datagrams of "KEY=VALUE\n" lines sent to $NOTIFY_SOCKET.
 *
 * Only the main process talks to systemd (the default NotifyAccess=main).
 * With forked workers, each worker reports "lifespan startup done" to the
 * master over a pipe, and the master says READY=1 once all have.
 */
#ifndef SL_SERVER_NOTIFY_H
#define SL_SERVER_NOTIFY_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Reads and unsets NOTIFY_SOCKET (a path, or "@abstract"), opens the
 * socket. `workers` > 0: workers will be forked and report through a pipe
 * (sl_notify_pipe_fd). Without NOTIFY_SOCKET every call is a no-op apart
 * from the pipe. Returns 0 or -errno (logged).
 */
int sl_notify_init(unsigned workers);

/* Sends `msg` (lines "KEY=VALUE", no trailing newline needed) from the
 * main process; ignored in workers and without NOTIFY_SOCKET. */
void sl_notify(const char *msg);

/* In a forked worker, right after fork: it no longer speaks to systemd. */
void sl_notify_forked(void);

/* A worker finished lifespan startup and accepts connections. In the main
 * process (single worker) this sends READY=1; in a forked worker it tells
 * the master. */
void sl_notify_worker_ready(void);

/* Master: the read end of the workers' pipe (-1 without forked workers),
 * and what to do when it is readable: counts ready workers, READY=1 when
 * all of them are. */
int sl_notify_pipe_fd(void);
void sl_notify_collect(void);

/* Drain started: STOPPING=1 (main process only, once). */
void sl_notify_stopping(void);

#ifdef __cplusplus
}
#endif

#endif
