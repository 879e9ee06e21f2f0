/*
 * pool: fixed-size buffers on a free list, so the request path never calls
 * malloc and an idle connection holds no buffer at all.
 *
 * Buffers are page-aligned anonymous mappings. Freed buffers go on a LIFO
 * stack (the most recently used, still-hot buffer is handed out next); the
 * bottom of the stack is therefore the longest idle, and sl_pool_trim()
 * unmaps buffers idle for longer than a bound, handing the pages back to the
 * kernel. At most `max_free` buffers are kept; beyond that a buffer put back
 * is unmapped at once.
 *
 * Not thread-safe: one pool per worker thread.
 */
#ifndef SL_SERVER_POOL_H
#define SL_SERVER_POOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sl_pool_slot {
    void *buf;
    uint64_t since_ms; /* when it was put back */
};

struct sl_pool {
    size_t size;     /* bytes per buffer, a multiple of the page size */
    size_t max_free; /* free buffers kept at most */
    size_t nfree;
    struct sl_pool_slot *free; /* stack of max_free slots, top = nfree - 1 */
    size_t outstanding;        /* handed out and not yet put back */
    const uint64_t *clock_ms;  /* the owner's clock, read when a buffer is put back */
};

/*
 * Prepares a pool of `size`-byte buffers (rounded up to whole pages). The
 * owner keeps *clock_ms current (milliseconds, monotonic). Returns 0 or
 * -ENOMEM.
 */
int sl_pool_init(struct sl_pool *p, size_t size, size_t max_free, const uint64_t *clock_ms);

/* Unmaps the free buffers. Every buffer must have been put back first. */
void sl_pool_release(struct sl_pool *p);

/* A buffer of p->size bytes (contents undefined), or NULL with errno ENOMEM. */
void *sl_pool_get(struct sl_pool *p);

/* Returns a buffer obtained from sl_pool_get of the same pool. */
void sl_pool_put(struct sl_pool *p, void *buf);

/* Unmaps the free buffers put back at least `idle_ms` ago. Returns how many. */
size_t sl_pool_trim(struct sl_pool *p, uint64_t idle_ms);

#ifdef __cplusplus
}
#endif

#endif
