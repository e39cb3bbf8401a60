/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ec2-imaged command line: the subcommand table, option parsing and exit codes. This is the only
 * file that decides how the process exits.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cli/fsop.h"
#include "core/config.h"
#include "aws/creds_provider.h"
#include "core/context.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "run/firstboot.h"
#include "run/flow.h"
#include "run/preflight.h"
#include "core/state.h"
#include "util/json.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/timeutil.h"

/* Exit codes, documented in --help and the README. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,     /* the operation failed */
        EXIT_USAGE = 2,      /* bad command line or invalid configuration */
        EXIT_CHECK = 3,      /* `check`: a pre-flight item failed */
        EXIT_BUSY = 4,       /* another run holds the lock */
        EXIT_UNFINISHED = 5, /* `run`: an unfinished run must be resumed first */
};

struct options {
        const char *config_path;
        bool config_explicit;
        bool json;
        bool dry_run;
        bool wait;
        bool verbose;
        bool all; /* thaw --all */
        const char *mode;
};

static void help(void)
{
        printf("Usage: ec2-imaged [--config PATH] [-v] COMMAND [OPTIONS]\n"
               "\n"
               "Make an AMI of the EC2 instance this runs on, safely, while it runs.\n"
               "\n"
               "Commands:\n"
               "  whoami [--json]   Print instance id, region, account, role and credential "
               "expiry\n"
               "  check [--json]    Pre-flight: config, IMDS, credentials, DryRun CreateImage\n"
               "  run [--mode no-reboot|reboot] [--dry-run] [--json]\n"
               "                    Image this instance now and print the result\n"
               "  status [--json]   The current or last run\n"
               "  resume [--json]   Continue an unfinished run (after a crash or the reboot)\n"
               "  thaw [--all]      Thaw what an interrupted run left frozen; with --all,\n"
               "                    every filesystem [freeze] mounts names (by hand only)\n"
               "  daemon            Run as the systemd service: runs on SIGUSR1 and trigger\n"
               "  trigger [--wait] [--json]\n"
               "                    Ask the daemon for a run; with --wait, print its result\n"
               "  first-boot [--json]\n"
               "                    Run once per instance id if the user-data says\n"
               "                    #ec2-imaged: run=first-boot\n"
               "  sanitize [--list] [--dry-run] [--stash|--restore] [--only OPS]\n"
               "                    Run the shipped sanitize script ([sanitize] script)\n"
               "  patch [--dry-run] Run the shipped patch script ([patch] script)\n"
               "  fsop COMMAND ...  The sanitize hook's file operations on trees others can\n"
               "                    write (see ec2-imaged fsop --help)\n"
               "  help              This text\n"
               "  version           Print the version\n"
               "\n"
               "Options:\n"
               "  -c, --config PATH  Configuration file (default " CONFIG_DEFAULT_PATH ");\n"
               "                     drop-ins are read from PATH.d/*.conf\n"
               "  -v, --verbose      Debug logging\n"
               "  -h, --help         This text\n"
               "\n"
               "Exit codes:\n"
               "  0  success\n"
               "  1  the operation failed\n"
               "  2  bad command line or invalid configuration\n"
               "  3  check: at least one pre-flight item failed\n"
               "  4  another run is under way (run, resume, trigger)\n"
               "  5  run: an unfinished run exists; resume it first\n");
}

/*
 * A worker of the daemon is given the configuration the daemon accepted, as a sealed snapshot
 * ($EC2_IMAGED_CONFIG_FD), and uses it instead of the files, which may have changed since.
 */
static int load_snapshot(const char *fd_env, struct config *ret)
{
        struct config_error e = {};
        unsigned fd = 0;
        int r;

        r = safe_atou(fd_env, &fd);
        if (r >= 0 && fd <= STDERR_FILENO)
                r = -EBADF;
        if (r >= 0)
                r = config_load_snapshot((int)fd, ret, &e);
        if (r < 0) {
                if (e.line > 0)
                        log_error("%s:%u: %s", strna(e.file), e.line, strna(e.message));
                else
                        log_error_errno(r, "$%s=%s: not a configuration snapshot: %m",
                                        CONFIG_FD_ENV, fd_env);
        }
        config_error_done(&e);
        if (fd > STDERR_FILENO)
                (void)close((int)fd);
        return r;
}

static int load_config(const struct options *o, struct config *ret)
{
        struct config_error e = {};
        const char *fd_env = getenv(CONFIG_FD_ENV);
        int r;

        if (fd_env) {
                r = load_snapshot(fd_env, ret);
                (void)unsetenv(CONFIG_FD_ENV);
                return r;
        }
        r = config_load(o->config_path, o->config_explicit, ret, &e);
        if (r < 0) {
                if (e.line > 0)
                        log_error("%s:%u: %s", strna(e.file), e.line, strna(e.message));
                else
                        log_error("%s: %s", strna(e.file), e.message ? e.message : strerror(-r));
        }
        config_error_done(&e);
        return r;
}

static void json_print(cJSON *o)
{
        char *s = cJSON_Print(o);

        if (s)
                puts(s);
        free(s);
}

static int cmd_whoami(const struct options *o, struct context *ctx)
{
        const struct imds_identity *id = &ctx->identity;
        const struct aws_credentials *c = NULL;
        char exp[21] = "";
        int r, rc = EXIT_OK;

        r = context_load_identity(ctx);
        if (r < 0)
                return EXIT_FAILED;
        r = creds_provider_get(ctx->creds, &c);
        if (r < 0) {
                log_error_errno(r, "No AWS credentials: %m");
                rc = EXIT_FAILED;
                c = NULL;
        } else if (c->expiration > 0) {
                format_iso8601(c->expiration, exp);
        }

        if (o->json) {
                cJSON *j = cJSON_CreateObject();
                if (!j)
                        return EXIT_FAILED;
                json_add_str(j, "instance_id", id->instance_id);
                json_add_str(j, "region", id->region);
                json_add_str(j, "availability_zone", id->availability_zone);
                json_add_str(j, "account_id", id->account_id);
                json_add_str(j, "architecture", id->architecture);
                json_add_str(j, "image_id", id->image_id);
                json_add_str(j, "instance_type", id->instance_type);
                json_add_str(j, "role", c ? c->role_name : NULL);
                json_add_str(j, "credential_source", c ? c->source : NULL);
                json_add_str(j, "credential_expiration", c && *exp ? exp : NULL);
                json_add_str(j, "imds_endpoint", imds_endpoint(ctx->imds));
                json_print(j);
                cJSON_Delete(j);
                return rc;
        }
        printf("instance:    %s\n", id->instance_id);
        printf("region:      %s (%s)\n", id->region, strna(id->availability_zone));
        printf("account:     %s\n", id->account_id);
        printf("role:        %s\n", c && c->role_name ? c->role_name : "(none)");
        printf("credentials: %s\n", c ? c->source : "(none)");
        printf("expires:     %s\n", !c ? "-" : *exp ? exp : "never");
        return rc;
}

static int cmd_check(const struct options *o, struct context *ctx)
{
        struct preflight p = {};
        int r;

        r = preflight_run(ctx, &p);
        if (o->json) {
                cJSON *j = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(j, "checks");
                cJSON_AddStringToObject(j, "config", ctx->config->path);
                for (size_t i = 0; i < p.n; i++) {
                        cJSON *it = cJSON_CreateObject();
                        cJSON_AddStringToObject(it, "name", p.items[i].name);
                        cJSON_AddStringToObject(it, "result",
                                                p.items[i].result == 0   ? "ok"
                                                : p.items[i].result == 1 ? "skipped"
                                                                         : "failed");
                        json_add_str(it, "detail", p.items[i].detail);
                        cJSON_AddItemToArray(items, it);
                }
                cJSON_AddBoolToObject(j, "ok", r >= 0);
                json_print(j);
                cJSON_Delete(j);
        } else {
                printf("%-5s %-13s %s\n", "ok", "config", ctx->config->path);
                for (size_t i = 0; i < p.n; i++)
                        printf("%-5s %-13s %s\n",
                               p.items[i].result == 0   ? "ok"
                               : p.items[i].result == 1 ? "skip"
                                                        : "FAIL",
                               p.items[i].name, strna(p.items[i].detail));
                printf("%s\n", r >= 0 ? "ready: this instance can be imaged"
                                      : "NOT READY: fix the first failed item above");
        }
        preflight_done(&p);
        return r >= 0 ? EXIT_OK : EXIT_CHECK;
}

static void print_run(const struct run_state *r, char **report)
{
        static const enum run_phase order[] = {PHASE_PREFLIGHT, PHASE_PRE_IMAGE, PHASE_PRE_FREEZE,
                                               PHASE_FREEZING,  PHASE_REBOOTING, PHASE_POST_THAW,
                                               PHASE_WAITING,   PHASE_POST_IMAGE};

        for (char **l = report; l && *l; l++)
                printf("%s\n", *l);
        printf("run:          %s (%s%s)\n", r->run_id, run_mode_to_string(r->mode),
               r->dry_run ? ", dry run" : "");
        printf("phase:        %s\n", run_phase_to_string(r->phase));
        printf("image:        %s %s\n", strna(r->image_id), strna(r->image_name));
        printf("state:        %s\n", strna(r->image_state));
        printf("consistency:  %s\n", strna(consistency_to_string(r->consistency)));
        if (r->freeze_window_ms >= 0)
                printf("freeze:       %ld ms (CreateImage call %ld ms)\n", r->freeze_window_ms,
                       r->create_call_ms);
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                const struct phase_time *t = &r->times[order[i]];
                if (t->start && t->end >= t->start)
                        printf("  %-11s %llu ms\n", run_phase_to_string(order[i]),
                               (unsigned long long)((t->end - t->start) / USEC_PER_MSEC));
        }
        if (r->error)
                printf("error:        %s\n", r->error);
}

static void print_run_json(const struct run_state *r, char **report)
{
        char *text = run_state_format(r);
        cJSON *j = text ? cJSON_Parse(text) : NULL;

        free(text);
        if (!j)
                return;
        if (report) {
                cJSON *a = cJSON_AddArrayToObject(j, "dry_run_report");
                for (char **l = report; a && *l; l++)
                        cJSON_AddItemToArray(a, cJSON_CreateString(*l));
        }
        json_print(j);
        cJSON_Delete(j);
}

static int flow_exit(int r, const struct flow_result *res, const struct options *o)
{
        if (res->nothing_to_resume) {
                if (o->json) {
                        cJSON *j = cJSON_CreateObject();
                        cJSON_AddBoolToObject(j, "resumed", false);
                        if (res->inherited_run_id)
                                json_add_str(j, "inherited", res->inherited_run_id);
                        json_print(j);
                        cJSON_Delete(j);
                } else if (res->inherited_run_id)
                        printf("no unfinished run to resume (run %s came with the image of "
                               "another instance: filed as inherited)\n",
                               res->inherited_run_id);
                else
                        printf("no unfinished run to resume\n");
                return EXIT_OK;
        }
        if (res->run) {
                if (o->json)
                        print_run_json(res->run, res->dry_run_report);
                else
                        print_run(res->run, res->dry_run_report);
        }
        /*
         * Only a refusal before any run started means "busy" or "unfinished": a run that failed
         * with EBUSY (a filesystem already frozen) or EEXIST (an image of that name) failed.
         */
        if (r == -EBUSY && !res->run)
                return EXIT_BUSY;
        if (r == -EEXIST && !res->run)
                return EXIT_UNFINISHED;
        return r < 0 ? EXIT_FAILED : EXIT_OK;
}

/* Under the daemon, each phase change is reported on the socket it handed us. */
static void report_phase(const struct run_state *run, void *userdata)
{
        progress_send(*(int *)userdata, run);
}

/* A new run in MODE, its result printed; the identity is loaded. */
static int execute_run(const struct options *o, struct context *ctx, enum run_mode mode)
{
        struct flow_opts fo = {.action = FLOW_RUN, .dry_run = o->dry_run, .mode = mode};
        struct flow_result res = {};
        int r, progress_fd = progress_fd_from_env();

        if (progress_fd >= 0) {
                fo.on_phase = report_phase;
                fo.on_phase_userdata = &progress_fd;
        }
        r = flow_execute(ctx, &fo, &res);
        r = flow_exit(r, &res, o);
        flow_result_done(&res);
        return r;
}

static int cmd_run(const struct options *o, struct context *ctx)
{
        int mode;

        mode = o->mode ? run_mode_from_string(o->mode) : (int)ctx->config->mode;
        if (mode < 0) {
                log_error("--mode must be no-reboot or reboot, not '%s'", o->mode);
                return EXIT_USAGE;
        }
        if (context_load_identity(ctx) < 0)
                return EXIT_FAILED;
        return execute_run(o, ctx, (enum run_mode)mode);
}

/* The daemon's first worker with [daemon] user_data = yes: a run if the user-data asks for one. */
static int cmd_first_boot(const struct options *o, struct context *ctx)
{
        const char *reason = NULL;
        enum run_mode mode = MODE_NO_REBOOT;
        int r;

        if (context_load_identity(ctx) < 0)
                return EXIT_FAILED;
        r = first_boot_decide(ctx, &mode, &reason);
        if (r < 0)
                return EXIT_FAILED;
        if (r == FIRST_BOOT_RUN)
                return execute_run(o, ctx, mode);
        log_info("No first-boot run: %s", reason);
        if (o->json) {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddBoolToObject(j, "first_boot_run", false);
                cJSON_AddStringToObject(j, "reason", reason);
                json_print(j);
                cJSON_Delete(j);
        } else {
                printf("no first-boot run: %s\n", reason);
        }
        return EXIT_OK;
}

static int cmd_resume(const struct options *o, struct context *ctx)
{
        struct flow_opts fo = {.action = FLOW_RESUME};
        struct flow_result res = {};
        int r, progress_fd = progress_fd_from_env();

        if (progress_fd >= 0) {
                fo.on_phase = report_phase;
                fo.on_phase_userdata = &progress_fd;
        }
        if (context_load_identity(ctx) < 0)
                return EXIT_FAILED;
        r = flow_execute(ctx, &fo, &res);
        r = flow_exit(r, &res, o);
        flow_result_done(&res);
        return r;
}

static int cmd_status(const struct options *o, struct context *ctx)
{
        struct state st = {};
        int r;

        r = state_load(ctx->config->state_dir, &st);
        if (r < 0) {
                log_error_errno(r, "%s/state.json: %m", ctx->config->state_dir);
                return EXIT_FAILED;
        }
        if (o->json) {
                char *text = state_format(&st);
                if (text)
                        puts(text);
                free(text);
        } else if (st.current) {
                print_run(st.current, NULL);
        } else if (st.n_history > 0) {
                const struct history_entry *h = &st.history[0];
                printf("no run under way; last run %s: %s, image %s %s (%s)%s%s\n", h->run_id,
                       run_result_to_string(h->result), strna(h->image_id), strna(h->image_name),
                       strna(consistency_to_string(h->consistency)), h->error ? ": " : "",
                       strempty(h->error));
        } else {
                printf("no run yet\n");
        }
        state_done(&st);
        return EXIT_OK;
}

/* At exit, the lines `thaw` held (see main()) if nothing released them before. */
static void release_held_log(void)
{
        if (log_is_held())
                log_hold(false);
}

static int cmd_thaw(const struct options *o, struct context *ctx)
{
        char **thawed = NULL;
        int r = flow_thaw(ctx, o->all, &thawed);

        /* Everything is thawed: the lines held since main() may go out now. */
        log_hold(false);
        if (r < 0) {
                log_error_errno(r, "Thaw failed: %m");
                return EXIT_FAILED;
        }
        for (char **m = thawed; m && *m; m++)
                printf("thawed %s\n", *m);
        if (r == 0)
                printf("nothing was frozen\n");
        for (char **m = thawed; m && *m; m++)
                free(*m);
        free(thawed);
        return EXIT_OK;
}

static int cmd_daemon(const struct options *o, struct context *ctx)
{
        struct daemon_opts d = {
                .config_path = o->config_path,
                .config_explicit = o->config_explicit,
                .verbose = o->verbose,
        };
        int r;

        /* The small helper when it is installed; else the same loop in this (larger) process. */
        r = daemon_exec_helper(&d);
        log_debug("No %s to run the loop in (%s); running it here", DAEMON_HELPER_NAME,
                  strerror(-r));
        r = daemon_run(&d);

        return r == -EINVAL ? EXIT_USAGE : r < 0 ? EXIT_FAILED : EXIT_OK;
}

/* Without --json, one line from the worker's JSON result. */
static void print_trigger_result(const char *out)
{
        cJSON *j = cJSON_Parse(out);
        const char *run_id, *phase, *image, *error;

        if (!j) {
                fputs(out, stdout);
                return;
        }
        run_id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "run_id"));
        phase = cJSON_GetStringValue(cJSON_GetObjectItem(j, "phase"));
        image = cJSON_GetStringValue(cJSON_GetObjectItem(j, "image_id"));
        error = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
        if (run_id)
                printf("run %s: %s, image %s%s%s\n", run_id, strna(phase), strna(image),
                       error ? ": " : "", strempty(error));
        else
                fputs(out, stdout);
        cJSON_Delete(j);
}

static int cmd_trigger(const struct options *o, struct context *ctx)
{
        const char *path = ctx->config->control_socket;
        _cleanup_free_ char *out = NULL, *msg = NULL;
        int r, status = 0;

        r = control_trigger(path, o->wait, &status, &out, &msg);
        if (r == -EBUSY) {
                log_error("Not started: %s", strna(msg));
                return EXIT_BUSY;
        }
        if (r == -ENOENT || r == -ECONNREFUSED) {
                log_error("No ec2-imaged daemon listens on %s", path);
                return EXIT_FAILED;
        }
        if (r == -EPERM) {
                log_error("The daemon refused: %s", strna(msg));
                return EXIT_FAILED;
        }
        if (r < 0) {
                log_error_errno(r, "%s: %m", path);
                return EXIT_FAILED;
        }
        if (!o->wait) {
                printf(o->json ? "{\"started\": true}\n" : "run started\n");
                return EXIT_OK;
        }
        if (status > 128)
                log_error("The run's worker was stopped by signal %d; the run resumes when the "
                          "daemon starts again",
                          status - 128);
        if (o->json)
                fputs(out, stdout);
        else
                print_trigger_result(out);
        return status;
}

/*
 * `sanitize` and `patch`: the shipped hook scripts do the work. This checks the configuration
 * (an unknown operation name is reported with file and line), then execs the script the
 * configuration names with --config and the remaining arguments; the script's exit code is ours.
 */
static int cmd_script(const struct options *o, const char *name, int argc, char **argv)
{
        _cleanup_free_ char **args = NULL;
        struct config config;
        const char *script;

        if (load_config(o, &config) < 0)
                return EXIT_USAGE;
        script = streq(name, "sanitize") ? config.sanitize_script : config.patch_script;
        args = calloc((size_t)argc + 4, sizeof(char *));
        if (args) {
                args[0] = (char *)script;
                args[1] = (char *)"--config";
                args[2] = (char *)o->config_path;
                memcpy(args + 3, argv, (size_t)argc * sizeof(char *));
                execv(script, args);
                log_error_errno(-errno, "%s: cannot run %s: %m", name, script);
        }
        config_done(&config);
        return EXIT_FAILED;
}

static const struct command {
        const char *name;
        int (*run)(const struct options *o, struct context *ctx);
        bool takes_json;
        bool takes_run_options;
        bool takes_wait;
        bool bare; /* needs only the configuration: no IMDS or AWS client is set up */
} commands[] = {
        {"whoami", cmd_whoami, true, false, false, false},
        {"check", cmd_check, true, false, false, false},
        {"run", cmd_run, true, true, false, false},
        {"status", cmd_status, true, false, false, false},
        {"resume", cmd_resume, true, false, false, false},
        {"thaw", cmd_thaw, false, false, false, false},
        {"daemon", cmd_daemon, false, false, false, true},
        {"trigger", cmd_trigger, true, false, true, true},
        {"first-boot", cmd_first_boot, true, false, false, false},
};

static int parse_command_options(int argc, char **argv, const struct command *cmd,
                                 struct options *o)
{
        static const struct option opts[] = {
                {"json", no_argument, NULL, 'j'},       {"dry-run", no_argument, NULL, 'n'},
                {"mode", required_argument, NULL, 'm'}, {"wait", no_argument, NULL, 'w'},
                {"all", no_argument, NULL, 'a'},        {},
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+", opts, NULL)) >= 0) {
                switch (c) {
                case 'j':
                        if (!cmd->takes_json)
                                goto bad;
                        o->json = true;
                        break;
                case 'n':
                        if (!cmd->takes_run_options)
                                goto bad;
                        o->dry_run = true;
                        break;
                case 'm':
                        if (!cmd->takes_run_options)
                                goto bad;
                        o->mode = optarg;
                        break;
                case 'w':
                        if (!cmd->takes_wait)
                                goto bad;
                        o->wait = true;
                        break;
                case 'a':
                        if (cmd->run != cmd_thaw)
                                goto bad;
                        o->all = true;
                        break;
                default:
                        goto bad;
                }
        }
        if (optind < argc) {
                log_error("%s: unexpected argument '%s'", cmd->name, argv[optind]);
                return -EINVAL;
        }
        return 0;
bad:
        log_error("%s: unknown option; see ec2-imaged --help", cmd->name);
        return -EINVAL;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {},
        };
        struct options o = {.config_path = CONFIG_DEFAULT_PATH};
        const struct command *cmd = NULL;
        struct context *ctx = NULL;
        struct config config;
        int c, rc;

        /*
         * Never a core dump: this process may hold AWS credentials, and a dump onto a frozen
         * filesystem would keep the freeze until the guard's timeout. execve() resets it, so the
         * hooks and scripts we start are not affected.
         */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        while ((c = getopt_long(argc, argv, "+c:vh", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        o.config_path = optarg;
                        o.config_explicit = true;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        o.verbose = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        printf("ec2-imaged %s\n", EC2_IMAGED_VERSION);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        if (streq(argv[optind], "help")) {
                help();
                return EXIT_OK;
        }
        if (streq(argv[optind], "version")) {
                printf("ec2-imaged %s\n", EC2_IMAGED_VERSION);
                return EXIT_OK;
        }
        if (streq(argv[optind], "fsop"))
                return cmd_fsop(argc - optind, argv + optind);
        if (streq(argv[optind], "sanitize") || streq(argv[optind], "patch"))
                return cmd_script(&o, argv[optind], argc - optind - 1, argv + optind + 1);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[optind], commands[i].name))
                        cmd = &commands[i];
        if (!cmd) {
                log_error("unknown command '%s'; see ec2-imaged --help", argv[optind]);
                return EXIT_USAGE;
        }
        if (cmd->run == cmd_thaw) {
                /* ExecStopPost's thaw: not one line before everything is thawed, since the log
                 * (journald, a file) may wait on a filesystem that is still frozen. */
                log_hold(true);
                atexit(release_held_log);
        }
        if (parse_command_options(argc - optind, argv + optind, cmd, &o) < 0)
                return EXIT_USAGE;
        if (load_config(&o, &config) < 0)
                return EXIT_USAGE;
        if (cmd->bare) {
                struct context bare = {.config = &config};
                rc = cmd->run(&o, &bare);
                config_done(&config);
                return rc;
        }
        if (context_new(&config, &ctx) < 0) {
                config_done(&config);
                return EXIT_USAGE;
        }
        rc = cmd->run(&o, ctx);
        context_free(ctx);
        config_done(&config);
        return rc;
}
