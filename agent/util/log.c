/* SPDX-License-Identifier: Apache-2.0 */
/* Logging backend: formats a record once and sends it to stderr or journald, or holds it. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#define LOG_LINE_MAX   4096
#define LOG_HOLD_MAX   (256u * 1024u) /* bytes of held records; beyond that we count drops */
#define LOG_FIELDS_MAX 8

static int max_level = LOG_INFO;
static enum log_target target = LOG_TARGET_AUTO;
static bool held;

struct held_record {
        int level;
        char *fields;
        char *message;
};

static struct held_record *held_records;
static size_t n_held, held_bytes, held_dropped;

static struct {
        char name[32];
        char *value;
} context[LOG_FIELDS_MAX];

void log_set_max_level(int level)
{
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

void log_set_target(enum log_target t)
{
        target = t;
}

int log_context_set(const char *field, const char *value)
{
        size_t free_slot = LOG_FIELDS_MAX;

        if (strlen(field) >= sizeof(context[0].name))
                return -EINVAL;
        for (size_t i = 0; i < LOG_FIELDS_MAX; i++) {
                if (context[i].name[0] == '\0') {
                        if (free_slot == LOG_FIELDS_MAX)
                                free_slot = i;
                        continue;
                }
                if (!streq(context[i].name, field))
                        continue;
                free(context[i].value);
                context[i].value = NULL;
                context[i].name[0] = '\0';
                free_slot = i;
                break;
        }
        if (!value)
                return 0;
        if (free_slot == LOG_FIELDS_MAX)
                return -ENOSPC;
        context[free_slot].value = strdup(value);
        if (!context[free_slot].value)
                return -ENOMEM;
        strncpy(context[free_slot].name, field, sizeof(context[0].name) - 1);
        return 0;
}

/*
 * journald connects a service's stderr to a stream whose device and inode it exports in
 * JOURNAL_STREAM; only then is the native protocol the right choice.
 */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

static void emit_journal(int level, const char *fields, const char *message)
{
        struct iovec iov[LOG_FIELDS_MAX + 16];
        char prio[16];
        char *bufs[LOG_FIELDS_MAX + 16] = {};
        size_t n = 0, nb = 0;

        snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
        iov[n++] = (struct iovec){prio, strlen(prio)};
        for (size_t i = 0; i < LOG_FIELDS_MAX; i++) {
                if (context[i].name[0] == '\0')
                        continue;
                if (asprintf(&bufs[nb], "%s=%s", context[i].name, context[i].value) < 0)
                        continue;
                iov[n++] = (struct iovec){bufs[nb], strlen(bufs[nb])};
                nb++;
        }
        /* extra fields: "KEY=value\n" lines */
        for (const char *p = fields; p && *p && n < ELEMENTSOF(iov) - 1;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                if (len > 0)
                        iov[n++] = (struct iovec){(void *)p, len};
                p += len + (nl ? 1 : 0);
        }
        if (asprintf(&bufs[nb], "MESSAGE=%s", message) >= 0) {
                iov[n++] = (struct iovec){bufs[nb], strlen(bufs[nb])};
                nb++;
        }
        sd_journal_sendv(iov, (int)n);
        for (size_t i = 0; i < nb; i++)
                free(bufs[i]);
}

static void emit(int level, const char *fields, const char *message)
{
        enum log_target t = target;

        if (t == LOG_TARGET_AUTO)
                t = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
        if (t == LOG_TARGET_JOURNAL) {
                emit_journal(level, fields, message);
                return;
        }
        fprintf(stderr, "ec2-imaged: %s\n", message);
}

static void hold_record(int level, const char *fields, const char *message)
{
        size_t len = strlen(message) + (fields ? strlen(fields) : 0);
        struct held_record *n;

        if (held_bytes + len > LOG_HOLD_MAX) {
                held_dropped++;
                return;
        }
        n = realloc(held_records, (n_held + 1) * sizeof(*n));
        if (!n) {
                held_dropped++;
                return;
        }
        held_records = n;
        held_records[n_held] = (struct held_record){
                .level = level,
                .fields = fields ? strdup(fields) : NULL,
                .message = strdup(message),
        };
        if (!held_records[n_held].message) {
                free(held_records[n_held].fields);
                held_dropped++;
                return;
        }
        n_held++;
        held_bytes += len;
}

void log_hold(bool hold)
{
        held = hold;
        if (hold)
                return;
        for (size_t i = 0; i < n_held; i++) {
                emit(held_records[i].level, held_records[i].fields, held_records[i].message);
                free(held_records[i].fields);
                free(held_records[i].message);
        }
        free(held_records);
        held_records = NULL;
        n_held = held_bytes = 0;
        if (held_dropped > 0) {
                char msg[128];
                snprintf(msg, sizeof(msg),
                         "%zu log records were dropped while filesystems were frozen",
                         held_dropped);
                emit(LOG_WARNING, NULL, msg);
                held_dropped = 0;
        }
}

bool log_is_held(void)
{
        return held;
}

int log_internal(int level, int error, const char *fields, const char *format, ...)
{
        char buf[LOG_LINE_MAX];
        va_list ap;
        int saved = errno;

        /* Let %m print the error we were given rather than whatever errno happens to hold. */
        errno = abs(error);
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (held)
                hold_record(level, fields, buf);
        else
                emit(level, fields, buf);
        errno = saved;
        return -abs(error);
}
