/*
 * h1: HTTP/1.1 request heads (RFC 9112) and the chunked transfer coding.
 *
 * Shape: one forward pass over the head, one table lookup per byte for the
 * short parts (method, header names) and eight bytes at a time for the long
 * ones (request-target, field values). Nothing is allocated or copied.
 *
 * Choices where the RFCs leave room (all deliberate, all tested):
 * - A bare LF ends a line of the head (RFC 9112 2.2 allows it); a CR that is
 *   not immediately followed by LF is always 400. Chunked framing lines are
 *   stricter: they need CRLF, because lenient chunk-line endings are a known
 *   request-smuggling vector between proxies and servers.
 * - Any number of empty lines before the request line is skipped; they still
 *   count towards max_head.
 * - CONNECT is answered 501: this is an origin server, not a tunnel.
 * - Transfer-Encoding on an HTTP/1.0 request is 400 (RFC 9112 6.1: "faulty
 *   framing"), and so is Transfer-Encoding with Content-Length.
 * - Request-targets are visible ASCII only, without '#' (a fragment stays
 *   with the client, RFC 9112 3.2: 400 like any other bad byte).
 *   Absolute-form must be http(s) with a non-empty authority and no
 *   userinfo, and its authority replaces the Host field's value (RFC 9112
 *   3.2.2).
 * - A higher 1.x minor version is served as HTTP/1.1.
 * - Duplicate Content-Length values (in one field as a list, or in several
 *   fields) are accepted when all are equal (RFC 9110 8.6), else 400.
 */
#include "server/h1.h"

#include <limits.h>
#include <string.h>

/* ---- character classes ------------------------------------------------ */

#define C_TCHAR 1u /* RFC 9110 token character */
#define C_VCHAR 2u /* visible ASCII but '#': the only bytes allowed in a request-target */
#define C_FIELD 4u /* field-value byte: HTAB, SP, VCHAR, obs-text */

#define IS_TCHAR(c)                                                                                \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') ||     \
     (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||          \
     (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||           \
     (c) == '`' || (c) == '|' || (c) == '~')
#define CLS(c)                                                                                     \
    ((IS_TCHAR(c) ? C_TCHAR : 0) | ((c) > 0x20 && (c) < 0x7f && (c) != '#' ? C_VCHAR : 0) |        \
     ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f) ? C_FIELD : 0))
#define CLS4(c) CLS(c), CLS((c) + 1), CLS((c) + 2), CLS((c) + 3)
#define CLS16(c) CLS4(c), CLS4((c) + 4), CLS4((c) + 8), CLS4((c) + 12)
#define CLS64(c) CLS16(c), CLS16((c) + 16), CLS16((c) + 32), CLS16((c) + 48)

static const unsigned char cls[256] = {CLS64(0), CLS64(64), CLS64(128), CLS64(192)};

#define IS(c, mask) (cls[(unsigned char)(c)] & (mask))

/* ---- eight bytes at a time -------------------------------------------- */

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load64(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* Nonzero iff some byte of x is below n (n <= 128). Exact as a truth value:
 * a borrow only crosses into a byte when a lower byte was already below n. */
static inline uint64_t has_below(uint64_t x, uint64_t n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, uint64_t b)
{
    return has_below(x ^ (ONES * b), 1);
}

/* Index of the first flagged byte of a nonzero mask from the functions
 * above. The lowest flag is always genuine (borrows only move upwards), so on
 * a little-endian machine it is the first offending byte in memory order. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_FLAGGED(m) ((size_t)__builtin_ctzll(m) / 8)
#else
#define FIRST_FLAGGED(m) ((size_t)0) /* the byte loop finds it */
#endif

/* First byte at or after p that may not appear in a request-target: a
 * control, space, non-ASCII, or '#' (a fragment is never sent, RFC 9112
 * 3.2). */
static const char *scan_target(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load64(p);
        uint64_t m = has_below(x, 0x21) | has_byte(x, 0x7f) | has_byte(x, '#') | (x & HIGHS);
        if (m) {
            p += FIRST_FLAGGED(m);
            break;
        }
        p += 8;
    }
    while (p < end && IS(*p, C_VCHAR))
        p++;
    return p;
}

/* First byte at or after p that may not appear in a field value: CR, LF or
 * another CTL. HTAB is flagged by the word test but accepted here. */
static const char *scan_value(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load64(p);
        uint64_t m = has_below(x, 0x20) | has_byte(x, 0x7f);
        if (!m) {
            p += 8;
            continue;
        }
        p += FIRST_FLAGGED(m);
        if (*p != '\t')
            break;
        p++;
    }
    while (p < end && IS(*p, C_FIELD))
        p++;
    return p;
}

/* First non-tchar byte at or after p; unrolled because names are short and
 * the per-byte bound check would otherwise cost as much as the lookup. */
static const char *scan_token(const char *p, const char *end)
{
    while (end - p >= 4) {
        if (!IS(p[0], C_TCHAR))
            return p;
        if (!IS(p[1], C_TCHAR))
            return p + 1;
        if (!IS(p[2], C_TCHAR))
            return p + 2;
        if (!IS(p[3], C_TCHAR))
            return p + 3;
        p += 4;
    }
    while (p < end && IS(*p, C_TCHAR))
        p++;
    return p;
}

/* ---- small helpers ---------------------------------------------------- */

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive equality with a lowercase literal. */
static bool ieq(const char *s, size_t n, const char *lit, size_t lit_n)
{
    if (n != lit_n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

#define IEQ(s, n, lit) ieq((s), (n), lit, sizeof(lit) - 1)

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Comma-separated list (RFC 9110 5.6.1), elements OWS-trimmed. */
struct list {
    const char *p, *end;
    bool done;
};

static bool list_next(struct list *l, const char **el, size_t *el_len)
{
    if (l->done)
        return false;
    const char *comma = memchr(l->p, ',', (size_t)(l->end - l->p));
    const char *s = l->p, *e = comma ? comma : l->end;
    while (s < e && is_ows(*s))
        s++;
    while (e > s && is_ows(e[-1]))
        e--;
    *el = s;
    *el_len = (size_t)(e - s);
    l->done = comma == NULL;
    l->p = comma ? comma + 1 : l->end;
    return true;
}

/* ---- request line ----------------------------------------------------- */

/* Line end at p: CRLF or a bare LF. On success moves *pp past it. */
static int eat_eol(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p == end)
        return SL_H1_INCOMPLETE;
    if (*p == '\n') {
        *pp = p + 1;
        return 0;
    }
    if (*p != '\r')
        return SL_H1_E_MALFORMED;
    if (p + 1 == end)
        return SL_H1_INCOMPLETE;
    if (p[1] != '\n')
        return SL_H1_E_MALFORMED;
    *pp = p + 2;
    return 0;
}

/* Skips the empty lines a client may send before the request line. */
static int skip_empty_lines(const char **pp, const char *end)
{
    while (*pp < end && (**pp == '\r' || **pp == '\n')) {
        int rc = eat_eol(pp, end);
        if (rc != 0)
            return rc;
    }
    return *pp == end ? SL_H1_INCOMPLETE : 0;
}

/* "HTTP/" DIGIT "." DIGIT and the line end. A higher 1.x minor is served
 * as 1.1, the highest we implement (RFC 9110 6.2, RFC 9112 2.3); any other
 * major version (0.9, 2, 3) is 505; anything else 400, decided as soon as
 * a byte is wrong so that a complete but malformed head never looks
 * incomplete. */
static int parse_version(const char **pp, const char *end, int *minor)
{
    static const char pat[] = "HTTP/1.1";
    const char *p = *pp;
    size_t avail = (size_t)(end - p);
    for (size_t i = 0; i < 8; i++) {
        if (i == avail)
            return SL_H1_INCOMPLETE;
        bool digit = p[i] >= '0' && p[i] <= '9';
        if (i == 5 || i == 7 ? !digit : p[i] != pat[i])
            return SL_H1_E_MALFORMED;
    }
    p += 8;
    int rc = eat_eol(&p, end);
    if (rc != 0)
        return rc;
    if ((*pp)[5] != '1')
        return SL_H1_E_VERSION;
    *minor = (*pp)[7] == '0' ? 0 : 1;
    *pp = p;
    return 0;
}

/* Splits [s, e) at the first '?' into path and query (NULL when absent). */
static void split_query(struct sl_h1_request *req, const char *s, const char *e)
{
    const char *q = memchr(s, '?', (size_t)(e - s));
    req->path = s;
    req->path_len = (size_t)((q ? q : e) - s);
    req->query = q ? q + 1 : NULL;
    req->query_len = q ? (size_t)(e - q - 1) : 0;
}

/* absolute-form: http(s)://authority[/path][?query]. A recipient should
 * treat userinfo as an error (RFC 9110 4.2.4), so '@' is rejected. */
static int parse_absolute(struct sl_h1_request *req)
{
    const char *t = req->target, *e = t + req->target_len;
    size_t skip;
    if (req->target_len > 7 && IEQ(t, 7, "http://"))
        skip = 7;
    else if (req->target_len > 8 && IEQ(t, 8, "https://"))
        skip = 8;
    else
        return SL_H1_E_MALFORMED;
    const char *a = t + skip, *ae = a;
    while (ae < e && *ae != '/' && *ae != '?') {
        if (*ae == '@')
            return SL_H1_E_MALFORMED;
        ae++;
    }
    if (ae == a)
        return SL_H1_E_MALFORMED;
    if (ae < e && *ae == '/') {
        split_query(req, ae, e);
        return 0;
    }
    req->path = "/";
    req->path_len = 1;
    req->query = ae < e ? ae + 1 : NULL;
    req->query_len = ae < e ? (size_t)(e - ae - 1) : 0;
    return 0;
}

/* Fills path/query from the request-target according to its form. */
static int classify_target(struct sl_h1_request *req)
{
    /* Methods are case-sensitive (RFC 9110 9.1). */
    if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0)
        return SL_H1_E_NOT_IMPLEMENTED;
    if (req->target[0] == '/') {
        split_query(req, req->target, req->target + req->target_len);
        return 0;
    }
    if (req->target[0] == '*') {
        bool options = req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0;
        if (req->target_len != 1 || !options)
            return SL_H1_E_MALFORMED;
        req->path = req->target;
        req->path_len = 1;
        req->query = NULL;
        req->query_len = 0;
        return 0;
    }
    return parse_absolute(req);
}

static int parse_request_line(const char **pp, const char *end, const struct sl_h1_limits *lim,
                              struct sl_h1_request *req)
{
    const char *m = *pp, *p = scan_token(m, end);
    if (p == end)
        return SL_H1_INCOMPLETE;
    if (*p != ' ' || p == m)
        return SL_H1_E_MALFORMED;
    req->method = m;
    req->method_len = (size_t)(p - m);

    const char *t = ++p;
    p = scan_target(p, end);
    if ((size_t)(p - t) > lim->max_target)
        return SL_H1_E_TARGET_TOO_LONG;
    if (p == end)
        return SL_H1_INCOMPLETE;
    if (*p != ' ' || p == t)
        return SL_H1_E_MALFORMED;
    req->target = t;
    req->target_len = (size_t)(p - t);

    p++;
    int rc = parse_version(&p, end, &req->minor_version);
    if (rc != 0)
        return rc;
    rc = classify_target(req);
    if (rc != 0)
        return rc;
    *pp = p;
    return 0;
}

/* ---- header fields ---------------------------------------------------- */

/* What the framing/connection headers said, folded in as they arrive. */
struct fields {
    unsigned te_codings; /* transfer-codings across all Transfer-Encoding lines */
    bool te_seen, te_other, cl_seen;
    bool conn_close, conn_keep_alive, conn_upgrade, upgrade_seen, expect_continue;
};

/* Content-Length: 1*DIGIT, or a list of identical such values. */
static int note_content_length(const char *v, size_t n, struct sl_h1_request *req, struct fields *f)
{
    struct list l = {v, v + n, false};
    const char *el;
    size_t el_len;
    while (list_next(&l, &el, &el_len)) {
        if (el_len == 0)
            return SL_H1_E_MALFORMED;
        int64_t val = 0;
        for (size_t i = 0; i < el_len; i++) {
            unsigned d = (unsigned char)el[i] - '0';
            if (d > 9 || val > (INT64_MAX - (int64_t)d) / 10)
                return SL_H1_E_MALFORMED;
            val = val * 10 + (int64_t)d;
        }
        if (f->cl_seen && val != req->content_length)
            return SL_H1_E_MALFORMED;
        f->cl_seen = true;
        req->content_length = val;
    }
    return 0;
}

static void note_transfer_encoding(const char *v, size_t n, struct fields *f)
{
    struct list l = {v, v + n, false};
    const char *el;
    size_t el_len;
    f->te_seen = true;
    while (list_next(&l, &el, &el_len)) {
        if (el_len == 0)
            continue; /* empty list elements are ignored (RFC 9110 5.6.1) */
        f->te_codings++;
        if (!IEQ(el, el_len, "chunked"))
            f->te_other = true;
    }
}

static void note_connection(const char *v, size_t n, struct fields *f)
{
    struct list l = {v, v + n, false};
    const char *el;
    size_t el_len;
    while (list_next(&l, &el, &el_len)) {
        if (IEQ(el, el_len, "close"))
            f->conn_close = true;
        else if (IEQ(el, el_len, "keep-alive"))
            f->conn_keep_alive = true;
        else if (IEQ(el, el_len, "upgrade"))
            f->conn_upgrade = true;
    }
}

/* Folds one field into the request's framing and connection semantics. */
static int note_field(const struct sl_h1_header *h, struct sl_h1_request *req, struct fields *f)
{
    const char *n = h->name;
    switch (h->name_len) {
    case 4:
        if (!IEQ(n, 4, "host"))
            return 0;
        if (req->host)
            return SL_H1_E_MALFORMED;
        req->host = h->value;
        req->host_len = h->value_len;
        return 0;
    case 6:
        if (IEQ(n, 6, "expect") && IEQ(h->value, h->value_len, "100-continue"))
            f->expect_continue = true;
        return 0;
    case 7:
        if (IEQ(n, 7, "upgrade") && h->value_len > 0)
            f->upgrade_seen = true;
        return 0;
    case 10:
        if (IEQ(n, 10, "connection"))
            note_connection(h->value, h->value_len, f);
        return 0;
    case 14:
        if (IEQ(n, 14, "content-length"))
            return note_content_length(h->value, h->value_len, req, f);
        return 0;
    case 17:
        if (IEQ(n, 17, "transfer-encoding"))
            note_transfer_encoding(h->value, h->value_len, f);
        return 0;
    default:
        return 0;
    }
}

/* One field line: tchar name, ':', OWS, value, OWS, line end. A line that
 * starts with whitespace (obs-fold) has an empty name and is rejected. */
static int parse_field(const char **pp, const char *end, struct sl_h1_header *h)
{
    const char *name = *pp, *p = scan_token(name, end);
    if (p == end)
        return SL_H1_INCOMPLETE;
    if (*p != ':' || p == name)
        return SL_H1_E_MALFORMED;
    h->name = name;
    h->name_len = (size_t)(p - name);
    p++;
    while (p < end && is_ows(*p))
        p++;
    const char *v = p;
    p = scan_value(p, end);
    const char *ve = p;
    int rc = eat_eol(&p, end);
    if (rc != 0)
        return rc;
    while (ve > v && is_ows(ve[-1]))
        ve--;
    h->value = v;
    h->value_len = (size_t)(ve - v);
    *pp = p;
    return 0;
}

static int parse_fields(const char **pp, const char *end, size_t max, struct sl_h1_request *req,
                        struct fields *f, size_t *count)
{
    const char *p = *pp;
    size_t n = 0;
    while (p == end || (*p != '\r' && *p != '\n')) {
        struct sl_h1_header h;
        int rc = p == end ? SL_H1_INCOMPLETE : parse_field(&p, end, &h);
        if (rc != 0)
            return rc;
        if (n == max)
            return SL_H1_E_HEAD_TOO_LARGE;
        req->headers[n++] = h;
        rc = note_field(&h, req, f);
        if (rc != 0)
            return rc;
    }
    int rc = eat_eol(&p, end);
    if (rc != 0)
        return rc;
    *count = n;
    *pp = p;
    return 0;
}

/* Message framing and connection semantics once all fields are known. */
static int finish(struct sl_h1_request *req, const struct fields *f)
{
    bool http11 = req->minor_version == 1;
    if (f->te_seen) {
        if (f->cl_seen || !http11)
            return SL_H1_E_MALFORMED;
        if (f->te_codings == 0)
            return SL_H1_E_MALFORMED;
        if (f->te_other || f->te_codings != 1)
            return SL_H1_E_NOT_IMPLEMENTED;
        req->chunked = true;
    }
    if (http11 && !req->host)
        return SL_H1_E_MALFORMED;
    req->keep_alive = !f->conn_close && (http11 || f->conn_keep_alive);
    /* RFC 9110 10.1.1 and 7.8: both are ignored in HTTP/1.0 requests. */
    req->expect_continue = http11 && f->expect_continue;
    req->upgrade = http11 && f->conn_upgrade && f->upgrade_seen;
    return 0;
}

/* ---- the head --------------------------------------------------------- */

/* Whether buf[line..end) holds the empty line that ends a head. A previous
 * call that saw prev_len bytes has already ruled out every LF it could
 * decide on, i.e. all but the last two bytes. An LF followed by CR and not
 * LF also answers yes, so that the full parse reports the bare CR. */
static bool head_complete(const char *buf, const char *line, const char *end, size_t prev_len)
{
    const char *p = buf + (prev_len > 3 ? prev_len - 3 : 0);
    if (p < line)
        p = line;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (end - p < 2)
            return false;
        if (p[1] == '\n')
            return true;
        if (p[1] == '\r')
            return end - p >= 3;
        p++;
    }
    return false;
}

/* The verdict on a head not (yet) terminated within buf[0..min(len,
 * max_head)). A request-target that already exceeds max_target is 414
 * before the line ends; a head that cannot fit in max_head is 431. */
static int incomplete(const char *buf, size_t len, const char *line, size_t max_head,
                      size_t max_target)
{
    const char *end = buf + (len < max_head ? len : max_head);
    size_t avail = (size_t)(end - line);
    if (avail > max_target) {
        const char *sp = memchr(line, ' ', avail);
        if (sp && (size_t)(end - sp - 1) > max_target && !memchr(sp + 1, ' ', max_target + 1))
            return SL_H1_E_TARGET_TOO_LONG;
    }
    return len >= max_head ? SL_H1_E_HEAD_TOO_LARGE : SL_H1_INCOMPLETE;
}

/* RFC 9112 3.2.2: with an absolute-form target the server ignores the Host
 * field and uses the target's authority. The Host entry is repointed at it
 * (no copy), so the app and everything else see the one host that counts. */
static void host_from_target(struct sl_h1_request *req, size_t count)
{
    const char *t = req->target, *e = t + req->target_len;
    const char *a = t + (lower((unsigned char)t[4]) == 's' ? 8 : 7), *ae = a;
    while (ae < e && *ae != '/' && *ae != '?')
        ae++;
    for (size_t i = 0; i < count; i++) {
        struct sl_h1_header *h = &req->headers[i];
        if (IEQ(h->name, h->name_len, "host")) {
            h->value = a;
            h->value_len = (size_t)(ae - a);
        }
    }
    req->host = a;
    req->host_len = (size_t)(ae - a);
}

static int parse_head(const char *buf, const char *p, const char *end,
                      const struct sl_h1_limits *lim, struct sl_h1_request *req)
{
    struct fields f = {0};
    size_t cap = req->nheaders, count = 0;
    size_t max = lim->max_headers < cap ? lim->max_headers : cap;

    req->content_length = -1;
    req->chunked = req->keep_alive = req->expect_continue = req->upgrade = false;
    req->host = NULL;
    req->host_len = 0;
    int rc = parse_request_line(&p, end, lim, req);
    if (rc == 0)
        rc = parse_fields(&p, end, max, req, &f, &count);
    if (rc == 0)
        rc = finish(req, &f);
    if (rc != 0)
        return rc;
    if (req->host && req->target[0] != '/' && req->target[0] != '*')
        host_from_target(req, count);
    req->nheaders = count;
    return (int)(p - buf);
}

int sl_h1_parse_request(const char *buf, size_t len, size_t prev_len,
                        const struct sl_h1_limits *lim, struct sl_h1_request *req)
{
    size_t max_head = lim->max_head < INT_MAX ? lim->max_head : INT_MAX;
    if (len == 0)
        return max_head == 0 ? SL_H1_E_HEAD_TOO_LARGE : SL_H1_INCOMPLETE;
    const char *end = buf + (len < max_head ? len : max_head);
    const char *line = buf;
    int rc = skip_empty_lines(&line, end);
    if (rc == SL_H1_E_MALFORMED)
        return rc;
    if (rc == 0 &&
        (prev_len == 0 || head_complete(buf, line, end, prev_len < len ? prev_len : len)))
        rc = parse_head(buf, line, end, lim, req);
    else
        rc = SL_H1_INCOMPLETE;
    if (rc == SL_H1_INCOMPLETE)
        return incomplete(buf, len, line, max_head, lim->max_target);
    return rc;
}

/* ---- chunked transfer coding ------------------------------------------ */

#define CHUNK_LINE_MAX 4096 /* bytes of one chunk-size line with extensions */
#define TRAILER_MAX 8192    /* bytes of the whole trailer section */

enum {
    CH_SIZE0,   /* start of a chunk-size line: a hex digit must follow */
    CH_SIZE,    /* in the hex digits */
    CH_SIZE_WS, /* BWS after the digits: only ';' may follow */
    CH_EXT,     /* chunk extensions, skipped up to CR */
    CH_SIZE_LF, /* CR seen on the size line */
    CH_DATA,    /* `remaining` data bytes to go */
    CH_DATA_CR, /* CRLF after the chunk data */
    CH_DATA_LF,
    CH_TRAILER, /* start of a trailer line (or of the final CRLF) */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF, /* CR of the final CRLF seen */
    CH_DONE,
    CH_E400,
    CH_E413,
};

int sl_h1_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A chunk-size line is complete: start the data, the trailers, or fail. */
static int end_size_line(struct sl_h1_chunked *d)
{
    if (d->remaining == 0) {
        d->line_len = 0;
        return CH_TRAILER;
    }
    if (d->max_body && d->remaining > d->max_body - d->total)
        return CH_E413;
    return CH_DATA;
}

/* Transition for one byte of a chunk-size line. */
static int step_size_line(struct sl_h1_chunked *d, unsigned char c)
{
    int h = sl_h1_hexval(c);
    if (++d->line_len > CHUNK_LINE_MAX)
        return CH_E400;
    switch (d->state) {
    case CH_SIZE0:
        if (h < 0)
            return CH_E400;
        d->remaining = (uint64_t)h;
        return CH_SIZE;
    case CH_SIZE:
        if (h >= 0) {
            if (d->remaining > (uint64_t)(INT64_MAX - h) / 16)
                return CH_E400;
            d->remaining = d->remaining * 16 + (uint64_t)h;
            return CH_SIZE;
        }
        if (c == ' ' || c == '\t')
            return CH_SIZE_WS;
        return c == ';' ? CH_EXT : c == '\r' ? CH_SIZE_LF : CH_E400;
    case CH_SIZE_WS:
        return is_ows((char)c) ? CH_SIZE_WS : c == ';' ? CH_EXT : CH_E400;
    case CH_EXT:
        /* Loose: any field-value byte. CR always ends the line, even inside
         * a quoted string, so no byte sequence can hide a line end. */
        return c == '\r' ? CH_SIZE_LF : IS(c, C_FIELD) ? CH_EXT : CH_E400;
    default: /* CH_SIZE_LF */
        return c == '\n' ? end_size_line(d) : CH_E400;
    }
}

/* Transition for one byte of the trailer section or the final CRLF. */
static int step_trailer(struct sl_h1_chunked *d, unsigned char c)
{
    if (++d->line_len > TRAILER_MAX)
        return CH_E400;
    switch (d->state) {
    case CH_TRAILER:
        return c == '\r' ? CH_END_LF : IS(c, C_TCHAR) ? CH_TR_NAME : CH_E400;
    case CH_TR_NAME:
        return IS(c, C_TCHAR) ? CH_TR_NAME : c == ':' ? CH_TR_VALUE : CH_E400;
    case CH_TR_VALUE:
        return c == '\r' ? CH_TR_LF : IS(c, C_FIELD) ? CH_TR_VALUE : CH_E400;
    case CH_TR_LF:
        return c == '\n' ? CH_TRAILER : CH_E400;
    default: /* CH_END_LF */
        return c == '\n' ? CH_DONE : CH_E400;
    }
}

static int step(struct sl_h1_chunked *d, unsigned char c)
{
    switch (d->state) {
    case CH_SIZE0:
    case CH_SIZE:
    case CH_SIZE_WS:
    case CH_EXT:
    case CH_SIZE_LF:
        return step_size_line(d, c);
    case CH_DATA_CR:
        return c == '\r' ? CH_DATA_LF : CH_E400;
    case CH_DATA_LF:
        d->line_len = 0;
        return c == '\n' ? CH_SIZE0 : CH_E400;
    default:
        return step_trailer(d, c);
    }
}

static int chunked_verdict(int state)
{
    return state == CH_DONE ? 1 : state == CH_E400 ? SL_H1_E_MALFORMED : SL_H1_E_BODY_TOO_LARGE;
}

int sl_h1_chunked_feed(struct sl_h1_chunked *d, const char *buf, size_t len, size_t *consumed,
                       size_t *data_off, size_t *data_len)
{
    size_t i = 0;
    bool have_data = false;
    *data_off = 0;
    *data_len = 0;
    while (i < len && d->state < CH_DONE) {
        if (d->state != CH_DATA) {
            d->state = step(d, (unsigned char)buf[i++]);
            continue;
        }
        if (have_data)
            break; /* one span per call: the caller comes back for the next */
        size_t n = d->remaining < len - i ? (size_t)d->remaining : len - i;
        *data_off = i;
        *data_len = n;
        have_data = true;
        i += n;
        d->remaining -= n;
        d->total += n;
        if (d->remaining == 0)
            d->state = CH_DATA_CR;
    }
    *consumed = i;
    return d->state < CH_DONE ? 0 : chunked_verdict(d->state);
}

/* ---- small public helpers --------------------------------------------- */

bool sl_h1_is_tchar(unsigned char c)
{
    return IS(c, C_TCHAR);
}

bool sl_h1_header_ok(const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (name_len == 0)
        return false;
    for (size_t i = 0; i < name_len; i++)
        if (!IS(name[i], C_TCHAR))
            return false;
    for (size_t i = 0; i < value_len; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return false;
    return true;
}

bool sl_h1_name_is(const struct sl_h1_header *h, const char *lower, size_t len)
{
    return ieq(h->name, h->name_len, lower, len);
}

int sl_h1_error_status(int err)
{
    switch (err) {
    case SL_H1_E_BODY_TOO_LARGE:
        return 413;
    case SL_H1_E_TARGET_TOO_LONG:
        return 414;
    case SL_H1_E_HEAD_TOO_LARGE:
        return 431;
    case SL_H1_E_NOT_IMPLEMENTED:
        return 501;
    case SL_H1_E_VERSION:
        return 505;
    default: /* SL_H1_E_MALFORMED */
        return 400;
    }
}

/* One line per status keeps the table reviewable against RFC 9110 15. */
const char *sl_h1_reason(int status)
{
    // clang-format off
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "";
    }
    // clang-format on
}
