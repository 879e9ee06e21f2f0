/*
 * exit: the program's exit statuses, in one place. The libraries below
 * return errors; what status the process ends with is decided here.
 */
#ifndef SL_PROGRAM_EXIT_H
#define SL_PROGRAM_EXIT_H

enum sl_exit {
    SL_EXIT_OK = 0,      /* a clean stop */
    SL_EXIT_FAILURE = 1, /* anything else: a listener, a second signal, a crash */
    SL_EXIT_APP = 3,     /* the app could not be imported or started (or timeouts.startup) */
    SL_EXIT_CONFIG = 78, /* sysexits.h EX_CONFIG: a config or command-line error */
};

#endif
