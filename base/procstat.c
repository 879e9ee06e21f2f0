/* procstat: /proc readings (see procstat.h). */
#include "base/procstat.h"

#include <stdio.h>
#include <unistd.h>

uint64_t sl_proc_rss(pid_t pid)
{
    char path[64];
    unsigned long long size = 0, resident = 0;
    FILE *f;

    if (pid == 0)
        snprintf(path, sizeof(path), "/proc/self/statm");
    else
        snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
