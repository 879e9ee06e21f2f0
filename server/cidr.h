/*
 * cidr: whether an address is in a compiled list of ranges (struct
 * sl_cidr_list from config/cidr.c). The one matcher behind `proxy.trusted`
 * and a route's `source`. Pure: no allocation, no state.
 */
#ifndef SL_SERVER_CIDR_H
#define SL_SERVER_CIDR_H

#include <stdbool.h>
#include <sys/socket.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when `sa` is in `l`. `sa` NULL or AF_UNIX is a Unix-socket peer (in
 * when "unix" was listed); an IPv4-mapped IPv6 address matches IPv4
 * ranges; any other family is never in. */
bool sl_cidr_contains(const struct sl_cidr_list *l, const struct sockaddr *sa);

/* The 16 bytes that name an address for lookups: IPv6 as is, IPv4 as its
 * IPv4-mapped IPv6 form. Returns false (out untouched) for NULL or a
 * family without an address (AF_UNIX). */
bool sl_cidr_key(const struct sockaddr *sa, unsigned char out[16]);

#ifdef __cplusplus
}
#endif

#endif
