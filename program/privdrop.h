/*
 * privdrop: running as process.user / process.group.
 *
 * In two steps because of fork: sl_privdrop_init looks the names up (NSS:
 * /etc/passwd, /etc/group, maybe LDAP; not safe in a child forked from a
 * threaded process) and sl_privdrop_apply makes only system calls, so it may
 * run right after fork. Call init in the master once the config is known,
 * apply where the process must stop being privileged: after the listeners
 * are bound and the TLS keys read, before any app code runs.
 *
 * Who drops: a process that has dropped cannot bind a privileged port again,
 * re-read a root-only key on a SIGHUP re-exec, or remove a pid file in a
 * root-owned directory. A master that must do those keeps its privileges
 * and applies the drop in each worker after fork (as nginx does); the app
 * then must not run in the master before the fork (an `app.preload`
 * import would run as root).
 */
#ifndef SL_PROGRAM_PRIVDROP_H
#define SL_PROGRAM_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sl_privdrop {
    bool on; /* process.user given: apply does something */
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary groups (the user's, from the group database) */
    size_t ngroups;
    char user[64]; /* as configured, for messages */
};

/*
 * Resolves cfg->process.user (a name or a numeric uid) and .group (a name
 * or gid; default: the user's primary group) and the user's supplementary
 * groups. Returns 0 (p->on false when no user is configured), -ENOENT for
 * an unknown user or group, -EINVAL for a group without a user, -EPERM when
 * this process may not switch (not root, no CAP_SETUID/CAP_SETGID, and not
 * already that user), -ENOMEM; every error is logged ("process.user: no
 * user \"x\"").
 */
int sl_privdrop_init(struct sl_privdrop *p, const struct sl_config *cfg);

/*
 * Becomes p's user: setgroups, setgid, setuid (real, effective and saved
 * ids), then checks that setuid(0) / setgid(0) now fail. A process already
 * running as that uid and gid changes nothing. Returns 0 or a negative
 * errno, logged (-EPERM: not root). Only system calls (and a log line):
 * usable right after fork. The kernel clears the parent-death signal
 * (PR_SET_PDEATHSIG) and the dumpable flag when the ids change: set
 * PDEATHSIG after this call, not before.
 */
int sl_privdrop_apply(const struct sl_privdrop *p);

/* Frees what init allocated; a zeroed struct is fine. */
void sl_privdrop_release(struct sl_privdrop *p);

/* init + apply + release: drops this process's privileges in one call. */
int sl_privdrop(const struct sl_config *cfg);

#ifdef __cplusplus
}
#endif

#endif
