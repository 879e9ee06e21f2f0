/* version: saltare's version string (--version, metrics' build info). */
#ifndef SL_PROGRAM_VERSION_H
#define SL_PROGRAM_VERSION_H

#define SL_VERSION "0.1.0"

#endif
