/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus textfile of [notify] prometheus_textfile, for node_exporter's textfile
 * collector: the text exposition format (metric families with HELP and TYPE, one sample per
 * series, label values escaped), replaced atomically so that the collector never reads half a
 * file.
 */
#include "run/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/safefs.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* A label value in the exposition format: backslash, double quote and line feed escaped. */
static int add_label_value(struct buf *b, const char *v)
{
        int r = 0;

        for (const char *p = strempty(v); r >= 0 && *p; p++) {
                if (*p == '\\')
                        r = buf_append(b, "\\\\", 2);
                else if (*p == '"')
                        r = buf_append(b, "\\\"", 2);
                else if (*p == '\n')
                        r = buf_append(b, "\\n", 2);
                else
                        r = buf_append(b, p, 1);
        }
        return r;
}

/* One family's HELP and TYPE lines. */
static int family(struct buf *b, const char *name, const char *type, const char *help)
{
        return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static double seconds(usec_t t)
{
        return (double)t / (double)USEC_PER_SEC;
}

/* The families with one unlabelled sample each; a measure not taken (-1) has no family. */
static int last_run_values(struct buf *b, const struct run_state *run, usec_t end)
{
        static const char *const p = "ec2_imaged_last_run_";
        int r = family(b, "ec2_imaged_last_run_success", "gauge",
                       "Whether the last run succeeded (1) or failed (0).");

        if (r >= 0)
                r = buf_printf(b, "%ssuccess %d\n", p, run->phase == PHASE_DONE);
        if (r >= 0)
                r = family(b, "ec2_imaged_last_run_start_time_seconds", "gauge",
                           "When the last run started, in seconds since the epoch.");
        if (r >= 0)
                r = buf_printf(b, "%sstart_time_seconds %.3f\n", p, seconds(run->started));
        if (r >= 0)
                r = family(b, "ec2_imaged_last_run_end_time_seconds", "gauge",
                           "When the last run ended, in seconds since the epoch.");
        if (r >= 0)
                r = buf_printf(b, "%send_time_seconds %.3f\n", p, seconds(end));
        if (r >= 0)
                r = family(b, "ec2_imaged_last_run_duration_seconds", "gauge",
                           "How long the last run took, in seconds.");
        if (r >= 0)
                r = buf_printf(b, "%sduration_seconds %.3f\n", p,
                               end > run->started ? seconds(end - run->started) : 0.0);
        if (r >= 0 && run->freeze_window_ms >= 0)
                r = family(b, "ec2_imaged_last_run_freeze_window_seconds", "gauge",
                           "How long the last run kept filesystems frozen, in seconds.");
        if (r >= 0 && run->freeze_window_ms >= 0)
                r = buf_printf(b, "%sfreeze_window_seconds %.3f\n", p,
                               (double)run->freeze_window_ms / 1000.0);
        if (r >= 0 && run->create_call_ms >= 0)
                r = family(b, "ec2_imaged_last_run_create_image_seconds", "gauge",
                           "The CreateImage round trip of the last run, in seconds.");
        if (r >= 0 && run->create_call_ms >= 0)
                r = buf_printf(b, "%screate_image_seconds %.3f\n", p,
                               (double)run->create_call_ms / 1000.0);
        return r;
}

/* The last run's identity as labels of an info gauge (always 1). */
static int last_run_info(struct buf *b, const struct run_state *run)
{
        int r = family(b, "ec2_imaged_last_run_info", "gauge",
                       "The last run: its id, its image, its result (always 1).");

        if (r >= 0)
                r = buf_printf(b, "ec2_imaged_last_run_info{run_id=\"");
        if (r >= 0)
                r = add_label_value(b, run->run_id);
        if (r >= 0)
                r = buf_printf(b, "\",image_id=\"");
        if (r >= 0)
                r = add_label_value(b, run->image_id);
        if (r >= 0)
                r = buf_printf(b, "\",result=\"%s\"} 1\n",
                               run->phase == PHASE_DONE ? "success" : "failed");
        return r;
}

/* The runs of the history by result (the state keeps the last STATE_HISTORY_MAX). */
static int history_counts(struct buf *b, const struct state *st)
{
        unsigned n[_RUN_RESULT_MAX] = {};
        int r;

        for (size_t i = 0; i < st->n_history; i++)
                if ((unsigned)st->history[i].result < _RUN_RESULT_MAX)
                        n[st->history[i].result]++;
        r = buf_printf(b,
                       "# HELP ec2_imaged_runs Runs by result among the last %d the run state "
                       "keeps.\n# TYPE ec2_imaged_runs gauge\n",
                       STATE_HISTORY_MAX);
        for (int i = 0; r >= 0 && i < _RUN_RESULT_MAX; i++)
                r = buf_printf(b, "ec2_imaged_runs{result=\"%s\"} %u\n",
                               run_result_to_string((enum run_result)i), n[i]);
        return r;
}

int notify_metrics_render(const struct state *st, const struct run_state *run, usec_t end,
                          char **ret)
{
        struct buf b = {.max = 64 * 1024};
        int r = last_run_info(&b, run);

        if (r >= 0)
                r = last_run_values(&b, run, end);
        if (r >= 0)
                r = history_counts(&b, st);
        return buf_finish(&b, r, ret, NULL);
}

/*
 * Write text to a new file in dfd (O_EXCL, O_NOFOLLOW: nothing that was there is written
 * through) under a random name that does not end in .prom, so that the collector skips it.
 */
static int write_temp(int dfd, const char *name, const char *text, char **ret_tmp)
{
        for (int tries = 0; tries < 16; tries++) {
                _cleanup_free_ char *tmp = NULL;
                _cleanup_close_ int fd = -1;
                uint64_t rnd;
                int r;

                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return -errno;
                tmp = strprintf(".%s.%016llx.tmp", name, (unsigned long long)rnd);
                if (!tmp)
                        return -ENOMEM;
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0 && errno == EEXIST)
                        continue;
                if (fd < 0)
                        return -errno;
                r = fchmod(fd, 0644) < 0 ? -errno
                                         : 0; /* whatever the umask: the collector reads it */
                if (r >= 0)
                        r = write_all(fd, text, strlen(text));
                if (r >= 0 && fsync(fd) < 0)
                        r = -errno;
                if (r < 0) {
                        (void)unlinkat(dfd, tmp, 0);
                        return r;
                }
                *ret_tmp = TAKE_PTR(tmp);
                return 0;
        }
        return -EEXIST;
}

int notify_metrics_write(const char *path, const char *text)
{
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        const char *name;
        _cleanup_close_ int dfd = -1;
        struct safefs fs;
        int r;

        name = path ? strrchr(path, '/') : NULL;
        if (!name || path[0] != '/' || !name[1] || streq(name + 1, ".") || streq(name + 1, ".."))
                return -EINVAL;
        dir = strndup(path + 1, (size_t)(name - path - 1));
        if (!dir)
                return -ENOMEM;
        name++;
        r = safefs_open("/", "notify", false, NULL, &fs);
        if (r < 0)
                return r;
        /* Reached from / without a symlink in any component, across mounts. */
        dfd = *dir ? safefs_openat(&fs, fs.root_fd, dir, O_RDONLY | O_DIRECTORY, true)
                   : fcntl(fs.root_fd, F_DUPFD_CLOEXEC, 3);
        if (dfd == -1)
                dfd = -errno;
        safefs_close(&fs);
        if (dfd < 0)
                return dfd;
        r = write_temp(dfd, name, text, &tmp);
        if (r < 0)
                return r;
        /* rename replaces the entry itself: a symlink planted at path is replaced, not followed. */
        if (renameat(dfd, tmp, dfd, name) < 0) {
                r = -errno;
                (void)unlinkat(dfd, tmp, 0);
                return r;
        }
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}
