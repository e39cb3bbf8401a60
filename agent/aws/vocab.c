/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The common AWS vocabulary: what the names of regions, zones, accounts, instances, images, roles
 * and credentials look like (for what IMDS and the configuration hand us), and where a setting
 * comes from (the environment before the configuration, as in the AWS SDKs). One rule each, for
 * every client.
 */
#include "aws/vocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"
#include "util/str.h"

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_lower_hex(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool is_lower_alnum_dash(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || c == '-';
}

static bool is_instance_type_char(char c)
{
        return is_lower_alnum_dash(c) || c == '.';
}

static bool is_arch_char(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_word_char(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* IAM role names: alphanumerics and +=,.@_- (the IAM API's pattern), at most 64 characters. */
static bool is_role_char(char c)
{
        return is_word_char(c) || (c != '\0' && strchr("+=,.@-", c));
}

/* Visible ASCII: what may travel in an HTTP header value without being able to end it. */
bool aws_visible_char(char c)
{
        return c > ' ' && c < 0x7f;
}

static bool valid_prefixed_hex(const char *s, const char *prefix, size_t min, size_t max)
{
        return startswith(s, prefix) && string_matches(s + strlen(prefix), min, max, is_lower_hex);
}

bool aws_instance_id_valid(const char *s)
{
        /* i-12345678 (before 2016) and i-1234567890abcdef0; allow some room for growth. */
        return valid_prefixed_hex(s, "i-", 8, 32);
}

bool aws_image_id_valid(const char *s)
{
        return valid_prefixed_hex(s, "ami-", 8, 32);
}

static bool valid_zone_name(const char *s, size_t max)
{
        /* Regions and zones: us-east-1, us-east-1a, us-west-2-lax-1a, us-east-1-wl1-bos-wlz-1. */
        return string_matches(s, 1, max, is_lower_alnum_dash) && s[0] != '-' &&
               s[strlen(s) - 1] != '-';
}

bool aws_region_valid(const char *s)
{
        return valid_zone_name(s, 32);
}

bool aws_zone_valid(const char *s)
{
        return valid_zone_name(s, 64);
}

bool aws_account_id_valid(const char *s)
{
        return string_matches(s, 12, 12, is_digit);
}

bool aws_architecture_valid(const char *s)
{
        return string_matches(s, 1, 16, is_arch_char);
}

bool aws_instance_type_valid(const char *s)
{
        return string_matches(s, 1, 32, is_instance_type_char) && strchr(s, '.');
}

bool aws_role_name_valid(const char *s)
{
        return string_matches(s, 1, 64, is_role_char);
}

bool aws_access_key_id_valid(const char *s)
{
        /* The IAM API's pattern for AccessKeyId: [\w]+, 16 to 128 characters. */
        return string_matches(s, 16, 128, is_word_char);
}

bool aws_secret_access_key_valid(const char *s)
{
        return string_matches(s, 1, 256, aws_visible_char);
}

bool aws_session_token_valid(const char *s)
{
        return string_matches(s, 1, 16384, aws_visible_char);
}

const char *aws_setting(const char *env_name, const char *configured)
{
        const char *v = getenv_nonempty(env_name);

        if (!v && configured && *configured)
                v = configured;
        return v;
}

char *aws_endpoint_resolve(const char *env_name, const char *host, const char *region,
                           const char *configured)
{
        char var[64], *s;
        const char *e;

        /* The AWS SDKs' precedence: service-specific variable, global variable, config file. */
        snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", env_name);
        e = getenv_nonempty(var);
        if (!e)
                e = aws_setting("AWS_ENDPOINT_URL", configured);
        if (e)
                return strdup(e);
        if (asprintf(&s, "https://%s.%s.amazonaws.com", host, region) < 0)
                return NULL;
        return s;
}

int aws_arn_region(const char *arn, const char *service, char **ret)
{
        _cleanup_free_ char *region = NULL, *account = NULL;
        const char *p, *q, *res;
        size_t n = service ? strlen(service) : 0;

        if (!arn || n == 0 || !startswith(arn, "arn:"))
                return -EINVAL;
        p = strchr(arn + 4, ':');
        if (!p || p == arn + 4 || strncmp(p + 1, service, n) != 0 || p[n + 1] != ':')
                return -EINVAL;
        p += n + 2;
        q = strchr(p, ':');
        res = q ? strchr(q + 1, ':') : NULL;
        if (!res || !res[1])
                return -EINVAL;
        region = strndup(p, (size_t)(q - p));
        account = strndup(q + 1, (size_t)(res - q - 1));
        if (!region || !account)
                return -ENOMEM;
        if (!aws_region_valid(region) || !aws_account_id_valid(account))
                return -EINVAL;
        *ret = TAKE_PTR(region);
        return 0;
}
