/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a hard ceiling: "too big" is an error (-EFBIG), never a crash. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct buf {
        char *data; /* always NUL-terminated when non-NULL */
        size_t len;
        size_t cap;
        size_t max;  /* ceiling on len; 0 means the default of BUF_DEFAULT_MAX */
        bool secret; /* grow by copy and wipe, never realloc, so no stale copy is left in freed
                        memory */
};

#define BUF_DEFAULT_MAX (1024u * 1024u)

int buf_append(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand over the NUL-terminated data (never NULL on success) and reset the buffer. */
char *buf_steal(struct buf *b, size_t *ret_len);
/*
 * The end of building a string, whatever happened on the way: with r >= 0 the data goes to *ret
 * (its length to *ret_len, which may be NULL) and 0 is returned; with r < 0, or when memory ran
 * out, the buffer is freed (a secret one wiped) and the error returned, *ret untouched.
 */
int buf_finish(struct buf *b, int r, char **ret, size_t *ret_len);
void buf_free(struct buf *b);
/* Like buf_free but wipes the contents first (for buffers that held secrets). */
void buf_wipe(struct buf *b);
