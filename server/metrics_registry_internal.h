/*
 * metrics registry internals: the layout of the shared mapping, shared by
 * server/metrics.c (the registry, its life across a re-exec, recording)
 * and server/metrics_render.c (the text exposition).
 *
 * Layout of the mapping (a memfd, so that the master's re-exec can map it
 * again), in 8-byte cells:
 *   header   magic, layout, master facts, sizes, fingerprint, then one
 *            owner (pid) per worker slot
 *   slots    nslots worker slots, then the overflow slot; each: slot
 *            cells, then one block per listener
 * A listener block holds its fixed cells (L_*), then per route (index 0:
 * no route matched, r + 1: route r of the listener's table) the request
 * counts by method class and status class, the duration histogram's
 * buckets (not cumulative; the last one is +Inf) and its sum in
 * microseconds. Slots are padded to a cache line so that two workers never
 * write the same line.
 */
#ifndef SL_SERVER_METRICS_REGISTRY_INTERNAL_H
#define SL_SERVER_METRICS_REGISTRY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/metrics.h"

typedef _Atomic uint64_t cell;

enum { NMETHOD = 8, NSTATUS = 5, NBUCKET = SL_METRICS_NBUCKETS + 1 };
extern const char *const sl__metrics_method_names[NMETHOD];
extern const char *const sl__metrics_status_names[NSTATUS];
extern const char *const sl__metrics_reject_names[SL_METRICS_REJECT__N];
extern const char *const sl__metrics_timeout_names[SL_METRICS_TIMEOUT__N];
extern const char *const sl__metrics_tls_names[SL_METRICS_TLS_FAILURE__N];

/* Fixed cells of a listener block. */
enum {
    L_CONNS_OPEN,
    L_CONNS_ACCEPTED,
    L_IN_FLIGHT,
    L_BYTES_IN,
    L_BYTES_OUT,
    L_WS_OPEN,
    L_WS_OPENED,
    L_WS_MSG_IN,
    L_WS_MSG_OUT,
    L_TLS_OK,
    L_REJECT,
    L_TIMEOUT = L_REJECT + SL_METRICS_REJECT__N,
    L_TLS_FAIL = L_TIMEOUT + SL_METRICS_TIMEOUT__N,
    L_ROUTES = L_TLS_FAIL + SL_METRICS_TLS_FAILURE__N,
};
/* Cells of one route within a listener block. */
enum {
    R_REQ = 0,
    R_HIST = R_REQ + NMETHOD * NSTATUS,
    R_SUM = R_HIST + NBUCKET,
    R_CELLS,
};
/* Cells of a slot before its listener blocks. */
enum { S_START_MS, S_CELLS };
/*
 * Header cells; one owner cell per worker slot follows (0 = never claimed,
 * else a pid, with DEAD set once the master reaped it). Owners never go
 * back to 0 and a fresh slot is always the lowest unclaimed one, so the
 * claimed slots are a prefix: scans stop at the first 0 and never touch
 * (allocate) the pages of unused owner cells. H_MAGIC..H_GENERATION are the stable
 * prefix: every LAYOUT keeps them where they are, so that an image with
 * another layout still carries the master's facts over.
 */
enum {
    H_MAGIC,
    H_LAYOUT,
    H_MASTER_PID,
    H_MASTER_START_MS,
    H_RESTARTS,
    H_GENERATION,
    H_NSLOTS, /* worker slots; the overflow slot follows them */
    H_SLOT_CELLS,
    H_FINGERPRINT, /* of the series each cell stands for (layout_hash) */
    H_OVERFLOW,    /* 1 once a process counts into the overflow slot */
    H_CELLS
};
#define LAYOUT 3u /* bump when a cell moves (the fingerprint catches most) */
#define DEAD (1ull << 63)

struct sl__metrics_reg {
    cell *base;
    size_t bytes;
    int fd; /* the memfd, in the master (workers keep an inherited copy) */
    size_t nslots, slot_cells;
    size_t slots_off; /* first cell of slot 0 (after the header, line-aligned) */
    size_t *lbase;    /* per listener: its block's first cell within a slot */
    const struct sl_config *cfg;
    char version[32];
};

/* The registry (base NULL = none): set by init in the master, inherited by fork. */
extern struct sl__metrics_reg sl__metrics;

static inline uint64_t sl__metrics_ld(const cell *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Slot i (i == nslots: the overflow slot). */
static inline cell *sl__metrics_slot(size_t i)
{
    return sl__metrics.base + sl__metrics.slots_off + i * sl__metrics.slot_cells;
}

/* The owner cell of worker slot i: 0 = never claimed, else a pid, with
 * DEAD once the master reaped it. */
static inline cell *sl__metrics_pid_cell(size_t i)
{
    return sl__metrics.base + H_CELLS + i;
}

/* Whether a slot's owner still exists: not reaped by the master, and
 * kill(0) finds it (a zombie does, until reaped: its slot is not reused
 * before). */
bool sl__metrics_alive(uint64_t owner);

/* The label of listener l of cfg, unescaped. */
const char *sl__metrics_listener_label(const struct sl_config *cfg, size_t l);

/* The route label, unescaped: its name when given and first of that name
 * in the table, else its key path ("routes.3", written into out); "" for
 * requests no route matched (route 0). */
const char *sl__metrics_route_label(const struct sl_config *cfg, size_t listener, size_t route,
                                    char *out, size_t cap);

#endif
