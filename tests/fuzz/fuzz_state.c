/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the persisted state file parser (and a round trip of what it accepts). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct state s = {}, again = {};
        char *text;

        if (state_parse((const char *)data, size, &s) < 0)
                return 0;
        /* Whatever we accept, we must be able to write and read back. */
        text = state_format(&s);
        if (text) {
                if (state_parse(text, strlen(text), &again) < 0)
                        abort();
                state_done(&again);
                free(text);
        }
        state_done(&s);
        return 0;
}
