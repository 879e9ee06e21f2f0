/*
 * privdrop: becoming process.user / process.group (see privdrop.h).
 */
#include "program/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"

/* A name, or a number when the whole string is digits (as chown(1)). */
static bool numeric(const char *s, unsigned long *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0' && *out < (unsigned long)(uid_t)-1;
}

/* Fills uid, gid (primary) and the account name to take groups from. */
static int resolve_user(struct sl_privdrop *p, const char *user, char *name, size_t cap)
{
    unsigned long n;
    struct passwd *pw;
    errno = 0;
    pw = numeric(user, &n) ? getpwuid((uid_t)n) : getpwnam(user);
    if (pw == NULL && numeric(user, &n)) {
        /* A uid with no account: allowed, with no supplementary groups and
         * the gid of the same number unless `group` says otherwise. */
        p->uid = (uid_t)n;
        p->gid = (gid_t)n;
        name[0] = '\0';
        return 0;
    }
    if (pw == NULL) {
        sl_log(SL_LOG_ERROR, "process.user: no user \"%s\"%s%s", user, errno ? ": " : "",
               errno ? strerror(errno) : "");
        return -ENOENT;
    }
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    snprintf(name, cap, "%s", pw->pw_name);
    return 0;
}

static int resolve_group(struct sl_privdrop *p, const char *group)
{
    unsigned long n;
    if (numeric(group, &n)) {
        p->gid = (gid_t)n;
        return 0;
    }
    errno = 0;
    struct group *gr = getgrnam(group);
    if (gr == NULL) {
        sl_log(SL_LOG_ERROR, "process.group: no group \"%s\"%s%s", group, errno ? ": " : "",
               errno ? strerror(errno) : "");
        return -ENOENT;
    }
    p->gid = gr->gr_gid;
    return 0;
}

/* The account's supplementary groups plus p->gid (as initgroups(3)). */
static int resolve_groups(struct sl_privdrop *p, const char *name)
{
    int n = 16;
    if (name[0] == '\0') { /* a bare uid: only the primary group */
        p->groups = malloc(sizeof(gid_t));
        if (p->groups == NULL)
            return -ENOMEM;
        p->groups[0] = p->gid;
        p->ngroups = 1;
        return 0;
    }
    for (;;) {
        gid_t *g = realloc(p->groups, (size_t)n * sizeof(gid_t));
        if (g == NULL)
            return -ENOMEM;
        p->groups = g;
        int want = n;
        if (getgrouplist(name, p->gid, g, &want) >= 0) {
            p->ngroups = (size_t)want;
            return 0;
        }
        if (want <= n) /* no growth asked for: give up rather than loop */
            want = n * 2;
        if (want > 65536) {
            sl_log(SL_LOG_ERROR, "process.user: %s: too many groups", name);
            return -E2BIG;
        }
        n = want;
    }
}

/* True when the process is already exactly p's user and group. */
static bool already(const struct sl_privdrop *p)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    return getresuid(&r, &e, &s) == 0 && getresgid(&gr, &ge, &gs) == 0 && r == p->uid &&
           e == p->uid && s == p->uid && gr == p->gid && ge == p->gid && gs == p->gid;
}

/* Root, or the capabilities setgroups/setgid/setuid need. */
static bool can_switch(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    if (geteuid() == 0)
        return true;
    if (syscall(SYS_capget, &h, d) < 0)
        return false;
    return (d[0].effective & (1u << CAP_SETUID)) && (d[0].effective & (1u << CAP_SETGID));
}

int sl_privdrop_init(struct sl_privdrop *p, const struct sl_config *cfg)
{
    char name[256];
    int rc;
    memset(p, 0, sizeof(*p));
    if (cfg->process.user == NULL) {
        if (cfg->process.group == NULL)
            return 0;
        sl_log(SL_LOG_ERROR, "process.group needs process.user");
        return -EINVAL;
    }
    snprintf(p->user, sizeof(p->user), "%s", cfg->process.user);
    if ((rc = resolve_user(p, cfg->process.user, name, sizeof(name))) < 0)
        return rc;
    if (cfg->process.group && (rc = resolve_group(p, cfg->process.group)) < 0)
        return rc;
    if ((rc = resolve_groups(p, name)) < 0) {
        sl_privdrop_release(p);
        return rc;
    }
    /* Found here, in the master, rather than by every worker after fork. */
    if (!already(p) && !can_switch()) {
        sl_log(SL_LOG_ERROR,
               "process.user %s: running as uid %u, switching to uid %u gid %u needs root (or "
               "CAP_SETUID and CAP_SETGID)",
               p->user, (unsigned)geteuid(), (unsigned)p->uid, (unsigned)p->gid);
        sl_privdrop_release(p);
        return -EPERM;
    }
    p->on = true;
    return 0;
}

void sl_privdrop_release(struct sl_privdrop *p)
{
    free(p->groups);
    p->groups = NULL;
    p->ngroups = 0;
    p->on = false;
}

static int failed(const struct sl_privdrop *p, const char *what)
{
    int err = errno ? errno : EPERM;
    sl_log(SL_LOG_ERROR, "process.user %s: %s: %s%s", p->user, what, strerror(err),
           err == EPERM && geteuid() != 0 ? " (changing user needs root)" : "");
    return -err;
}

/* After the switch: every id is the target's and none of root's comes back. */
static int verify(const struct sl_privdrop *p)
{
    if (!already(p)) {
        errno = EPERM;
        return failed(p, "ids differ after the switch");
    }
    if (p->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        return failed(p, "root could be regained");
    }
    if (p->gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
        errno = EPERM;
        return failed(p, "group 0 could be regained");
    }
    return 0;
}

int sl_privdrop_apply(const struct sl_privdrop *p)
{
    if (!p->on)
        return 0;
    if (already(p))
        return 0;
    errno = 0;
    /* Groups first: after setuid we could no longer change them. */
    if (setgroups(p->ngroups, p->groups) < 0)
        return failed(p, "setgroups");
    if (setresgid(p->gid, p->gid, p->gid) < 0)
        return failed(p, "setgid");
    if (setresuid(p->uid, p->uid, p->uid) < 0)
        return failed(p, "setuid");
    int rc = verify(p);
    if (rc == 0)
        sl_log(SL_LOG_INFO, "running as user %s (uid %u, gid %u)", p->user, (unsigned)p->uid,
               (unsigned)p->gid);
    return rc;
}

int sl_privdrop(const struct sl_config *cfg)
{
    struct sl_privdrop p;
    int rc = sl_privdrop_init(&p, cfg);
    if (rc == 0)
        rc = sl_privdrop_apply(&p);
    sl_privdrop_release(&p);
    return rc;
}
