/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A worker: our own binary, started by the daemon for one run (`ec2-imaged --config PATH run
 * --json`, resume or first-boot) and watched on the daemon's sd-event loop: its exit through a
 * child source, its progress through a SOCK_SEQPACKET socket ($EC2_IMAGED_PROGRESS_FD), its stdout
 * (the JSON result) through a pipe with a ceiling. Its stderr is the daemon's, so its log records
 * reach the journal with their own fields.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "daemon/control.h"

struct worker;

/* What a worker is started for; its command, worker_job_to_string(), is the worker's verb. */
enum worker_job {
        WORKER_RUN,        /* `ec2-imaged run --json`: a run asked for */
        WORKER_RESUME,     /* `ec2-imaged resume --json`: the unfinished run found at the start */
        WORKER_FIRST_BOOT, /* `ec2-imaged first-boot --json`: the user-data directive */
        WORKER_THAW,       /* `ec2-imaged thaw`: what an interrupted run left frozen */
        _WORKER_JOB_MAX,
};

const char *worker_job_to_string(enum worker_job j);

struct worker_callbacks {
        void (*on_progress)(struct worker *w, const struct progress *p, void *userdata);
        /* Once, after the process was reaped and its output read; the worker may be freed here. */
        void (*on_exit)(struct worker *w, int status, const char *output, size_t len,
                        void *userdata);
};

/*
 * Start `BINARY [--config PATH] [-v] JOB [--json]` (--json for all but WORKER_THAW; BINARY NULL:
 * our own executable, /proc/self/exe) as a child in its own process group, with a clean signal
 * mask, /dev/null stdin, SIGTERM when the daemon dies, and none of the daemon's sd_notify
 * variables. CONFIG_FD (unless negative) is the configuration snapshot the worker is to use instead
 * of the files (config_snapshot_new(); $EC2_IMAGED_CONFIG_FD). The status given to on_exit is the
 * exit code, or 128 plus the signal that killed it.
 */
int worker_start(sd_event *e, const char *binary, const char *config_path, int config_fd,
                 bool verbose, enum worker_job job, const struct worker_callbacks *cb,
                 void *userdata, struct worker **ret);
pid_t worker_pid(const struct worker *w);
enum worker_job worker_job(const struct worker *w);
int worker_kill(struct worker *w, int sig);
/* Stops watching (a live process is left to its SIGTERM-on-parent-death); NULL-safe. */
struct worker *worker_free(struct worker *w);
