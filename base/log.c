/*
 * log: error-log and JSON access-log lines, escaped, buffered per
 * destination and written without blocking (the design is in log.h).
 */
#include "base/log.h"
#include "base/clock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* ---- destinations ------------------------------------------------------ */

enum how {
    HOW_WRITE, /* write(2) on a non-blocking private description, or a file */
    HOW_SEND,  /* send(2) with MSG_DONTWAIT: a socket */
    HOW_POLL,  /* poll for room, then write at most PIPE_BUF: no /proc */
};

/* One destination and its buffer. sinks[0] is stderr (the error log, and
 * the access log when it says "stderr"); the others are access-log files. */
struct sink {
    bool used;
    bool ready;     /* wfd and how are set up (lazily, at the first flush) */
    bool whole;     /* a regular file: write everything at once */
    bool owned_fd;  /* fd was opened here (an access-log path) */
    bool owned_wfd; /* wfd is a private re-open of fd */
    enum how how;
    int fd, wfd;
    char *buf;        /* SL_LOG_BUFFER bytes, allocated at the first line */
    size_t len;       /* whole lines, except maybe a partly written first one */
    uint64_t dropped; /* lines refused since the last report */
    char *path;       /* an access-log file, reopened on request; else NULL */
    int failing;      /* errno of a write that failed (full disk); 0 = fine */
    uint64_t lost;    /* lines lost to write errors since `failing` was set */
};

#define NSINKS 4

static struct sink sinks[NSINKS] = {{.used = true, .fd = 2, .wfd = 2}};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint batch_depth;   /* > 0: inside a loop turn, access lines wait */
static atomic_bool queued;        /* some sink holds bytes or uncounted drops */
static atomic_bool reopen_wanted; /* sl_log_reopen_request: at the next flush */
static int log_pid;               /* cached: getpid() is a system call */

static void atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

/* A child starts with its parent's unwritten lines: they are the parent's
 * to write, so the child forgets them (and the parent's loop turn). */
static void atfork_child(void)
{
    for (int i = 0; i < NSINKS; i++)
        sinks[i].len = 0, sinks[i].dropped = 0;
    atomic_store(&batch_depth, 0);
    atomic_store(&queued, false);
    log_pid = 0;
    pthread_mutex_init(&lock, NULL);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int pid_now(void)
{
    if (log_pid == 0)
        log_pid = (int)getpid();
    return log_pid;
}

/*
 * Chooses how to write to s->fd without blocking and without touching a
 * file description another process shares (see log.h).
 */
static void sink_setup(struct sink *s)
{
    struct stat st;
    char path[32];

    s->ready = true;
    s->wfd = s->fd;
    s->how = HOW_WRITE;
    if (fstat(s->fd, &st) < 0)
        return;
    if (S_ISREG(st.st_mode)) {
        s->whole = true;
        return;
    }
    if (S_ISSOCK(st.st_mode)) {
        s->how = HOW_SEND;
        return;
    }
    if (s->owned_fd) { /* our own description: nobody else sees the flag */
        int fl = fcntl(s->fd, F_GETFL);
        if (fl >= 0 && fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) == 0)
            return;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", s->fd);
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        s->wfd = fd;
        s->owned_wfd = true;
        return;
    }
    s->how = HOW_POLL;
}

static ssize_t sink_out(struct sink *s, const char *p, size_t n)
{
    if (s->how == HOW_SEND)
        return send(s->wfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (s->how == HOW_POLL) {
        struct pollfd pfd = {.fd = s->wfd, .events = POLLOUT};
        if (poll(&pfd, 1, 0) == 0) {
            errno = EAGAIN;
            return -1;
        }
    }
    return write(s->wfd, p, n);
}

/* Bytes of p[0..n) to write at once: all of it to a file; to a pipe or
 * socket whole lines, at most PIPE_BUF bytes unless one line is longer, so
 * that writes from several processes never interleave inside a line. */
static size_t chunk(const struct sink *s, const char *p, size_t n)
{
    if (s->whole || n <= PIPE_BUF)
        return n;
    const char *nl = memrchr(p, '\n', PIPE_BUF);
    if (nl == NULL)
        nl = memchr(p + PIPE_BUF, '\n', n - PIPE_BUF);
    return nl ? (size_t)(nl - p) + 1 : n;
}

static bool sink_append(struct sink *s, const char *p, size_t n)
{
    if (s->buf == NULL && (s->buf = malloc(SL_LOG_BUFFER)) == NULL)
        return false;
    if (n > SL_LOG_BUFFER - s->len)
        return false;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return true;
}

static void report_drops(struct sink *s);
static void sink_flush(struct sink *s);

/* A line on stderr from inside the log (lock held: sl_log would deadlock). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n = snprintf(line, sizeof(line), "saltare[%d]: ", pid_now());
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n += m < (int)sizeof(line) - n - 1 ? m : (int)sizeof(line) - n - 2;
    line[n++] = '\n';
    if (sink_append(&sinks[0], line, (size_t)n))
        sink_flush(&sinks[0]);
    else
        sinks[0].dropped++;
}

/*
 * An access-log file refused a write (ENOSPC, EDQUOT, EIO...): the buffered
 * lines are lost, serving goes on. Said once when it starts failing and
 * once when it writes again, never per line.
 */
static void write_failed(struct sink *s, int err, size_t from)
{
    for (size_t i = from; i < s->len; i++)
        s->lost += s->buf[i] == '\n';
    if (s == &sinks[0] || s->failing)
        return; /* stderr itself failing: there is nobody to tell */
    s->failing = err;
    say("error: access log %s: %s; lines are dropped until writes succeed", s->path ? s->path : "?",
        strerror(err));
}

static void write_recovered(struct sink *s)
{
    say("info: access log %s: writing again (%llu line%s lost)", s->path ? s->path : "?",
        (unsigned long long)s->lost, s->lost == 1 ? "" : "s");
    s->failing = 0;
    s->lost = 0;
}

/*
 * Writes what fits without blocking; keeps the rest (a partly written line
 * stays at the front, so it is always completed). A hard error (EPIPE: the
 * reader is gone) discards the buffer: there is nobody to tell.
 */
static void sink_flush(struct sink *s)
{
    size_t off = 0;
    if (!s->ready)
        sink_setup(s);
    while (off < s->len) {
        ssize_t w = sink_out(s, s->buf + off, chunk(s, s->buf + off, s->len - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            write_failed(s, w < 0 ? errno : EIO, off);
            off = s->len;
            break;
        }
        if (s->failing)
            write_recovered(s);
        off += (size_t)w;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
    if (s->len == 0 && s->dropped > 0)
        report_drops(s);
}

/* Once a buffer has drained after refusing lines, one line says how many
 * (on stderr, whichever log lost them). Kept for later if even that line
 * does not fit. */
static void report_drops(struct sink *s)
{
    char line[160];
    int n = snprintf(line, sizeof(line),
                     "saltare[%d]: warning: %s: %llu line%s dropped (slow consumer)\n", pid_now(),
                     s == &sinks[0] ? "log" : "access log", (unsigned long long)s->dropped,
                     s->dropped == 1 ? "" : "s");
    if (!sink_append(&sinks[0], line, (size_t)n))
        return;
    s->dropped = 0;
    sink_flush(&sinks[0]);
}

/* Recomputes `queued` after a change. Lock held. */
static void note_queued(void)
{
    bool q = false;
    for (int i = 0; i < NSINKS; i++)
        q |= sinks[i].used && (sinks[i].len > 0 || sinks[i].dropped > 0);
    atomic_store_explicit(&queued, q, memory_order_relaxed);
}

/* Reopens every access-log file by its path (logrotate moved it away):
 * what is buffered goes to the old file first. Lock held. */
static void reopen_files(void)
{
    atomic_store(&reopen_wanted, false);
    for (int i = NSINKS - 1; i >= 0; i--) { /* stderr last: it takes the reports */
        struct sink *s = &sinks[i];
        if (!s->used || !s->path)
            continue;
        if (s->len > 0)
            sink_flush(s);
        int fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            say("error: access log %s: cannot reopen: %s (still writing the old file)", s->path,
                strerror(errno));
            continue;
        }
        if (s->owned_wfd)
            close(s->wfd);
        dup2(fd, s->fd); /* same number: nothing else holds the old one */
        close(fd);
        s->owned_wfd = false;
        s->wfd = s->fd;
        s->ready = false; /* the new file may be another kind of thing */
        say("info: %s %s reopened", i ? "access log" : "error log", s->path);
    }
    if (sinks[0].len > 0)
        sink_flush(&sinks[0]);
}

/* Queues one unit (a line, or a block of lines) and, when `now` or outside
 * a loop turn, writes the buffer at once. Never blocks. */
static void emit(struct sink *s, const char *p, size_t n, bool now)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&lock);
    if (atomic_load_explicit(&reopen_wanted, memory_order_relaxed))
        reopen_files();
    if (s->len > 0 && n > SL_LOG_BUFFER - s->len)
        sink_flush(s); /* make room if the consumer has caught up */
    if (!sink_append(s, p, n))
        s->dropped++;
    else if (now || atomic_load_explicit(&batch_depth, memory_order_relaxed) == 0)
        sink_flush(s);
    note_queued();
    pthread_mutex_unlock(&lock);
}

/* Lock-free: a round with nothing logged costs two atomic operations. */
void sl_log_batch_begin(void)
{
    atomic_fetch_add_explicit(&batch_depth, 1, memory_order_relaxed);
}

void sl_log_batch_end(void)
{
    unsigned d = atomic_load_explicit(&batch_depth, memory_order_relaxed);
    while (d > 0 && !atomic_compare_exchange_weak(&batch_depth, &d, d - 1))
        ; /* never below 0: sl_log_drain may have reset it mid-turn */
    if (d <= 1)
        sl_log_flush();
}

static void on_reopen_signal(int sig)
{
    (void)sig;
    sl_log_reopen_request();
}

void sl_log_reopen_request(void)
{
    atomic_store_explicit(&reopen_wanted, true, memory_order_relaxed);
}

int sl_log_reopen_on(int sig)
{
    struct sigaction sa = {.sa_handler = on_reopen_signal, .sa_flags = SA_RESTART};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    if (sigaction(sig, &sa, NULL) < 0 || pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
        return -errno;
    return 0;
}

void sl_log_flush(void)
{
    if (!atomic_load_explicit(&queued, memory_order_relaxed) &&
        !atomic_load_explicit(&reopen_wanted, memory_order_relaxed))
        return;
    pthread_mutex_lock(&lock);
    if (atomic_load_explicit(&reopen_wanted, memory_order_relaxed))
        reopen_files();
    for (int i = 0; i < NSINKS; i++)
        if (sinks[i].used && (sinks[i].len > 0 || sinks[i].dropped > 0)) {
            if (sinks[i].len > 0)
                sink_flush(&sinks[i]);
            else
                report_drops(&sinks[i]);
        }
    note_queued();
    pthread_mutex_unlock(&lock);
}

bool sl_log_pending(void)
{
    return atomic_load_explicit(&queued, memory_order_relaxed);
}

/* Flushes s, waiting for room until `deadline` (monotonic ms). Lock held. */
static void sink_drain(struct sink *s, uint64_t deadline)
{
    for (;;) {
        if (s->len > 0)
            sink_flush(s);
        else if (s->dropped > 0)
            report_drops(s);
        uint64_t now = sl_clock_ms();
        if ((s->len == 0 && s->dropped == 0) || now >= deadline)
            return;
        struct pollfd pfd = {.fd = s->wfd, .events = POLLOUT};
        if (s->len == 0) /* the report did not fit: it waits on stderr */
            pfd.fd = sinks[0].wfd;
        if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR)
            return;
    }
}

void sl_log_drain(unsigned timeout_ms)
{
    uint64_t deadline = sl_clock_ms() + timeout_ms;
    pthread_mutex_lock(&lock);
    atomic_store(&batch_depth, 0);
    for (int i = NSINKS - 1; i >= 0; i--) /* stderr last: it takes the reports */
        if (sinks[i].used)
            sink_drain(&sinks[i], deadline);
    note_queued();
    pthread_mutex_unlock(&lock);
}

/* ---- escaping ---------------------------------------------------------- */

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

/* U+0080..U+009F (C1 controls: CSI and friends act on terminals). */
static bool is_c1(const unsigned char *s, size_t len)
{
    return len == 2 && s[0] == 0xc2 && s[1] < 0xa0;
}

static const char hex[] = "0123456789abcdef";

/* The escape for one character of error-log text at s[0..n): writes it to
 * esc[] and returns its length and, in *used, the input bytes it stands
 * for. A plain character is returned as a copy. LF is kept when keep_lf. */
static size_t text_char(const unsigned char *s, size_t n, bool keep_lf, char esc[8], size_t *used)
{
    unsigned char c = s[0];
    size_t len;
    *used = 1;
    if ((c >= 0x20 && c < 0x7f && c != '\\') || (c == '\n' && keep_lf) || (c == '\t' && keep_lf)) {
        esc[0] = (char)c;
        return 1;
    }
    esc[0] = '\\';
    switch (c) {
    case '\\':
        esc[1] = '\\';
        return 2;
    case '\n':
        esc[1] = 'n';
        return 2;
    case '\r':
        esc[1] = 'r';
        return 2;
    case '\t':
        esc[1] = 't';
        return 2;
    }
    if (c >= 0x80 && (len = utf8_len(s, n)) > 0) {
        *used = len;
        if (is_c1(s, len)) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[s[1] >> 4], esc[5] = hex[s[1] & 15];
            return 6;
        }
        memcpy(esc, s, len);
        return len;
    }
    esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15];
    return 4;
}

/* Escapes src[0..n) into out[0..cap); returns the bytes written and, in
 * *taken (may be NULL), the input bytes they stand for. */
static size_t escape_text(char *out, size_t cap, const char *src, size_t n, bool keep_lf,
                          size_t *taken)
{
    size_t o = 0, i = 0;
    while (i < n) {
        char esc[8];
        size_t used, len = text_char((const unsigned char *)src + i, n - i, keep_lf, esc, &used);
        if (o + len > cap)
            break;
        memcpy(out + o, esc, len);
        o += len;
        i += used;
    }
    if (taken)
        *taken = i;
    return o;
}

size_t sl_log_escape(char *out, size_t cap, const char *src, size_t n)
{
    return escape_text(out, cap, src, n, false, NULL);
}

/* ---- the error log ----------------------------------------------------- */

void sl_vlog(enum sl_log_level level, const char *fmt, va_list ap)
{
    char msg[SL_LOG_LINE_MAX], line[SL_LOG_LINE_MAX];
    if (!sl_log_enabled(level))
        return;
    int saved = errno;
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    int n = snprintf(line, sizeof(line), "saltare[%d]: %s: ", pid_now(), level_name(level));
    size_t len =
        (size_t)n + escape_text(line + n, sizeof(line) - (size_t)n - 1, msg, mlen, false, NULL);
    line[len++] = '\n';
    emit(&sinks[0], line, len, true);
    errno = saved;
}

void sl_log(enum sl_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_vlog(level, fmt, ap);
    va_end(ap);
}

void sl_log_block(const char *text, size_t len)
{
    static const char cut[] = "[cut: longer than the log buffer allows]\n";
    /* The longest escape per input byte, a LF and the cut note; at most half
     * the buffer, so one block never crowds out everything else. */
    size_t cap = len < SL_LOG_BUFFER ? len * 6 + sizeof(cut) + 1 : SL_LOG_BUFFER;
    if (cap > SL_LOG_BUFFER / 2)
        cap = SL_LOG_BUFFER / 2;
    char *out = malloc(cap);
    size_t taken;
    if (out == NULL)
        return;
    size_t n = escape_text(out, cap - sizeof(cut) - 1, text, len, true, &taken);
    if (n == 0 || out[n - 1] != '\n')
        out[n++] = '\n';
    if (taken < len) {
        memcpy(out + n, cut, sizeof(cut) - 1);
        n += sizeof(cut) - 1;
    }
    int saved = errno;
    emit(&sinks[0], out, n, true);
    errno = saved;
    free(out);
}

/* ---- the access log ---------------------------------------------------- */

int sl_log_open_error(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        sl_log(SL_LOG_ERROR, "error log %s: %s", path, strerror(err));
        return -err;
    }
    char *copy = strdup(path);
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&lock);
    struct sink *s = &sinks[0];
    if (s->len > 0)
        sink_flush(s); /* what came before goes to stderr, in order */
    if (s->owned_wfd)
        close(s->wfd);
    s->fd = s->wfd = fd;
    s->owned_fd = true;
    s->owned_wfd = false;
    s->ready = false;
    free(s->path);
    s->path = copy;
    pthread_mutex_unlock(&lock);
    return 0;
}

int sl_access_log_open(struct sl_access_log *l, const char *target)
{
    *l = (struct sl_access_log){.pid = (int)getpid()};
    if (!target)
        return 0;
    if (strcmp(target, "stderr") == 0) {
        l->sink = 1;
        return 0;
    }
    int fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        sl_log(SL_LOG_ERROR, "access log %s: %s", target, strerror(err));
        return -err;
    }
    pthread_mutex_lock(&lock);
    for (int i = 1; i < NSINKS; i++)
        if (!sinks[i].used) {
            sinks[i] = (struct sink){
                .used = true, .owned_fd = true, .fd = fd, .wfd = fd, .path = strdup(target)};
            l->sink = i + 1;
            break;
        }
    pthread_mutex_unlock(&lock);
    if (l->sink == 0) {
        close(fd);
        sl_log(SL_LOG_ERROR, "access log %s: too many open access logs", target);
        return -EMFILE;
    }
    return 0;
}

#define CLOSE_DRAIN_MS 1000 /* what a slow reader of an access-log FIFO gets at close */

void sl_access_log_close(struct sl_access_log *l)
{
    if (l->sink > 1) {
        pthread_mutex_lock(&lock);
        struct sink *s = &sinks[l->sink - 1];
        sink_drain(s, sl_clock_ms() + CLOSE_DRAIN_MS);
        if (s->owned_wfd)
            close(s->wfd);
        close(s->fd);
        free(s->buf);
        free(s->path);
        *s = (struct sink){0};
        note_queued();
        pthread_mutex_unlock(&lock);
    }
    l->sink = 0;
}

/*
 * Appends `s` as a JSON string at out[*pos], never past `limit` (the closing
 * quote included): a field is cut between characters, never inside an escape
 * or a UTF-8 sequence.
 */
static void json_str(char *out, size_t *pos, size_t limit, const char *s, size_t n)
{
    size_t p = *pos;
    out[p++] = '"';
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        unsigned char c = u[0];
        char esc[6];
        size_t elen, used = 1;
        const char *src = esc;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, elen = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            esc[0] = (char)c, elen = 1;
        } else {
            size_t len = c >= 0x80 ? utf8_len(u, n - i) : 0;
            if (len > 0 && !is_c1(u, len)) {
                src = s + i, elen = used = len;
            } else {
                /* A C0/C1 control as its code point, an invalid byte as
                 * the code point of the same value. */
                unsigned char v = len > 0 ? u[1] : c;
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[v >> 4], esc[5] = hex[v & 15], elen = 6;
                used = len > 0 ? len : 1;
            }
        }
        if (p + elen + 1 > limit)
            break;
        memcpy(out + p, src, elen);
        p += elen;
        i += used;
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

/* The time field: RFC 3339 UTC with milliseconds, or Unix seconds.
 * `apache` gives the combined format's [10/Oct/2000:13:55:36 +0000]. */
static void put_time(char *out, size_t *pos, uint64_t ms, enum sl_time_format tf, int style)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (tf == SL_TIME_UNIX && style != 2) {
        *pos += (size_t)sprintf(out + *pos, "%llu.%03u", (unsigned long long)secs,
                                (unsigned)(ms % 1000));
        return;
    }
    gmtime_r(&secs, &tm);
    if (style == 2) { /* combined */
        *pos += strftime(out + *pos, 40, "[%d/%b/%Y:%H:%M:%S +0000]", &tm);
        return;
    }
    if (style == 1)
        out[(*pos)++] = '"';
    *pos += strftime(out + *pos, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    *pos += (size_t)sprintf(out + *pos, ".%03uZ", (unsigned)(ms % 1000));
    if (style == 1)
        out[(*pos)++] = '"';
}

static void duration(char *out, size_t *pos, uint64_t us)
{
    *pos += (size_t)sprintf(out + *pos, "%llu.%06u", (unsigned long long)(us / 1000000),
                            (unsigned)(us % 1000000));
}

static void json_opt(char *out, size_t *pos, size_t budget, const char *s, size_t n)
{
    if (s)
        json_str(out, pos, *pos + budget, s, n);
    else
        lit(out, pos, "null");
}

/* Field budgets keep the whole line under SL_ACCESS_LINE_MAX however the
 * inputs look: numbers and keys take < 300 bytes. */
static size_t format_json(char *buf, const struct sl_access_entry *e, const struct sl_access_log *l)
{
    size_t p = 0;
    lit(buf, &p, "{\"time\":");
    put_time(buf, &p, e->time_ms, l ? l->time_format : SL_TIME_RFC3339, 1);
    lit(buf, &p, ",\"client\":");
    json_str(buf, &p, p + 128, e->client, strlen(e->client));
    lit(buf, &p, ",\"method\":");
    json_str(buf, &p, p + 128, e->method, e->method_len);
    lit(buf, &p, ",\"path\":");
    json_str(buf, &p, p + 3000, e->path, e->path_len);
    lit(buf, &p, ",\"query\":");
    json_opt(buf, &p, 2000, e->query, e->query_len);
    lit(buf, &p, ",\"status\":");
    num(buf, &p, (uint64_t)e->status);
    lit(buf, &p, ",\"bytes_in\":");
    num(buf, &p, e->bytes_in);
    lit(buf, &p, ",\"bytes_out\":");
    num(buf, &p, e->bytes);
    lit(buf, &p, ",\"duration\":");
    duration(buf, &p, e->latency_us);
    lit(buf, &p, ",\"user_agent\":");
    json_opt(buf, &p, 1000, e->user_agent, e->user_agent_len);
    lit(buf, &p, ",\"referer\":");
    json_opt(buf, &p, 1000, e->referer, e->referer_len);
    lit(buf, &p, ",\"listener\":");
    json_opt(buf, &p, 200, e->listener, e->listener ? strlen(e->listener) : 0);
    lit(buf, &p, ",\"tls\":");
    json_opt(buf, &p, 32, e->tls, e->tls ? strlen(e->tls) : 0);
    lit(buf, &p, ",\"pid\":");
    num(buf, &p, l ? (uint64_t)l->pid : 0);
    if (e->route) {
        lit(buf, &p, ",\"route\":");
        json_str(buf, &p, p + 256, e->route, strlen(e->route));
    }
    if (e->request_id) {
        lit(buf, &p, ",\"request_id\":");
        json_str(buf, &p, p + 256, e->request_id, e->request_id_len);
    }
    if (e->ws) {
        lit(buf, &p, ",\"ws_close\":");
        num(buf, &p, e->ws_close);
        lit(buf, &p, ",\"ws_messages_in\":");
        num(buf, &p, e->ws_messages_in);
        lit(buf, &p, ",\"ws_messages_out\":");
        num(buf, &p, e->ws_messages_out);
        lit(buf, &p, ",\"ws_bytes_in\":");
        num(buf, &p, e->ws_bytes_in);
    }
    lit(buf, &p, "}\n");
    return p;
}

/* Apache's escaping for text formats: printable ASCII stays, \" and \\, the
 * rest \xNN; cut to what fits before `limit`. Empty or absent: "-". */
static void text_str(char *out, size_t *pos, size_t limit, const char *s, size_t n)
{
    size_t p = *pos;
    if (!s || n == 0) {
        out[(*pos)++] = '-';
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = (c == '"' || c == '\\') ? 2 : (c >= 0x20 && c < 0x7f) ? 1 : 4;
        if (p + need > limit)
            break;
        if (need == 2) {
            out[p++] = '\\', out[p++] = (char)c;
        } else if (need == 1) {
            out[p++] = (char)c;
        } else {
            out[p++] = '\\', out[p++] = 'x', out[p++] = hex[c >> 4], out[p++] = hex[c & 15];
        }
    }
    *pos = p;
}

/* The client's host: "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "::1". */
static void client_host(const char *client, const char **h, size_t *n)
{
    const char *colon = strrchr(client, ':');
    *h = client, *n = strlen(client);
    if (client[0] == '[' && colon && colon > client && colon[-1] == ']')
        *h = client + 1, *n = (size_t)(colon - 1 - *h);
    else if (colon && !strchr(client, '[') && colon == strchr(client, ':'))
        *n = (size_t)(colon - client);
}

/* "GET /path?query HTTP/1.1" */
static void request_line(char *out, size_t *p, const struct sl_access_entry *e)
{
    text_str(out, p, *p + 64, e->method, e->method_len);
    out[(*p)++] = ' ';
    text_str(out, p, *p + 2500, e->path, e->path_len);
    if (e->query) {
        out[(*p)++] = '?';
        text_str(out, p, *p + 1500, e->query, e->query_len);
    }
    *p += (size_t)sprintf(out + *p, " HTTP/1.%d", e->minor ? 1 : 0);
}

static size_t format_combined(char *buf, const struct sl_access_entry *e)
{
    const char *h;
    size_t n, p = 0;
    client_host(e->client, &h, &n);
    text_str(buf, &p, p + 128, h, n);
    lit(buf, &p, " - - ");
    put_time(buf, &p, e->time_ms, SL_TIME_RFC3339, 2);
    lit(buf, &p, " \"");
    request_line(buf, &p, e);
    p += (size_t)sprintf(buf + p, "\" %d ", e->status);
    if (e->bytes)
        num(buf, &p, e->bytes);
    else
        lit(buf, &p, "-");
    lit(buf, &p, " \"");
    text_str(buf, &p, p + 1000, e->referer, e->referer_len);
    lit(buf, &p, "\" \"");
    text_str(buf, &p, p + 1000, e->user_agent, e->user_agent_len);
    lit(buf, &p, "\"\n");
    return p;
}

/* One $field of a custom template; false for an unknown name (the config
 * checked them: kept literally). */
static bool custom_field(char *buf, size_t *p, size_t limit, const char *name, size_t n,
                         const struct sl_access_entry *e, const struct sl_access_log *l)
{
#define IS(lit_) (n == sizeof(lit_) - 1 && memcmp(name, lit_, n) == 0)
    char tmp[64];
    size_t t = 0;
    if (IS("time"))
        put_time(tmp, &t, e->time_ms, l->time_format, 0);
    else if (IS("status"))
        t = (size_t)sprintf(tmp, "%d", e->status);
    else if (IS("bytes_in"))
        num(tmp, &t, e->bytes_in);
    else if (IS("bytes_out"))
        num(tmp, &t, e->bytes);
    else if (IS("duration"))
        duration(tmp, &t, e->latency_us);
    else if (IS("pid"))
        t = (size_t)sprintf(tmp, "%d", l->pid);
    else if (IS("protocol"))
        t = (size_t)sprintf(tmp, "HTTP/1.%d", e->minor ? 1 : 0);
    else if (IS("client"))
        text_str(buf, p, limit, e->client, strlen(e->client));
    else if (IS("method"))
        text_str(buf, p, limit, e->method, e->method_len);
    else if (IS("path"))
        text_str(buf, p, limit, e->path, e->path_len);
    else if (IS("query"))
        text_str(buf, p, limit, e->query, e->query_len);
    else if (IS("user_agent"))
        text_str(buf, p, limit, e->user_agent, e->user_agent_len);
    else if (IS("referer"))
        text_str(buf, p, limit, e->referer, e->referer_len);
    else if (IS("tls"))
        text_str(buf, p, limit, e->tls, e->tls ? strlen(e->tls) : 0);
    else if (IS("listener"))
        text_str(buf, p, limit, e->listener, e->listener ? strlen(e->listener) : 0);
    else if (IS("request_id"))
        text_str(buf, p, limit, e->request_id, e->request_id_len);
    else
        return false;
#undef IS
    if (t && *p + t <= limit) {
        memcpy(buf + *p, tmp, t);
        *p += t;
    }
    return true;
}

static size_t format_custom(char *buf, size_t cap, const struct sl_access_entry *e,
                            const struct sl_access_log *l)
{
    size_t p = 0, limit = cap - 2; /* room for the newline */
    for (const char *s = l->tmpl; *s && p < limit;) {
        if (s[0] != '$' || s[1] == '$') {
            buf[p++] = *s == '\n' ? ' ' : *s; /* one line, whatever the template */
            s += s[0] == '$' ? 2 : 1;
            continue;
        }
        size_t n = 0;
        while ((s[1 + n] >= 'a' && s[1 + n] <= 'z') || s[1 + n] == '_')
            n++;
        size_t budget = p + 2000 < limit ? p + 2000 : limit;
        if (!custom_field(buf, &p, budget, s + 1, n, e, l))
            buf[p++] = '$', n = 0; /* not a field: the dollar stays */
        s += 1 + n;
    }
    buf[p++] = '\n';
    return p;
}

size_t sl_access_format(char *buf, size_t cap, const struct sl_access_entry *e,
                        const struct sl_access_log *l)
{
    assert(cap >= SL_ACCESS_LINE_MAX);
    if (l && l->format == SL_ACCESS_COMBINED)
        return format_combined(buf, e);
    if (l && l->format == SL_ACCESS_CUSTOM && l->tmpl)
        return format_custom(buf, cap, e, l);
    return format_json(buf, e, l);
}

void sl_access_log_write(const struct sl_access_log *l, const struct sl_access_entry *e)
{
    char line[SL_ACCESS_LINE_MAX];
    if (l->sink <= 0)
        return;
    size_t n = sl_access_format(line, sizeof(line), e, l);
    emit(&sinks[l->sink - 1], line, n, false);
}
