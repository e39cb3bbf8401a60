/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS credentials: the environment first, then the instance role through IMDS. Role credentials
 * are cached until five minutes before they expire, and a failed refresh falls back on the
 * cached set while it is still valid, so a short IMDS outage does not stop signing.
 */
#include "credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../imds.h"
#include "../util/log.h"
#include "../util/macro.h"
#include "../util/secret.h"

/* The SDKs refresh this long before Expiration, so that a request signed now still lands. */
#define REFRESH_MARGIN_USEC (5 * 60 * USEC_PER_SEC)

struct creds_provider {
        struct imds *imds; /* borrowed */
        clock_fn clock;
        void *clock_userdata;
        struct aws_credentials env;  /* what the last call found in the environment */
        struct aws_credentials role; /* cached role credentials; access_key_id NULL when none */
};

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

static const char *getenv_nonempty(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
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

int creds_provider_new(struct imds *imds, clock_fn clock, void *clock_userdata,
                       struct creds_provider **ret)
{
        struct creds_provider *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->imds = imds;
        p->clock = clock;
        p->clock_userdata = clock_userdata;
        *ret = p;
        return 0;
}

struct creds_provider *creds_provider_free(struct creds_provider *p)
{
        if (!p)
                return NULL;
        aws_credentials_done(&p->env);
        aws_credentials_done(&p->role);
        free(p);
        return NULL;
}

static usec_t provider_now(const struct creds_provider *p)
{
        return p->clock ? p->clock(p->clock_userdata) : now_usec(CLOCK_REALTIME);
}

static bool role_cached(const struct creds_provider *p)
{
        return p->role.access_key_id != NULL;
}

/* Still good for signing right now (not: far enough from expiry to skip a refresh). */
static bool role_valid_at(const struct creds_provider *p, usec_t now)
{
        return role_cached(p) && (p->role.expiration == 0 || now < p->role.expiration);
}

static bool role_fresh_at(const struct creds_provider *p, usec_t now)
{
        return role_cached(p) &&
               (p->role.expiration == 0 || (p->role.expiration > REFRESH_MARGIN_USEC &&
                                            now < p->role.expiration - REFRESH_MARGIN_USEC));
}

int creds_provider_get(struct creds_provider *p, const struct aws_credentials **ret)
{
        struct aws_credentials c;
        usec_t now;
        int r;

        r = aws_credentials_from_env(&c);
        if (r >= 0) {
                aws_credentials_done(&p->env);
                p->env = c;
                *ret = &p->env;
                return 0;
        }
        if (r != -ENOKEY)
                return r;
        if (!p->imds)
                return -ENOKEY;

        now = provider_now(p);
        if (role_fresh_at(p, now)) {
                *ret = &p->role;
                return 0;
        }
        r = imds_role_credentials(p->imds, &c);
        if (r >= 0) {
                aws_credentials_done(&p->role);
                p->role = c;
                *ret = &p->role;
                return 0;
        }
        if (role_valid_at(p, now)) {
                /* The caller decides whether a stale-but-valid set is worth a warning. */
                log_debug_errno(r, "Refreshing role credentials failed, keeping the current "
                                   "ones until they expire: %m");
                *ret = &p->role;
                return 0;
        }
        aws_credentials_done(&p->role);
        if (r == -ENOENT || r == -ENODEV)
                return -ENOKEY;
        return r;
}

void creds_provider_invalidate(struct creds_provider *p)
{
        if (p)
                aws_credentials_done(&p->role);
}
