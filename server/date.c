/*
 * date: cached IMF-fixdate. strftime would depend on the locale; the names
 * are fixed by the RFC, so they are spelled out here.
 */
#include "server/date.h"

#include <string.h>

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static char *two(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

void sl_date_format(struct sl_date *d, time_t t)
{
    struct tm tm;
    char *p = d->line;
    gmtime_r(&t, &tm);
    int year = (tm.tm_year + 1900) % 10000;
    memcpy(p, "Date: ", 6);
    memcpy(p + 6, days[tm.tm_wday], 3);
    p += 9;
    *p++ = ',';
    *p++ = ' ';
    p = two(p, tm.tm_mday);
    *p++ = ' ';
    memcpy(p, months[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    p = two(two(p, year / 100), year % 100);
    *p++ = ' ';
    p = two(p, tm.tm_hour);
    *p++ = ':';
    p = two(p, tm.tm_min);
    *p++ = ':';
    p = two(p, tm.tm_sec);
    memcpy(p, " GMT\r\n", 7);
    d->sec = t;
}

const char *sl_date_line(struct sl_date *d)
{
    time_t now = time(NULL);
    if (now != d->sec)
        sl_date_format(d, now);
    return d->line;
}
