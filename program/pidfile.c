/*
 * pidfile: process.pid_file (see pidfile.h).
 */
#include "program/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

static char g_path[PATH_MAX]; /* the file this process wrote; "" = none */
static pid_t g_pid;           /* who wrote it: a forked child must not remove it */

long sl_pidfile_read(const char *path)
{
    char buf[32], *end;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int err = errno;
    close(fd);
    if (n < 0)
        return -err;
    buf[n] = '\0';
    errno = 0;
    long pid = strtol(buf, &end, 10);
    if (errno || end == buf || pid <= 0 || pid > INT_MAX || (*end != '\n' && *end != '\0'))
        return -EINVAL;
    return pid;
}

/* The file name of a process's executable, " (deleted)" cut off (an upgraded
 * binary); "" when it cannot be read. */
static void exe_name(long pid, char *out, size_t cap)
{
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/%ld/exe", pid);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    out[0] = '\0';
    if (n <= 0)
        return;
    target[n] = '\0';
    char *del = strstr(target, " (deleted)");
    if (del && del[10] == '\0')
        *del = '\0';
    char *base = strrchr(target, '/');
    snprintf(out, cap, "%s", base ? base + 1 : target);
}

/*
 * Whether the PID in an existing pid file belongs to a running saltare. A
 * running process whose executable we cannot read (another user's, no
 * /proc) counts as one: refusing to start is the safe mistake.
 */
static bool held_by_other(const char *path, long pid)
{
    char theirs[PATH_MAX], ours[PATH_MAX];
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
        sl_log(SL_LOG_INFO, "pid file %s: process %ld is gone; replacing the file", path, pid);
        return false;
    }
    exe_name(pid, theirs, sizeof(theirs));
    exe_name((long)getpid(), ours, sizeof(ours));
    if (theirs[0] && ours[0] && strcmp(theirs, ours) != 0) {
        sl_log(SL_LOG_WARNING,
               "pid file %s: process %ld runs \"%s\", not %s (a reused PID); replacing the file",
               path, pid, theirs, ours);
        return false;
    }
    return true;
}

/* Writes "PID\n" to a new temporary file beside `path`, renamed over it. */
static int write_atomic(const char *path, pid_t pid)
{
    char tmp[PATH_MAX + 32], text[32];
    int len = snprintf(text, sizeof(text), "%ld\n", (long)pid);
    if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)pid) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (write(fd, text, (size_t)len) != len)
        err = errno ? errno : EIO;
    /* No fsync: a pid file does not outlive a crash of the machine. */
    if (close(fd) < 0 && err == 0)
        err = errno;
    if (err == 0 && rename(tmp, path) < 0)
        err = errno;
    if (err)
        unlink(tmp);
    return -err;
}

static void remove_at_exit(void)
{
    sl_pidfile_remove();
}

int sl_pidfile_write(const char *path)
{
    static bool registered;
    pid_t self = getpid();
    if (strlen(path) >= sizeof(g_path)) {
        sl_log(SL_LOG_ERROR, "pid file %s: path too long", path);
        return -ENAMETOOLONG;
    }
    long old = sl_pidfile_read(path);
    if (old == -EINVAL)
        sl_log(SL_LOG_WARNING, "pid file %s: holds no PID; replacing it", path);
    else if (old < 0) {
        sl_log(SL_LOG_ERROR, "pid file %s: %s", path, strerror((int)-old));
        return (int)old;
    }
    if (old == (long)self) /* a re-exec: already ours, and we may no longer be root */
        goto out_remember;
    if (old > 0 && held_by_other(path, old)) {
        sl_log(SL_LOG_ERROR,
               "pid file %s: saltare is already running as PID %ld (stop it, or remove the "
               "file if that process is not saltare)",
               path, old);
        return -EEXIST;
    }
    int rc = write_atomic(path, self);
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, "pid file %s: %s", path, strerror(-rc));
        return rc;
    }
out_remember:
    snprintf(g_path, sizeof(g_path), "%s", path);
    g_pid = self;
    if (!registered && atexit(remove_at_exit) == 0)
        registered = true;
    return 0;
}

void sl_pidfile_remove(void)
{
    if (g_path[0] == '\0' || getpid() != g_pid)
        return;
    /* Not ours any more (another instance replaced it): leave it. */
    if (sl_pidfile_read(g_path) == (long)g_pid && unlink(g_path) < 0 && errno != ENOENT)
        sl_log(SL_LOG_WARNING, "pid file %s: cannot remove: %s", g_path, strerror(errno));
    g_path[0] = '\0';
}
