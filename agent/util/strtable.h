/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enumerated values and their names (systemd's string tables): one array of names per enum,
 * indexed by the enum, named NAME_table; DEFINE_STRING_TABLE_LOOKUP(NAME, TYPE) then defines
 * NAME_to_string() (NULL for a value without a name) and NAME_from_string() (the value, or
 * -EINVAL for a name the table does not hold, NULL included). Names match exactly; the
 * configuration parser matches them regardless of case through string_table_find() itself.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "util/macro.h"

static inline const char *string_table_name(const char *const *table, size_t n, int i)
{
        return i >= 0 && (size_t)i < n ? table[i] : NULL;
}

static inline int string_table_find(const char *const *table, size_t n, const char *s,
                                    bool ignore_case)
{
        for (size_t i = 0; s && i < n; i++)
                if (table[i] && (ignore_case ? strcasecmp(table[i], s) : strcmp(table[i], s)) == 0)
                        return (int)i;
        return -EINVAL;
}

#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                                     \
        const char *name##_to_string(type i)                                                       \
        {                                                                                          \
                return string_table_name(name##_table, ELEMENTSOF(name##_table), (int)i);          \
        }                                                                                          \
        int name##_from_string(const char *s)                                                      \
        {                                                                                          \
                return string_table_find(name##_table, ELEMENTSOF(name##_table), s, false);        \
        }
