/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Held hooks: start the holders of hold.d under supervision, each with its end of a socket pair,
 * read their KEY=VALUE lines and READY, notice one that ends while it holds, release them all,
 * and say how each ended. The protocol is in hold.h.
 */
#include "host/hold.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/supervise.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define HOLD_LINE_MAX (HOLD_KEY_MAX + 1 + HOLD_VALUE_MAX)

/* Why a holder failed the run before its release, if it did. */
enum hold_fault {
        FAULT_NONE,
        FAULT_NOT_READY,    /* no READY within the ready timeout */
        FAULT_ENDED,        /* ended before READY */
        FAULT_CLOSED,       /* closed its descriptor before READY */
        FAULT_BAD_LINE,     /* wrote something the protocol does not know */
        FAULT_TOO_MANY,     /* more than HOLD_VALUES_MAX KEY=VALUE lines */
        FAULT_LOST,         /* ended while it held */
        FAULT_NOT_EXECUTED, /* refused, or could not be started */
};

struct holder {
        struct holder_result res;
        char *path, *label, *fields;
        char *argv[2];
        char **envp;
        struct supervised *sv;
        int fd; /* our end of the socket pair */
        char line[HOLD_LINE_MAX + 2];
        size_t len;
        bool ready;
        enum hold_fault fault;
        usec_t start, ready_at;
};

struct hold_set {
        struct holder *h;
        size_t n;
        unsigned grace_ms;
        unsigned ready_timeout_ms;
        bool released;
};

/* ---- results ---- */

static const char *const holder_end_names[_HOLDER_END_MAX] = {
        [HOLDER_RELEASED] = "released", [HOLDER_EXITED] = "exited",
        [HOLDER_KILLED] = "killed",     [HOLDER_TIMED_OUT] = "timed-out",
        [HOLDER_REFUSED] = "refused",   [HOLDER_EXEC_FAILED] = "exec-failed",
};

const char *holder_end_to_string(enum holder_end e)
{
        return (unsigned)e < _HOLDER_END_MAX ? holder_end_names[e] : NULL;
}

int holder_end_from_string(const char *s)
{
        for (int i = 0; s && i < _HOLDER_END_MAX; i++)
                if (streq(s, holder_end_names[i]))
                        return i;
        return -EINVAL;
}

void holder_result_done(struct holder_result *h)
{
        free(h->name);
        strv_free(h->values);
        free(h->message);
        *h = (struct holder_result){};
}

/* ---- the protocol ---- */

int hold_parse_line(const char *line, size_t len)
{
        const char *eq = memchr(line, '=', len);
        size_t k;

        if (len == 5 && memcmp(line, "READY", 5) == 0)
                return 1;
        if (!eq)
                return -EBADMSG;
        k = (size_t)(eq - line);
        if (k == 0 || k > HOLD_KEY_MAX || len - k - 1 > HOLD_VALUE_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < k; i++)
                if (!(line[i] == '_' || (line[i] >= '0' && line[i] <= '9') ||
                      (line[i] >= 'A' && line[i] <= 'Z') || (line[i] >= 'a' && line[i] <= 'z')))
                        return -EBADMSG;
        for (size_t i = k + 1; i < len; i++)
                if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
                        return -EBADMSG;
        return 0;
}

/* One complete line: 1 at READY, 0 when more may come, -EBADMSG (h->fault says why). */
static int take_line(struct holder *h)
{
        int r = hold_parse_line(h->line, h->len);

        if (r < 0) {
                h->fault = FAULT_BAD_LINE;
                return r;
        }
        if (r == 1) {
                h->ready = true;
                h->ready_at = now_usec(CLOCK_MONOTONIC);
                h->res.ready_ms = (long)((h->ready_at - h->start) / USEC_PER_MSEC);
                return 1;
        }
        if (strv_length(h->res.values) >= HOLD_VALUES_MAX) {
                h->fault = FAULT_TOO_MANY;
                return -EBADMSG;
        }
        h->line[h->len] = '\0';
        h->len = 0;
        return strv_push(&h->res.values, h->line) < 0 ? -ENOMEM : 0;
}

/* Read what the holder wrote: 1 at READY, 0 for more, -EPROTO (h->fault) or -ENOMEM. */
static int read_lines(struct holder *h)
{
        char b[512];
        ssize_t n;

        for (;;) {
                n = read(h->fd, b, sizeof(b));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (n == 0) {
                        h->fault = FAULT_CLOSED;
                        return -EPROTO;
                }
                for (ssize_t i = 0; i < n; i++) {
                        int r;

                        if (b[i] != '\n') {
                                if (h->len > HOLD_LINE_MAX) {
                                        h->fault = FAULT_BAD_LINE;
                                        return -EPROTO;
                                }
                                h->line[h->len++] = b[i];
                                continue;
                        }
                        r = take_line(h);
                        if (r != 0)
                                return r == -ENOMEM ? r : r > 0 ? 1 : -EPROTO;
                }
        }
}

/* ---- starting ---- */

static int start_one(struct holder *h, const struct hook_list *l, const struct hook_entry *e,
                     const struct hook_env *env, const struct hooks_opts *ho, char **reason)
{
        _cleanup_close_ int exec_fd = -1, theirs = -1;
        struct supervise_opts o;
        int sp[2], r;

        r = hook_open_vetted(l->dir_fd, e->name, ho->required_uid, &exec_fd, reason);
        if (r < 0 || *reason)
                return r;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        h->fd = fd_move_above_stdio(sp[0]);
        theirs = fd_move_above_stdio(sp[1]);
        if (h->fd < 0 || theirs < 0)
                return h->fd < 0 ? h->fd : theirs;
        if (fcntl(h->fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        h->envp = hooks_build_env(HOOK_PHASE_HOLD, env);
        h->label = strprintf("hook %s (%s)", h->res.name, HOOK_PHASE_HOLD);
        h->fields = strprintf("HOOK=%s\n", h->res.name);
        if (!h->envp || !h->label || !h->fields ||
            strv_pushf(&h->envp, "%s=%d", HOLD_READY_FD_ENV, SUPERVISE_PASS_FD) < 0)
                return -ENOMEM;
        h->argv[0] = h->path;
        o = (struct supervise_opts){
                .label = h->label,
                .name = h->res.name,
                .fields = h->fields,
                .path = h->path,
                .argv = h->argv,
                .envp = h->envp,
                .exec_fd = exec_fd,
                .pass_fd = theirs,
                .timeout_ms = HOOKS_DEFAULT_TIMEOUT_MS, /* walked only from the release on */
                .grace_ms = ho->kill_grace_ms ? ho->kill_grace_ms : HOOKS_DEFAULT_KILL_GRACE_MS,
        };
        h->start = now_usec(CLOCK_MONOTONIC);
        return supervise_start(&o, &h->sv);
}

static int start_all(struct hold_set *s, const struct hooks_opts *o, const struct hook_env *env,
                     struct hook_list *l, char **ret_message)
{
        for (size_t i = 0; i < l->n_entries; i++) {
                const struct hook_entry *e = &l->entries[i];
                struct holder *h = &s->h[s->n];
                _cleanup_free_ char *reason = NULL;
                int r;

                if (e->state != HOOK_ENTRY_RUN)
                        continue;
                *h = (struct holder){.fd = -1, .res = {.ready_ms = -1, .held_ms = -1}};
                s->n++;
                h->res.name = hook_name_escape(e->name);
                h->path = strdup(e->path);
                if (!h->res.name || !h->path)
                        return -ENOMEM;
                r = start_one(h, l, e, env, o, &reason);
                if (r < 0 || reason) {
                        h->fault = FAULT_NOT_EXECUTED;
                        h->res.end = reason ? HOLDER_REFUSED : HOLDER_EXEC_FAILED;
                        *ret_message = reason ? strprintf("hook %s (hold) refused: %s/%s %s",
                                                          h->res.name, l->dir, h->res.name, reason)
                                              : strprintf("hook %s (hold) could not be started: "
                                                          "%s",
                                                          h->res.name, strerror(-r));
                        log_error("%s", strna(*ret_message));
                        return r < 0 ? r : -EPERM;
                }
        }
        return 0;
}

int hold_start(const struct hooks_opts *o, const struct hook_env *env, struct hold_set **ret,
               char **ret_message)
{
        _cleanup_(hook_list_done) struct hook_list l = {};
        _cleanup_(hold_freep) struct hold_set *s = calloc(1, sizeof(*s));
        int r;

        *ret_message = NULL;
        if (!s)
                return -ENOMEM;
        s->grace_ms = o->kill_grace_ms ? o->kill_grace_ms : HOOKS_DEFAULT_KILL_GRACE_MS;
        r = hooks_list(o->hooks_dir, HOOK_PHASE_HOLD, o->required_uid, &l);
        if (r < 0)
                *ret_message =
                        strprintf("cannot list the held hooks in %s: %s",
                                  o->hooks_dir ? o->hooks_dir : HOOKS_DEFAULT_DIR, strerror(-r));
        else if (l.dir_refusal)
                *ret_message = strprintf("held hooks refused: %s", l.dir_refusal);
        for (size_t i = 0; r >= 0 && !*ret_message && i < l.n_entries; i++)
                if (l.entries[i].state == HOOK_ENTRY_REFUSED) {
                        _cleanup_free_ char *n = hook_name_escape(l.entries[i].name);

                        *ret_message = strprintf("hook %s (hold) refused: %s/%s %s", strna(n),
                                                 l.dir, strna(n), l.entries[i].reason);
                }
        if (*ret_message) {
                log_error("%s", *ret_message);
                return r < 0 ? r : -EPERM;
        }
        if (l.n_run > 0) {
                s->h = calloc(l.n_run, sizeof(*s->h));
                if (!s->h)
                        return -ENOMEM;
                r = start_all(s, o, env, &l, ret_message);
                if (r < 0)
                        return r; /* the cleanup releases those started */
        }
        *ret = TAKE_PTR(s);
        return 0;
}

size_t hold_count(const struct hold_set *s)
{
        return s ? s->n : 0;
}

/* ---- holding ---- */

/*
 * Wait for one holder's READY until deadline: 0, or -ETIMEDOUT/-EPROTO with h->fault set. End of
 * file on its descriptor mostly means that it is exiting: that is waited for (a grace period at
 * most), so that the message says how it ended.
 */
static int wait_one(struct holder *h, usec_t deadline, unsigned grace_ms)
{
        while (!h->ready) {
                int r = supervise_wait_readable(h->sv, h->fd, deadline);

                if (r == 1)
                        r = read_lines(h);
                if (r == 0 && now_usec(CLOCK_MONOTONIC) >= deadline) {
                        h->fault = FAULT_NOT_READY;
                        return -ETIMEDOUT;
                }
                if (r == -EPROTO && h->fault == FAULT_CLOSED &&
                    supervise_wait_readable(h->sv, -1,
                                            now_usec(CLOCK_MONOTONIC) +
                                                    (usec_t)grace_ms * USEC_PER_MSEC) == -ECHILD)
                        r = -ECHILD;
                if (r == -ECHILD) {
                        h->fault = FAULT_ENDED;
                        return -EPROTO;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int hold_wait_ready(struct hold_set *s, unsigned ready_timeout_ms)
{
        s->ready_timeout_ms = ready_timeout_ms;
        for (size_t i = 0; i < s->n; i++) {
                struct holder *h = &s->h[i];
                int r;

                r = wait_one(h, h->start + (usec_t)ready_timeout_ms * USEC_PER_MSEC, s->grace_ms);
                if (r < 0)
                        return r;
                log_struct(LOG_INFO, h->fields, "%s is ready after %ld ms, holding", h->label,
                           h->res.ready_ms);
        }
        return 0;
}

const char *hold_lost(struct hold_set *s)
{
        const char *first = NULL;

        for (size_t i = 0; s && i < s->n; i++) {
                struct holder *h = &s->h[i];

                if (h->ready && h->fault == FAULT_NONE && h->sv && supervise_exited(h->sv)) {
                        h->fault = FAULT_LOST;
                        h->res.lost = true;
                }
                if (h->fault == FAULT_LOST && !first)
                        first = h->res.name;
        }
        return first;
}

/* ---- the release ---- */

/* "exited with status 3", "was killed by signal SIGKILL", ...: how the holder ended. */
static char *how_it_ended(const struct holder *h, const struct supervise_result *sr)
{
        switch (sr->end) {
        case SUPERVISE_EXITED:
                return strprintf("exited with status %d", sr->code);
        case SUPERVISE_SIGNALED:
                return strprintf("was killed by signal SIG%s", strna(sigabbrev_np(sr->signal)));
        case SUPERVISE_TIMED_OUT:
                return strprintf("was killed (SIG%s)",
                                 strna(sigabbrev_np(sr->signal ? sr->signal : SIGTERM)));
        default:
                return strdup(strna(sr->message ? sr->message : h->res.message));
        }
}

static char *fault_message(const struct holder *h, const struct hold_set *s, const char *how)
{
        const char *n = h->res.name;

        switch (h->fault) {
        case FAULT_NOT_READY:
                return strprintf("hook %s (hold) did not say READY within %u ms and %s", n,
                                 s->ready_timeout_ms, how);
        case FAULT_ENDED:
                return strprintf("hook %s (hold) %s before it said READY", n, how);
        case FAULT_CLOSED:
                return strprintf("hook %s (hold) closed %s before it said READY", n,
                                 HOLD_READY_FD_ENV);
        case FAULT_BAD_LINE:
                return strprintf("hook %s (hold) wrote a line on %s that is neither READY nor "
                                 "KEY=VALUE",
                                 n, HOLD_READY_FD_ENV);
        case FAULT_TOO_MANY:
                return strprintf("hook %s (hold) wrote more than %u KEY=VALUE lines", n,
                                 HOLD_VALUES_MAX);
        case FAULT_LOST:
                return strprintf("hook %s (hold) %s while it held, before its release", n, how);
        case FAULT_NOT_EXECUTED:
                return strdup(strna(h->res.message));
        default:
                if (h->res.end == HOLDER_TIMED_OUT)
                        return strprintf("hook %s (hold) did not exit within %u ms of its "
                                         "release and %s",
                                         n, s->grace_ms, how);
                return strprintf("hook %s (hold) %s after its release", n, how);
        }
}

/* The supervised end in a holder's terms, and its message. */
static void take_end(struct holder *h, const struct hold_set *s, const struct supervise_result *sr)
{
        _cleanup_free_ char *how = how_it_ended(h, sr);
        char *m;

        h->res.exit_status = sr->end == SUPERVISE_EXITED ? sr->code : 0;
        h->res.signal = sr->signal;
        if (sr->end == SUPERVISE_EXITED)
                h->res.end = sr->code == 0 && h->ready && h->fault == FAULT_NONE ? HOLDER_RELEASED
                                                                                 : HOLDER_EXITED;
        else if (sr->end == SUPERVISE_SIGNALED)
                h->res.end = HOLDER_KILLED;
        else if (sr->end == SUPERVISE_TIMED_OUT)
                h->res.end = HOLDER_TIMED_OUT;
        else
                h->res.end = HOLDER_EXEC_FAILED;
        if (h->res.end == HOLDER_EXEC_FAILED) {
                /* Not started, not executed, or lost track of: its own message says so. */
                h->fault = FAULT_NOT_EXECUTED;
                free(h->res.message);
                h->res.message = strdup(strna(sr->message));
        }
        if (h->res.end == HOLDER_RELEASED) {
                log_struct(LOG_INFO, h->fields, "%s held for %ld ms and was released", h->label,
                           h->res.held_ms);
                return;
        }
        m = fault_message(h, s, strna(how));
        free(h->res.message);
        h->res.message = m;
        log_struct(h->fault == FAULT_NONE ? LOG_WARNING : LOG_ERR, h->fields, "%s",
                   strna(h->res.message));
}

void hold_release(struct hold_set *s)
{
        usec_t now;

        if (!s || s->released)
                return;
        s->released = true;
        (void)hold_lost(s); /* ended before its release: what it held was lost */
        now = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < s->n; i++) {
                struct holder *h = &s->h[i];

                h->fd = safe_close(h->fd);
                if (h->ready)
                        h->res.held_ms = (long)((now - h->ready_at) / USEC_PER_MSEC);
                /* Not ready: the run is aborting; SIGTERM now, as for a hook out of time. */
                if (h->sv)
                        supervise_set_timeout(h->sv, h->ready ? s->grace_ms : 0);
        }
        /* Last started first: each start made us a subreaper on top of the earlier ones. */
        for (size_t i = s->n; i-- > 0;) {
                struct holder *h = &s->h[i];
                struct supervise_result sr = {};

                if (!h->sv)
                        continue;
                supervise_finish(TAKE_PTR(h->sv), &sr);
                take_end(h, s, &sr);
                supervise_result_done(&sr);
        }
}

const struct holder_result *hold_result(const struct hold_set *s, size_t i)
{
        return &s->h[i].res;
}

char *hold_message(const struct hold_set *s)
{
        for (size_t i = 0; s && i < s->n; i++)
                if (s->h[i].fault != FAULT_NONE)
                        return strdup(strna(s->h[i].res.message));
        return NULL;
}

struct hold_set *hold_free(struct hold_set *s)
{
        if (!s)
                return NULL;
        hold_release(s);
        for (size_t i = 0; i < s->n; i++) {
                struct holder *h = &s->h[i];

                holder_result_done(&h->res);
                safe_close(h->fd);
                strv_free(h->envp);
                free(h->path);
                free(h->label);
                free(h->fields);
        }
        free(s->h);
        free(s);
        return NULL;
}
