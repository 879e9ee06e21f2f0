/*
 * libFuzzer target for the environment variables server/listen reads at
 * start: SALTARE_LISTEN_FDS (sl_listen_env_parse) and systemd's LISTEN_*
 * (sl_listen_sd_env). Build and run with `tools/fuzz.sh listen [seconds]`.
 *
 * The first input byte picks the parser; the rest is the value. Invariants
 * checked: the result is a count within `max` or -EINVAL/-ENOMEM with a
 * message; every entry has a fd >= 0 (>= 3 for systemd), a known origin, an
 * address length within the storage and of its family, and a name inside
 * the names buffer (or "unknown"), NUL-terminated there; a value parsed
 * for a PID it does not name yields nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "server/listen.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define MAX 8
#define PID 42

static const char *g_vars[3]; /* LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES */

static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "LISTEN_PID") == 0)
        return g_vars[0];
    if (strcmp(name, "LISTEN_FDS") == 0)
        return g_vars[1];
    return strcmp(name, "LISTEN_FDNAMES") == 0 ? g_vars[2] : NULL;
}

static void check_name(const char *name, const char *buf, size_t cap)
{
    if (strcmp(name, "unknown") == 0 && (name < buf || name >= buf + cap))
        return;
    CHECK(name >= buf && name < buf + cap);
    CHECK(memchr(name, '\0', (size_t)(buf + cap - name)) != NULL);
}

static void check_entries(const struct sl_sd_fd *fds, int n, const char *buf, size_t cap,
                          int min_fd)
{
    for (int i = 0; i < n; i++) {
        CHECK(fds[i].fd >= min_fd);
        CHECK(fds[i].origin <= SL_LISTEN_FROM_FD);
        CHECK(fds[i].addrlen <= sizeof(fds[i].addr));
        if (fds[i].addrlen)
            CHECK(fds[i].addr.ss_family == AF_INET || fds[i].addr.ss_family == AF_INET6 ||
                  fds[i].addr.ss_family == AF_UNIX);
        check_name(fds[i].name, buf, cap);
    }
}

static void fuzz_inherit(const char *value)
{
    struct sl_sd_fd fds[MAX];
    char names[64], err[256] = "";
    int n = sl_listen_env_parse(value, PID, fds, MAX, names, sizeof(names), err, sizeof(err));
    CHECK(n == -EINVAL || n == -ENOMEM || (n >= 0 && n <= MAX));
    if (n < 0)
        CHECK(err[0] != '\0');
    else
        check_entries(fds, n, names, sizeof(names), 0);
    /* No value names PID -1: nothing for it (or the same syntax error). */
    CHECK(sl_listen_env_parse(value, -1, fds, MAX, names, sizeof(names), err, sizeof(err)) <= 0);
}

/* The value split at its first two NUL bytes into the three variables
 * (LISTEN_FDS "1" and no LISTEN_FDNAMES when there are none). */
static void fuzz_systemd(const char *value, size_t len)
{
    struct sl_sd_fd fds[MAX];
    char names[64], err[256] = "";
    size_t a = strlen(value), b = a < len ? a + 1 + strlen(value + a + 1) : len;
    g_vars[0] = value;
    g_vars[1] = a < len ? value + a + 1 : "1";
    g_vars[2] = a < len && b < len ? value + b + 1 : NULL;
    int n = sl_listen_sd_env(fake_getenv, PID, fds, MAX, names, sizeof(names), err, sizeof(err));
    CHECK(n == -EINVAL || (n >= 0 && n <= MAX));
    if (n < 0)
        CHECK(err[0] != '\0');
    else
        check_entries(fds, n, names, sizeof(names), 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *value = malloc(size); /* the rest plus a NUL: exactly sized */
    CHECK(value);
    memcpy(value, data + 1, size - 1);
    value[size - 1] = '\0';
    if (data[0] & 1)
        fuzz_systemd(value, size - 1);
    else
        fuzz_inherit(value);
    free(value);
    return 0;
}
