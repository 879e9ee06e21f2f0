/*
 * proctitle: the process title, over the argv area.
 */
#include "program/proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

/* Our copies of the environment strings, never freed: they must stay reachable
 * (for leak checkers) once unsetenv drops one from environ. Not static: a
 * write-only static would be optimised away. */
char **sl__proctitle_env;
static char *area;      /* argv[0], then every contiguous argv and environ string */
static size_t area_len; /* bytes we may write, the final NUL included */

/* Moves the environment strings to the heap, so their memory joins the
 * title area. On allocation failure the title is only the argv area. */
static char *environ_move(char *end)
{
    size_t n = 0;
    char **copy;

    while (environ[n] != NULL)
        n++;
    if ((copy = calloc(n + 1, sizeof(*copy))) == NULL)
        return end;
    for (size_t i = 0; i < n; i++) {
        if ((copy[i] = strdup(environ[i])) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            return end;
        }
        if (environ[i] == end)
            end = environ[i] + strlen(environ[i]) + 1;
    }
    sl__proctitle_env = calloc(n + 1, sizeof(*sl__proctitle_env));
    if (sl__proctitle_env != NULL)
        memcpy(sl__proctitle_env, copy, n * sizeof(*copy));
    environ = copy; /* the old strings are ours now (setenv/getenv use the copy) */
    return end;
}

void sl_proctitle_init(int argc, char **argv)
{
    char *end;

    if (argc < 1 || argv[0] == NULL)
        return;
    end = argv[0];
    for (int i = 0; i < argc; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    end = environ_move(end);
    area = argv[0];
    area_len = (size_t)(end - area);
    argv[1] = NULL; /* nobody reads past the title */
}

void sl_proctitle_set(const char *comm, const char *fmt, ...)
{
    va_list ap;
    char title[256];

    prctl(PR_SET_NAME, comm, 0, 0, 0);
    if (area == NULL || area_len < 2)
        return;
    va_start(ap, fmt);
    vsnprintf(title, sizeof(title), fmt, ap);
    va_end(ap);
    size_t n = strlen(title);
    if (n > area_len - 1)
        n = area_len - 1;
    memcpy(area, title, n);
    memset(area + n, 0, area_len - n);
}
