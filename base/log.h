/*
 * log: the error log (human lines on stderr, filtered by level) and the
 * access log (one JSON object per request and line).
 *
 * Nothing here ever blocks the worker on a slow log consumer. Lines are
 * appended to a bounded buffer per destination (SL_LOG_BUFFER bytes) and
 * written without blocking. Access-log lines made during a turn of the
 * worker's loop wait for its end (sl_log_batch_end: one write for many
 * lines); error-log lines are rare and go at once, so a line explaining a
 * 500 is out before the 500 is. Whatever a full pipe refused stays buffered
 * and is retried at the next turn (an idle worker: within a second). When the
 * consumer does not keep up (a full pipe to journald or a container
 * runtime), new lines are dropped whole and counted, and once the buffer
 * has drained one line says how many were lost ("log: N lines dropped
 * (slow consumer)"). Python tracebacks go through the same buffer
 * (sl_log_block); what an app itself prints to sys.stderr does not.
 *
 * How a write is made non-blocking depends on what the descriptor is:
 * - pipe or terminal: a private file description is opened on the same
 *   object through /proc/self/fd/N with O_NONBLOCK. Setting O_NONBLOCK on
 *   the inherited fd 2 instead would change the description shared with the
 *   parent shell or supervisor and every sibling process, which then see
 *   EAGAIN on their own writes. Without /proc, a poll() for room precedes
 *   each write of at most PIPE_BUF bytes.
 * - socket (systemd's journal stream): send() with MSG_DONTWAIT, a per-call
 *   flag that leaves the description alone.
 * - regular file: a plain write; files never answer EAGAIN (the disk may
 *   still be slow: that is not back-pressure we can observe).
 * Writes to a pipe carry whole lines and at most PIPE_BUF bytes when the
 * lines allow it, so lines from several workers sharing stderr never
 * interleave mid-line (a single line longer than PIPE_BUF may).
 *
 * Every field a client or an app controls is escaped: the error log turns
 * control characters (and backslash) into \n, \t, \xNN, \u00NN escapes and
 * keeps valid UTF-8; the access log is JSON (RFC 8259 escapes). A request
 * path cannot forge a log line.
 *
 * Not thread-safe beyond a mutex around each buffer: lines from several
 * threads never tear, the flush hook belongs to one worker.
 */
#ifndef SL_BASE_LOG_H
#define SL_BASE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sl_log_level { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARNING, SL_LOG_ERROR };
enum sl_access_format { SL_ACCESS_JSON, SL_ACCESS_COMBINED, SL_ACCESS_CUSTOM };
enum sl_time_format { SL_TIME_RFC3339, SL_TIME_UNIX };

#define SL_LOG_BUFFER (64 << 10) /* bytes buffered per destination */
#define SL_LOG_LINE_MAX 1024     /* one error-log line, escapes included */

/* Process-wide threshold for sl_log (default SL_LOG_INFO). */
void sl_log_set_level(enum sl_log_level level);
bool sl_log_enabled(enum sl_log_level level);

/* "saltare[PID]: LEVEL: message\n" on stderr when `level` passes the
 * threshold. The message is escaped (see above) and cut to one line of
 * SL_LOG_LINE_MAX bytes. */
void sl_log(enum sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_vlog(enum sl_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Appends a preformatted block of lines (a Python traceback) to the error
 * log as one unit: control characters other than LF are escaped, a final
 * newline is added when missing. Dropped whole if it does not fit.
 */
void sl_log_block(const char *text, size_t len);

/*
 * A loop turn. Between begin and end, access-log lines wait in their
 * buffer; end writes them all (without blocking). Error-log lines never
 * wait. Outside a turn every line is written as it is logged. Turns nest.
 */
void sl_log_batch_begin(void);
void sl_log_batch_end(void);

/* Writes what the buffers hold, without blocking. */
void sl_log_flush(void);

/*
 * Reopening (logrotate without copytruncate): access-log files are opened
 * again by their path at the next flush (the next loop turn with a line to
 * write, or sl_log_flush), after what is buffered went to the old file.
 * sl_log_reopen_request is async-signal-safe; sl_log_reopen_on installs it
 * as the handler of `sig` (SIGUSR2) and unblocks it. Returns 0 or -errno.
 * A file whose writes fail (a full disk) loses its lines, said once on
 * stderr when it starts and once when writes succeed again.
 */
void sl_log_reopen_request(void);
/* Sends the error log to a file (opened for append, reopened like the
 * access log) instead of stderr. Returns 0 or a negative errno (logged). */
int sl_log_open_error(const char *path);
int sl_log_reopen_on(int sig);

/* True while some line waits in a buffer (the consumer pushed back). */
bool sl_log_pending(void);

/* At exit: flushes, waiting at most timeout_ms for a slow consumer;
 * whatever is left then is lost (and said so, if it can be). */
void sl_log_drain(unsigned timeout_ms);

struct sl_access_log {
    int sink; /* 0 = off (a zeroed struct is off); else internal */
    enum sl_access_format format;
    enum sl_time_format time_format;
    const char *tmpl; /* SL_ACCESS_CUSTOM; borrowed (the config's) */
    int pid;          /* the writing process, set by sl_access_log_open */
};

/*
 * Opens the access log: NULL = off, "stderr" (shares the error log's
 * buffer, so both keep their relative order), or a file path opened for
 * append (created 0644). The format is JSON with RFC 3339 times until
 * the caller sets the fields above. Returns 0, or a negative errno after
 * logging which path failed.
 */
int sl_access_log_open(struct sl_access_log *l, const char *target);

/* Flushes (waiting briefly, as sl_log_drain) and closes the access log. */
void sl_access_log_close(struct sl_access_log *l);

static inline bool sl_access_log_on(const struct sl_access_log *l)
{
    return l->sink > 0;
}

/* One request. Strings are byte ranges (any bytes: they are escaped). */
struct sl_access_entry {
    uint64_t time_ms;   /* Unix time the response completed */
    const char *client; /* "1.2.3.4:5678", "[::1]:80", "unix"; NUL-terminated */
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *query; /* NULL when the target had no '?' */
    size_t query_len;
    int status;
    int minor;              /* HTTP/1.<minor> */
    uint64_t bytes;         /* response body bytes sent */
    uint64_t bytes_in;      /* request body bytes received */
    uint64_t latency_us;    /* head complete -> response complete */
    const char *user_agent; /* NULL when absent */
    size_t user_agent_len;
    const char *route; /* name of the intercept route matched; NULL = no
                          field (none matched, or it has no name) */
    /* A WebSocket (status 101) is logged once, when it ends: `bytes` is the
     * payload sent, `latency_us` its whole life. */
    bool ws;
    uint16_t ws_close;        /* close code (1006: none) */
    uint64_t ws_messages_in;  /* messages received */
    uint64_t ws_messages_out; /* messages sent */
    uint64_t ws_bytes_in;     /* payload bytes received */
    const char *referer;      /* NULL when absent */
    size_t referer_len;
    const char *listener;   /* its name, or address; NUL-terminated; NULL = none */
    const char *tls;        /* "TLSv1.3"...; NULL = plain connection */
    const char *request_id; /* http.request_id; NULL = none (no field) */
    size_t request_id_len;
};

#define SL_ACCESS_LINE_MAX 8192

/*
 * Renders `e` as one line (with the newline) into buf[cap >=
 * SL_ACCESS_LINE_MAX] in l's format (NULL = JSON, RFC 3339 time, pid 0);
 * returns its length. JSON fields are escaped per RFC 8259 (control
 * characters, C1 controls included, as \u00XX; invalid UTF-8 bytes become
 * \u00XX too); combined and custom fields as Apache does (\" \\ and \xNN
 * for anything not printable ASCII). Long fields are truncated so the line
 * always fits.
 */
size_t sl_access_format(char *buf, size_t cap, const struct sl_access_entry *e,
                        const struct sl_access_log *l);

/* Formats and queues one line; a line that does not fit the buffer is
 * dropped and counted (logging never fails or stalls a request). */
void sl_access_log_write(const struct sl_access_log *l, const struct sl_access_entry *e);

/* Escapes src[0..n) for the error log into out[0..cap) (see above),
 * cutting between characters; returns the length written. Exposed for
 * tests. */
size_t sl_log_escape(char *out, size_t cap, const char *src, size_t n);

/*
 * A warning that repeats under load (every refused connection) is said at
 * most once per second, with how many times it happened since it was last
 * said. Call sl_log_every_due() at each occurrence: it counts it and
 * returns that count when a line is due now (then the count restarts),
 * else 0. `now_ms` on any monotonic clock.
 */
struct sl_log_every {
    uint64_t last_ms; /* when the last line was due; 0 = never */
    uint64_t count;   /* occurrences not yet reported */
};

static inline uint64_t sl_log_every_due(struct sl_log_every *e, uint64_t now_ms)
{
    e->count++;
    if (e->last_ms && now_ms - e->last_ms < 1000)
        return 0;
    uint64_t n = e->count;
    e->last_ms = now_ms ? now_ms : 1;
    e->count = 0;
    return n;
}

#ifdef __cplusplus
}
#endif

#endif
