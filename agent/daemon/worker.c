/* SPDX-License-Identifier: Apache-2.0 */
/* Worker processes of the daemon: spawn our own binary, watch its exit, progress and output. */
#include "daemon/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define WORKER_FD        3 /* the progress socket, in the worker */
#define WORKER_CONFIG_FD 4 /* the sealed configuration snapshot, in the worker */

extern char **environ;

struct worker {
        pid_t pid;
        enum worker_job job;
        sd_event_source *child, *progress, *output;
        int progress_fd, output_fd;
        char *out;
        size_t out_len;
        bool out_truncated, exited;
        struct worker_callbacks cb;
        void *userdata;
};

pid_t worker_pid(const struct worker *w)
{
        return w->pid;
}

const char *worker_job_to_string(enum worker_job j)
{
        static const char *const names[_WORKER_JOB_MAX] = {
                [WORKER_RUN] = "run",
                [WORKER_RESUME] = "resume",
                [WORKER_FIRST_BOOT] = "first-boot",
                [WORKER_THAW] = "thaw",
        };
        return (unsigned)j < _WORKER_JOB_MAX ? names[j] : NULL;
}

enum worker_job worker_job(const struct worker *w)
{
        return w->job;
}

int worker_kill(struct worker *w, int sig)
{
        if (w->exited)
                return 0;
        return kill(w->pid, sig) < 0 ? -errno : 0;
}

struct worker *worker_free(struct worker *w)
{
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->child);
        sd_event_source_disable_unref(w->progress);
        sd_event_source_disable_unref(w->output);
        safe_close(w->progress_fd);
        safe_close(w->output_fd);
        free(w->out);
        free(w);
        return NULL;
}

/* Read what the pipe holds now; 1 at EOF. Output beyond the ceiling is counted and dropped. */
static int drain_output(struct worker *w)
{
        char buf[4096];

        for (;;) {
                ssize_t n = read(w->output_fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (n == 0)
                        return 1;
                if (w->out_len + (size_t)n > CONTROL_OUTPUT_MAX) {
                        w->out_truncated = true;
                        continue;
                }
                char *grown = realloc(w->out, w->out_len + (size_t)n + 1);
                if (!grown)
                        return -ENOMEM;
                w->out = grown;
                memcpy(w->out + w->out_len, buf, (size_t)n);
                w->out_len += (size_t)n;
                w->out[w->out_len] = '\0';
        }
}

static void drain_progress(struct worker *w)
{
        char msg[PROGRESS_MSG_MAX + 1];

        for (;;) {
                struct progress p;
                ssize_t n = recv(w->progress_fd, msg, sizeof(msg), MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                if (progress_parse(msg, (size_t)n, &p) < 0) {
                        log_debug("Ignoring a malformed progress message from worker %d",
                                  (int)w->pid);
                        continue;
                }
                if (w->cb.on_progress)
                        w->cb.on_progress(w, &p, w->userdata);
        }
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct worker *w = userdata;
        int r = drain_output(w);

        if (r != 0) /* EOF or an error: stop watching, the exit handler reads what is left */
                w->output = sd_event_source_disable_unref(w->output);
        return 0;
}

static int on_progress(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct worker *w = userdata;

        drain_progress(w);
        if (revents & (EPOLLHUP | EPOLLERR))
                w->progress = sd_event_source_disable_unref(w->progress);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        struct worker *w = userdata;
        int status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;

        w->exited = true;
        /* The process is gone, so everything it wrote is in the pipe and the socket now. */
        drain_progress(w);
        if (w->output_fd >= 0)
                (void)drain_output(w);
        if (w->out_truncated)
                log_warning("Worker %d wrote more than %u bytes; the rest was dropped", (int)w->pid,
                            CONTROL_OUTPUT_MAX);
        w->cb.on_exit(w, status, w->out ? w->out : "", w->out_len, w->userdata);
        return 0;
}

/* The worker's environment: ours, without what belongs to the daemon's service manager. */
static char **worker_env(bool config_fd)
{
        static const char *const drop[] = {
                "NOTIFY_SOCKET=", "WATCHDOG_USEC=",  "WATCHDOG_PID=",     "LISTEN_FDS=",
                "LISTEN_PID=",    "LISTEN_FDNAMES=", PROGRESS_FD_ENV "=", CONFIG_FD_ENV "="};
        char **env = NULL;

        for (char **e = environ; e && *e; e++) {
                bool skip = false;
                for (size_t i = 0; i < ELEMENTSOF(drop); i++)
                        skip = skip || startswith(*e, drop[i]);
                if (!skip && strv_push(&env, *e) < 0)
                        return strv_free(env);
        }
        if (strv_push(&env, PROGRESS_FD_ENV "=3") < 0)
                return strv_free(env);
        if (config_fd && strv_push(&env, CONFIG_FD_ENV "=4") < 0)
                return strv_free(env);
        return env;
}

/* Between fork() and execve(): async-signal-safe calls only. */
static _Noreturn void child(const char *binary, int progress_fd, int output_fd, int config_fd,
                            char **argv, char **envp)
{
        sigset_t empty;
        int null_fd;

        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        (void)setpgid(0, 0);
        sigemptyset(&empty);
        (void)sigprocmask(SIG_SETMASK, &empty, NULL);
        /* Move both fds above 3 first, so that neither dup2() below overwrites the other. */
        progress_fd = fcntl(progress_fd, F_DUPFD_CLOEXEC, 10);
        output_fd = fcntl(output_fd, F_DUPFD_CLOEXEC, 10);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (config_fd >= 0)
                config_fd = fcntl(config_fd, F_DUPFD_CLOEXEC, 10);
        if (progress_fd < 0 || output_fd < 0 || null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
            dup2(output_fd, STDOUT_FILENO) < 0 || dup2(progress_fd, WORKER_FD) < 0)
                _exit(127);
        if (config_fd >= 0 && dup2(config_fd, WORKER_CONFIG_FD) < 0)
                _exit(127);
        execve(binary, argv, envp);
        _exit(127);
}

int worker_start(sd_event *e, const char *binary, const char *config_path, int config_fd,
                 bool verbose, enum worker_job job, const struct worker_callbacks *cb,
                 void *userdata, struct worker **ret)
{
        const char *argv[8];
        int sp[2] = {-1, -1}, pp[2] = {-1, -1};
        struct worker *w = NULL;
        size_t n = 0;
        char **envp;
        pid_t pid;
        int r;

        argv[n++] = "ec2-imaged";
        if (config_path) {
                argv[n++] = "--config";
                argv[n++] = config_path;
        }
        if (verbose)
                argv[n++] = "-v";
        argv[n++] = worker_job_to_string(job);
        if (job != WORKER_THAW) /* its result on stdout, as JSON */
                argv[n++] = "--json";
        argv[n] = NULL;

        envp = worker_env(config_fd >= 0);
        if (!envp)
                return -ENOMEM;
        w = calloc(1, sizeof(*w));
        if (!w) {
                strv_free(envp);
                return -ENOMEM;
        }
        *w = (struct worker){
                .job = job, .progress_fd = -1, .output_fd = -1, .cb = *cb, .userdata = userdata};
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 ||
            pipe2(pp, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto fail;
        }
        if (pid == 0)
                child(binary ? binary : "/proc/self/exe", sp[1], pp[1], config_fd, (char **)argv,
                      envp);
        strv_free(envp);
        envp = NULL;
        (void)setpgid(pid, pid); /* also from here, so that it holds before anyone signals it */
        w->pid = pid;
        w->progress_fd = TAKE_FD(sp[0]);
        w->output_fd = TAKE_FD(pp[0]);
        safe_close(sp[1]);
        safe_close(pp[1]);
        (void)fcntl(w->output_fd, F_SETFL, O_NONBLOCK);
        r = sd_event_add_child(e, &w->child, pid, WEXITED, on_child, w);
        if (r < 0) {
                /* Unwatchable: stop it rather than leave a run nobody follows. */
                (void)kill(pid, SIGTERM);
                (void)waitpid(pid, NULL, 0);
                goto fail;
        }
        if (sd_event_add_io(e, &w->progress, w->progress_fd, EPOLLIN, on_progress, w) < 0 ||
            sd_event_add_io(e, &w->output, w->output_fd, EPOLLIN, on_output, w) < 0)
                log_warning("Cannot watch worker %d's progress; its result comes at its end",
                            (int)pid);
        log_debug("Worker %d started: %s", (int)pid, worker_job_to_string(job));
        *ret = w;
        return 0;
fail:
        strv_free(envp);
        safe_close(sp[0]);
        safe_close(sp[1]);
        safe_close(pp[0]);
        safe_close(pp[1]);
        worker_free(w);
        return r;
}
