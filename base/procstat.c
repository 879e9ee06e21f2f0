/* procstat: /proc readings and text release (see procstat.h). */
#include "base/procstat.h"

#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/*
 * dl_iterate_phdr callback for the first object, the executable: drops the
 * page-table entries of its read-only segments (text, rodata: the static
 * libpython). Startup touches much code that serving never runs (the
 * importer, unmarshal, init functions), and each fault maps its 64 KiB
 * neighbourhood too; after MADV_DONTNEED only what runs again is faulted
 * back, from the page cache. Never applied to a writable segment: there it
 * would discard data.
 */
static int text_release_cb(struct dl_phdr_info *info, size_t size, void *unused)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);

    (void)size;
    (void)unused;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) != 0)
            continue;
        lo = (lo + page - 1) & ~(page - 1); /* whole pages inside the segment only */
        hi &= ~(page - 1);
        if (hi > lo)
            madvise((void *)lo, hi - lo, MADV_DONTNEED); /* an optimisation: errors ignored */
    }
    return 1; /* the executable only: shared libraries' pages may be shared */
}

/* Under a debugger, text pages may hold its breakpoints (private copies
 * that MADV_DONTNEED would throw away): /proc/self/status says. */
static bool traced(void)
{
    char line[128];
    bool yes = false;
    FILE *f = fopen("/proc/self/status", "re");

    if (f == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "TracerPid:", 10) == 0) {
            yes = strtol(line + 10, NULL, 10) != 0;
            break;
        }
    fclose(f);
    return yes;
}

void sl_proc_release_text(void)
{
    if (!traced())
        dl_iterate_phdr(text_release_cb, NULL);
}
