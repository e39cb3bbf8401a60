/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The [distribute] target_* words (see config.h): their shapes, checked as the configuration is
 * read so that a wrong word is refused with its file, line and key, and the look-ups of a target
 * account's key and parameter. Whether each names an account of target_accounts and a region of
 * the run is the pre-flight's (distribute_check.c): the run's region is not known here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sts.h"
#include "aws/vocab.h"
#include "core/config.h"
#include "util/macro.h"
#include "util/str.h"

/* The 12-digit account before the first ':' of word; NULL (and *msg) when it is not one. */
static const char *account_part(const char *word, const char *shape, char **msg)
{
        const char *colon = strchr(word, ':');
        char account[13];

        if (colon && colon - word == 12) {
                memcpy(account, word, 12);
                account[12] = '\0';
                if (aws_account_id_valid(account))
                        return colon + 1;
        }
        *msg = strprintf("'%s' is not %s (ACCOUNT: 12 digits)", word, shape);
        return NULL;
}

bool config_check_target_account(const char *word, char **msg)
{
        const char *role = account_part(word, "ACCOUNT:ROLE_NAME", msg);
        _cleanup_free_ char *arn = NULL;

        if (!role)
                return false;
        arn = strprintf("arn:aws:iam::%.12s:role/%s", word, role);
        if (arn && sts_role_arn_valid(arn))
                return true;
        *msg = strprintf("'%s' is not ACCOUNT:ROLE_NAME (ROLE_NAME: [PATH/]NAME of letters, "
                         "digits and +=,.@_-)",
                         word);
        return false;
}

bool config_check_external_id(const char *word, char **msg)
{
        if (sts_external_id_valid(word))
                return true;
        *msg = strdup("not an external id (2..1224 of letters, digits and +=,.@:/_-)");
        return false;
}

bool config_check_target_kms_key(const char *word, char **msg)
{
        const char *rest = account_part(word, "ACCOUNT:REGION:KEY", msg), *colon;
        _cleanup_free_ char *region = NULL;

        if (!rest)
                return false;
        colon = strchr(rest, ':');
        region = colon ? strndup(rest, (size_t)(colon - rest)) : NULL;
        if (region && aws_region_valid(region) && colon[1])
                return true;
        *msg = strprintf("'%s' is not ACCOUNT:REGION:KEY", word);
        return false;
}

bool config_check_target_ssm_parameter(const char *word, char **msg)
{
        const char *name = account_part(word, "ACCOUNT:NAME", msg);

        if (!name)
                return false;
        /* SSM's parameter names: letters, digits and _.-/ (no ':'), 1011 at most. */
        if (*name && strlen(name) <= 1011 &&
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") ==
                    strlen(name))
                return true;
        *msg = strprintf("'%s' is not ACCOUNT:NAME (NAME: letters, digits and _.-/)", word);
        return false;
}

const char *config_target_kms_key(const struct config *c, const char *account, const char *region)
{
        size_t a = strlen(account), n = strlen(region);

        for (char **w = c->dist_target_kms_keys; w && *w; w++)
                if (strncmp(*w, account, a) == 0 && (*w)[a] == ':' &&
                    strncmp(*w + a + 1, region, n) == 0 && (*w)[a + 1 + n] == ':')
                        return *w + a + 1 + n + 1;
        return NULL;
}

const char *config_target_ssm_parameter(const struct config *c, const char *account)
{
        size_t a = strlen(account);

        for (char **w = c->dist_target_ssm_params; w && *w; w++)
                if (strncmp(*w, account, a) == 0 && (*w)[a] == ':')
                        return *w + a + 1;
        return NULL;
}
