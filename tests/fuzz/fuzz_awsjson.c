/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the AWS JSON protocol parsers (answers, error bodies, KMS DescribeKey), which read
 * whatever KMS or SSM (or anything in between) sends.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/awsjson.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data;
        struct aws_error e = {};
        struct kms_key k = {};
        cJSON *j = NULL;

        log_set_max_level(LOG_EMERG);
        if (awsjson_parse(body, size, &j) == 0) {
                if (!cJSON_IsObject(j))
                        __builtin_trap();
                cJSON_Delete(j);
        }
        if (awsjson_parse_error(body, size, &e) == 0) {
                /* A code is promised, never empty, never with the namespace left in. */
                if (!e.code || !*e.code || strchr(e.code, '#') || strchr(e.code, ':'))
                        __builtin_trap();
                aws_error_done(&e);
        }
        if (kms_parse_describe_key(body, size, &k) == 0) {
                if (!k.key_id || !k.key_manager)
                        __builtin_trap();
                kms_key_done(&k);
        }
        return 0;
}
