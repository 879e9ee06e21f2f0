/*
 * log: the error log (human lines on stderr, filtered by level) and the
 * access log (one JSON object per request and line).
 *
 * Each line goes out in a single write(2), so lines from several workers
 * sharing stderr or an O_APPEND file never interleave mid-line.
 */
#ifndef SL_SERVER_LOG_H
#define SL_SERVER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Process-wide threshold for sl_log (default SL_LOG_INFO). */
void sl_log_set_level(enum sl_log_level level);
bool sl_log_enabled(enum sl_log_level level);

/* "saltare[PID]: LEVEL: message\n" on stderr when `level` passes the
 * threshold. Long messages are truncated to one line of ~1 KiB. */
void sl_log(enum sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_vlog(enum sl_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

struct sl_access_log {
    int fd; /* -1 = off */
    bool owned;
};

/*
 * Opens the access log: NULL = off, "stderr", or a file path opened for
 * append (created 0644). Returns 0, or a negative errno after logging which
 * path failed.
 */
int sl_access_log_open(struct sl_access_log *l, const char *target);
void sl_access_log_close(struct sl_access_log *l);

static inline bool sl_access_log_on(const struct sl_access_log *l)
{
    return l->fd >= 0;
}

/* One request. Strings are byte ranges (any bytes: they are escaped). */
struct sl_access_entry {
    uint64_t time_ms;   /* Unix time the response completed */
    const char *client; /* "1.2.3.4:5678", "[::1]:80", "unix"; NUL-terminated */
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    int status;
    uint64_t bytes;         /* response body bytes sent */
    uint64_t latency_us;    /* head complete -> response complete */
    const char *user_agent; /* NULL when absent */
    size_t user_agent_len;
};

#define SL_ACCESS_LINE_MAX 8192

/*
 * Renders `e` as one JSON line (with the newline) into buf[cap >=
 * SL_ACCESS_LINE_MAX]; returns its length. Fields are escaped per RFC 8259
 * (invalid UTF-8 bytes become \u00XX) and long ones truncated so the line
 * always fits.
 */
size_t sl_access_format(char *buf, size_t cap, const struct sl_access_entry *e);

/* Formats and writes one line; errors are ignored (logging never fails a
 * request). */
void sl_access_log_write(const struct sl_access_log *l, const struct sl_access_entry *e);

#ifdef __cplusplus
}
#endif

#endif
