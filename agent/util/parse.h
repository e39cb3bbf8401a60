/* SPDX-License-Identifier: Apache-2.0 */
/* Number parsing that rejects trailing garbage, signs where none belong, and overflow. */
#pragma once

#include <stdint.h>

int safe_atou64(const char *s, uint64_t *ret);
int safe_atou(const char *s, unsigned *ret);
int safe_atoi64(const char *s, int64_t *ret);
/* "yes/no/true/false/on/off/1/0" -> 1/0, else -EINVAL. */
int parse_boolean(const char *s);
