/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's event loop: triggers, workers, sd_notify status, reload and an orderly stop. */
#include "daemon/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "core/config.h"
#include "core/state.h"
#include "daemon/control.h"
#include "daemon/status.h"
#include "daemon/worker.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define MAX_WAITERS      16
#define STATUS_TICK_USEC (5 * USEC_PER_SEC)
#define KILL_GRACE_USEC  (5 * USEC_PER_SEC)

struct daemon {
        const struct daemon_opts *opts;
        sd_event *event;
        struct config config;
        int config_fd;     /* config as a sealed snapshot: what every worker is given */
        char *socket_path; /* as bound; a reload does not move it */
        struct control_server *control;
        sd_event_source *status_timer, *stop_timer;

        struct worker *worker; /* the run under way, if any */
        struct progress progress;
        bool have_progress, frozen;
        usec_t phase_since; /* CLOCK_MONOTONIC */
        int waiters[MAX_WAITERS];
        size_t n_waiters;

        bool ready, resume_at_start, reload_pending, stopping, killed;
        bool first_boot_next; /* after the resume at start: the first-boot worker's turn */
        char *restart_marker; /* RUNTIME_DIRECTORY/restart-pending */
        bool restarting;      /* exiting with DAEMON_EXIT_RESTART */
};

/* STATUS= for the worker under way, from its last progress message. */
static void status_worker(struct daemon *d)
{
        status_run(worker_job(d->worker), d->have_progress ? &d->progress : NULL, d->phase_since);
}

static int on_status_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        if (d->worker)
                status_worker(d);
        return sd_event_source_set_time_relative(s, STATUS_TICK_USEC);
}

static void on_worker_progress(struct worker *w, const struct progress *p, void *userdata)
{
        struct daemon *d = userdata;
        bool frozen = p->phase == PHASE_FREEZING;

        if (!d->have_progress || d->progress.phase != p->phase)
                d->phase_since = now_usec(CLOCK_MONOTONIC);
        d->progress = *p;
        d->have_progress = true;
        /* Our own records wait too while the worker's filesystems are frozen (see log_hold). */
        if (frozen != d->frozen) {
                d->frozen = frozen;
                log_hold(frozen);
        }
        status_worker(d);
        /* Only the wait is long enough to deserve a ticking clock. */
        if (d->status_timer)
                (void)sd_event_source_set_enabled(
                        d->status_timer, p->phase == PHASE_WAITING ? SD_EVENT_ON : SD_EVENT_OFF);
}

static void reply_waiters(struct daemon *d, int status, const char *out, size_t len)
{
        char head[32];

        snprintf(head, sizeof(head), "exit %d", status);
        for (size_t i = 0; i < d->n_waiters; i++) {
                int fd = d->waiters[i], r = control_reply(fd, head, strlen(head));
                for (size_t off = 0; r >= 0 && off < len; off += 4096)
                        r = control_reply(fd, out + off, len - off < 4096 ? len - off : 4096);
                if (r < 0)
                        log_warning_errno(r, "Cannot hand the run's result to a waiting "
                                             "`ec2-imaged trigger --wait`: %m");
                safe_close(fd);
        }
        d->n_waiters = 0;
}

static void reload(struct daemon *d);

static int start_worker(struct daemon *d, enum worker_job job);
/* Whether the user-data is looked into at start: a first-boot run, or a boot check's report. */
static bool first_boot_worker(const struct daemon *d)
{
        return d->config.user_data || d->config.boot_check_enable;
}

static void finish_startup(struct daemon *d);

/*
 * Whether the persisted run stands in the frozen window of this boot (a worker died there, or we
 * did). A run saved in another boot, e.g. the source instance's run in the state an image carries,
 * has nothing frozen here: thawing for it would undo someone else's freeze.
 */
static bool left_frozen(struct daemon *d)
{
        struct state st = {};
        bool frozen;

        if (state_load(d->config.state_dir, &st) < 0)
                return false;
        frozen = run_state_frozen_in_this_boot(st.current);
        state_done(&st);
        return frozen;
}

/*
 * After an upgrade of the package, its maintainer scripts do not restart the service: a restart
 * in the middle of a run would kill the run, and when the run's own patch hook did the upgrade,
 * dpkg or rpm with it. They leave RUNTIME_DIRECTORY/restart-pending and send SIGHUP instead, and
 * the daemon, the only one who knows without a race whether a run is under way, exits with
 * DAEMON_EXIT_RESTART once it is idle; the unit's RestartForceExitStatus= starts the new version.
 * Called at the idle points (a worker ended, a SIGHUP while idle, the end of the startup).
 * Returns true when the daemon is on its way out.
 */
static bool restart_if_upgraded(struct daemon *d)
{
        if (d->stopping || !d->restart_marker)
                return false;
        if (unlink(d->restart_marker) < 0) {
                if (errno != ENOENT)
                        log_warning_errno(errno, "%s: cannot remove: %m", d->restart_marker);
                return false;
        }
        log_notice("ec2-imaged was upgraded: exiting with status %d so that the service manager "
                   "starts the new version",
                   DAEMON_EXIT_RESTART);
        sd_notify(0, "STOPPING=1");
        status_notify("Restarting into the upgraded ec2-imaged");
        d->stopping = d->restarting = true;
        sd_event_exit(d->event, 0);
        return true;
}

static void on_worker_exit(struct worker *w, int status, const char *out, size_t len,
                           void *userdata)
{
        struct daemon *d = userdata;
        enum worker_job job = worker_job(w);

        if (d->frozen) {
                d->frozen = false;
                log_hold(false);
        }
        if (status == 0)
                log_info("Worker %d (%s) finished", (int)worker_pid(w), worker_job_to_string(job));
        else if (status > 128)
                log_warning("Worker %d (%s) was killed by signal %d", (int)worker_pid(w),
                            worker_job_to_string(job), status - 128);
        else
                log_warning("Worker %d (%s) exited with status %d", (int)worker_pid(w),
                            worker_job_to_string(job), status);
        reply_waiters(d, status, out, len);
        d->worker = worker_free(d->worker);
        d->have_progress = false;
        if (d->status_timer)
                (void)sd_event_source_set_enabled(d->status_timer, SD_EVENT_OFF);
        /*
         * A worker killed in the frozen window: its guard thaws, and `ec2-imaged thaw` makes
         * sure (the loop itself never touches FIFREEZE). So does the first worker at startup.
         */
        if (status > 128 && job != WORKER_THAW && left_frozen(d) &&
            start_worker(d, WORKER_THAW) >= 0)
                return;
        if (!d->ready && !d->stopping) {
                finish_startup(d);
                return;
        }
        if (d->stopping) {
                sd_event_exit(d->event, 0);
                return;
        }
        /* The new version, when it starts, goes on where this one would (first boot included). */
        if (restart_if_upgraded(d))
                return;
        /*
         * The resume at start is done (or found the run to be another instance's and filed it):
         * the start goes on as if there had been nothing to resume.
         */
        if (d->first_boot_next && status <= 128) {
                d->first_boot_next = false;
                if (start_worker(d, WORKER_FIRST_BOOT) >= 0)
                        return;
        }
        d->first_boot_next = false;
        status_idle(d->config.state_dir);
        if (d->reload_pending) {
                d->reload_pending = false;
                reload(d);
        }
}

static int start_worker(struct daemon *d, enum worker_job job)
{
        static const struct worker_callbacks cb = {on_worker_progress, on_worker_exit};
        int r;

        r = worker_start(d->event, d->opts->worker_binary,
                         d->opts->config_explicit ? d->opts->config_path : NULL, d->config_fd,
                         d->opts->verbose, job, &cb, d, &d->worker);
        if (r < 0)
                return log_error_errno(r, "Cannot start a worker for `%s`: %m",
                                       worker_job_to_string(job));
        d->have_progress = false;
        d->phase_since = now_usec(CLOCK_MONOTONIC);
        status_worker(d);
        return 0;
}

/* A run was asked for (SIGUSR1 or the control socket); client_fd < 0 when nobody waits. */
static void trigger(struct daemon *d, const char *origin, int client_fd, bool wait)
{
        char msg[CONTROL_MSG_MAX];
        int r;

        if (d->stopping) {
                log_notice("Run requested by %s refused: stopping", origin);
                snprintf(msg, sizeof(msg), "refused the daemon is stopping");
        } else if (d->worker) {
                log_notice("Run requested by %s ignored: %s %s is under way (phase %s)", origin,
                           worker_job_to_string(worker_job(d->worker)),
                           d->have_progress ? d->progress.run_id : "(starting)",
                           d->have_progress ? run_phase_to_string(d->progress.phase) : "starting");
                snprintf(msg, sizeof(msg), "busy %s %s is under way (phase %s)",
                         worker_job_to_string(worker_job(d->worker)),
                         d->have_progress ? d->progress.run_id : "(starting)",
                         d->have_progress ? run_phase_to_string(d->progress.phase) : "starting");
        } else {
                log_notice("Run requested by %s", origin);
                r = start_worker(d, WORKER_RUN);
                if (r < 0)
                        snprintf(msg, sizeof(msg), "refused cannot start a worker: %s",
                                 strerror(-r));
                else
                        snprintf(msg, sizeof(msg), "started");
        }
        if (client_fd < 0)
                return;
        r = control_reply(client_fd, msg, strlen(msg));
        if (r >= 0 && wait && streq(msg, "started") && d->n_waiters < MAX_WAITERS) {
                d->waiters[d->n_waiters++] = client_fd;
                return;
        }
        safe_close(client_fd);
}

/* `ec2-imaged trigger`, from root (the server checked): the fd is ours to answer and close. */
static void on_control_request(enum control_request req, int fd, void *userdata)
{
        trigger(userdata, "ec2-imaged trigger", fd, req == CONTROL_TRIGGER_WAIT);
}

/*
 * A reload takes effect for the next worker, which is given the accepted configuration (a sealed
 * snapshot of the files' contents) rather than the files: after a refused reload the files may
 * hold what was refused.
 */
static void reload(struct daemon *d)
{
        struct config_error e = {};
        struct config c;
        int r, fd = -1;

        r = config_load(d->opts->config_path, d->opts->config_explicit, &c, &e);
        if (r >= 0) {
                fd = config_snapshot_new(&c);
                if (fd < 0) {
                        config_done(&c);
                        log_error_errno(fd, "Reload refused, keeping the current configuration: "
                                            "cannot keep a copy of the new one: %m");
                        return;
                }
        }
        if (r < 0) {
                if (e.line > 0)
                        log_error("Reload refused, keeping the current configuration: %s:%u: %s",
                                  strna(e.file), e.line, strna(e.message));
                else
                        log_error("Reload refused, keeping the current configuration: %s: %s",
                                  strna(e.file), e.message ? e.message : strerror(-r));
                config_error_done(&e);
                return;
        }
        sd_notify(0, "RELOADING=1");
        if (!streq_ptr(c.control_socket, d->socket_path))
                log_notice("[daemon] control_socket changes at the next start; still %s",
                           d->socket_path);
        config_done(&d->config);
        d->config = c;
        safe_close(d->config_fd);
        d->config_fd = fd;
        log_notice("Configuration reloaded from %s", strna(d->config.path));
        sd_notify(0, "READY=1");
        status_idle(d->config.state_dir);
}

/* The worker did not stop in time: kill it (its guard thaws), then give up waiting. */
static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        if (!d->worker) {
                sd_event_exit(d->event, 0);
                return 0;
        }
        if (!d->killed) {
                log_error("Worker %d did not stop within %us; killing it",
                          (int)worker_pid(d->worker), d->config.stop_timeout_s);
                (void)worker_kill(d->worker, SIGKILL);
                d->killed = true;
                (void)sd_event_source_set_time_relative(s, KILL_GRACE_USEC);
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        log_error("Worker %d is still there; exiting without it (the unit's ExecStopPost thaws)",
                  (int)worker_pid(d->worker));
        sd_event_exit(d->event, 1);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct daemon *d = userdata;

        switch (si->ssi_signo) {
        case SIGUSR1:
                trigger(d, "SIGUSR1", -1, false);
                break;
        case SIGHUP:
                if (d->worker) {
                        log_notice("Reload deferred until the run under way ends");
                        d->reload_pending = true;
                } else if (!restart_if_upgraded(d)) {
                        reload(d);
                }
                break;
        case SIGTERM:
        case SIGINT:
                if (d->stopping)
                        break;
                d->stopping = true;
                sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
                if (!d->worker) {
                        sd_event_exit(d->event, 0);
                        break;
                }
                if (worker_job(d->worker) == WORKER_THAW) {
                        /* A thaw is short, and stopping it halfway would leave a freeze behind. */
                        log_notice("Stopping once the thaw under way is done");
                } else {
                        /* The worker thaws first if it is frozen; its run resumes later. */
                        log_notice("Stopping: asking worker %d to stop; its run resumes at the "
                                   "next start",
                                   (int)worker_pid(d->worker));
                        (void)worker_kill(d->worker, SIGTERM);
                }
                (void)sd_event_add_time_relative(d->event, &d->stop_timer, CLOCK_MONOTONIC,
                                                 d->config.stop_timeout_s * USEC_PER_SEC, 0,
                                                 on_stop_timeout, d);
                break;
        }
        return 0;
}

/*
 * Before READY=1: the state is loaded, and a freeze that an earlier daemon or worker left behind
 * is thawed by a first worker (`ec2-imaged thaw`); finish_startup() follows when it is done.
 */
static int startup(struct daemon *d)
{
        struct state st = {};
        bool frozen;
        int r;

        r = state_load(d->config.state_dir, &st);
        if (r < 0)
                return log_error_errno(r, "%s/state.json: cannot load the run state: %m",
                                       d->config.state_dir);
        d->resume_at_start =
                st.current && st.current->phase != PHASE_DONE && st.current->phase != PHASE_FAILED;
        frozen = run_state_frozen_in_this_boot(st.current);
        /* The worker checks whose run it is (IMDS): another instance's is filed, not resumed. */
        if (d->resume_at_start)
                log_notice("Run %s of %s is unfinished (phase %s); a worker resumes it if it is "
                           "this instance's",
                           st.current->run_id, strna(st.current->instance_id),
                           run_phase_to_string(st.current->phase));
        state_done(&st);
        if (frozen) {
                log_notice("The last run stopped in the frozen window; thawing first");
                r = start_worker(d, WORKER_THAW);
                if (r < 0)
                        return r;
                return 0;
        }
        finish_startup(d);
        return 0;
}

static void finish_startup(struct daemon *d)
{
        d->ready = true;
        sd_notify(0, "READY=1");
        status_idle(d->config.state_dir);
        log_info("Ready; runs start on SIGUSR1 or `ec2-imaged trigger` (%s)", d->socket_path);
        /* Upgraded while this daemon was starting: the next one resumes what this one would. */
        if (restart_if_upgraded(d))
                return;
        if (d->resume_at_start) {
                bool started = start_worker(d, WORKER_RESUME) >= 0;
                d->first_boot_next = started && first_boot_worker(d);
        } else if (first_boot_worker(d))
                (void)start_worker(d, WORKER_FIRST_BOOT);
}

/* systemd sets RUNTIME_DIRECTORY for RuntimeDirectory= (a ':'-separated list; ours is first). */
static char *restart_marker_path(void)
{
        const char *dir = getenv("RUNTIME_DIRECTORY");
        size_t n;

        if (!dir || !*dir)
                dir = DAEMON_RUNTIME_DIR;
        n = strcspn(dir, ":");
        return strprintf("%.*s/" DAEMON_RESTART_MARKER, (int)n, dir);
}

static int setup(struct daemon *d)
{
        static const int sigs[] = {SIGUSR1, SIGHUP, SIGTERM, SIGINT};
        sigset_t mask;
        int r;

        /* Signals arrive through signalfd, children through pidfds: block them all first. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaddset(&mask, sigs[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        r = sd_event_new(&d->event);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                r = sd_event_add_signal(d->event, NULL, sigs[i], on_signal, d);
                if (r < 0)
                        return r;
        }
        r = sd_event_add_time_relative(d->event, &d->status_timer, CLOCK_MONOTONIC,
                                       STATUS_TICK_USEC, USEC_PER_SEC, on_status_tick, d);
        if (r < 0)
                return r;
        (void)sd_event_source_set_enabled(d->status_timer, SD_EVENT_OFF);
        d->socket_path = strdup(d->config.control_socket);
        d->restart_marker = restart_marker_path();
        if (!d->socket_path || !d->restart_marker)
                return -ENOMEM;
        r = control_server_new(d->event, d->socket_path, on_control_request, d, &d->control);
        if (r < 0)
                return log_error_errno(r, "%s: cannot listen: %m", d->socket_path);
        /* Pings at about half of WatchdogSec=, and only when the service manager asked. */
        return sd_event_set_watchdog(d->event, true);
}

int daemon_run(const struct daemon_opts *o)
{
        struct daemon d = {.opts = o, .config_fd = -1};
        struct config_error e = {};
        int r;

        r = config_load(o->config_path, o->config_explicit, &d.config, &e);
        if (r < 0) {
                log_error("%s:%u: %s", strna(e.file), e.line, e.message ? e.message : strerror(-r));
                config_error_done(&e);
                return -EINVAL;
        }
        d.config_fd = config_snapshot_new(&d.config);
        if (d.config_fd < 0) {
                r = log_error_errno(d.config_fd, "Cannot keep a copy of the configuration: %m");
                config_done(&d.config);
                return r;
        }
        r = setup(&d);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the event loop: %m");
                goto out;
        }
        r = startup(&d);
        if (r < 0)
                goto out;
        r = sd_event_loop(d.event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        else if (r > 0)
                r = -ETIMEDOUT;
out:
        if (!d.stopping)
                sd_notify(0, "STOPPING=1");
        if (d.worker) /* only when the loop failed or the worker would not die */
                (void)worker_kill(d.worker, SIGKILL);
        reply_waiters(&d, 1, "", 0);
        d.worker = worker_free(d.worker);
        d.control = control_server_free(d.control);
        sd_event_source_disable_unref(d.status_timer);
        sd_event_source_disable_unref(d.stop_timer);
        sd_event_unref(d.event);
        free(d.socket_path);
        free(d.restart_marker);
        safe_close(d.config_fd);
        config_done(&d.config);
        if (d.frozen)
                log_hold(false);
        log_info("Stopped");
        if (r < 0)
                return r;
        return d.restarting ? DAEMON_EXIT_RESTART : 0;
}

int daemon_exec_helper(const struct daemon_opts *o)
{
        char self[4096], helper[4096 + sizeof(DAEMON_HELPER_NAME)];
        const char *argv[8];
        ssize_t n;
        size_t k = 0;
        char *slash;

        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0 || (size_t)n >= sizeof(self) - 1)
                return -ENOENT;
        self[n] = '\0';
        argv[k++] = DAEMON_HELPER_NAME;
        argv[k++] = "--binary";
        argv[k++] = self;
        if (o->config_explicit) {
                argv[k++] = "--config";
                argv[k++] = o->config_path;
        }
        if (o->verbose)
                argv[k++] = "-v";
        argv[k] = NULL;
        snprintf(helper, sizeof(helper), "%s", self);
        slash = strrchr(helper, '/');
        if (slash) {
                snprintf(slash + 1, sizeof(helper) - (size_t)(slash + 1 - helper), "%s",
                         DAEMON_HELPER_NAME);
                execv(helper, (char **)argv);
        }
        execv(DAEMON_LIBEXEC_DIR "/" DAEMON_HELPER_NAME, (char **)argv);
        return -errno;
}
