/*
 * timer: a hashed timer wheel with O(1) arm and cancel.
 *
 * Timers are embedded in their owner (a connection, the worker) and carry no
 * allocation: arming links the timer into the slot of its due tick, cancel
 * unlinks it. Time is in milliseconds from any monotonic origin; the wheel
 * rounds due times UP to its tick, so a timer never fires early and fires at
 * most one tick late (plus however late sl_timer_advance is called).
 *
 * Timers due more than one revolution ahead (SL_TIMER_SLOTS ticks) wait in
 * their slot and are skipped until their round comes. Timers due on the same
 * tick fire in an unspecified order; otherwise in due order, except that
 * timers more than one revolution overdue (the wheel was not advanced for a
 * long time) fire in slot order.
 *
 * Not thread-safe: one wheel per worker thread.
 */
#ifndef SL_SERVER_TIMER_H
#define SL_SERVER_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef sl_container_of
/* The struct that embeds `ptr` as its `member`. */
#define sl_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

#define SL_TIMER_SLOTS 1024u /* power of two */

struct sl_timer;
typedef void (*sl_timer_fn)(struct sl_timer *t);

/* Embed in the owner; sl_timer_init before first use. */
struct sl_timer {
    struct sl_timer *next;
    struct sl_timer **pprev; /* NULL when not armed */
    uint64_t due_tick;
    sl_timer_fn fn;
};

struct sl_timer_wheel {
    uint64_t tick; /* last tick processed: everything due at or before it fired */
    uint32_t tick_ms;
    size_t count;                           /* armed timers */
    uint64_t nonempty[SL_TIMER_SLOTS / 64]; /* bit per slot with timers */
    struct sl_timer *slots[SL_TIMER_SLOTS];
};

/* Starts an empty wheel at `now_ms` with `tick_ms` (>= 1) resolution. */
void sl_timer_wheel_init(struct sl_timer_wheel *w, uint64_t now_ms, uint32_t tick_ms);

void sl_timer_init(struct sl_timer *t, sl_timer_fn fn);

static inline bool sl_timer_armed(const struct sl_timer *t)
{
    return t->pprev != NULL;
}

/* (Re-)arms `t` to fire at the first advance with now >= due_ms. A due time
 * in the past fires at the next tick. */
void sl_timer_arm(struct sl_timer_wheel *w, struct sl_timer *t, uint64_t due_ms);

/* Disarms `t`; a no-op when it is not armed. */
void sl_timer_cancel(struct sl_timer_wheel *w, struct sl_timer *t);

/*
 * Fires every timer due at or before `now_ms` (disarming each before its
 * callback, which may arm or cancel any timer, itself included). Returns the
 * number fired.
 */
size_t sl_timer_advance(struct sl_timer_wheel *w, uint64_t now_ms);

/* Milliseconds from `now_ms` until the next slot with timers comes due (a
 * lower bound for far-future timers: waking then is harmless); 0 when one is
 * already due; -1 when no timer is armed. */
int64_t sl_timer_next_ms(const struct sl_timer_wheel *w, uint64_t now_ms);

#ifdef __cplusplus
}
#endif

#endif
