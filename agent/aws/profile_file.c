/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small INI reader for the AWS shared files, with botocore's rules (Python's configparser, as
 * botocore configures it): "key = value" or "key: value", keys folded to lower case, full-line
 * comments only, more indented lines continuing a value, and a section or a key twice in one file
 * an error. A file is read into a set of its own first and merged only when it parsed, so a bad
 * file leaves nothing half-added. inih is not used: its line buffer is shorter than a session
 * token.
 */
#include "aws/profile_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "util/macro.h"
#include "util/secret.h"
#include "util/str.h"

struct parser {
        enum profile_file_kind kind;
        const char *path;        /* the set's copy */
        unsigned line;           /* of the line being read, from 1 */
        struct profile_set file; /* this file's profiles; its paths stay NULL */
        char **sections;         /* names of the sections seen, for the duplicate check */
        bool in_section;         /* a section was opened (profile or not) */
        ssize_t profile;         /* index in file.profiles of the open section; -1: not a profile */
        ssize_t value; /* index of the last key's value, for continuation lines; -1: none */
        size_t key_indent;
        char *error;
};

static void profile_done(struct profile *p)
{
        for (size_t i = 0; i < p->n_values; i++) {
                free(p->values[i].key);
                secret_free(p->values[i].value);
        }
        free(p->values);
        free(p->name);
        *p = (struct profile){};
}

void profile_set_done(struct profile_set *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_profiles; i++)
                profile_done(&s->profiles[i]);
        free(s->profiles);
        strv_free(s->paths);
        *s = (struct profile_set){};
}

const struct profile *profile_set_find(const struct profile_set *s, const char *name)
{
        for (size_t i = 0; s && name && i < s->n_profiles; i++)
                if (streq(s->profiles[i].name, name))
                        return &s->profiles[i];
        return NULL;
}

const struct profile_value *profile_get(const struct profile *p, const char *key)
{
        for (size_t i = 0; p && i < p->n_values; i++)
                if (streq(p->values[i].key, key))
                        return &p->values[i];
        return NULL;
}

int profile_vmessage(char **msg, const char *path, unsigned line, const char *fmt, va_list ap)
{
        _cleanup_free_ char *what = NULL;
        char *m;

        if (vasprintf(&what, fmt, ap) < 0)
                return -ENOMEM;
        m = path ? strprintf("%s:%u: %s", path, line, what) : TAKE_PTR(what);
        if (!m)
                return -ENOMEM;
        free(*msg);
        *msg = m;
        return 0;
}

static int parse_error(struct parser *ps, const char *fmt, ...) _printf_(2, 3);
static int parse_error(struct parser *ps, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = profile_vmessage(&ps->error, ps->path, ps->line, fmt, ap);
        va_end(ap);
        return r < 0 ? r : -EINVAL;
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

/* Trim blanks at both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
        while (*n > 0 && is_blank(**s))
                (*s)++, (*n)--;
        while (*n > 0 && (is_blank((*s)[*n - 1]) || (*s)[*n - 1] == '\r'))
                (*n)--;
}

/*
 * The profile a section header names, or NULL (with 0) for a section that is no profile: in the
 * config file [default] and [profile NAME] (NAME may be in double quotes; a header of more words
 * is ignored, as botocore ignores it), in the credentials file every [NAME].
 */
static int section_profile(enum profile_file_kind kind, const char *h, size_t n, char **ret)
{
        *ret = NULL;
        if (kind == PROFILE_FILE_CONFIG && !(n == 7 && memcmp(h, "default", 7) == 0)) {
                if (n < 8 || memcmp(h, "profile", 7) != 0 || !is_blank(h[7]))
                        return 0;
                h += 8, n -= 8;
                trim(&h, &n);
                if (n >= 2 && h[0] == '"' && h[n - 1] == '"')
                        h++, n -= 2;
                else if (memchr(h, ' ', n) || memchr(h, '\t', n))
                        return 0;
                if (n == 0)
                        return 0;
        }
        *ret = strndup(h, n);
        return *ret ? 0 : -ENOMEM;
}

static int open_section(struct parser *ps, const char *s, size_t n)
{
        _cleanup_free_ char *header = NULL, *name = NULL;
        struct profile *v;
        int r;

        s++, n--; /* the brackets */
        if (n == 0 || s[n - 1] != ']')
                return parse_error(ps, "a section header without its closing ']'");
        n--;
        trim(&s, &n);
        if (n == 0)
                return parse_error(ps, "an empty section name");
        header = strndup(s, n);
        if (!header)
                return -ENOMEM;
        if (strv_contains(ps->sections, header))
                return parse_error(ps, "section [%s] appears twice in this file", header);
        r = strv_push(&ps->sections, header);
        if (r >= 0)
                r = section_profile(ps->kind, s, n, &name);
        if (r < 0)
                return r;
        ps->in_section = true;
        ps->profile = -1;
        ps->value = -1;
        if (!name)
                return 0;
        if (profile_set_find(&ps->file, name))
                return parse_error(ps, "profile %s is defined twice in this file", name);
        v = reallocarray(ps->file.profiles, ps->file.n_profiles + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        ps->file.profiles = v;
        v[ps->file.n_profiles] =
                (struct profile){.name = TAKE_PTR(name), .path = ps->path, .line = ps->line};
        ps->profile = (ssize_t)ps->file.n_profiles++;
        return 0;
}

static int add_value(struct parser *ps, const char *key, size_t klen, const char *val, size_t vlen)
{
        struct profile *p = &ps->file.profiles[ps->profile];
        struct profile_value *v;
        char *k = strndup(key, klen);

        if (!k)
                return -ENOMEM;
        for (char *c = k; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char)(*c - 'A' + 'a');
        if (profile_get(p, k)) {
                int r = parse_error(ps, "%s is set twice in profile %s", k, p->name);
                free(k);
                return r;
        }
        v = reallocarray(p->values, p->n_values + 1, sizeof(*v));
        if (!v) {
                free(k);
                return -ENOMEM;
        }
        p->values = v;
        v[p->n_values] = (struct profile_value){
                .key = k, .value = strndup(val, vlen), .path = ps->path, .line = ps->line};
        if (!v[p->n_values].value) {
                free(k);
                return -ENOMEM;
        }
        ps->value = (ssize_t)p->n_values++;
        return 0;
}

/* Join a continuation line to the last value with '\n', leaving no copy of the secret behind. */
static int continue_value(struct parser *ps, const char *s, size_t n)
{
        struct profile_value *v;
        size_t old;
        char *joined;

        if (ps->profile < 0)
                return 0; /* a value of a section that is no profile: not kept */
        v = &ps->file.profiles[ps->profile].values[ps->value];
        old = strlen(v->value);
        joined = malloc(old + 1 + n + 1);
        if (!joined)
                return -ENOMEM;
        memcpy(joined, v->value, old);
        joined[old] = '\n';
        memcpy(joined + old + 1, s, n);
        joined[old + 1 + n] = '\0';
        secret_free(v->value);
        v->value = joined;
        return 0;
}

static int key_value(struct parser *ps, const char *s, size_t n, size_t indent)
{
        const char *eq = memchr(s, '=', n), *colon = memchr(s, ':', n), *sep, *key = s, *val;
        size_t klen, vlen;

        sep = eq && (!colon || eq < colon) ? eq : colon;
        if (!sep)
                return parse_error(ps, "neither [section] nor key = value");
        if (!ps->in_section)
                return parse_error(ps, "a key before the first [section]");
        klen = (size_t)(sep - s);
        trim(&key, &klen);
        if (klen == 0)
                return parse_error(ps, "a value without a key");
        val = sep + 1;
        vlen = (size_t)(s + n - val);
        trim(&val, &vlen);
        ps->key_indent = indent;
        if (ps->profile < 0) {
                /* A section that is no profile: its values, and their continuations, are skipped.
                 */
                ps->value = 0;
                return 0;
        }
        return add_value(ps, key, klen, val, vlen);
}

static int parse_line(struct parser *ps, const char *s, size_t n)
{
        size_t indent = 0;

        while (indent < n && is_blank(s[indent]))
                indent++;
        s += indent, n -= indent;
        trim(&s, &n);
        if (n == 0) {
                ps->value = -1; /* a blank line ends a value */
                return 0;
        }
        if (s[0] == '#' || s[0] == ';')
                return 0;
        if (indent > 0 && ps->value >= 0 && indent > ps->key_indent)
                return continue_value(ps, s, n);
        if (s[0] == '[')
                return open_section(ps, s, n);
        return key_value(ps, s, n, indent);
}

/* Move the profiles of one parsed file into s: later keys replace earlier ones. */
static int merge(struct profile_set *s, struct profile_set *file)
{
        for (size_t i = 0; i < file->n_profiles; i++) {
                struct profile *from = &file->profiles[i];
                struct profile *to = (struct profile *)profile_set_find(s, from->name);

                if (!to) {
                        struct profile *v =
                                reallocarray(s->profiles, s->n_profiles + 1, sizeof(*v));
                        if (!v)
                                return -ENOMEM;
                        s->profiles = v;
                        v[s->n_profiles++] = *from;
                        *from = (struct profile){};
                        continue;
                }
                to->path = from->path;
                to->line = from->line;
                for (size_t k = 0; k < from->n_values; k++) {
                        struct profile_value *old =
                                (struct profile_value *)profile_get(to, from->values[k].key);
                        struct profile_value *v;

                        if (old) {
                                free(old->key);
                                secret_free(old->value);
                                *old = from->values[k];
                        } else {
                                v = reallocarray(to->values, to->n_values + 1, sizeof(*v));
                                if (!v)
                                        return -ENOMEM;
                                to->values = v;
                                v[to->n_values++] = from->values[k];
                        }
                        from->values[k] = (struct profile_value){};
                }
        }
        return 0;
}

static int parse_text(struct parser *ps, const char *text, size_t len)
{
        const char *p = text, *end = text + len, *nul = memchr(text, '\0', len);
        int r;

        if (nul) {
                ps->line = 1;
                for (const char *c = text; c < nul; c++)
                        ps->line += *c == '\n';
                return parse_error(ps, "a NUL byte");
        }
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

                ps->line++;
                r = parse_line(ps, p, n);
                if (r < 0)
                        return r;
                p += n + (nl ? 1 : 0);
        }
        return 0;
}

int profile_set_add(struct profile_set *s, enum profile_file_kind kind, const char *path,
                    const char *text, size_t len, char **ret_error)
{
        struct parser ps = {.kind = kind, .profile = -1, .value = -1};
        int r;

        if (!s || !path || (!text && len > 0))
                return -EINVAL;
        if (len > PROFILE_FILE_MAX) {
                if (ret_error)
                        *ret_error = strprintf("%s: larger than %u bytes", path, PROFILE_FILE_MAX);
                return -EFBIG;
        }
        r = strv_push(&s->paths, path);
        if (r < 0)
                return r;
        ps.path = s->paths[strv_length(s->paths) - 1];
        r = parse_text(&ps, text ? text : "", len);
        if (r >= 0)
                r = merge(s, &ps.file);
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(ps.error);
        free(ps.error);
        strv_free(ps.sections);
        profile_set_done(&ps.file);
        return r;
}
