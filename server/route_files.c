/*
 * route_files: the `files` action. Opens the file below the route's root
 * with openat2(RESOLVE_BENEATH) (no path, symlink or ".." leaves the root),
 * answers conditionals and one byte range, and sends the body from the file
 * with the transport's sendfile (TLS: SSL_sendfile when kTLS sends, else
 * read + write through the output queue). The body is pumped as the socket takes it:
 * from after_write (EPOLLOUT) and from the connection's step, a few MiB at a
 * time so that one big file does not starve the other connections.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/route_internal.h"

#define PUMP_BUDGET (4u << 20) /* bytes per pump call before yielding */
#define NAME_MAX_REL 4096      /* bytes of a path below the root */
#define ROOT_TTL_MS 1000       /* a cached root directory fd is reopened after this */

/* ---- MIME types (/etc/mime.types, loaded once per process) ------------------- */

struct mime {
    char *ext;
    char *type;
};

static struct mime *mimes;
static size_t nmimes;
static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static int mime_cmp(const void *a, const void *b)
{
    return strcasecmp(((const struct mime *)a)->ext, ((const struct mime *)b)->ext);
}

/* "type ext ext ..." lines; '#' comments. A file missing means every type
 * is application/octet-stream. */
static void mime_load(void)
{
    FILE *f = fopen("/etc/mime.types", "re");
    char line[1024];
    size_t cap = 0;
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL, *type = strtok_r(line, " \t\r\n", &save), *ext;
        if (type == NULL || type[0] == '#')
            continue;
        while ((ext = strtok_r(NULL, " \t\r\n", &save))) {
            if (nmimes == cap) {
                struct mime *m = realloc(mimes, (cap = cap ? cap * 2 : 1024) * sizeof(*m));
                if (m == NULL)
                    goto out;
                mimes = m;
            }
            mimes[nmimes].ext = strdup(ext);
            mimes[nmimes].type = strdup(type);
            if (mimes[nmimes].ext && mimes[nmimes].type)
                nmimes++;
        }
    }
out:
    fclose(f);
    qsort(mimes, nmimes, sizeof(*mimes), mime_cmp);
}

static const char *mime_of(const char *name)
{
    const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
    pthread_once(&mime_once, mime_load);
    if (dot && (!slash || dot > slash) && dot[1]) {
        struct mime key = {.ext = (char *)dot + 1};
        const struct mime *m = bsearch(&key, mimes, nmimes, sizeof(*mimes), mime_cmp);
        if (m)
            return m->type;
    }
    return "application/octet-stream";
}

/* ---- request headers ------------------------------------------------------------ */

static const struct sl_h1_header *header(const struct sl_h1_request *h, const char *lower)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (sl_h1_name_is(&h->headers[i], lower, strlen(lower)))
            return &h->headers[i];
    return NULL;
}

/* Whether Accept-Encoding takes `coding` (listed with q other than 0). */
static bool accepts(const struct sl_h1_header *ae, const char *coding)
{
    size_t clen = strlen(coding);
    const char *p = ae ? ae->value : NULL, *end = p + (ae ? ae->value_len : 0);
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        bool match = (size_t)(p - s) == clen && strncasecmp(s, coding, clen) == 0;
        const char *item_end = memchr(p, ',', (size_t)(end - p));
        if (!item_end)
            item_end = end;
        bool zero = false;
        for (const char *q = p; q + 2 < item_end; q++) {
            if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                zero = q[2] == '0';
                for (const char *d = q + 3; zero && d < item_end && *d != ' ' && *d != '\t'; d++)
                    zero = *d == '.' || *d == '0';
                break;
            }
        }
        if (match)
            return !zero;
        p = item_end;
    }
    return false;
}

/* If-None-Match: "*" or a list holding the ETag (weak comparison). */
static bool etag_listed(const struct sl_h1_header *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm->value, *end = p + inm->value_len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p < end && *p == '*')
            return true;
        if (end - p > 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if ((size_t)(p - s) == elen && memcmp(s, etag, elen) == 0)
            return true;
    }
    return false;
}

static bool parse_http_date(const char *s, size_t n, time_t *out)
{
    char buf[64];
    struct tm tm = {0};
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return false;
    *out = timegm(&tm);
    return true;
}

static uint64_t parse_digits(const char **p, const char *end, bool *ok)
{
    uint64_t v = 0;
    const char *s = *p;
    while (*p < end && **p >= '0' && **p <= '9' && v < (UINT64_C(1) << 60))
        v = v * 10 + (uint64_t)(*(*p)++ - '0');
    *ok = *p > s && (*p == end || **p < '0' || **p > '9');
    return v;
}

enum range_verdict { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

/* One "bytes=first-last" / "first-" / "-suffix"; anything else (several
 * ranges, other units, bad syntax) serves the whole file (RFC 9110 14.2). */
static enum range_verdict parse_range(const struct sl_h1_header *rh, uint64_t size, uint64_t *first,
                                      uint64_t *last)
{
    const char *p = rh->value, *end = p + rh->value_len;
    bool ok1 = false, ok2 = false;
    if (rh->value_len < 7 || strncasecmp(p, "bytes=", 6) != 0 || memchr(p, ',', rh->value_len))
        return RANGE_NONE;
    p += 6;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && *p == '-') {
        p++;
        uint64_t suffix = parse_digits(&p, end, &ok2);
        if (!ok2 || p != end)
            return RANGE_NONE;
        if (suffix == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        *first = suffix >= size ? 0 : size - suffix;
        *last = size - 1;
        return RANGE_OK;
    }
    *first = parse_digits(&p, end, &ok1);
    if (!ok1 || p == end || *p++ != '-')
        return RANGE_NONE;
    *last = p == end ? UINT64_MAX : parse_digits(&p, end, &ok2);
    if ((p != end) || (*last != UINT64_MAX && !ok2) || *last < *first)
        return RANGE_NONE;
    if (*first >= size)
        return RANGE_UNSATISFIABLE;
    if (*last >= size)
        *last = size - 1;
    return RANGE_OK;
}

/* ---- opening -------------------------------------------------------------------- */

static int open_beneath(int dirfd, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, rel[0] ? rel : ".", &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

/* The file for `rel` below root (a directory: its index), regular only.
 * Returns the fd or -errno; rel then names what was opened (the index for
 * a directory), which gives the type. */
static int open_file(int rootfd, const struct sl_route_files *f, char *rel, size_t cap,
                     struct stat *st)
{
    int fd = open_beneath(rootfd, rel);
    if (fd < 0)
        return fd;
    if (fstat(fd, st) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (!S_ISDIR(st->st_mode)) {
        if (S_ISREG(st->st_mode))
            return fd;
        close(fd);
        return -ENOENT; /* devices, FIFOs, sockets: never */
    }
    close(fd);
    size_t len = strlen(rel);
    if (f->index[0] == '\0' || len + strlen(f->index) + 2 > cap)
        return -ENOENT; /* no listing */
    snprintf(rel + len, cap - len, "%s%s", len && rel[len - 1] != '/' ? "/" : "", f->index);
    fd = open_beneath(rootfd, rel);
    if (fd < 0)
        return fd;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -ENOENT;
    }
    return fd;
}

/* NAME.br / NAME.gz in place of fd when the client takes it. */
static int open_variant(int rootfd, const char *rel, const struct sl_h1_request *h, int fd,
                        struct stat *st, const char **encoding)
{
    static const char *const codings[][2] = {{"br", ".br"}, {"gzip", ".gz"}};
    const struct sl_h1_header *ae = header(h, "accept-encoding");
    char alt[NAME_MAX_REL + 8];
    for (size_t i = 0; i < 2; i++) {
        struct stat vst;
        if (!accepts(ae, codings[i][0]))
            continue;
        snprintf(alt, sizeof(alt), "%s%s", rel, codings[i][1]);
        int vfd = open_beneath(rootfd, alt);
        if (vfd < 0)
            continue;
        if (fstat(vfd, &vst) == 0 && S_ISREG(vst.st_mode)) {
            close(fd);
            *st = vst;
            *encoding = codings[i][0];
            return vfd;
        }
        close(vfd);
    }
    return fd;
}

/* ---- the body pump ---------------------------------------------------------------- */

void sl__route_file_close(struct sl_req *r)
{
    if (r->file_fd > 0)
        close(r->file_fd);
    r->file_fd = 0;
    r->file_left = 0;
}

/* Reads and writes through the output queue (transports without sendfile,
 * TLS connections without kTLS).
 * Returns bytes taken, 0 when the socket is full, or -errno. */
static ssize_t copy_some(struct sl_conn *c, struct sl_req *r, size_t want)
{
    char buf[16384];
    size_t k = want < sizeof(buf) ? want : sizeof(buf);
    ssize_t n = pread(r->file_fd, buf, k, (off_t)r->file_off);
    if (n <= 0)
        return n < 0 ? -errno : -EIO; /* truncated under us */
    struct iovec iov = {buf, (size_t)n};
    int rc = sl__out_write(c, &iov, 1);
    if (rc < 0)
        return rc;
    return rc == 1 ? -(ssize_t)n - 1 : n; /* taken; queued when blocked */
}

void sl__route_file_pump(struct sl_req *r)
{
    struct sl_conn *c = r->c;
    size_t budget = PUMP_BUDGET;
    if (!c || r->file_fd <= 0 || c->wblocked || c->out_head)
        return;
    while (r->file_left && budget) {
        size_t want = r->file_left < budget ? (size_t)r->file_left : budget;
        ssize_t n = -EOPNOTSUPP;
        bool blocked = false;
        if (c->tp->sendfile) {
            off_t off = (off_t)r->file_off;
            n = c->tp->sendfile(c->fd, c->tp_ctx, r->file_fd, &off, want);
            if (n == -EAGAIN) {
                c->wblocked = true;
                if (sl__out_want_write(c) < 0) {
                    sl__conn_close(c);
                    return;
                }
                if (!sl_timer_armed(&c->wtimer))
                    sl__timer_arm(c, &c->wtimer, sl__route_write_ms(c));
                return;
            }
            if (n == 0)
                n = -EIO; /* the file shrank */
        }
        if (n == -EOPNOTSUPP) {
            n = copy_some(c, r, want);
            if (n < -1) { /* taken, the rest queued: EPOLLOUT resumes */
                n = -n - 1;
                blocked = true;
            }
        }
        if (n < 0) {
            sl__conn_lost(c);
            return;
        }
        r->file_off += (uint64_t)n;
        r->file_left -= (uint64_t)n;
        budget -= (size_t)n;
        sl__timer_arm(c, &c->wtimer, sl__route_write_ms(c)); /* progress */
        if (blocked)
            return;
    }
    if (r->file_left) { /* budget spent: the others' turn, then more */
        sl__worker_kick(c);
        return;
    }
    sl__route_file_close(r);
    if (!c->out_head)
        sl_timer_cancel(&c->w->wheel, &c->wtimer);
    if (r->has_cl)
        r->resp_sent = r->resp_cl;
    if (r->file_chunked) { /* sl_resp_file: the end of its one chunk */
        struct iovec crlf = {"\r\n", 2};
        r->file_chunked = false;
        if (sl__out_write(c, &crlf, 1) < 0) {
            sl__conn_lost(c);
            return;
        }
    }
    sl_resp_body(r, NULL, 0, false); /* ends the response; r may be detached */
}

/* ---- the action -------------------------------------------------------------------- */

static void fmt_http_date(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

struct file_resp {
    int status;
    uint64_t first, len;
    char etag[64], lm[40], cl[24], cr[80], cc[32];
};

/* 304 when the client's copy is current (If-None-Match wins over
 * If-Modified-Since, RFC 9110 13.2.2). */
static bool not_modified(const struct sl_h1_request *h, const char *etag, time_t mtime)
{
    const struct sl_h1_header *inm = header(h, "if-none-match"), *ims;
    time_t since;
    if (inm)
        return etag_listed(inm, etag);
    ims = header(h, "if-modified-since");
    return ims && parse_http_date(ims->value, ims->value_len, &since) && mtime <= since;
}

/* Range, unless If-Range names another version. */
static enum range_verdict want_range(const struct sl_h1_request *h, struct file_resp *fr,
                                     uint64_t size, bool get)
{
    const struct sl_h1_header *rh = header(h, "range"), *ir = header(h, "if-range");
    uint64_t last = 0;
    if (!rh || !get)
        return RANGE_NONE;
    if (ir &&
        !(ir->value_len == strlen(fr->etag) && memcmp(ir->value, fr->etag, ir->value_len) == 0) &&
        !(ir->value_len == strlen(fr->lm) && memcmp(ir->value, fr->lm, ir->value_len) == 0))
        return RANGE_NONE;
    enum range_verdict v = parse_range(rh, size, &fr->first, &last);
    if (v == RANGE_OK)
        fr->len = last - fr->first + 1;
    return v;
}

static void send_file(struct sl_req *r, const struct sl_h1_request *h,
                      const struct sl_route_files *f, int fd, const struct stat *st,
                      const char *type, const char *encoding)
{
    struct sl_h1_header v[12];
    size_t n = 0;
    struct file_resp fr = {.status = 200, .first = 0, .len = (uint64_t)st->st_size};
    bool get = h->method_len == 3;
    snprintf(fr.etag, sizeof(fr.etag), "\"%" PRIx64 "-%" PRIx64 "%s%s\"",
             (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec,
             (uint64_t)st->st_size, encoding ? "-" : "", encoding ? encoding : "");
    fmt_http_date(st->st_mtim.tv_sec, fr.lm, sizeof(fr.lm));
#define HDR(name, val) (v[n++] = (struct sl_h1_header){name, strlen(name), val, strlen(val)})
    HDR("ETag", fr.etag);
    HDR("Last-Modified", fr.lm);
    if (f->cache_ms >= 1000) {
        snprintf(fr.cc, sizeof(fr.cc), "max-age=%" PRIu32, f->cache_ms / 1000);
        HDR("Cache-Control", fr.cc);
    }
    if (f->precompressed)
        HDR("Vary", "Accept-Encoding");
    if (not_modified(h, fr.etag, st->st_mtim.tv_sec)) {
        close(fd);
        r->app_holds = true;
        if (sl_resp_start(r, 304, v, n, false) == 0)
            sl_resp_body(r, NULL, 0, false);
        sl_req_release(r);
        return;
    }
    HDR("Content-Type", type);
    HDR("Accept-Ranges", "bytes");
    if (encoding)
        HDR("Content-Encoding", encoding);
    enum range_verdict rv = want_range(h, &fr, (uint64_t)st->st_size, get);
    if (rv == RANGE_UNSATISFIABLE) {
        close(fd);
        snprintf(fr.cr, sizeof(fr.cr), "bytes */%" PRIu64, (uint64_t)st->st_size);
        n -= 2 + (encoding != NULL); /* no type/ranges/encoding for the error */
        HDR("Content-Range", fr.cr);
        HDR("Content-Length", "0");
        r->app_holds = true;
        if (sl_resp_start(r, 416, v, n, false) == 0)
            sl_resp_body(r, NULL, 0, false);
        sl_req_release(r);
        return;
    }
    if (rv == RANGE_OK) {
        fr.status = 206;
        snprintf(fr.cr, sizeof(fr.cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, fr.first,
                 fr.first + fr.len - 1, (uint64_t)st->st_size);
        HDR("Content-Range", fr.cr);
    }
    snprintf(fr.cl, sizeof(fr.cl), "%" PRIu64, fr.len);
    HDR("Content-Length", fr.cl);
#undef HDR
    /* The core holds the req alone from here: no app, no events. */
    if (sl_resp_start(r, fr.status, v, n, false) < 0 || !get || fr.len == 0) {
        close(fd);
        if (r->started)
            sl_resp_body(r, NULL, 0, false);
        else
            sl_resp_error(r, 500);
        return;
    }
    if (sl_resp_body(r, NULL, 0, true) < 0) { /* the head goes out first */
        close(fd);
        return;
    }
    r->file_fd = fd;
    r->file_off = fr.first;
    r->file_left = fr.len;
    sl__route_file_pump(r);
}

/*
 * The root directory, opened O_PATH. Each worker keeps the roots it serves
 * open for ROOT_TTL_MS (an open and a close less per request); after that
 * the path is resolved again, so a root replaced by a symlink swap (a
 * deploy) is served within a second. -errno on failure.
 */
static int root_fd(struct sl_worker *w, const char *root)
{
    struct sl__root_fd *slot = NULL;
    uint64_t now = sl__worker_now(w);
    size_t n = sizeof(w->roots) / sizeof(w->roots[0]);
    for (size_t i = 0; i < n && !slot; i++)
        if (w->roots[i].root == root)
            slot = &w->roots[i];
    if (slot && now - slot->opened_ms < ROOT_TTL_MS)
        return slot->fd;
    for (size_t i = 0; i < n && !slot; i++)
        if (w->roots[i].root == NULL)
            slot = &w->roots[i];
    if (!slot) /* more roots than slots: the oldest makes room */
        for (size_t i = 0; i < n; i++)
            if (!slot || w->roots[i].opened_ms < slot->opened_ms)
                slot = &w->roots[i];
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (slot->root)
        close(slot->fd);
    *slot = (struct sl__root_fd){.root = fd >= 0 ? root : NULL, .fd = fd, .opened_ms = now};
    return fd >= 0 ? fd : -errno;
}

void sl__route_files_release(struct sl_worker *w)
{
    for (size_t i = 0; i < sizeof(w->roots) / sizeof(w->roots[0]); i++)
        if (w->roots[i].root)
            close(w->roots[i].fd);
    memset(w->roots, 0, sizeof(w->roots));
}

bool sl__route_files(struct sl_req *r, const struct sl_h1_request *h,
                     const struct sl_route_hit *hit)
{
    void (*respond_status)(struct sl_req *, int) = sl__route_status;
    const struct sl_route_files *f = &hit->route->files;
    char rel[NAME_MAX_REL];
    struct stat st;
    const char *encoding = NULL;
    bool get = h->method_len == 3 && memcmp(h->method, "GET", 3) == 0;
    bool head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
    if (!get && !head) {
        respond_status(r, 405);
        return true;
    }
    if (hit->path == NULL) {
        respond_status(r, 404);
        return true;
    }
    const char *p = hit->path + (hit->route->path_prefix ? hit->rest_off : 1);
    size_t len = hit->path_len - (size_t)(p - hit->path);
    if (len + 1 > sizeof(rel) || memchr(p, '\0', len)) {
        respond_status(r, 404);
        return true;
    }
    memcpy(rel, p, len);
    rel[len] = '\0';
    int rootfd = root_fd(r->w, f->root);
    if (rootfd < 0) {
        respond_status(r, 500);
        return true;
    }
    int fd = open_file(rootfd, f, rel, sizeof(rel), &st);
    if (fd >= 0 && f->precompressed)
        fd = open_variant(rootfd, rel, h, fd, &st, &encoding);
    if (fd < 0) {
        bool missing = fd == -ENOENT || fd == -ENOTDIR;
        if (missing && f->fallback == SL_FILES_FALLBACK_APP)
            return false;
        /* a path leaving the root (-EXDEV, -ELOOP) looks like a missing file */
        respond_status(r, fd == -EACCES ? 403 : 404);
        return true;
    }
    send_file(r, h, f, fd, &st, mime_of(rel), encoding);
    return true;
}
