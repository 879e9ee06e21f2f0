/*
 * proxy: the PROXY protocol header parser and trusted forwarding headers.
 * See proxy.h. The PROXY protocol is specified in HAProxy's
 * doc/proxy-protocol.txt; Forwarded in RFC 7239.
 */
#include <arpa/inet.h>
#include <string.h>

#include "server/proxy.h"

#include "server/cidr.h"

static const char v2_sig[SL_PROXY_V2_SIG_LEN] = "\r\n\r\n\0\r\nQUIT\n";

enum {
    PP2_TYPE_ALPN = 0x01,
    PP2_TYPE_AUTHORITY = 0x02,
    PP2_TYPE_CRC32C = 0x03,
    PP2_TYPE_SSL = 0x20,
    PP2_CLIENT_SSL = 0x01,
};

const char *sl_proxy_strerror(int err)
{
    switch (err) {
    case SL_PROXY_INCOMPLETE:
        return "incomplete header";
    case SL_PROXY_E_SIGNATURE:
        return "no PROXY protocol header";
    case SL_PROXY_E_SYNTAX:
        return "malformed v1 header";
    case SL_PROXY_E_TOO_LONG:
        return "v1 header longer than 107 bytes";
    case SL_PROXY_E_VERSION:
        return "bad v2 version or command";
    case SL_PROXY_E_FAMILY:
        return "unsupported v2 address family";
    case SL_PROXY_E_LENGTH:
        return "v2 length too short for its addresses";
    case SL_PROXY_E_TLV:
        return "malformed v2 TLV";
    case SL_PROXY_E_CRC:
        return "v2 CRC32C mismatch";
    default:
        return "unknown error";
    }
}

/* ---- version 1 ---------------------------------------------------------- */

/* Decimal port 0..65535, no sign, no leading zero. */
static bool parse_port(const char *s, size_t n, uint16_t *port)
{
    unsigned v = 0;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* An address of `family` from s[0..n) (inet_pton is strict: no leading
 * zeros or short forms in IPv4). */
static bool parse_ip(int family, const char *s, size_t n, void *dst)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(family, tmp, dst) == 1;
}

static void set_port(union sl_proxy_addr *a, uint16_t port)
{
    if (a->sa.sa_family == AF_INET)
        a->in.sin_port = htons(port);
    else
        a->in6.sin6_port = htons(port);
}

/* "TCP4 1.2.3.4 5.6.7.8 1 2" (no CRLF) into out. */
static int v1_fields(const char *s, size_t n, struct sl_proxy_info *out)
{
    const char *f[5];
    size_t fl[5], k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ')
            continue;
        if (k == 5 || i == start) /* too many fields, or a double space */
            return SL_PROXY_E_SYNTAX;
        f[k] = s + start;
        fl[k++] = i - start;
        start = i + 1;
    }
    if (k != 5)
        return SL_PROXY_E_SYNTAX;
    int fam = fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0   ? AF_INET
              : fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0 ? AF_INET6
                                                           : 0;
    if (!fam)
        return SL_PROXY_E_SYNTAX;
    union sl_proxy_addr *a[2] = {&out->src, &out->dst};
    uint16_t port[2];
    for (int i = 0; i < 2; i++) {
        memset(a[i], 0, sizeof(*a[i]));
        a[i]->sa.sa_family = (sa_family_t)fam;
        void *ip = fam == AF_INET ? (void *)&a[i]->in.sin_addr : (void *)&a[i]->in6.sin6_addr;
        if (!parse_ip(fam, f[1 + i], fl[1 + i], ip) || !parse_port(f[3 + i], fl[3 + i], &port[i]))
            return SL_PROXY_E_SYNTAX;
        set_port(a[i], port[i]);
    }
    out->addr_len = fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return 0;
}

static int parse_v1(const char *buf, size_t len, struct sl_proxy_info *out)
{
    size_t lim = len < SL_PROXY_V1_MAX ? len : SL_PROXY_V1_MAX;
    const char *cr = NULL;
    for (size_t i = 6; i < lim; i++) {
        if (buf[i] == '\r') {
            cr = buf + i;
            break;
        }
        if (buf[i] == '\n' || buf[i] == '\0')
            return SL_PROXY_E_SYNTAX;
    }
    if (!cr)
        return len >= SL_PROXY_V1_MAX ? SL_PROXY_E_TOO_LONG : SL_PROXY_INCOMPLETE;
    size_t linelen = (size_t)(cr - buf);
    if (linelen + 2 > SL_PROXY_V1_MAX)
        return SL_PROXY_E_TOO_LONG;
    if (linelen + 1 >= len)
        return SL_PROXY_INCOMPLETE;
    if (cr[1] != '\n')
        return SL_PROXY_E_SYNTAX;
    struct sl_proxy_info info = {.version = 1};
    const char *body = buf + 6;
    size_t blen = linelen - 6;
    if (blen >= 7 && memcmp(body, "UNKNOWN", 7) == 0 && (blen == 7 || body[7] == ' ')) {
        info.local = true; /* the rest of the line is to be ignored */
    } else {
        int rc = v1_fields(body, blen, &info);
        if (rc < 0)
            return rc;
    }
    *out = info;
    return (int)linelen + 2;
}

/* ---- version 2 ---------------------------------------------------------- */

/* CRC32C (Castagnoli, reflected 0x82F63B78), bitwise: headers are small
 * and a CRC TLV is rare. */
static uint32_t crc32c(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* The header's CRC with the 4 checksum bytes at `at` counted as zero. */
static uint32_t header_crc(const unsigned char *h, size_t n, size_t at)
{
    static const unsigned char zero[4];
    uint32_t crc = crc32c(0, h, at);
    crc = crc32c(crc, zero, 4);
    return crc32c(crc, h + at + 4, n - at - 4);
}

static int parse_tlvs(const unsigned char *h, size_t off, size_t end, struct sl_proxy_info *info)
{
    while (off < end) {
        if (end - off < 3)
            return SL_PROXY_E_TLV;
        unsigned type = h[off];
        size_t vlen = (size_t)h[off + 1] << 8 | h[off + 2];
        size_t v = off + 3;
        if (vlen > end - v)
            return SL_PROXY_E_TLV;
        if (type == PP2_TYPE_ALPN) {
            info->alpn = (const char *)h + v, info->alpn_len = vlen;
        } else if (type == PP2_TYPE_AUTHORITY) {
            info->authority = (const char *)h + v, info->authority_len = vlen;
        } else if (type == PP2_TYPE_SSL) {
            if (vlen < 5) /* client (1) + verify (4), then sub-TLVs */
                return SL_PROXY_E_TLV;
            info->ssl = (h[v] & PP2_CLIENT_SSL) != 0;
        } else if (type == PP2_TYPE_CRC32C) {
            if (vlen != 4)
                return SL_PROXY_E_TLV;
            uint32_t want = (uint32_t)h[v] << 24 | (uint32_t)h[v + 1] << 16 |
                            (uint32_t)h[v + 2] << 8 | h[v + 3];
            if (header_crc(h, end, v) != want)
                return SL_PROXY_E_CRC;
        }
        off = v + vlen;
    }
    return 0;
}

static void v2_addrs(const unsigned char *a, int fam, struct sl_proxy_info *info)
{
    memset(&info->src, 0, sizeof(info->src));
    memset(&info->dst, 0, sizeof(info->dst));
    info->src.sa.sa_family = info->dst.sa.sa_family = (sa_family_t)fam;
    if (fam == AF_INET) {
        memcpy(&info->src.in.sin_addr, a, 4);
        memcpy(&info->dst.in.sin_addr, a + 4, 4);
        memcpy(&info->src.in.sin_port, a + 8, 2);
        memcpy(&info->dst.in.sin_port, a + 10, 2);
        info->addr_len = sizeof(struct sockaddr_in);
    } else {
        memcpy(&info->src.in6.sin6_addr, a, 16);
        memcpy(&info->dst.in6.sin6_addr, a + 16, 16);
        memcpy(&info->src.in6.sin6_port, a + 32, 2);
        memcpy(&info->dst.in6.sin6_port, a + 34, 2);
        info->addr_len = sizeof(struct sockaddr_in6);
    }
}

/* The address block's length and family for a v2 family byte; false for
 * datagrams and unknown families. fam 0: no address to take (UNSPEC, UNIX). */
static bool v2_family(unsigned char byte, size_t *block, int *fam)
{
    switch (byte) {
    case 0x00: /* UNSPEC */
        *block = 0, *fam = 0;
        return true;
    case 0x11: /* TCP over IPv4 */
        *block = 12, *fam = AF_INET;
        return true;
    case 0x21: /* TCP over IPv6 */
        *block = 36, *fam = AF_INET6;
        return true;
    case 0x31: /* UNIX stream: the proxy's addresses mean nothing here */
        *block = 216, *fam = 0;
        return true;
    default:
        return false;
    }
}

static int parse_v2(const char *buf, size_t len, struct sl_proxy_info *out)
{
    const unsigned char *h = (const unsigned char *)buf;
    size_t block;
    int fam;
    if (len < 16)
        return SL_PROXY_INCOMPLETE;
    unsigned ver = h[12] >> 4, cmd = h[12] & 0xf;
    if (ver != 2 || cmd > 1)
        return SL_PROXY_E_VERSION;
    if (!v2_family(h[13], &block, &fam))
        return SL_PROXY_E_FAMILY;
    size_t body = (size_t)h[14] << 8 | h[15];
    if (cmd == 0) { /* LOCAL (a health check): skip what address block came */
        fam = 0;
        block = block <= body ? block : body;
    } else if (body < block) {
        return SL_PROXY_E_LENGTH;
    }
    if (len < 16 + body)
        return SL_PROXY_INCOMPLETE;
    struct sl_proxy_info info = {.version = 2, .local = fam == 0};
    if (fam)
        v2_addrs(h + 16, fam, &info);
    int rc = parse_tlvs(h, 16 + block, 16 + body, &info);
    if (rc < 0)
        return rc;
    *out = info;
    return (int)(16 + body);
}

/* ---- entry -------------------------------------------------------------- */

int sl_proxy_parse(const char *buf, size_t len, unsigned accept, struct sl_proxy_info *out)
{
    size_t n1 = len < 6 ? len : 6;
    size_t n2 = len < SL_PROXY_V2_SIG_LEN ? len : SL_PROXY_V2_SIG_LEN;
    bool v1 = (accept & SL_PROXY_V1) && memcmp(buf, "PROXY ", n1) == 0;
    bool v2 = (accept & SL_PROXY_V2) && memcmp(buf, v2_sig, n2) == 0;
    if (len == 0)
        return SL_PROXY_INCOMPLETE;
    if (v1 && len >= 6)
        return parse_v1(buf, len, out);
    if (v2 && len >= SL_PROXY_V2_SIG_LEN)
        return parse_v2(buf, len, out);
    return v1 || v2 ? SL_PROXY_INCOMPLETE : SL_PROXY_E_SIGNATURE;
}

/* ---- trust -------------------------------------------------------------- */

bool sl_proxy_trusted(const struct sl_proxy_config *p, const struct sockaddr *sa)
{
    return sl_cidr_contains(&p->cidrs, sa);
}

/* ---- forwarding headers ------------------------------------------------- */

int sl_proxy_parse_addr(const char *s, size_t n, union sl_proxy_addr *out, socklen_t *len)
{
    uint16_t port = 0;
    const char *host = s;
    size_t hlen = n;
    int fam;
    memset(out, 0, sizeof(*out));
    if (n > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (!end)
            return -1;
        host = s + 1;
        hlen = (size_t)(end - host);
        size_t after = n - (size_t)(end + 1 - s);
        if (after && (end[1] != ':' || !parse_port(end + 2, after - 1, &port)))
            return -1;
        fam = AF_INET6;
    } else {
        const char *colon = memchr(s, ':', n);
        fam = colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) ? AF_INET6 : AF_INET;
        if (fam == AF_INET && colon) {
            hlen = (size_t)(colon - s);
            if (!parse_port(colon + 1, n - hlen - 1, &port))
                return -1;
        }
    }
    void *dst = fam == AF_INET ? (void *)&out->in.sin_addr : (void *)&out->in6.sin6_addr;
    if (!parse_ip(fam, host, hlen, dst))
        return -1;
    out->sa.sa_family = (sa_family_t)fam;
    set_port(out, port);
    *len = fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_ows(**s))
        (*s)++, (*n)--;
    while (*n && is_ows((*s)[*n - 1]))
        (*n)--;
}

/* The right-most comma-separated item of the last `name` field line. */
static bool last_item(const struct sl_h1_request *h, const char *name, size_t nlen, const char **v,
                      size_t *vlen)
{
    const struct sl_h1_header *last = NULL;
    for (size_t i = 0; i < h->nheaders; i++)
        if (sl_h1_name_is(&h->headers[i], name, nlen))
            last = &h->headers[i];
    if (!last)
        return false;
    const char *s = last->value, *e = s + last->value_len, *p = e;
    while (p > s && p[-1] != ',')
        p--;
    *v = p;
    *vlen = (size_t)(e - p);
    trim(v, vlen);
    return *vlen > 0;
}

/* A hop cursor over every line of a list-valued header, right to left. */
struct hops {
    const struct sl_h1_request *h;
    const char *name;
    size_t nlen;
    size_t line; /* index + 1 of the line being walked; 0 = none left */
    const char *start;
    size_t rem; /* bytes of the line left of the cursor */
    bool open;  /* a line is being walked */
};

static void hops_init(struct hops *it, const struct sl_h1_request *h, const char *name, size_t nlen)
{
    *it = (struct hops){.h = h, .name = name, .nlen = nlen, .line = h->nheaders + 1};
}

/* The next item to the left (may be empty); false when none is left. */
static bool hops_prev(struct hops *it, const char **v, size_t *n)
{
    if (!it->open) {
        do {
            if (it->line <= 1)
                return false;
            it->line--;
        } while (!sl_h1_name_is(&it->h->headers[it->line - 1], it->name, it->nlen));
        const struct sl_h1_header *hd = &it->h->headers[it->line - 1];
        it->start = hd->value;
        it->rem = hd->value_len;
        it->open = true;
    }
    size_t end = it->rem, p = end;
    /* Quoted strings (Forwarded) may hold commas: skip them whole. */
    bool quoted = false;
    while (p > 0) {
        char ch = it->start[p - 1];
        if (ch == '"')
            quoted = !quoted;
        else if (ch == ',' && !quoted)
            break;
        p--;
    }
    *v = it->start + p;
    *n = end - p;
    if (p == 0)
        it->open = false; /* the line's left-most item */
    else
        it->rem = p - 1; /* before the comma */
    trim(v, n);
    return true;
}

static bool has_header(const struct sl_h1_request *h, const char *name, size_t nlen)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (sl_h1_name_is(&h->headers[i], name, nlen))
            return true;
    return false;
}

static enum sl_proxy_scheme scheme_of(const char *v, size_t n)
{
    if ((n == 5 && strncasecmp(v, "https", 5) == 0) || (n == 3 && strncasecmp(v, "wss", 3) == 0))
        return SL_PROXY_SCHEME_HTTPS;
    if ((n == 4 && strncasecmp(v, "http", 4) == 0) || (n == 2 && strncasecmp(v, "ws", 2) == 0))
        return SL_PROXY_SCHEME_HTTP;
    return SL_PROXY_SCHEME_NONE;
}

/* X-Forwarded-For: right-most untrusted hop; false when malformed/absent. */
static bool xff_client(const struct sl_proxy_config *p, const struct sl_h1_request *h,
                       struct sl_proxy_origin *out)
{
    struct hops it;
    const char *v;
    size_t n;
    bool any = false;
    hops_init(&it, h, "x-forwarded-for", 15);
    while (hops_prev(&it, &v, &n)) {
        union sl_proxy_addr a;
        socklen_t alen;
        if (sl_proxy_parse_addr(v, n, &a, &alen) < 0)
            return false; /* what is left of garbage cannot be trusted */
        out->client = a, out->client_len = alen, any = true;
        if (!sl_proxy_trusted(p, &a.sa))
            break;
    }
    out->has_client = any;
    return any;
}

/* One Forwarded element's pairs: for, proto, host (values unquoted
 * in place is not possible: quoted ones are returned without quotes and
 * may not contain escapes, which no address or host needs). */
struct fwd_elem {
    const char *forv, *proto, *host;
    size_t forn, proton, hostn;
};

static bool fwd_value(const char **v, size_t *n)
{
    if (*n >= 1 && (*v)[0] == '"') {
        if (*n < 2 || (*v)[*n - 1] != '"' || memchr(*v + 1, '\\', *n - 2))
            return false;
        (*v)++, *n -= 2;
    }
    return true;
}

static bool fwd_parse_elem(const char *s, size_t n, struct fwd_elem *e)
{
    memset(e, 0, sizeof(*e));
    const char *end = s + n;
    while (s < end) {
        const char *semi = s;
        bool quoted = false;
        while (semi < end && (quoted || *semi != ';')) {
            if (*semi == '"')
                quoted = !quoted;
            semi++;
        }
        const char *pair = s;
        size_t plen = (size_t)(semi - s);
        s = semi < end ? semi + 1 : end;
        trim(&pair, &plen);
        const char *eq = memchr(pair, '=', plen);
        if (!eq)
            return false;
        size_t klen = (size_t)(eq - pair);
        const char *v = eq + 1;
        size_t vn = plen - klen - 1;
        if (!fwd_value(&v, &vn))
            return false;
        if (klen == 3 && strncasecmp(pair, "for", 3) == 0)
            e->forv = v, e->forn = vn;
        else if (klen == 5 && strncasecmp(pair, "proto", 5) == 0)
            e->proto = v, e->proton = vn;
        else if (klen == 4 && strncasecmp(pair, "host", 4) == 0)
            e->host = v, e->hostn = vn;
    }
    return true;
}

/* Forwarded: the element of the right-most untrusted `for`. */
static bool forwarded(const struct sl_proxy_config *p, const struct sl_h1_request *h,
                      struct sl_proxy_origin *out)
{
    struct hops it;
    const char *v;
    size_t n;
    struct fwd_elem e, chosen;
    bool any = false;
    hops_init(&it, h, "forwarded", 9);
    while (hops_prev(&it, &v, &n)) {
        if (n == 0)
            continue;
        if (!fwd_parse_elem(v, n, &e))
            return false;
        union sl_proxy_addr a;
        socklen_t alen;
        /* "unknown" and obfuscated ("_x") nodes hide the client: stop. */
        if (!e.forv || sl_proxy_parse_addr(e.forv, e.forn, &a, &alen) < 0) {
            if (!any)
                return false;
            break;
        }
        chosen = e, any = true;
        out->client = a, out->client_len = alen;
        if (!sl_proxy_trusted(p, &a.sa))
            break;
    }
    if (!any)
        return false;
    out->has_client = true;
    if (chosen.proto)
        out->scheme = scheme_of(chosen.proto, chosen.proton);
    if (chosen.host && chosen.hostn)
        out->host = chosen.host, out->host_len = chosen.hostn;
    return true;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool sl_proxy_prefix_ok(const char *s, size_t n)
{
    if (n == 0 || n > 1024 || s[0] != '/')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     (c && strchr("-._~!$&'()*+,;=:@/", c)))) {
            return false;
        }
    }
    return true;
}

/* X-Forwarded-Prefix (its right-most value): a mount path, trailing
 * slashes dropped. A malformed one says nothing. */
static void forwarded_prefix(const struct sl_h1_request *h, struct sl_proxy_origin *out)
{
    const char *v;
    size_t n;
    if (!last_item(h, "x-forwarded-prefix", 18, &v, &n) || !sl_proxy_prefix_ok(v, n))
        return;
    while (n > 0 && v[n - 1] == '/')
        n--;
    out->prefix = v;
    out->prefix_len = n;
}

void sl_proxy_from_headers(const struct sl_proxy_config *p, const struct sl_h1_request *h,
                           struct sl_proxy_origin *out)
{
    const char *v;
    size_t n;
    memset(out, 0, sizeof(*out));
    forwarded_prefix(h, out); /* Forwarded (RFC 7239) has no prefix of its own */
    if (has_header(h, "forwarded", 9)) {
        if (!forwarded(p, h, out)) {
            const char *pv = out->prefix;
            size_t pn = out->prefix_len;
            memset(out, 0, sizeof(*out));
            out->prefix = pv, out->prefix_len = pn;
        }
        return;
    }
    xff_client(p, h, out);
    if (!out->has_client && !has_header(h, "x-forwarded-for", 15) &&
        last_item(h, "x-real-ip", 9, &v, &n) &&
        sl_proxy_parse_addr(v, n, &out->client, &out->client_len) == 0)
        out->has_client = true;
    if (last_item(h, "x-forwarded-proto", 17, &v, &n))
        out->scheme = scheme_of(v, n);
    if (last_item(h, "x-forwarded-host", 16, &v, &n))
        out->host = v, out->host_len = n;
}
