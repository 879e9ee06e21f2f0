/*
 * notify: the two ways a process reports its state.
 *
 * To systemd: the notification protocol (sd_notify(3)) without libsystemd,
 * datagrams of "KEY=VALUE\n" lines sent to $NOTIFY_SOCKET. Only the master
 * talks to systemd (the default NotifyAccess=main).
 *
 * To the master: each worker writes fixed-size messages (struct
 * sl_notify_msg) to a pipe the master reads. Messages are smaller than
 * PIPE_BUF, so the writes of several workers never interleave. The pipe
 * is created by the master (program/) and survives its re-exec on SIGHUP,
 * so a message an old worker writes during the exec is read by the new
 * image.
 */
#ifndef SL_SERVER_NOTIFY_H
#define SL_SERVER_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sl_notify_what {
    SL_NOTIFY_READY = 1,   /* lifespan startup done, accepting */
    SL_NOTIFY_RECYCLE = 2, /* process.max_requests reached: replace me */
};

/* One worker -> master message. */
struct sl_notify_msg {
    int32_t pid;
    int32_t what; /* enum sl_notify_what */
};

/*
 * Reads and unsets NOTIFY_SOCKET (a path, or "@abstract"), opens the
 * socket. Without NOTIFY_SOCKET every systemd call is a no-op. Returns 0
 * or -errno (logged).
 */
int sl_notify_init(void);

/* Puts NOTIFY_SOCKET back into the environment, for a re-exec of the
 * master (the new image calls sl_notify_init again). */
void sl_notify_export(void);

/* Sends `msg` (lines "KEY=VALUE", no trailing newline needed) from the
 * master; ignored in workers and without NOTIFY_SOCKET. */
void sl_notify(const char *msg);

/* In a forked worker, right after fork: it no longer speaks to systemd;
 * it reports to the master on `channel_fd` (the write end of the pipe;
 * -1 = nobody to tell). */
void sl_notify_forked(int channel_fd);

/* A worker finished lifespan startup and accepts connections. */
void sl_notify_worker_ready(void);

/* A worker reached process.max_requests and asks to be replaced. */
void sl_notify_worker_recycle(void);

/* Master: all workers are ready: READY=1 (after RELOADING=1 too). */
void sl_notify_ready(unsigned workers);

/* Master: a reload starts: RELOADING=1 with MONOTONIC_USEC. */
void sl_notify_reloading(void);

/* Master: drain started: STOPPING=1 (once). */
void sl_notify_stopping(void);

#ifdef __cplusplus
}
#endif

#endif
