/*
 * cidr: address-in-ranges, for proxy.trusted and route sources.
 */
#include "server/cidr.h"

#include <netinet/in.h>
#include <string.h>

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool in_range(const struct sl_cidr *c, const unsigned char *addr)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (addr[full] & mask) == c->addr[full];
}

bool sl_cidr_contains(const struct sl_cidr_list *l, const struct sockaddr *sa)
{
    const unsigned char *addr;
    int fam;
    if (sa == NULL || sa->sa_family == AF_UNIX)
        return l->unix_ok;
    if (sa->sa_family == AF_INET) {
        addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        fam = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        addr = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        fam = AF_INET6;
        if (memcmp(addr, v4mapped, 12) == 0)
            addr += 12, fam = AF_INET;
    } else {
        return false;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].family == fam && in_range(&l->items[i], addr))
            return true;
    return false;
}

bool sl_cidr_key(const struct sockaddr *sa, unsigned char out[16])
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(out, v4mapped, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}
