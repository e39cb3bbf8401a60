/* SPDX-License-Identifier: Apache-2.0 */
/*
 * freeze_probe: freeze loop-mounted scratch filesystems with agent/host/freeze.c and report on
 * stdout, one JSON line per step. Used by tests/integration/test_freeze.py.
 *
 *   freeze_probe --timeout-ms T [--hold-ms H | --hold-stdin | --hang] [--no-thaw]
 *                [--crash segv|bus|abort|ill|fpe] [--sigterm-handler] [--raw] [--debug] MOUNT...
 *   freeze_probe --thaw-all MOUNT...
 *
 * Freezes the MOUNTs (selected with freeze_select() unless --raw hands them to the set as they
 * are), prints {"frozen": [...], "guard_pid": P}, then holds for H ms, or until a line or EOF on
 * stdin with --hold-stdin (watching the guard either way), or with --hang forever like a stuck
 * main process; then thaws and prints {"thawed": true, "window_ms": N}. --no-thaw exits without
 * thawing instead (the guard must notice). --crash dies instead, still frozen, of a write to a
 * page without access (segv), a write into a mapped empty file (bus), abort(), or raise() of SIGILL
 * or SIGFPE (which have no portable fault): freeze.c must thaw before the process is gone. With
 * --sigterm-handler, SIGTERM runs freeze_emergency_thaw() and prints {"emergency_thawed": N}.
 * --thaw-all runs freeze_thaw_all() on the MOUNTs and prints {"thawed_mounts": [...]}.
 *
 * Every MOUNT must live on a loop device: this tool refuses to freeze anything else, so a mistake
 * in a test can never freeze the machine's real filesystems.
 *
 * Exit: 0 ok, 1 freeze failed, 2 usage or refused, 3 the guard timed out or died, 4 thaw failed.
 */
#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "host/freeze.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"
#include "util/timeutil.h"

static void emit(cJSON *o)
{
        char *s = cJSON_PrintUnformatted(o);

        if (!s) {
                fprintf(stderr, "freeze_probe: out of memory\n");
                exit(2);
        }
        printf("%s\n", s);
        fflush(stdout);
        free(s);
        cJSON_Delete(o);
}

static cJSON *string_array(char *const *v)
{
        cJSON *a = cJSON_CreateArray();

        for (size_t i = 0; v && v[i]; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
        return a;
}

static int fail(int code, const char *what, int r)
{
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "error", what);
        cJSON_AddStringToObject(o, "strerror", strerror(-r));
        cJSON_AddNumberToObject(o, "errno", -r);
        emit(o);
        return code;
}

/* Loop devices have a loop/ directory in sysfs; nothing else may be frozen by this tool. */
static bool on_loop_device(const char *path)
{
        char sys[128];
        struct stat st;

        if (stat(path, &st) < 0)
                return false;
        snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/loop", major(st.st_dev), minor(st.st_dev));
        return access(sys, F_OK) == 0;
}

static void on_sigterm(int sig)
{
        char buf[64] = "{\"emergency_thawed\": ";
        size_t len = strlen(buf);
        char digits[16];
        int n = freeze_emergency_thaw(), k = 0;

        do
                digits[k++] = (char)('0' + n % 10);
        while ((n /= 10) > 0 && k < (int)sizeof(digits));
        while (k > 0)
                buf[len++] = digits[--k];
        buf[len++] = '}';
        buf[len++] = '\n';
        (void)!write(STDOUT_FILENO, buf, len);
        _exit(128 + sig);
}

/* Hold for hold_ms (or until stdin has a line or EOF), reacting at once to the guard's socket. */
static int hold(struct freeze_set *s, unsigned hold_ms, bool until_stdin)
{
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + (usec_t)hold_ms * USEC_PER_MSEC;

        for (;;) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                struct pollfd p[2] = {
                        {.fd = freeze_set_guard_fd(s), .events = POLLIN},
                        {.fd = until_stdin ? STDIN_FILENO : -1, .events = POLLIN},
                };
                int r;

                if (!until_stdin && now >= deadline)
                        return 0;
                r = poll(p, 2, until_stdin ? -1 : (int)((deadline - now + 999) / USEC_PER_MSEC));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                if (p[0].revents) {
                        r = freeze_set_check(s);
                        if (r < 0)
                                return r;
                }
                if (p[1].revents) {
                        char c;

                        if (read(STDIN_FILENO, &c, 1) <= 0 || c == '\n')
                                return 0;
                }
        }
}

/* Die of KIND while frozen (see --crash). */
static _Noreturn void crash(const char *kind)
{
        if (streq(kind, "segv")) {
                /* A page without access rather than NULL, which UBSan would stop at first. */
                volatile char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

                if (p != MAP_FAILED)
                        p[0] = 1;
        } else if (streq(kind, "bus")) {
                int fd = memfd_create("freeze_probe-bus", MFD_CLOEXEC);
                volatile char *p = MAP_FAILED;

                if (fd >= 0)
                        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p != MAP_FAILED)
                        p[0] = 1; /* the file is empty: no page behind the mapping */
        } else if (streq(kind, "abort")) {
                abort();
        } else if (streq(kind, "ill")) {
                raise(SIGILL);
        } else if (streq(kind, "fpe")) {
                raise(SIGFPE);
        }
        fprintf(stderr, "freeze_probe: --crash %s did not kill us\n", kind);
        _exit(5);
}

static int thaw_all(char **mounts)
{
        char **thawed = NULL;
        cJSON *o;
        int r;

        r = freeze_thaw_all((const char *const *)mounts, NULL, &thawed);
        if (r < 0)
                return fail(1, "thaw-all failed", r);
        o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "thawed_mounts", string_array(thawed));
        cJSON_AddNumberToObject(o, "count", r);
        emit(o);
        strv_free(thawed);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"timeout-ms", required_argument, NULL, 't'},
                {"hold-ms", required_argument, NULL, 'H'},
                {"hold-stdin", no_argument, NULL, 'i'},
                {"hang", no_argument, NULL, 'g'},
                {"no-thaw", no_argument, NULL, 'n'},
                {"sigterm-handler", no_argument, NULL, 's'},
                {"raw", no_argument, NULL, 'r'},
                {"thaw-all", no_argument, NULL, 'a'},
                {"debug", no_argument, NULL, 'd'},
                {"crash", required_argument, NULL, 'c'},
                {},
        };
        unsigned timeout_ms = 0, hold_ms = 0;
        const char *crash_kind = NULL;
        bool hold_stdin = false, hang = false, no_thaw = false, handler = false, raw = false,
             thaw_all_mode = false;
        _cleanup_(freeze_set_freep) struct freeze_set *s = NULL;
        char **mounts = NULL;
        cJSON *o;
        int c, r;

        log_set_target(LOG_TARGET_STDERR);
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 't':
                        if (safe_atou(optarg, &timeout_ms) < 0)
                                return fail(2, "bad --timeout-ms", -EINVAL);
                        break;
                case 'H':
                        if (safe_atou(optarg, &hold_ms) < 0)
                                return fail(2, "bad --hold-ms", -EINVAL);
                        break;
                case 'i':
                        hold_stdin = true;
                        break;
                case 'g':
                        hang = true;
                        break;
                case 'n':
                        no_thaw = true;
                        break;
                case 's':
                        handler = true;
                        break;
                case 'r':
                        raw = true;
                        break;
                case 'a':
                        thaw_all_mode = true;
                        break;
                case 'd':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'c':
                        crash_kind = optarg;
                        if (!streq(optarg, "segv") && !streq(optarg, "bus") &&
                            !streq(optarg, "abort") && !streq(optarg, "ill") &&
                            !streq(optarg, "fpe"))
                                return fail(2, "bad --crash", -EINVAL);
                        break;
                default:
                        return fail(2, "usage: see the comment at the top of freeze_probe.c",
                                    -EINVAL);
                }
        }
        if (optind >= argc || (!thaw_all_mode && timeout_ms == 0))
                return fail(2, "usage: freeze_probe --timeout-ms T [...] MOUNT...", -EINVAL);
        for (int i = optind; i < argc; i++)
                if (!on_loop_device(argv[i]))
                        return fail(2, "refusing a mount that is not on a loop device", -EPERM);
        if (thaw_all_mode)
                return thaw_all(argv + optind);

        if (raw) {
                r = freeze_set_new(argv + optind, timeout_ms, &s);
        } else {
                r = freeze_select((const char *const *)(argv + optind), NULL, &mounts);
                if (r < 0)
                        return fail(1, "mount selection failed", r);
                for (size_t i = 0; mounts[i]; i++)
                        if (!on_loop_device(mounts[i]))
                                return fail(2, "refusing a mount not on a loop device", -EPERM);
                r = freeze_set_new(mounts, timeout_ms, &s);
                strv_free(mounts);
        }
        if (r < 0)
                return fail(1, "freeze_set_new failed", r);
        if (handler) {
                struct sigaction sa = {.sa_handler = on_sigterm};

                sigemptyset(&sa.sa_mask);
                sigaction(SIGTERM, &sa, NULL);
        }

        r = freeze_set_freeze(s);
        if (r < 0)
                return fail(1, "freeze failed", r);
        o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "frozen", string_array(freeze_set_mounts(s)));
        cJSON_AddNumberToObject(o, "n_frozen", (double)freeze_set_n_frozen(s));
        cJSON_AddNumberToObject(o, "guard_pid", freeze_set_guard_pid(s));
        emit(o);

        if (hang)
                for (;;)
                        pause();
        r = hold(s, hold_ms, hold_stdin);
        if (r < 0) {
                o = cJSON_CreateObject();
                cJSON_AddBoolToObject(o, "thawed", !freeze_set_is_frozen(s));
                cJSON_AddStringToObject(o, "error", strerror(-r));
                cJSON_AddNumberToObject(o, "errno", -r);
                emit(o);
                return 3;
        }
        if (crash_kind)
                crash(crash_kind);
        if (no_thaw) {
                o = cJSON_CreateObject();
                cJSON_AddBoolToObject(o, "exiting", true);
                emit(o);
                _exit(0); /* no cleanup: the guard has to notice and thaw */
        }
        r = freeze_set_thaw(s);
        o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "thawed", true);
        cJSON_AddNumberToObject(o, "window_ms", (double)freeze_set_window_ms(s));
        if (r < 0) {
                cJSON_AddStringToObject(o, "error", strerror(-r));
                cJSON_AddNumberToObject(o, "errno", -r);
        }
        emit(o);
        return r < 0 ? (r == -ETIMEDOUT || r == -ECHILD ? 3 : 4) : 0;
}
