/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: stderr or journald, structured context fields, and a hold mode used while frozen. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "util/macro.h"

enum log_target {
        LOG_TARGET_AUTO, /* journald when stderr is connected to it, else stderr */
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
};

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_target(enum log_target target);

/* Context fields (RUN_ID, PHASE, ...) attached to every record until cleared with NULL. */
int log_context_set(const char *field, const char *value);

/*
 * While held, records are kept in memory (bounded) instead of being written: journald may sit on
 * a frozen root filesystem, and a write to it would block us inside the frozen window.
 */
void log_hold(bool hold);
bool log_is_held(void);

/* Returns -abs(error) when error != 0, else 0, so callers can `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *extra_fields, const char *format, ...)
        _printf_(4, 5);

#define log_full_errno(level, error, ...)                                                          \
        ({                                                                                         \
                int _l_ = (level);                                                                 \
                int _e_ = (error);                                                                 \
                (_l_ <= log_get_max_level()) ? log_internal(_l_, _e_, NULL, __VA_ARGS__)           \
                                             : -abs(_e_);                                          \
        })
#define log_full(level, ...) ((void)log_full_errno(level, 0, __VA_ARGS__))

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...)  log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)

/* A record with extra journald fields ("KEY=value\n" lines), e.g. IMAGE_ID or MESSAGE_ID. */
#define log_struct(level, fields, ...) ((void)log_internal(level, 0, fields, __VA_ARGS__))
