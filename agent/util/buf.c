/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffer with a ceiling. */
#include "util/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/secret.h"

int buf_append(struct buf *b, const void *p, size_t n)
{
        size_t max = b->max ? b->max : BUF_DEFAULT_MAX;

        if (n > max || b->len > max - n)
                return -EFBIG;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                char *d;

                while (cap < b->len + n + 1)
                        cap *= 2;
                if (b->secret) {
                        d = malloc(cap);
                        if (!d)
                                return -ENOMEM;
                        if (b->data) {
                                memcpy(d, b->data, b->len + 1);
                                secret_wipe(b->data, b->cap);
                                free(b->data);
                        }
                } else {
                        d = realloc(b->data, cap);
                        if (!d)
                                return -ENOMEM;
                }
                b->data = d;
                b->cap = cap;
        }
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
        char small[256];
        char *big = NULL;
        va_list ap;
        int n, r;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t)n < sizeof(small))
                return buf_append(b, small, (size_t)n);
        va_start(ap, fmt);
        n = vasprintf(&big, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        r = buf_append(b, big, (size_t)n);
        free(big);
        return r;
}

char *buf_steal(struct buf *b, size_t *ret_len)
{
        char *d;

        if (!b->data && buf_append(b, "", 0) < 0)
                return NULL;
        d = b->data;
        if (ret_len)
                *ret_len = b->len;
        b->data = NULL;
        b->len = b->cap = 0;
        return d;
}

int buf_finish(struct buf *b, int r, char **ret, size_t *ret_len)
{
        char *s = r >= 0 ? buf_steal(b, ret_len) : NULL;

        if (!s) {
                if (b->secret)
                        buf_wipe(b);
                else
                        buf_free(b);
                return r < 0 ? r : -ENOMEM;
        }
        *ret = s;
        return 0;
}

void buf_free(struct buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

void buf_wipe(struct buf *b)
{
        secret_wipe(b->data, b->cap);
        buf_free(b);
}
