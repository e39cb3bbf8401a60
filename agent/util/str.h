/* SPDX-License-Identifier: Apache-2.0 */
/* Small string helpers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* asprintf that returns the string, or NULL when memory ran out. */
char *strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Free a NULL-terminated string vector; returns NULL. */
char **strv_free(char **v);
size_t strv_length(char *const *v);
/* Append a copy of s; -ENOMEM on failure (the vector is unchanged then). */
int strv_push(char ***v, const char *s);
bool strv_contains(char *const *v, const char *s);
/* For _cleanup_strv_free_: frees the vector a variable holds when it goes out of scope. */
static inline void strv_freep(char ***v)
{
        strv_free(*v);
}
#define _cleanup_strv_free_ __attribute__((cleanup(strv_freep)))
/* The value of an environment variable, or NULL when it is unset or empty (the SDKs' rule). */
const char *getenv_nonempty(const char *name);
/* strv_push of a formatted string. */
int strv_pushf(char ***v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Is every byte of s accepted by ok(), with a length in [min, max]? NULL is not. */
bool string_matches(const char *s, size_t min, size_t max, bool (*ok)(char));
