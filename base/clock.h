/*
 * clock: the monotonic clock the core reads (timers, latencies, deadlines).
 * One definition, so every part of the core agrees on what "now" is.
 */
#ifndef SL_BASE_CLOCK_H
#define SL_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Microseconds on CLOCK_MONOTONIC (an arbitrary origin; never goes back). */
static inline uint64_t sl_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Milliseconds on the same clock. */
static inline uint64_t sl_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#ifdef __cplusplus
}
#endif

#endif
