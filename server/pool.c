/*
 * pool: buffer free lists. See pool.h for the policy.
 */
#include "server/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Under AddressSanitizer buffers come from the heap instead, so overflows
 * past a buffer's end are caught; the pool logic is the same.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SL_POOL_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SL_POOL_HEAP 1
#endif
#endif

static void *map_buf(size_t size)
{
#ifdef SL_POOL_HEAP
    return aligned_alloc(4096, size);
#else
    void *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return b == MAP_FAILED ? NULL : b;
#endif
}

static void unmap_buf(void *b, size_t size)
{
#ifdef SL_POOL_HEAP
    (void)size;
    free(b);
#else
    munmap(b, size);
#endif
}

int sl_pool_init(struct sl_pool *p, size_t size, size_t max_free, const uint64_t *clock_ms)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *p = (struct sl_pool){
        .size = (size + page - 1) / page * page,
        .max_free = max_free,
        .clock_ms = clock_ms,
    };
    if (max_free) {
        p->free = calloc(max_free, sizeof(*p->free));
        if (!p->free)
            return -ENOMEM;
    }
    return 0;
}

void sl_pool_release(struct sl_pool *p)
{
    for (size_t i = 0; i < p->nfree; i++)
        unmap_buf(p->free[i].buf, p->size);
    free(p->free);
    p->free = NULL;
    p->nfree = 0;
}

void *sl_pool_get(struct sl_pool *p)
{
    void *b;
    if (p->nfree) {
        b = p->free[--p->nfree].buf;
    } else {
        b = map_buf(p->size);
        if (!b) {
            errno = ENOMEM;
            return NULL;
        }
    }
    p->outstanding++;
    return b;
}

void sl_pool_put(struct sl_pool *p, void *buf)
{
    p->outstanding--;
    if (p->nfree == p->max_free) {
        unmap_buf(buf, p->size);
        return;
    }
    p->free[p->nfree++] = (struct sl_pool_slot){.buf = buf, .since_ms = *p->clock_ms};
}

/* The stack is ordered by since_ms (each push is at least as recent as
 * everything below it), so the idle buffers are a prefix from the bottom. */
size_t sl_pool_trim(struct sl_pool *p, uint64_t idle_ms)
{
    uint64_t now = *p->clock_ms;
    size_t n = 0;
    while (n < p->nfree && now - p->free[n].since_ms >= idle_ms)
        unmap_buf(p->free[n++].buf, p->size);
    if (n) {
        memmove(p->free, p->free + n, (p->nfree - n) * sizeof(*p->free));
        p->nfree -= n;
    }
    return n;
}
