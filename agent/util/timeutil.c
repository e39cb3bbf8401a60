/* SPDX-License-Identifier: Apache-2.0 */
/* Clock reading and the two timestamp formats AWS uses. */
#include "util/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

usec_t now_usec(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

int parse_iso8601(const char *s, usec_t *ret)
{
        struct tm tm = {};
        const char *p;
        time_t t;

        if (!s)
                return -EINVAL;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') {
                p++;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && strcmp(p, "") != 0)
                return -EINVAL;
        t = timegm(&tm);
        if (t < 0)
                return -ERANGE;
        *ret = (usec_t)t * USEC_PER_SEC;
        return 0;
}

void format_amz_date(usec_t t, char buf[static 17])
{
        time_t s = (time_t)(t / USEC_PER_SEC);
        struct tm tm;

        gmtime_r(&s, &tm);
        strftime(buf, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void format_iso8601(usec_t t, char buf[static 21])
{
        time_t s = (time_t)(t / USEC_PER_SEC);
        struct tm tm;

        gmtime_r(&s, &tm);
        strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
