/*
 * log: error log lines and JSON access-log lines.
 */
#include "server/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum sl_log_level threshold = SL_LOG_INFO;

void sl_log_set_level(enum sl_log_level level)
{
    threshold = level;
}

bool sl_log_enabled(enum sl_log_level level)
{
    return level >= threshold;
}

static const char *level_name(enum sl_log_level level)
{
    switch (level) {
    case SL_LOG_DEBUG:
        return "debug";
    case SL_LOG_INFO:
        return "info";
    case SL_LOG_WARNING:
        return "warning";
    case SL_LOG_ERROR:
        return "error";
    }
    return "?";
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void sl_vlog(enum sl_log_level level, const char *fmt, va_list ap)
{
    char line[1024];
    if (!sl_log_enabled(level))
        return;
    int saved = errno;
    int n = snprintf(line, sizeof(line), "saltare[%d]: %s: ", (int)getpid(), level_name(level));
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    write_all(2, line, len);
    errno = saved;
}

void sl_log(enum sl_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_vlog(level, fmt, ap);
    va_end(ap);
}

int sl_access_log_open(struct sl_access_log *l, const char *target)
{
    *l = (struct sl_access_log){.fd = -1};
    if (!target)
        return 0;
    if (strcmp(target, "stderr") == 0) {
        l->fd = 2;
        return 0;
    }
    int fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        sl_log(SL_LOG_ERROR, "access log %s: %s", target, strerror(err));
        return -err;
    }
    l->fd = fd;
    l->owned = true;
    return 0;
}

void sl_access_log_close(struct sl_access_log *l)
{
    if (l->owned && l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    l->owned = false;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid there. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong 3/4-byte forms, surrogates and code points past U+10FFFF. */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/*
 * Appends `s` as a JSON string at out[*pos], never past `limit` (the closing
 * quote included): a field is cut between characters, never inside an escape
 * or a UTF-8 sequence.
 */
static void json_str(char *out, size_t *pos, size_t limit, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;
    out[p++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen;
        const char *src = esc;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, elen = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            esc[0] = (char)c, elen = 1;
        } else if (c >= 0x80 && (elen = utf8_len((const unsigned char *)s + i, n - i)) > 0) {
            src = s + i;
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
        }
        if (p + elen + 1 > limit)
            break;
        memcpy(out + p, src, elen);
        p += elen;
        i += src == esc ? 1 : elen;
    }
    out[p++] = '"';
    *pos = p;
}

static void lit(char *out, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    memcpy(out + *pos, s, n);
    *pos += n;
}

static void num(char *out, size_t *pos, uint64_t v)
{
    *pos += (size_t)sprintf(out + *pos, "%llu", (unsigned long long)v);
}

/* Field budgets keep the whole line under SL_ACCESS_LINE_MAX however the
 * inputs look: numbers and keys take < 200 bytes. */
size_t sl_access_format(char *buf, size_t cap, const struct sl_access_entry *e)
{
    size_t p = 0;
    assert(cap >= SL_ACCESS_LINE_MAX);
    (void)cap;
    p += (size_t)sprintf(buf,
                         "{\"ts\":%llu.%03u,\"client\":", (unsigned long long)(e->time_ms / 1000),
                         (unsigned)(e->time_ms % 1000));
    json_str(buf, &p, p + 128, e->client, strlen(e->client));
    lit(buf, &p, ",\"method\":");
    json_str(buf, &p, p + 128, e->method, e->method_len);
    lit(buf, &p, ",\"path\":");
    json_str(buf, &p, p + 5000, e->path, e->path_len);
    lit(buf, &p, ",\"status\":");
    num(buf, &p, (uint64_t)e->status);
    lit(buf, &p, ",\"bytes\":");
    num(buf, &p, e->bytes);
    lit(buf, &p, ",\"latency_us\":");
    num(buf, &p, e->latency_us);
    lit(buf, &p, ",\"user_agent\":");
    if (e->user_agent)
        json_str(buf, &p, p + 2000, e->user_agent, e->user_agent_len);
    else
        lit(buf, &p, "null");
    lit(buf, &p, "}\n");
    return p;
}

void sl_access_log_write(const struct sl_access_log *l, const struct sl_access_entry *e)
{
    char line[SL_ACCESS_LINE_MAX];
    if (l->fd < 0)
        return;
    size_t n = sl_access_format(line, sizeof(line), e);
    write_all(l->fd, line, n);
}
