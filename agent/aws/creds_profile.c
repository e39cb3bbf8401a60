/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credentials from a profile of the AWS shared files, in botocore's order: a profile with
 * role_arn assumes that role with the credentials of its source_profile (whose own static keys
 * win over its role_arn, as in botocore, and which may be the profile itself when it holds keys);
 * otherwise its static keys. Every message names the file, the line and the key, never a value
 * but a role ARN or a profile name. The parsing of the files is profile_file.c's.
 */
#include "aws/creds_profile.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/creds_provider.h"
#include "aws/profile_file.h"
#include "aws/sts.h"
#include "aws/vocab.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/secret.h"
#include "util/str.h"

/* Keys that ask for a way of getting credentials that is not done here. */
static const char *const unsupported_keys[] = {
        "credential_source", "web_identity_token_file", "mfa_serial",     "credential_process",
        "sso_session",       "sso_start_url",           "sso_account_id",
};
/* Of those, the ones that change what role_arn means (the first three). */
#define N_UNSUPPORTED_WITH_ROLE 3

struct resolver {
        const struct creds_profile_config *cfg;
        char *paths[2]; /* the credentials file, the config file */
        struct profile_set set;
        const char *region;
        const char *chain[CREDS_PROFILE_MAX_CHAIN + 1]; /* the profiles whose roles are assumed */
        size_t depth;
        char *error; /* what failed, for the log */
};

static int fail(struct resolver *rs, int r, const char *path, unsigned line, const char *fmt, ...)
        _printf_(5, 6);
static int fail(struct resolver *rs, int r, const char *path, unsigned line, const char *fmt, ...)
{
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = profile_vmessage(&rs->error, path, line, fmt, ap);
        va_end(ap);
        return k < 0 ? k : r;
}

/* "~/x" and the defaults below the home directory: $HOME, else the user database's. */
static int home_path(const char *rest, char **ret)
{
        const char *home = getenv_nonempty("HOME");
        struct passwd pw, *res = NULL;
        char buf[4096];

        if (!home && getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
                home = res->pw_dir;
        if (!home)
                return -ENOENT;
        *ret = strprintf("%s/%s", home, rest);
        return *ret ? 0 : -ENOMEM;
}

static int file_path(const char *configured, const char *env, const char *leaf, char **ret)
{
        const char *p = configured ? configured : getenv_nonempty(env);

        if (!p)
                return home_path(leaf, ret);
        if (startswith(p, "~/"))
                return home_path(p + 2, ret);
        *ret = strdup(p);
        return *ret ? 0 : -ENOMEM;
}

/* A file that is missing or not a regular file counts as absent, as in botocore. */
static int load(struct resolver *rs, enum profile_file_kind kind, const char *path)
{
        _cleanup_free_ char *msg = NULL;
        char *text = NULL;
        size_t len = 0;
        struct stat st;
        int r;

        if (!path || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        r = read_file_bounded(path, PROFILE_FILE_MAX, &text, &len);
        if (r == -EFBIG)
                return fail(rs, r, NULL, 0, "%s: larger than %u bytes", path, PROFILE_FILE_MAX);
        if (r < 0)
                return fail(rs, r, NULL, 0, "Cannot read %s: %s", path, strerror(-r));
        r = profile_set_add(&rs->set, kind, path, text, len, &msg);
        secret_wipe(text, len);
        free(text);
        if (r < 0 && msg)
                return fail(rs, r, NULL, 0, "%s", msg);
        return r;
}

static int fail_value(struct resolver *rs, int r, const struct profile_value *v, const char *what)
{
        return fail(rs, r, v->path, v->line, "%s: %s", v->key, what);
}

static int fail_profile(struct resolver *rs, int r, const struct profile *p, const char *what)
{
        return fail(rs, r, p->path, p->line, "profile %s: %s", p->name, what);
}

/* A value that is set and not empty, or NULL. */
static const struct profile_value *get(const struct profile *p, const char *key)
{
        const struct profile_value *v = profile_get(p, key);

        return v && *v->value ? v : NULL;
}

static bool has_static(const struct profile *p)
{
        return get(p, "aws_access_key_id") || get(p, "aws_secret_access_key");
}

static const struct profile_value *unsupported_n(const struct profile *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (get(p, unsupported_keys[i]))
                        return get(p, unsupported_keys[i]);
        return NULL;
}

static const struct profile_value *unsupported(const struct profile *p)
{
        return unsupported_n(p, ELEMENTSOF(unsupported_keys));
}

static int dup_value(const struct profile_value *v, char **ret)
{
        *ret = v ? strdup(v->value) : NULL;
        return !v || *ret ? 0 : -ENOMEM;
}

static int static_keys(struct resolver *rs, const struct profile *p, struct aws_credentials *ret)
{
        const struct profile_value *id = get(p, "aws_access_key_id"),
                                   *secret = get(p, "aws_secret_access_key"),
                                   *token = get(p, "aws_session_token");
        _cleanup_(aws_credentials_done) struct aws_credentials c = {};

        if (!id || !secret)
                return fail_value(rs, -EINVAL, id ? id : secret,
                                  id ? "set without aws_secret_access_key"
                                     : "set without aws_access_key_id");
        if (!aws_access_key_id_valid(id->value))
                return fail_value(rs, -EINVAL, id, "malformed (16 to 128 letters, digits or _)");
        if (!aws_secret_access_key_valid(secret->value))
                return fail_value(rs, -EINVAL, secret,
                                  "malformed (visible ASCII without spaces, at most 256)");
        if (token && !aws_session_token_valid(token->value))
                return fail_value(rs, -EINVAL, token, "malformed (visible ASCII without spaces)");
        if (dup_value(id, &c.access_key_id) < 0 || dup_value(secret, &c.secret_access_key) < 0 ||
            dup_value(token, &c.session_token) < 0)
                return -ENOMEM;
        c.source = strprintf("profile:%s", p->name);
        if (!c.source)
                return -ENOMEM;
        *ret = c;
        c = (struct aws_credentials){};
        return 0;
}

static int assume(struct resolver *rs, const struct profile *p, struct aws_credentials *ret);

/* The credentials of a source profile: its static keys win over its own role_arn. */
static int source_credentials(struct resolver *rs, const struct profile *p,
                              struct aws_credentials *ret)
{
        const struct profile_value *v = unsupported(p);

        if (has_static(p))
                return static_keys(rs, p, ret);
        if (get(p, "role_arn"))
                return assume(rs, p, ret);
        if (v)
                return fail_value(rs, -EINVAL, v, "not supported by ec2-imaged");
        return fail_profile(rs, -EINVAL, p,
                            "a source_profile without credentials (aws_access_key_id and "
                            "aws_secret_access_key, or role_arn and source_profile)");
}

/* "a -> b -> last": the profiles whose roles are being assumed, then last. */
static char *chain_text(const struct resolver *rs, const char *last)
{
        struct buf b = {.max = 4096};
        char *s;

        for (size_t i = 0; i < rs->depth; i++)
                if (buf_printf(&b, "%s -> ", rs->chain[i]) < 0)
                        break;
        if (buf_printf(&b, "%s", last) < 0) {
                buf_free(&b);
                return NULL;
        }
        s = buf_steal(&b, NULL);
        return s;
}

/*
 * The source profile of p, checked against the chain so far (which ends with p); *ret NULL: p
 * is its own source, with keys of its own.
 */
static int source_profile(struct resolver *rs, const struct profile *p, const struct profile **ret)
{
        const struct profile_value *src = get(p, "source_profile");

        if (!src)
                return fail_profile(rs, -EINVAL, p, "role_arn without source_profile");
        if (streq(src->value, p->name) && has_static(p)) {
                *ret = NULL;
                return 0;
        }
        for (size_t i = 0; i < rs->depth; i++)
                if (streq(rs->chain[i], src->value)) {
                        _cleanup_free_ char *cycle = chain_text(rs, src->value);

                        return fail(rs, -ELOOP, src->path, src->line, "source_profile: a cycle: %s",
                                    cycle ? cycle : src->value);
                }
        *ret = profile_set_find(&rs->set, src->value);
        if (!*ret)
                return fail(rs, -EINVAL, src->path, src->line,
                            "source_profile: no profile %s in %s or %s", src->value, rs->paths[0],
                            rs->paths[1]);
        return 0;
}

/* AssumeRole's arguments from the profile: role_arn, role_session_name, external_id, duration. */
static int role_args(struct resolver *rs, const struct profile *p, char session[static 64],
                     struct sts_assume_role_args *ret)
{
        const struct profile_value *role = get(p, "role_arn"), *name = get(p, "role_session_name"),
                                   *ext = get(p, "external_id"), *dur = get(p, "duration_seconds");
        const struct profile_value *v = unsupported_n(p, N_UNSUPPORTED_WITH_ROLE);
        usec_t now = rs->cfg->transport.clock
                             ? rs->cfg->transport.clock(rs->cfg->transport.clock_userdata)
                             : now_usec(CLOCK_REALTIME);
        unsigned duration = 0;

        if (!sts_role_arn_valid(role->value))
                return fail(rs, -EINVAL, role->path, role->line,
                            "role_arn: %.200s is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                            role->value);
        if (v)
                return fail_value(rs, -EINVAL, v,
                                  "not supported by ec2-imaged with role_arn (use source_profile)");
        if (name && !sts_session_name_valid(name->value))
                return fail_value(rs, -EINVAL, name, "not 2 to 64 of letters, digits and +=,.@_-");
        if (ext && !sts_external_id_valid(ext->value))
                return fail_value(rs, -EINVAL, ext,
                                  "not 2 to 1224 of letters, digits and +=,.@:/_-");
        if (dur && (safe_atou(dur->value, &duration) < 0 || duration < STS_DURATION_MIN_S ||
                    duration > STS_DURATION_MAX_S))
                return fail_value(rs, -EINVAL, dur, "not a number of seconds from 900 to 43200");
        /* botocore names its sessions botocore-session-TIME; ours say who made them. */
        snprintf(session, 64, "ec2-imaged-%llu", (unsigned long long)(now / USEC_PER_SEC));
        *ret = (struct sts_assume_role_args){.role_arn = role->value,
                                             .session_name = name ? name->value : session,
                                             .external_id = ext ? ext->value : NULL,
                                             .duration_s = duration};
        return 0;
}

static int call_sts(struct resolver *rs, const struct profile *p,
                    const struct sts_assume_role_args *args, const struct aws_credentials *source,
                    struct aws_credentials *ret)
{
        const struct profile_value *role = get(p, "role_arn");
        _cleanup_(aws_error_done) struct aws_error err = {};
        struct creds_provider *signer = NULL;
        struct sts_client *sts = NULL;
        int r;

        r = creds_provider_new_static(source, &signer);
        if (r >= 0)
                r = sts_client_new(
                        &(struct sts_client_config){.region = rs->region,
                                                    .endpoint_url = rs->cfg->endpoint_url,
                                                    .transport = rs->cfg->transport},
                        signer, &sts);
        if (r >= 0)
                r = sts_assume_role(sts, args, ret, &err);
        sts_client_free(sts);
        creds_provider_free(signer);
        if (r == -EREMOTEIO)
                return fail(rs, -EACCES, role->path, role->line,
                            "role_arn: AssumeRole of %s refused: %s: %s (request %s)",
                            args->role_arn, strna(err.code), strna(err.message),
                            strna(err.request_id));
        if (r < 0)
                return fail(rs, r, role->path, role->line, "role_arn: AssumeRole of %s failed: %s",
                            args->role_arn, strerror(-r));
        return 0;
}

/* The role of p, assumed with the credentials of its source profile. */
static int assume(struct resolver *rs, const struct profile *p, struct aws_credentials *ret)
{
        _cleanup_(aws_credentials_done) struct aws_credentials source = {}, c = {};
        struct sts_assume_role_args args;
        const struct profile *src = NULL;
        char session[64];
        int r;

        r = role_args(rs, p, session, &args);
        if (r < 0)
                return r;
        if (rs->depth >= CREDS_PROFILE_MAX_CHAIN)
                return fail_profile(rs, -ELOOP, p, "more roles assumed in a row than allowed");
        rs->chain[rs->depth++] = p->name;
        r = source_profile(rs, p, &src);
        if (r >= 0)
                r = src ? source_credentials(rs, src, &source) : static_keys(rs, p, &source);
        rs->depth--;
        if (r < 0)
                return r;
        r = call_sts(rs, p, &args, &source, &c);
        if (r < 0)
                return r;
        free(c.source);
        c.source = strprintf("profile:%s", p->name);
        if (!c.source)
                return -ENOMEM;
        *ret = c;
        c = (struct aws_credentials){};
        return 0;
}

/* STS's region: the environment's, the caller's, the profile's, us-east-1. */
static int pick_region(struct resolver *rs, const struct profile *p)
{
        const struct profile_value *v = get(p, "region");
        const char *env = getenv_nonempty("AWS_REGION") ? "AWS_REGION" : "AWS_DEFAULT_REGION";

        rs->region = getenv_nonempty(env);
        if (rs->region && !aws_region_valid(rs->region))
                return fail(rs, -EINVAL, NULL, 0, "%s is not a region name", env);
        if (!rs->region)
                rs->region = rs->cfg->region;
        if (!rs->region && v) {
                if (!aws_region_valid(v->value))
                        return fail_value(rs, -EINVAL, v, "not a region name");
                rs->region = v->value;
        }
        if (!rs->region)
                rs->region = "us-east-1";
        return aws_region_valid(rs->region) ? 0 : -EINVAL;
}

static int resolve(struct resolver *rs, struct aws_credentials *ret)
{
        const struct creds_profile_config *cfg = rs->cfg;
        const char *name = cfg->profile ? cfg->profile : getenv_nonempty("AWS_PROFILE");
        const struct profile *p;
        const struct profile_value *v;
        int r;

        r = file_path(cfg->credentials_file, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials",
                      &rs->paths[0]);
        if (r >= 0)
                r = file_path(cfg->config_file, "AWS_CONFIG_FILE", ".aws/config", &rs->paths[1]);
        if (r == -ENOENT && !name)
                return -ENOKEY; /* no home directory, no default files */
        if (r < 0)
                return fail(rs, r, NULL, 0, "No home directory for the AWS shared files");
        /* The config file first: the credentials file's values win, as in botocore. */
        r = load(rs, PROFILE_FILE_CONFIG, rs->paths[1]);
        if (r >= 0)
                r = load(rs, PROFILE_FILE_CREDENTIALS, rs->paths[0]);
        if (r < 0)
                return r;
        p = profile_set_find(&rs->set, name ? name : "default");
        if (!p && !name)
                return -ENOKEY;
        if (!p)
                return fail(rs, -EINVAL, NULL, 0, "The profile %s (%s) is in neither %s nor %s",
                            name, cfg->profile ? "configured" : "AWS_PROFILE", rs->paths[0],
                            rs->paths[1]);
        r = pick_region(rs, p);
        if (r < 0)
                return r;
        v = unsupported(p);
        if (get(p, "role_arn"))
                return assume(rs, p, ret);
        if (has_static(p))
                return static_keys(rs, p, ret);
        if (v)
                return fail_value(rs, -EINVAL, v, "not supported by ec2-imaged");
        /* An implicit default without credentials (a region, say) lets the chain go on. */
        if (!name)
                return -ENOKEY;
        return fail_profile(rs, -EINVAL, p,
                            "no credentials (aws_access_key_id and aws_secret_access_key, or "
                            "role_arn and source_profile)");
}

static void resolver_done(struct resolver *rs)
{
        free(rs->paths[0]);
        free(rs->paths[1]);
        profile_set_done(&rs->set);
        free(rs->error);
}

/* Resolve once; *ret_error (may be NULL) gets the message of a failure other than -ENOKEY. */
static int resolve_once(const struct creds_profile_config *cfg, struct aws_credentials *ret,
                        char **ret_error)
{
        struct resolver rs = {.cfg = cfg};
        int r = resolve(&rs, ret);

        if (r < 0 && r != -ENOKEY && ret_error)
                *ret_error = TAKE_PTR(rs.error);
        resolver_done(&rs);
        return r;
}

int creds_profile_resolve(const struct creds_profile_config *cfg, int log_level,
                          struct aws_credentials *ret)
{
        _cleanup_free_ char *error = NULL;
        int r;

        if (!cfg || !ret)
                return -EINVAL;
        r = resolve_once(cfg, ret, &error);
        if (r < 0 && error)
                log_full_errno(log_level, r, "%s", error);
        return r;
}

int creds_profile_region(const struct creds_profile_config *cfg, char **ret)
{
        const char *name = cfg->profile ? cfg->profile : getenv_nonempty("AWS_PROFILE");
        struct resolver rs = {.cfg = cfg};
        const struct profile_value *v = NULL;
        const struct profile *p;
        int r;

        *ret = NULL;
        /* botocore reads a profile's region from the config file only. */
        r = file_path(cfg->config_file, "AWS_CONFIG_FILE", ".aws/config", &rs.paths[1]);
        if (r >= 0)
                r = load(&rs, PROFILE_FILE_CONFIG, rs.paths[1]);
        p = r >= 0 ? profile_set_find(&rs.set, name ? name : "default") : NULL;
        v = p ? get(p, "region") : NULL;
        if (v && !aws_region_valid(v->value))
                r = fail_value(&rs, -EINVAL, v, "not a region name");
        else if (v && !(*ret = strdup(v->value)))
                r = -ENOMEM;
        if (r < 0 && rs.error)
                log_error_errno(r, "%s", rs.error);
        resolver_done(&rs);
        return r == -ENOENT ? 0 : r; /* no home directory: no default file */
}

/* The shared files as the source of a provider chain: what was resolved, and until when. */
struct profile_source {
        struct creds_profile_config cfg;
        char *strings[5]; /* the copies cfg points to */
        struct aws_credentials cached;
        bool none;        /* no profile applies: the files are not read again */
        char *last_error; /* logged already */
};

/* The SDKs refresh this long before Expiration, so that a request signed now still lands. */
#define REFRESH_MARGIN_USEC (5 * 60 * USEC_PER_SEC)

static void source_free(void *userdata)
{
        struct profile_source *s = userdata;

        if (!s)
                return;
        for (size_t i = 0; i < ELEMENTSOF(s->strings); i++)
                free(s->strings[i]);
        aws_credentials_done(&s->cached);
        free(s->last_error);
        free(s);
}

static void source_invalidate(void *userdata)
{
        struct profile_source *s = userdata;

        aws_credentials_done(&s->cached);
}

static bool cached_until(const struct profile_source *s, usec_t now, usec_t margin)
{
        return s->cached.access_key_id &&
               (s->cached.expiration == 0 ||
                (s->cached.expiration > margin && now < s->cached.expiration - margin));
}

/* Log an error once: the same message again (the files unchanged) is not repeated. */
static void log_once(struct profile_source *s, int r, char **error)
{
        if (!*error || streq_ptr(*error, s->last_error)) {
                free(*error);
                *error = NULL;
                return;
        }
        log_error_errno(r, "%s", *error);
        free(s->last_error);
        s->last_error = TAKE_PTR(*error);
}

static int source_get(void *userdata, const struct aws_credentials **ret)
{
        struct profile_source *s = userdata;
        struct aws_credentials c = {};
        const struct aws_transport *t = &s->cfg.transport;
        usec_t now = t->clock ? t->clock(t->clock_userdata) : now_usec(CLOCK_REALTIME);
        char *error = NULL;
        int r;

        if (cached_until(s, now, REFRESH_MARGIN_USEC)) {
                *ret = &s->cached;
                return 0;
        }
        if (s->none)
                return -ENOKEY;
        r = resolve_once(&s->cfg, &c, &error);
        if (r == -ENOKEY) {
                s->none = true;
                return r;
        }
        if (r < 0) {
                log_once(s, r, &error);
                if (!cached_until(s, now, 0))
                        return r;
                *ret = &s->cached; /* still valid: a refresh that failed keeps it */
                return 0;
        }
        aws_credentials_done(&s->cached);
        s->cached = c;
        free(s->last_error);
        s->last_error = NULL;
        *ret = &s->cached;
        return 0;
}

int creds_profile_attach(struct creds_provider *chain, const struct creds_profile_config *cfg)
{
        const char *const from[] = {cfg->profile, cfg->credentials_file, cfg->config_file,
                                    cfg->region, cfg->endpoint_url};
        struct profile_source *s;

        if (!chain || !cfg)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cfg = *cfg;
        for (size_t i = 0; i < ELEMENTSOF(from); i++)
                if (from[i] && !(s->strings[i] = strdup(from[i]))) {
                        source_free(s);
                        return -ENOMEM;
                }
        s->cfg.profile = s->strings[0];
        s->cfg.credentials_file = s->strings[1];
        s->cfg.config_file = s->strings[2];
        s->cfg.region = s->strings[3];
        s->cfg.endpoint_url = s->strings[4];
        creds_provider_set_source(chain, &(struct creds_source){.get = source_get,
                                                                .invalidate = source_invalidate,
                                                                .free = source_free,
                                                                .userdata = s});
        return 0;
}
