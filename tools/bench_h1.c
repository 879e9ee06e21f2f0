/*
 * Micro-benchmark for sl_h1_parse_request on a typical browser request.
 * Not part of the build or the tests:
 *
 *   gcc -O2 -I. -D_GNU_SOURCE tools/bench_h1.c server/h1.c -o /tmp/bench_h1 && /tmp/bench_h1
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/h1.h"

static const char request[] =
    "GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(void)
{
    const struct sl_h1_limits lim = {8192, 100, 8192};
    struct sl_h1_header headers[100];
    struct sl_h1_request req;
    const long iters = 5000000;
    long sum = 0;
    double best = 1e30;

    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            req.headers = headers;
            req.nheaders = 100;
            /* The barrier keeps the compiler from hoisting the parse. */
            __asm__ volatile("" ::: "memory");
            sum += sl_h1_parse_request(request, sizeof request - 1, 0, &lim, &req);
        }
        double ns = (now_ns() - t0) / iters;
        if (ns < best)
            best = ns;
    }
    if (sum != (long)(sizeof request - 1) * iters * 5) {
        fprintf(stderr, "bench_h1: unexpected parse result\n");
        return 1;
    }
    printf("%zu-byte request, %zu headers: %.1f ns/request (best of 5 x %ld)\n", sizeof request - 1,
           req.nheaders, best, iters);
    return 0;
}
