/* SPDX-License-Identifier: Apache-2.0 */
/* Small string helpers. */
#include "util/str.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *strprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

char **strv_free(char **v)
{
        if (!v)
                return NULL;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
        return NULL;
}

size_t strv_length(char *const *v)
{
        size_t n = 0;

        while (v && v[n])
                n++;
        return n;
}

int strv_push(char ***v, const char *s)
{
        size_t n = strv_length(*v);
        char *c = strdup(s), **nv;

        if (!c)
                return -ENOMEM;
        nv = realloc(*v, (n + 2) * sizeof(char *));
        if (!nv) {
                free(c);
                return -ENOMEM;
        }
        nv[n] = c;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

bool strv_contains(char *const *v, const char *s)
{
        for (size_t i = 0; s && v && v[i]; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

int strv_pushf(char ***v, const char *fmt, ...)
{
        char *s;
        va_list ap;
        int n, r;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        r = strv_push(v, s);
        free(s);
        return r;
}

const char *getenv_nonempty(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

/* Is every byte of s in the set accepted by ok(), with a length in [min, max]? */
bool string_matches(const char *s, size_t min, size_t max, bool (*ok)(char))
{
        size_t n = 0;

        if (!s)
                return false;
        for (; s[n]; n++)
                if (n >= max || !ok(s[n]))
                        return false;
        return n >= min;
}
