/*
 * h1: HTTP/1.1 request parsing (RFC 9112), allocation-free and resumable.
 *
 * The parser never allocates and never copies: every string it reports
 * points into the caller's buffer. Call it again with more bytes when it
 * returns SL_H1_INCOMPLETE; pass the length seen last time as `prev_len` so
 * the search for the end of the head resumes where it stopped.
 */
#ifndef SL_SERVER_H1_H
#define SL_SERVER_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * What the parser and the chunked decoder return instead of a length: its
 * own codes, not HTTP statuses. sl_h1_error_status() is the one place that
 * says which status each error earns the client.
 */
enum sl_h1_result {
    SL_H1_INCOMPLETE = -1,        /* more bytes needed */
    SL_H1_E_MALFORMED = -2,       /* not HTTP/1.x syntax, or forbidden framing (400) */
    SL_H1_E_BODY_TOO_LARGE = -3,  /* chunked body past max_body (413) */
    SL_H1_E_TARGET_TOO_LONG = -4, /* request-target longer than max_target (414) */
    SL_H1_E_HEAD_TOO_LARGE = -5,  /* head past max_head, or too many fields (431) */
    SL_H1_E_NOT_IMPLEMENTED = -6, /* Transfer-Encoding other than a final chunked; CONNECT (501) */
    SL_H1_E_VERSION = -7,         /* a major version other than 1 (505) */
};

/* The response status for an SL_H1_E_* code (400 for anything else). */
int sl_h1_error_status(int err);

struct sl_h1_header {
    const char *name; /* as received (case kept); tchar only */
    size_t name_len;
    const char *value; /* leading/trailing OWS stripped */
    size_t value_len;
};

struct sl_h1_limits {
    size_t max_head;    /* request line + headers + CRLFs, bytes (431) */
    size_t max_headers; /* header fields (431) */
    size_t max_target;  /* request-target bytes (414) */
};

struct sl_h1_request {
    const char *method;
    size_t method_len;
    const char *target; /* raw request-target: origin-form, absolute-form or "*" */
    size_t target_len;
    const char *path; /* origin-form path (absolute-form: its path part, "/" if none) */
    size_t path_len;
    const char *query; /* after '?', without it; NULL when absent */
    size_t query_len;
    int minor_version;            /* 0, or 1 for HTTP/1.1 and any higher 1.x */
    struct sl_h1_header *headers; /* in: caller's array; out: filled */
    size_t nheaders;              /* in: capacity; out: count (kept on failure) */

    /* Framing and connection semantics, derived from the headers. */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked (final coding) */
    bool keep_alive;        /* 1.1 unless "close"; 1.0 only with "keep-alive" */
    bool expect_continue;   /* Expect: 100-continue */
    bool upgrade;           /* Connection: upgrade with an Upgrade header */
    const char *host;       /* Host value, NULL when absent; with an
                               absolute-form target, the target's authority
                               (the Host entry in `headers` says the same) */
    size_t host_len;
};

/*
 * Parses one request head from buf[0..len). On success returns the number of
 * bytes the head occupies (the body, if any, starts there) and fills `req`.
 * Returns SL_H1_INCOMPLETE when more bytes are needed (and the head is still
 * within the limits), or one of the SL_H1_E_* codes. Enforces: tchar methods
 * and header names, no whitespace before the colon, no obs-fold, no bare CR,
 * digits-only Content-Length (differing duplicates are 400), Content-Length
 * together with Transfer-Encoding is 400, Transfer-Encoding other than a
 * final "chunked" is 501, exactly one Host on HTTP/1.1.
 */
int sl_h1_parse_request(const char *buf, size_t len, size_t prev_len,
                        const struct sl_h1_limits *lim, struct sl_h1_request *req);

/*
 * Chunked transfer-coding decoder (with chunk extensions and trailers).
 * State lives in the struct; input is fed in any pieces. The decoder does
 * not copy: each call reports at most one span of body bytes within the
 * input it was given.
 */
struct sl_h1_chunked {
    int state;          /* internal; zero-initialise to start */
    uint64_t remaining; /* bytes left in the current chunk */
    uint64_t total;     /* body bytes decoded so far */
    uint64_t max_body;  /* 0 = unlimited; beyond it SL_H1_E_BODY_TOO_LARGE */
    size_t line_len;    /* bytes of the current size/trailer line (bounded) */
};

/*
 * Feeds buf[0..len). On return *consumed bytes of input were used, and
 * buf[*data_off .. *data_off + *data_len) is body data (data_len may be 0).
 * Returns 1 when the last chunk and the trailer section are complete, 0 when
 * more input is needed (call again with the unconsumed rest plus new bytes),
 * or SL_H1_E_MALFORMED / SL_H1_E_BODY_TOO_LARGE. Returning 0 with *consumed < len means the next
 * chunk's data is ready: call again with the rest at once. Trailer fields are
 * validated and discarded.
 */
int sl_h1_chunked_feed(struct sl_h1_chunked *d, const char *buf, size_t len, size_t *consumed,
                       size_t *data_off, size_t *data_len);

/* Whether field `h` is named `lower` (len bytes, lowercase), ignoring the
 * case of the field's name. */
bool sl_h1_name_is(const struct sl_h1_header *h, const char *lower, size_t len);

/* The value of hex digit c (either case), or -1. */
int sl_h1_hexval(unsigned char c);

/* RFC 9110 token character (tchar). */
bool sl_h1_is_tchar(unsigned char c);

/* True if a response header name is a token and the value has no CR, LF or
 * NUL: the only headers that may reach the wire. */
bool sl_h1_header_ok(const char *name, size_t name_len, const char *value, size_t value_len);

/* Reason phrase for a status code ("OK", "Not Found"); "" if unknown. */
const char *sl_h1_reason(int status);

#ifdef __cplusplus
}
#endif

#endif
