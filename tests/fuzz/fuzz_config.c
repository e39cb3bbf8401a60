/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the configuration parser (inih plus our key table and value checks). */
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct config c;
        struct config_error e = {};

        log_set_max_level(LOG_EMERG);
        config_init(&c);
        (void)config_parse_buffer(&c, (const char *)data, size, "fuzz.conf", &e);
        config_error_done(&e);
        config_done(&c);
        return 0;
}
