/*
 * proctitle: what ps shows for each process ("saltare: master [gen 2]",
 * "saltare: worker 3 [gen 2]").
 *
 * The title is written over the memory of the original argv and environ
 * strings (the environment is moved to the heap first), which is where
 * /proc/PID/cmdline reads from; the thread name (comm, 15 bytes) is set
 * too, for top and ps -o comm.
 */
#ifndef SL_PROGRAM_PROCTITLE_H
#define SL_PROGRAM_PROCTITLE_H

/* Takes over the argv/environ area. Call once, early, after anything that
 * needs the original argv strings copied them (they are overwritten). */
void sl_proctitle_init(int argc, char **argv);

/* Sets the title; `comm` is the short thread name. */
void sl_proctitle_set(const char *comm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
