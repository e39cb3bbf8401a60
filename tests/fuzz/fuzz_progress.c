/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the worker progress messages the daemon parses, and control requests. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct progress p;
        enum control_request req;

        if (progress_parse((const char *)data, size, &p) == 0) {
                /* Whatever is accepted is a known phase and NUL-terminated printable fields. */
                if ((unsigned)p.phase >= _PHASE_MAX || strlen(p.run_id) >= sizeof(p.run_id) ||
                    strlen(p.image_id) >= sizeof(p.image_id) || strlen(p.mode) >= sizeof(p.mode))
                        abort();
                for (const char *c = p.image_id; *c; c++)
                        if (*c <= ' ' || *c > '~')
                                abort();
        }
        (void)control_parse_request((const char *)data, size, &req);
        return 0;
}
