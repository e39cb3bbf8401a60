/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS credentials as a value: copy, wipe, and the set found in the environment. Where they come
 * from at run time (the environment, then the instance role) is creds_provider.c.
 */
#include "aws/credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/secret.h"
#include "util/str.h"

void aws_credentials_done(struct aws_credentials *c)
{
        if (!c)
                return;
        free(c->access_key_id);
        secret_free(c->secret_access_key);
        secret_free(c->session_token);
        free(c->source);
        free(c->role_name);
        *c = (struct aws_credentials){};
}

static int strdup_opt(const char *s, char **ret)
{
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int aws_credentials_copy(const struct aws_credentials *src, struct aws_credentials *dst)
{
        struct aws_credentials c = {.expiration = src->expiration};

        if (strdup_opt(src->access_key_id, &c.access_key_id) < 0 ||
            strdup_opt(src->secret_access_key, &c.secret_access_key) < 0 ||
            strdup_opt(src->session_token, &c.session_token) < 0 ||
            strdup_opt(src->source, &c.source) < 0 ||
            strdup_opt(src->role_name, &c.role_name) < 0) {
                aws_credentials_done(&c);
                return -ENOMEM;
        }
        *dst = c;
        return 0;
}

/* Values go into HTTP headers and the signature: whitespace or control bytes are mistakes. */
static bool visible_ascii(const char *s)
{
        for (; *s; s++)
                if (*s <= ' ' || *s >= 0x7f)
                        return false;
        return true;
}

int aws_credentials_from_env(struct aws_credentials *ret)
{
        const char *id = getenv_nonempty("AWS_ACCESS_KEY_ID");
        const char *secret = getenv_nonempty("AWS_SECRET_ACCESS_KEY");
        const char *token = getenv_nonempty("AWS_SESSION_TOKEN");
        struct aws_credentials c = {};

        if (!id && !secret)
                return -ENOKEY;
        /* Half a key pair is a configuration mistake; taking the role instead would hide it. */
        if (!id || !secret)
                return log_debug_errno(-EINVAL, "Only one of AWS_ACCESS_KEY_ID and "
                                                "AWS_SECRET_ACCESS_KEY is set");
        if (!visible_ascii(id) || !visible_ascii(secret) || (token && !visible_ascii(token)))
                return log_debug_errno(-EINVAL, "Malformed AWS credentials in the environment");
        if (strdup_opt(id, &c.access_key_id) < 0 || strdup_opt(secret, &c.secret_access_key) < 0 ||
            strdup_opt(token, &c.session_token) < 0 || strdup_opt("environment", &c.source) < 0) {
                aws_credentials_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}
