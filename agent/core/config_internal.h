/* SPDX-License-Identifier: Apache-2.0 */
/* Between config.c (the key table) and config_load.c (reading files): finding and storing keys. */
#pragma once

struct config;
struct config_key;

/* The key [section] name (the section in any case), or NULL. */
const struct config_key *config_find_key(const char *section, const char *name);
/* Store one value into its field. Returns -errno and a message for the caller to report. */
int config_apply(struct config *c, const struct config_key *k, const char *value, char **msg);
