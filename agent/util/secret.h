/* SPDX-License-Identifier: Apache-2.0 */
/* Secrets (keys, tokens, signing keys): wiped before their memory is released. */
#pragma once

#include <stddef.h>

/* Wipe and free a NUL-terminated secret string; accepts NULL, returns NULL. */
char *secret_free(char *s);
/* Wipe a buffer in a way the compiler may not optimise away. */
void secret_wipe(void *p, size_t n);

static inline void secret_freep(char **p)
{
        secret_free(*p);
}
#define _cleanup_secret_ __attribute__((cleanup(secret_freep)))
