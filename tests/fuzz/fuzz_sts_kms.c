/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the answers of encrypted sharing's calls: an STS AssumeRoleResponse (XML, holding
 * credentials) and a page of KMS ListGrants (JSON). Every input goes through both.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/kms.h"
#include "aws/sts.h"
#include "aws/vocab.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data;
        struct aws_credentials c = {};
        struct kms_grant *g = NULL;
        char *marker = NULL;
        size_t n = 0;

        log_set_max_level(LOG_EMERG);
        if (sts_parse_assume_role(body, size, "arn:aws:iam::111111111111:role/r", &c) == 0) {
                /* Credentials that pass are whole and could go into a header. */
                if (!aws_access_key_id_valid(c.access_key_id) ||
                    !aws_secret_access_key_valid(c.secret_access_key) ||
                    !aws_session_token_valid(c.session_token) || c.expiration == 0)
                        __builtin_trap();
                aws_credentials_done(&c);
        }
        if (kms_parse_grants_page(body, size, &g, &n, &marker) == 0) {
                for (size_t i = 0; i < n; i++)
                        if (!g[i].grant_id || !g[i].key_id || !g[i].grantee_principal)
                                __builtin_trap();
                if (marker && !*marker)
                        __builtin_trap();
                free(marker);
        }
        kms_grants_free(g, n);
        return 0;
}
