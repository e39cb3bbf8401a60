/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the `#ec2-imaged:` directive parser over arbitrary user-data. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run/firstboot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct userdata_directive d = {.line = 12345};
        const char *msg = NULL;
        unsigned line = 0;
        int r;

        r = userdata_parse((const char *)data, size, &d, &line, &msg);
        if (r == -EINVAL && (!msg || line == 0))
                abort(); /* an error always says where and why */
        if (r == 0 && d.found && (d.line == 0 || memmem(data, size, "#ec2-imaged:", 12) == NULL))
                abort(); /* a directive is never found where there is none */
        if (r == 0 && d.has_mode && d.mode != MODE_REBOOT && d.mode != MODE_NO_REBOOT)
                abort();
        if (r == 0 && !d.found && (d.first_boot || d.has_mode))
                abort();
        return 0;
}
