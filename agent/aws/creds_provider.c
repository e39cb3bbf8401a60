/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The credentials provider chain: the environment first, then an attached source (the shared
 * files, creds_profile.c), then the instance role through IMDS. Role credentials are cached until
 * five minutes before they expire, and a failed refresh falls back on the cached set while it is
 * still valid, so a short IMDS outage does not stop signing.
 */
#include "aws/creds_provider.h"

#include <errno.h>
#include <stdlib.h>

#include "aws/imds.h"
#include "util/log.h"
#include "util/macro.h"

/* The SDKs refresh this long before Expiration, so that a request signed now still lands. */
#define REFRESH_MARGIN_USEC (5 * 60 * USEC_PER_SEC)

struct creds_provider {
        struct imds *imds; /* borrowed */
        clock_fn clock;
        void *clock_userdata;
        struct aws_credentials env;   /* what the last call found in the environment */
        struct aws_credentials role;  /* cached role credentials; access_key_id NULL when none */
        struct aws_credentials fixed; /* creds_provider_new_static(): the only source */
        struct creds_source source;   /* creds_provider_set_source(); get NULL when none */
};

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
        aws_credentials_done(&p->fixed);
        if (p->source.free)
                p->source.free(p->source.userdata);
        free(p);
        return NULL;
}

int creds_provider_new_static(const struct aws_credentials *c, struct creds_provider **ret)
{
        struct creds_provider *p;
        int r;

        if (!c || !c->access_key_id || !c->secret_access_key)
                return -EINVAL;
        r = creds_provider_new(NULL, NULL, NULL, &p);
        if (r < 0)
                return r;
        r = aws_credentials_copy(c, &p->fixed);
        if (r < 0) {
                creds_provider_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

void creds_provider_set_source(struct creds_provider *p, const struct creds_source *s)
{
        if (p->source.free)
                p->source.free(p->source.userdata);
        p->source = s ? *s : (struct creds_source){};
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

        if (p->fixed.access_key_id) {
                *ret = &p->fixed;
                return 0;
        }
        r = aws_credentials_from_env(&c);
        if (r >= 0) {
                aws_credentials_done(&p->env);
                p->env = c;
                *ret = &p->env;
                return 0;
        }
        if (r != -ENOKEY)
                return r;
        if (p->source.get) {
                r = p->source.get(p->source.userdata, ret);
                if (r != -ENOKEY)
                        return r;
        }
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
        if (!p)
                return;
        aws_credentials_done(&p->role);
        if (p->source.invalidate)
                p->source.invalidate(p->source.userdata);
}
