/* SPDX-License-Identifier: Apache-2.0 */
/* Provenance in the tags of a run's images (see provenance.h). */
#include "run/provenance.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/context.h"
#include "core/imagetags.h"
#include "core/state.h"
#include "host/hooks_list.h"
#include "run/imagename.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"
#include "util/timeutil.h"

#define OS_RELEASE_MAX (64u * 1024u)
#define PATCHED_AT_MAX 64u

void provenance_done(struct provenance *p)
{
        free(p->source_image_id);
        free(p->os_id);
        free(p->os_version);
        free(p->kernel);
        free(p->patched_at);
        free(p->config_sha256);
        *p = (struct provenance){};
}

/* An os-release value: unquoted, or in '' or "" (where \ escapes the next character). */
static char *os_release_value(const char *v, size_t n)
{
        char q = n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0] ? v[0] : 0;
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        if (q) {
                v++;
                n -= 2;
        }
        for (size_t i = 0; i < n; i++) {
                if (q == '"' && v[i] == '\\' && i + 1 < n)
                        i++;
                *o++ = v[i];
        }
        *o = '\0';
        return out;
}

int os_release_parse(const char *data, size_t len, char **ret_id, char **ret_version)
{
        _cleanup_free_ char *id = NULL, *version = NULL;
        const char *p = data, *end = data + len;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
                char **dst = NULL;
                size_t skip = 0;

                if ((size_t)(eol - p) > 3 && strncmp(p, "ID=", 3) == 0)
                        dst = &id, skip = 3;
                else if ((size_t)(eol - p) > 11 && strncmp(p, "VERSION_ID=", 11) == 0)
                        dst = &version, skip = 11;
                if (dst) {
                        free(*dst);
                        *dst = os_release_value(p + skip, (size_t)(eol - p) - skip);
                        if (!*dst)
                                return -ENOMEM;
                }
                p = eol + 1;
        }
        *ret_id = TAKE_PTR(id);
        *ret_version = TAKE_PTR(version);
        return 0;
}

static int os_release(char **ret_id, char **ret_version)
{
        static const char *const paths[] = {"/etc/os-release", "/usr/lib/os-release"};
        int r = -ENOENT;

        for (size_t i = 0; i < ELEMENTSOF(paths) && r == -ENOENT; i++) {
                _cleanup_free_ char *data = NULL;
                size_t n;

                r = read_file_bounded(paths[i], OS_RELEASE_MAX, &data, &n);
                if (r >= 0)
                        return os_release_parse(data, n, ret_id, ret_version);
        }
        *ret_id = *ret_version = NULL;
        return r == -ENOENT ? 0 : r;
}

/* YYYY-MM-DDTHH:MM:SSZ, what `date -u +%Y-%m-%dT%H:%M:%SZ` writes. */
static bool is_utc_time(const char *s)
{
        static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";

        for (size_t i = 0; i < sizeof(shape) - 1; i++)
                if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
                        return false;
        return s[sizeof(shape) - 1] == '\0';
}

int patched_at_read(int state_dir_fd, char **ret)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        struct stat st;
        size_t n;
        int r;

        /* Never through a symlink, never a FIFO that would block: a regular file or nothing. */
        fd = openat(state_dir_fd, "patched-at", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return (*ret = strdup("never")) ? 0 : -ENOMEM;
        if (fd < 0 || fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode))
                r = -EBADMSG;
        else
                r = read_fd_bounded(fd, true, PATCHED_AT_MAX, &data, &n);
        if (r >= 0) {
                data[strcspn(data, "\n")] = '\0';
                if (!is_utc_time(data))
                        r = -EBADMSG;
        }
        if (r < 0) {
                log_warning_errno(r, "Cannot read patched-at in the state directory, {patched_at} "
                                     "is 'unknown': %m");
                return (*ret = strdup("unknown")) ? 0 : -ENOMEM;
        }
        *ret = TAKE_PTR(data);
        return 0;
}

/* A hook's label and contents into the digest; the hook is opened as it would be executed. */
static int hash_hook(EVP_MD_CTX *md, int dir_fd, const char *phase, const char *name)
{
        _cleanup_free_ char *label = strprintf("%s/%s", phase, name);
        _cleanup_close_ int fd = -EBADF;
        char buf[16384];
        ssize_t n;

        if (!label)
                return -ENOMEM;
        /* Vetted by hooks_list() (a symlink among them points to a vetted file). */
        fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (!EVP_DigestUpdate(md, label, strlen(label) + 1))
                return -EIO;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (!EVP_DigestUpdate(md, buf, (size_t)n))
                        return -EIO;
        return n < 0 ? -errno : 0;
}

static int hash_hooks(EVP_MD_CTX *md, const char *hooks_dir)
{
        static const char *const phases[] = {HOOK_PHASE_PRE_IMAGE, HOOK_PHASE_PRE_FREEZE,
                                             HOOK_PHASE_HOLD, HOOK_PHASE_POST_THAW,
                                             HOOK_PHASE_POST_IMAGE};
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(phases) && r >= 0; i++) {
                struct hook_list l = {};

                r = hooks_list(hooks_dir, phases[i], 0, &l);
                for (size_t j = 0; r >= 0 && j < l.n_entries; j++)
                        if (l.entries[j].state == HOOK_ENTRY_RUN)
                                r = hash_hook(md, l.dir_fd, phases[i], l.entries[j].name);
                hook_list_done(&l);
        }
        return r;
}

int config_sha256_hex(const struct config *cfg, char out[static 65])
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        int r = 0;

        if (!md)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL))
                r = -EIO;
        for (size_t i = 0; r >= 0 && i < cfg->n_sources; i++)
                if (!EVP_DigestUpdate(md, cfg->sources[i].data, cfg->sources[i].len))
                        r = -EIO;
        if (r >= 0)
                r = hash_hooks(md, cfg->hooks_dir);
        if (r >= 0 && !EVP_DigestFinal_ex(md, d, &dlen))
                r = -EIO;
        EVP_MD_CTX_free(md);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < dlen && i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", d[i]);
        return 0;
}

int provenance_gather(const struct config *cfg, const char *source_image_id, struct provenance *ret)
{
        _cleanup_close_ int dfd = -EBADF;
        struct provenance p = {};
        char sha[65] = "";
        struct utsname u;
        int r;

        r = os_release(&p.os_id, &p.os_version);
        if (r < 0)
                log_warning_errno(r,
                                  "Cannot read os-release, {os_id} and {os_version} are empty: %m");
        dfd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = dfd < 0 ? -errno : patched_at_read(dfd, &p.patched_at);
        if (r == -ENOENT) /* no state directory yet: no patch hook ever wrote in it */
                r = (p.patched_at = strdup("never")) ? 0 : -ENOMEM;
        if (r >= 0)
                r = config_sha256_hex(cfg, sha);
        if (r < 0) {
                provenance_done(&p);
                return log_error_errno(r, "Cannot gather the provenance of the image: %m");
        }
        p.kernel = strdup(uname(&u) >= 0 ? u.release : "");
        p.source_image_id = strdup(strempty(source_image_id));
        p.config_sha256 = strdup(sha);
        if (!p.kernel || !p.source_image_id || !p.config_sha256 || !p.patched_at) {
                provenance_done(&p);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        *ret = p;
        return 0;
}

/* Render one tag's template and check it against EC2's limits; appended to run->tags. */
static int render_tag(const char *key, const char *tmpl, const struct template_fields *f,
                      struct run_state *run, char **ret_error)
{
        _cleanup_free_ char *v = NULL, *err = NULL;
        size_t n;
        int r;

        r = template_render(tmpl, f, &v, &err);
        if (r < 0) {
                *ret_error = strprintf("[image] tag '%s': %s", key, strna(err));
                return r;
        }
        n = utf8_chars(v);
        if (n > 256) {
                *ret_error = strprintf("[image] tag '%s': the value renders to %zu characters, "
                                       "EC2 allows 256",
                                       key, n);
                return -E2BIG;
        }
        if (strncasecmp(v, "aws:", 4) == 0) {
                *ret_error = strprintf("[image] tag '%s': the value renders to '%s', and the aws: "
                                       "prefix is reserved by AWS",
                                       key, v);
                return -EINVAL;
        }
        r = run_state_add_tag(run, key, v);
        if (r < 0)
                *ret_error = strprintf("[image] tag '%s': %s", key, strerror(-r));
        return r;
}

int provenance_render_tags(const struct config *cfg, const struct template_fields *base,
                           const struct provenance *p, struct run_state *run, char **ret_error)
{
        static const struct {
                const char *key, *tmpl;
        } defaults[] = {
                {TAG_SOURCE_IMAGE, "{source_image_id}"},
                {TAG_OS, "{os_id} {os_version}"},
        };
        struct template_fields f = *base;
        int r = 0;

        f.provenance = true;
        f.source_image_id = p->source_image_id;
        f.os_id = p->os_id;
        f.os_version = p->os_version;
        f.kernel = p->kernel;
        f.patched_at = p->patched_at;
        f.config_sha256 = p->config_sha256;
        for (size_t i = 0; i < cfg->n_tags && r >= 0; i++)
                r = render_tag(cfg->tags[i].key, cfg->tags[i].value, &f, run, ret_error);
        for (size_t i = 0; i < ELEMENTSOF(defaults) && r >= 0; i++)
                if (!run_state_tag(run, defaults[i].key))
                        r = render_tag(defaults[i].key, defaults[i].tmpl, &f, run, ret_error);
        if (r < 0)
                run_state_clear_tags(run);
        return r;
}

int run_name_and_tags(const struct context *ctx, struct run_state *run, char **ret_error)
{
        const struct imds_identity *id = &ctx->identity;
        char host[256] = "";
        struct template_fields fields = {
                .instance_id = id->instance_id,
                .hostname = host,
                .region = ctx->region,
                .account_id = id->account_id,
                .run_id = run->run_id,
                .mode = run_mode_to_string(run->mode),
                .now = (time_t)(run->started / USEC_PER_SEC),
        };
        _cleanup_free_ char *err = NULL;
        struct provenance p = {};
        int r;

        if (gethostname(host, sizeof(host) - 1) < 0)
                snprintf(host, sizeof(host), "%s", id->instance_id);
        r = image_name_render(ctx->config->image_name, &fields, &run->image_name, &err);
        if (r < 0) {
                *ret_error = strprintf("[image] name: %s", strna(err));
                return r;
        }
        r = provenance_gather(ctx->config, id->image_id, &p);
        if (r < 0) {
                *ret_error = strprintf("cannot gather the image's provenance: %s", strerror(-r));
                return r;
        }
        r = provenance_render_tags(ctx->config, &fields, &p, run, ret_error);
        provenance_done(&p);
        return r;
}
