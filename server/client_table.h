/*
 * client_table: per-client-address state for the limits that need one
 * (limits.rate, limits.concurrency, limits.max_connections_per_ip).
 *
 * One table per worker, no locks: limits are per worker. An entry is keyed
 * by (address, scope): the address in its 16-byte IPv6 form (IPv4 mapped,
 * server/cidr.h sl_cidr_key), the scope an opaque pointer naming whose limit
 * it counts for (a listener's limits or a route), so each route with its
 * own rate has its own buckets.
 *
 * Bounded: SL_CLIENT_TABLE_SLOTS entries of 64 bytes plus a 4-byte hash
 * head each (544 KiB), allocated when a limit first needs it and touched
 * only as entries fill. When full, the least recently used entry that holds
 * nothing (no open connection, no request in flight) is reused: a client
 * forgotten that way starts again with a full bucket. Entries that hold
 * something are never evicted, so their counts stay exact; if a lookup
 * finds only those, it returns 0 and the caller lets the client through
 * uncounted (sl_client_table_untracked counts how often).
 *
 * Ids are stable while an entry holds something: callers keep the id of
 * what they hold and give it back with sl_client_put.
 */
#ifndef SL_SERVER_CLIENT_TABLE_H
#define SL_SERVER_CLIENT_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_CLIENT_TABLE_SLOTS 8192u
#define SL_CLIENT_EVICT_SCAN 16u /* LRU entries looked at for a free one */

struct sl_client_table;

/* A table of `slots` entries (tests use small ones); NULL on ENOMEM. */
struct sl_client_table *sl_client_table_new(uint32_t slots);
void sl_client_table_free(struct sl_client_table *t);

/* The entry of (addr, scope), found or made, marked most recently used.
 * Returns its id (> 0), or 0 when every slot holds something. */
uint32_t sl_client_get(struct sl_client_table *t, const unsigned char addr[16], const void *scope);

/*
 * Takes a token from entry `id`'s bucket for `rate` (per_sec > 0) at
 * `now_ms`. A new entry starts full. Returns 0 when a token was taken, else
 * the milliseconds until one will be there (>= 1).
 */
uint32_t sl_client_take(struct sl_client_table *t, uint32_t id, const struct sl_rate *rate,
                        uint64_t now_ms);

enum sl_client_count { SL_CLIENT_CONNS, SL_CLIENT_INFLIGHT };

/* Adds one to the count `which` of entry `id` unless it is at `cap` (> 0).
 * Returns true when added (the entry then cannot be evicted until put). */
bool sl_client_hold(struct sl_client_table *t, uint32_t id, enum sl_client_count which,
                    uint32_t cap);

/* Gives back one held by sl_client_hold. */
void sl_client_put(struct sl_client_table *t, uint32_t id, enum sl_client_count which);

/* Entries in use, and lookups that found no slot (for tests and stats). */
uint32_t sl_client_table_used(const struct sl_client_table *t);
uint64_t sl_client_table_untracked(const struct sl_client_table *t);

#ifdef __cplusplus
}
#endif

#endif
