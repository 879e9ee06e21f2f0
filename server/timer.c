/*
 * timer: hashed timer wheel. Each slot is an intrusive doubly linked list
 * (pprev style, so unlinking needs no slot lookup); a bitmap of non-empty
 * slots makes "when is the next timer" a scan of 16 words instead of 1024
 * slots.
 */
#include "server/timer.h"

#include <assert.h>

#define MASK (SL_TIMER_SLOTS - 1)
#define NWORDS (SL_TIMER_SLOTS / 64)

void sl_timer_wheel_init(struct sl_timer_wheel *w, uint64_t now_ms, uint32_t tick_ms)
{
    assert(tick_ms >= 1);
    *w = (struct sl_timer_wheel){.tick_ms = tick_ms};
    w->tick = now_ms / tick_ms;
}

void sl_timer_init(struct sl_timer *t, sl_timer_fn fn)
{
    *t = (struct sl_timer){.fn = fn};
}

static void link_slot(struct sl_timer_wheel *w, struct sl_timer *t, size_t idx)
{
    t->next = w->slots[idx];
    if (t->next)
        t->next->pprev = &t->next;
    t->pprev = &w->slots[idx];
    w->slots[idx] = t;
    w->nonempty[idx / 64] |= 1ull << (idx % 64);
    w->count++;
}

static void unlink_timer(struct sl_timer_wheel *w, struct sl_timer *t)
{
    *t->pprev = t->next;
    if (t->next)
        t->next->pprev = t->pprev;
    t->next = NULL;
    t->pprev = NULL;
    w->count--;
}

void sl_timer_arm(struct sl_timer_wheel *w, struct sl_timer *t, uint64_t due_ms)
{
    if (t->pprev)
        sl_timer_cancel(w, t);
    /* Round up: firing at tick k means now >= k * tick_ms >= due_ms. */
    uint64_t due = due_ms / w->tick_ms + (due_ms % w->tick_ms != 0);
    if (due <= w->tick)
        due = w->tick + 1;
    t->due_tick = due;
    link_slot(w, t, due & MASK);
}

void sl_timer_cancel(struct sl_timer_wheel *w, struct sl_timer *t)
{
    if (!t->pprev)
        return;
    unlink_timer(w, t);
    size_t idx = t->due_tick & MASK;
    if (!w->slots[idx])
        w->nonempty[idx / 64] &= ~(1ull << (idx % 64));
}

/*
 * Fires the timers of slot `idx` that are due at or before `tick`. The slot
 * is detached first so callbacks may arm timers into it (they wait for the
 * next round) or cancel timers still waiting in the detached list.
 */
static size_t fire_slot(struct sl_timer_wheel *w, size_t idx, uint64_t tick)
{
    struct sl_timer *pending = w->slots[idx];
    size_t fired = 0;
    if (!pending)
        return 0;
    w->slots[idx] = NULL;
    w->nonempty[idx / 64] &= ~(1ull << (idx % 64));
    pending->pprev = &pending;
    while (pending) {
        struct sl_timer *t = pending;
        unlink_timer(w, t);
        if (t->due_tick <= tick) {
            t->fn(t);
            fired++;
        } else {
            link_slot(w, t, idx); /* a later round */
        }
    }
    return fired;
}

size_t sl_timer_advance(struct sl_timer_wheel *w, uint64_t now_ms)
{
    uint64_t target = now_ms / w->tick_ms;
    size_t fired = 0;
    /* More than one revolution behind: one pass over every slot suffices. */
    if (target > w->tick && target - w->tick > SL_TIMER_SLOTS)
        w->tick = target - SL_TIMER_SLOTS;
    while (w->tick < target) {
        w->tick++;
        if (w->count)
            fired += fire_slot(w, w->tick & MASK, w->tick);
    }
    return fired;
}

/* Distance in slots from `start` to the first non-empty slot (wrapping), or
 * -1 when all are empty. */
static int64_t first_nonempty(const struct sl_timer_wheel *w, size_t start)
{
    size_t wi = start / 64;
    uint64_t word = w->nonempty[wi] & (~0ull << (start % 64));
    for (size_t k = 0; k <= NWORDS; k++) {
        if (word) {
            size_t idx = wi * 64 + (size_t)__builtin_ctzll(word);
            return (int64_t)((idx - start) & MASK);
        }
        wi = (wi + 1) % NWORDS;
        word = w->nonempty[wi];
    }
    return -1;
}

int64_t sl_timer_next_ms(const struct sl_timer_wheel *w, uint64_t now_ms)
{
    if (w->count == 0)
        return -1;
    int64_t dist = first_nonempty(w, (w->tick + 1) & MASK);
    if (dist < 0)
        return -1;
    uint64_t due_ms = (w->tick + 1 + (uint64_t)dist) * w->tick_ms;
    return due_ms > now_ms ? (int64_t)(due_ms - now_ms) : 0;
}
