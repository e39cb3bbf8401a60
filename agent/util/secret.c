/* SPDX-License-Identifier: Apache-2.0 */
/* Wiping of secret material. */
#include "util/secret.h"

#include <stdlib.h>
#include <string.h>

void secret_wipe(void *p, size_t n)
{
        if (p && n > 0)
                explicit_bzero(p, n);
}

char *secret_free(char *s)
{
        if (!s)
                return NULL;
        secret_wipe(s, strlen(s));
        free(s);
        return NULL;
}
