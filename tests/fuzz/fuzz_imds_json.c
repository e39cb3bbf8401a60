/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMDS JSON parsers (identity document and role credentials) on arbitrary input: they read what
 * the network hands us, so they must refuse garbage with an error and never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/imds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct imds_identity id = {};
        struct aws_credentials c = {};

        if (imds_parse_identity((const char *)data, size, &id) == 0) {
                /* Success promises every field, each a NUL-terminated string. */
                if (!id.instance_id || !id.region || !id.availability_zone || !id.account_id ||
                    !id.architecture || !id.image_id || !id.instance_type)
                        __builtin_trap();
                if (strlen(id.account_id) != 12 || strncmp(id.instance_id, "i-", 2) != 0)
                        __builtin_trap();
                imds_identity_done(&id);
        }
        if (imds_parse_credentials((const char *)data, size, "fuzz-role", &c) == 0) {
                if (!c.access_key_id || !c.secret_access_key || !c.session_token ||
                    c.expiration == 0 || !c.source || strcmp(c.source, "instance-role:fuzz-role"))
                        __builtin_trap();
                aws_credentials_done(&c);
        }
        return 0;
}
