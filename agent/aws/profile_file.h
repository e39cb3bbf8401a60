/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS shared credentials and config files (~/.aws/credentials, ~/.aws/config) as botocore
 * reads them: INI sections of "key = value" lines, merged into one set of named profiles. What
 * the profiles mean (keys, roles, chains) is creds_profile.c's.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

/* Larger files are refused: a credentials file holds a few keys, a config file a few profiles. */
#define PROFILE_FILE_MAX (256u * 1024u)

enum profile_file_kind {
        /* ~/.aws/credentials: every section [NAME] is a profile */
        PROFILE_FILE_CREDENTIALS,
        /* ~/.aws/config: [profile NAME] and [default] are profiles; other sections are not */
        PROFILE_FILE_CONFIG,
};

struct profile_value {
        char *key;        /* lower case, as botocore folds them */
        char *value;      /* may be a secret: wiped on free, never logged */
        const char *path; /* the file it came from (the set's copy) */
        unsigned line;
};

struct profile {
        char *name;
        const char *path; /* where its section was seen last */
        unsigned line;
        struct profile_value *values;
        size_t n_values;
};

struct profile_set {
        char **paths; /* NULL-terminated: each file added */
        struct profile *profiles;
        size_t n_profiles;
};

/*
 * Parse text (the contents of path, at most PROFILE_FILE_MAX bytes) and merge its profiles into
 * s: a key of a profile that s already holds from an earlier file replaces the earlier value, so
 * adding the config file first and the credentials file second merges them as botocore does.
 * A value may continue on more indented lines (the config file's nested settings); such a value
 * holds the lines joined by '\n'. Lines starting with '#' or ';' are comments; there are no
 * comments after a value. -EINVAL for a line that is neither "[section]" nor "key = value", a key
 * before any section, a section or a key twice in one file, a NUL byte; -EFBIG for a text over the
 * ceiling. *ret_error (may be NULL) then holds "PATH:LINE: what is wrong", which never quotes a
 * value. On failure s keeps what earlier files gave it.
 */
int profile_set_add(struct profile_set *s, enum profile_file_kind kind, const char *path,
                    const char *text, size_t len, char **ret_error);
void profile_set_done(struct profile_set *s);

const struct profile *profile_set_find(const struct profile_set *s, const char *name);
/* The value of key (lower case) in p, or NULL. */
const struct profile_value *profile_get(const struct profile *p, const char *key);

/*
 * *msg = "PATH:LINE: " and the formatted text (the text alone when path is NULL), replacing and
 * freeing what *msg held: how the messages about these files are written.
 */
int profile_vmessage(char **msg, const char *path, unsigned line, const char *fmt, va_list ap)
        _printf_(4, 0);
