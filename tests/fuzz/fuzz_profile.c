/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the reader of the AWS shared files (~/.aws/credentials and ~/.aws/config), which
 * reads what a user, or a tool, wrote. Each input is read as both kinds of file into one set.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/profile_file.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What every successful read promises: named profiles, lower-case keys with a line and a file. */
static void check(const struct profile_set *s)
{
        for (size_t i = 0; i < s->n_profiles; i++) {
                const struct profile *p = &s->profiles[i];

                if (!p->name || !*p->name || !p->path || profile_set_find(s, p->name) != p)
                        __builtin_trap();
                for (size_t k = 0; k < p->n_values; k++) {
                        const struct profile_value *v = &p->values[k];

                        if (!v->key || !*v->key || !v->value || !v->path || v->line == 0 ||
                            strpbrk(v->key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ=\n") ||
                            profile_get(p, v->key) != v)
                                __builtin_trap();
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const enum profile_file_kind kinds[] = {PROFILE_FILE_CONFIG,
                                                       PROFILE_FILE_CREDENTIALS};
        struct profile_set s = {};

        log_set_max_level(LOG_EMERG);
        for (size_t i = 0; i < 2; i++) {
                char *msg = NULL;
                int r = profile_set_add(&s, kinds[i], "/fuzz", (const char *)data, size, &msg);

                /* A failure always says where, in the "FILE:LINE: what" form. */
                if (r < 0 && r != -ENOMEM && (!msg || strncmp(msg, "/fuzz:", 6) != 0))
                        __builtin_trap();
                free(msg);
                check(&s);
        }
        profile_set_done(&s);
        return 0;
}
