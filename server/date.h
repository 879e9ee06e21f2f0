/*
 * date: the HTTP Date header, formatted once per second.
 */
#ifndef SL_SERVER_DATE_H
#define SL_SERVER_DATE_H

#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" */
#define SL_DATE_LINE_LEN 37

struct sl_date {
    time_t sec; /* second the line was formatted for; 0 = never */
    char line[SL_DATE_LINE_LEN + 1];
};

/* The Date header line (with CRLF) for the current second: reformatted only
 * when the second changed. Borrowed, valid until the next call. */
const char *sl_date_line(struct sl_date *d);

/* Formats the line for `t` (IMF-fixdate, RFC 9110 5.6.7) into d->line. */
void sl_date_format(struct sl_date *d, time_t t);

#ifdef __cplusplus
}
#endif

#endif
