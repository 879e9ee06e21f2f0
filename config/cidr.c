/*
 * cidr: the one parser of address ranges in the config. `proxy.trusted`
 * and a route's `source` both list IPv4/IPv6 addresses, CIDR ranges and
 * the word `unix`; both compile through sl__cidr_list into struct sl_cidr
 * (matched at request time by server/cidr.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config_internal.h"

/* The prefix length after '/': decimal, no sign, no leading zero. */
static bool parse_bits(const char *d, unsigned max, unsigned *bits)
{
    unsigned v = 0;
    if (*d == '\0' || (d[0] == '0' && d[1] != '\0') || strlen(d) > 3)
        return false;
    for (; *d; d++) {
        if (*d < '0' || *d > '9')
            return false;
        v = v * 10 + (unsigned)(*d - '0');
    }
    *bits = v;
    return v <= max;
}

int sl__cidr_parse(const char *s, struct sl_cidr *c)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    unsigned bits;
    memset(c, 0, sizeof(*c));
    if (n == 0 || n >= sizeof(ip))
        return -1;
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, c->addr) == 1)
        c->family = AF_INET, bits = 32;
    else if (inet_pton(AF_INET6, ip, c->addr) == 1)
        c->family = AF_INET6, bits = 128;
    else
        return -1;
    if (slash && !parse_bits(slash + 1, bits, &bits))
        return -1;
    c->bits = (uint8_t)bits;
    int rc = 0;
    for (unsigned i = c->bits; i < 128; i++) {
        uint8_t bit = (uint8_t)(0x80u >> (i % 8));
        if (c->addr[i / 8] & bit) {
            rc = -2;
            c->addr[i / 8] &= (uint8_t)~bit;
        }
    }
    return rc;
}

void sl__cidr_list(struct sl__cx *cx, const struct sl__node *map, const char *key,
                   const char *const *items, size_t n, const char *path, struct sl_cidr_list *out)
{
    struct sl_cidr *cidrs = n ? sl__arena_alloc(cx->out, n * sizeof(*cidrs)) : NULL;
    const struct sl__node *list = sl__map_get(map, key);
    *out = (struct sl_cidr_list){.items = cidrs};
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i];
        if (s == NULL) /* its value failed (${UNSET}): already reported */
            continue;
        if (strcmp(s, "unix") == 0) {
            out->unix_ok = true;
            continue;
        }
        int rc = sl__cidr_parse(s, &cidrs[out->n]);
        if (rc == 0) {
            out->n++;
            continue;
        }
        if (list == NULL) /* an inherited list was reported where it was given */
            continue;
        const struct sl__node *at = list->kind == SL__NODE_SEQ && i < list->n ? list->vals[i] : map;
        const char *ipath = sl__path_index(cx, sl__path_join(cx, path, key), i);
        char net[INET6_ADDRSTRLEN];
        if (rc == -2 && inet_ntop(cidrs[out->n].family, cidrs[out->n].addr, net, sizeof(net)))
            sl__error(cx, at, ipath,
                      "\"%s\" has bits set past its prefix length (the range is \"%s/%u\")", s, net,
                      (unsigned)cidrs[out->n].bits);
        else
            sl__error(cx, at, ipath,
                      "expected an IP address, a CIDR range like \"10.0.0.0/8\" or \"unix\", "
                      "got \"%s\"",
                      s);
    }
}
