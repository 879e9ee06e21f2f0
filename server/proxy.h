/*
 * proxy: what a proxy in front of us says about the real client.
 *
 * Two sources, both only believed when the config says so:
 * - the PROXY protocol (HAProxy's, versions 1 and 2): a header the proxy
 *   sends before anything else on the connection. sl_proxy_parse reads it;
 *   the connection then takes its source address as the peer.
 * - HTTP headers from a trusted peer (proxy.headers): Forwarded (RFC 7239),
 *   X-Forwarded-For/-Proto/-Host and X-Real-IP. sl_proxy_from_headers
 *   picks the client, scheme and host out of a parsed request head.
 *
 * Both are pure functions over bytes: no allocation, no I/O, no state
 * between calls (fuzzed alone: fuzz/proxy_fuzz.c).
 */
#ifndef SL_SERVER_PROXY_H
#define SL_SERVER_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "server/h1.h"

#ifdef __cplusplus
extern "C" {
#endif

union sl_proxy_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Results of sl_proxy_parse other than a length. */
enum {
    SL_PROXY_INCOMPLETE = -1,  /* a valid prefix: read more and call again */
    SL_PROXY_E_SIGNATURE = -2, /* not a PROXY header (or a version not accepted) */
    SL_PROXY_E_SYNTAX = -3,    /* v1: bad line, address or port */
    SL_PROXY_E_TOO_LONG = -4,  /* v1: no CRLF within 107 bytes */
    SL_PROXY_E_VERSION = -5,   /* v2: bad version or command nibble */
    SL_PROXY_E_FAMILY = -6,    /* v2: unknown or datagram address family */
    SL_PROXY_E_LENGTH = -7,    /* v2: length too short for the addresses */
    SL_PROXY_E_TLV = -8,       /* v2: a TLV overruns its block */
    SL_PROXY_E_CRC = -9,       /* v2: the CRC32C TLV does not match */
};

#define SL_PROXY_V1 1u      /* accept version 1 (text) */
#define SL_PROXY_V2 2u      /* accept version 2 (binary) */
#define SL_PROXY_V1_MAX 107 /* longest v1 line, CRLF included */
#define SL_PROXY_V2_SIG_LEN 12

struct sl_proxy_info {
    int version;                  /* 1 or 2 */
    bool local;                   /* no address given (v1 UNKNOWN, v2 LOCAL, UNSPEC or
                                     UNIX): keep the connection's own addresses */
    union sl_proxy_addr src, dst; /* valid unless `local` */
    socklen_t addr_len;           /* of src and dst */
    /* v2 TLVs; pointers borrow the parsed buffer, NULL = absent. */
    bool ssl;         /* PP2_TYPE_SSL with PP2_CLIENT_SSL: the client
                         spoke TLS to the proxy */
    const char *alpn; /* PP2_TYPE_ALPN */
    size_t alpn_len;
    const char *authority; /* PP2_TYPE_AUTHORITY (the SNI host) */
    size_t authority_len;
};

/*
 * Parses a PROXY header at the start of buf[0..len). `accept` is a mask of
 * SL_PROXY_V1 / SL_PROXY_V2. Returns the header's length (> 0; the
 * connection's own bytes follow it), SL_PROXY_INCOMPLETE while buf is a
 * valid prefix of a header, or a negative SL_PROXY_E_* error. Resumable by
 * calling again with more bytes: a v1 line is at most 107 bytes and a v2
 * header says its length, so reparsing costs nothing worth keeping state
 * for. Strict: v1 addresses must match their family, ports are decimal
 * 0..65535 without leading zeros, single spaces, CRLF; v2 TLVs must tile
 * the block exactly and a CRC32C TLV must match. `out` is filled on
 * success only.
 */
int sl_proxy_parse(const char *buf, size_t len, unsigned accept, struct sl_proxy_info *out);

/* Short text for an SL_PROXY_E_* code, for the error log. */
const char *sl_proxy_strerror(int err);

/* True when `sa` (NULL = a Unix-socket peer) is a trusted proxy per `p`.
 * IPv4-mapped IPv6 addresses match IPv4 ranges. */
bool sl_proxy_trusted(const struct sl_proxy_config *p, const struct sockaddr *sa);

enum sl_proxy_scheme { SL_PROXY_SCHEME_NONE, SL_PROXY_SCHEME_HTTP, SL_PROXY_SCHEME_HTTPS };

/* What trusted request headers said. Pointers borrow the head. */
struct sl_proxy_origin {
    bool has_client;
    union sl_proxy_addr client; /* port 0 when the header gave none */
    socklen_t client_len;
    enum sl_proxy_scheme scheme;
    const char *host; /* "name[:port]" as sent; NULL = none */
    size_t host_len;
    /* X-Forwarded-Prefix: the path the proxy mounted the app at, as sent,
     * without trailing slashes (prefix_len 0: "/", the root); NULL = none
     * or malformed. */
    const char *prefix;
    size_t prefix_len;
};

/*
 * The origin of a request that came through the trusted peer: Forwarded
 * when present (its `for`, `proto` and `host`, from the element of the
 * chosen hop), else X-Forwarded-For (the right-most address that is not a
 * trusted proxy; the left-most when all are), X-Forwarded-Proto and
 * X-Forwarded-Host (their right-most values), and X-Real-IP when no other
 * header names a client. A malformed value makes that header say nothing:
 * the connection's own address stays. The caller checks that the peer is
 * trusted first.
 */
void sl_proxy_from_headers(const struct sl_proxy_config *p, const struct sl_h1_request *h,
                           struct sl_proxy_origin *out);

/* Whether [s, s+n) is a path prefix as X-Forwarded-Prefix and app.root_path
 * take it: "/" then RFC 3986 pchars and '/' ('%' only before two hex
 * digits), at most 1024 bytes. */
bool sl_proxy_prefix_ok(const char *s, size_t n);

/* Parses an address as proxies write it: "1.2.3.4", "1.2.3.4:80",
 * "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80". Returns 0 or -1. */
int sl_proxy_parse_addr(const char *s, size_t n, union sl_proxy_addr *out, socklen_t *len);

#ifdef __cplusplus
}
#endif

#endif
