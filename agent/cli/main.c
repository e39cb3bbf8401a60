/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ec2-imaged command line: the command table, the options of the command line, and what each
 * command is given (configuration, clients) before it runs. This is the only file that decides
 * how the process exits: every command returns its exit code here.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cli/cmd_daemon.h"
#include "cli/cmd_grants.h"
#include "cli/cmd_import.h"
#include "cli/cmd_instance.h"
#include "cli/cmd_run.h"
#include "cli/cmd_scripts.h"
#include "cli/command.h"
#include "core/config.h"
#include "core/context.h"
#include "util/cmdline.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

/* The options of the commands; each command's entry lists those it takes (.options). */
enum {
        /* Above every character, so that none is taken for a short option getopt returns. */
        OPT_JSON = 1 << 8,
        OPT_DRY_RUN = 1 << 9,
        OPT_MODE = 1 << 10,
        OPT_WAIT = 1 << 11,
        OPT_ALL = 1 << 12,
        OPT_REVOKE_EXPIRED = 1 << 13,
        OPT_REGION = 1 << 14,
        OPT_SOURCE_REGION = 1 << 15,
        OPT_KMS_KEY = 1 << 16,
        OPT_NAME = 1 << 17,
        OPT_LAUNCH_TEMPLATE = 1 << 18,
        OPT_SSM_PARAMETER = 1 << 19,
};

/* What a command needs before it runs. */
enum command_setup {
        SETUP_NONE,    /* the command line only */
        SETUP_CONFIG,  /* the configuration; no IMDS or AWS client is set up */
        SETUP_CLIENTS, /* the configuration and the context: IMDS client, credentials provider */
};

struct command {
        const char *name;
        int (*run)(const struct cli *c);
        unsigned options; /* the OPT_* it takes */
        enum command_setup setup;
        const char *argument; /* its one argument, as the error names it; NULL: it takes none */
        bool own_arguments;   /* its arguments are passed on unparsed */
        bool hold_log;        /* no log line until the command releases them (see main()) */
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
               "  grants [--revoke-expired] [--json]\n"
               "                    The KMS grants runs made; revoke those past grant_ttl_days\n"
               "  kms-policy [--region R] [--json]\n"
               "                    The key-policy statements share_organizations/share_ous\n"
               "                    need on the customer keys\n"
               "  import IMAGE_ID [--source-region R] [--region R] --kms-key KEY [--name NAME]\n"
               "         [--launch-template T] [--ssm-parameter P] [--json]\n"
               "                    Copy an image shared with this account into it, encrypted\n"
               "                    with this account's key (works off EC2: AWS_PROFILE)\n"
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
               "  3  check: at least one pre-flight item failed; import: refused (the image\n"
               "     is not shared, a key is unusable, the name is taken)\n"
               "  4  another run is under way (run, resume, trigger)\n"
               "  5  run: an unfinished run exists; resume it first\n");
}

static int cmd_help(const struct cli *c)
{
        help();
        return EXIT_OK;
}

static int cmd_version(const struct cli *c)
{
        printf("ec2-imaged %s\n", EC2_IMAGED_VERSION);
        return EXIT_OK;
}

static const struct command commands[] = {
        {.name = "whoami", .run = cmd_whoami, .options = OPT_JSON, .setup = SETUP_CLIENTS},
        {.name = "check", .run = cmd_check, .options = OPT_JSON, .setup = SETUP_CLIENTS},
        {.name = "run",
         .run = cmd_run,
         .options = OPT_JSON | OPT_DRY_RUN | OPT_MODE,
         .setup = SETUP_CLIENTS},
        {.name = "status", .run = cmd_status, .options = OPT_JSON, .setup = SETUP_CLIENTS},
        {.name = "resume", .run = cmd_resume, .options = OPT_JSON, .setup = SETUP_CLIENTS},
        /* ExecStopPost's thaw: not one line before everything is thawed, since the log
         * (journald, a file) may wait on a filesystem that is still frozen. */
        {.name = "thaw",
         .run = cmd_thaw,
         .options = OPT_ALL,
         .setup = SETUP_CLIENTS,
         .hold_log = true},
        {.name = "daemon", .run = cmd_daemon, .setup = SETUP_CONFIG},
        {.name = "trigger",
         .run = cmd_trigger,
         .options = OPT_JSON | OPT_WAIT,
         .setup = SETUP_CONFIG},
        {.name = "grants",
         .run = cmd_grants,
         .options = OPT_JSON | OPT_REVOKE_EXPIRED,
         .setup = SETUP_CLIENTS},
        {.name = "kms-policy",
         .run = cmd_kms_policy,
         .options = OPT_JSON | OPT_REGION,
         .setup = SETUP_CONFIG},
        {.name = "import",
         .run = cmd_import,
         .options = OPT_JSON | OPT_SOURCE_REGION | OPT_REGION | OPT_KMS_KEY | OPT_NAME |
                    OPT_LAUNCH_TEMPLATE | OPT_SSM_PARAMETER,
         .setup = SETUP_CLIENTS,
         .argument = "one image id (ami-...)"},
        {.name = "first-boot", .run = cmd_first_boot, .options = OPT_JSON, .setup = SETUP_CLIENTS},
        {.name = "sanitize", .run = cmd_script, .setup = SETUP_CONFIG, .own_arguments = true},
        {.name = "patch", .run = cmd_script, .setup = SETUP_CONFIG, .own_arguments = true},
        {.name = "fsop", .run = cmd_fsop, .setup = SETUP_NONE, .own_arguments = true},
        {.name = "help", .run = cmd_help, .setup = SETUP_NONE, .own_arguments = true},
        {.name = "version", .run = cmd_version, .setup = SETUP_NONE, .own_arguments = true},
};

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

static int load_config(const struct cmdline_common *o, struct config *ret)
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

static const struct option command_options[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"mode", required_argument, NULL, OPT_MODE},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"all", no_argument, NULL, OPT_ALL},
        {"revoke-expired", no_argument, NULL, OPT_REVOKE_EXPIRED},
        {"region", required_argument, NULL, OPT_REGION},
        {"source-region", required_argument, NULL, OPT_SOURCE_REGION},
        {"kms-key", required_argument, NULL, OPT_KMS_KEY},
        {"name", required_argument, NULL, OPT_NAME},
        {"launch-template", required_argument, NULL, OPT_LAUNCH_TEMPLATE},
        {"ssm-parameter", required_argument, NULL, OPT_SSM_PARAMETER},
        {},
};

/* Where the value of the option o goes; NULL for an option without one. */
static const char **option_value(struct cli *c, int o)
{
        switch (o) {
        case OPT_MODE:
                return &c->mode;
        case OPT_REGION:
                return &c->region;
        case OPT_SOURCE_REGION:
                return &c->source_region;
        case OPT_KMS_KEY:
                return &c->kms_key;
        case OPT_NAME:
                return &c->name;
        case OPT_LAUNCH_TEMPLATE:
                return &c->launch_template;
        case OPT_SSM_PARAMETER:
                return &c->ssm_parameter;
        default:
                return NULL;
        }
}

/* One option getopt returned (o, at command_options[idx]); -EINVAL (said) if cmd refuses it. */
static int take_option(const struct command *cmd, struct cli *c, int o, int idx)
{
        const char **value = option_value(c, o);

        /* getopt's '?': no such option, or no value for one; optopt: a short one's letter. */
        if (o == '?' && optopt > 0 && optopt < OPT_JSON) {
                log_error("%s: unknown option '-%c'; see ec2-imaged --help", cmd->name, optopt);
                return -EINVAL;
        }
        if (o == '?') {
                log_error("%s: unknown option or no value for '%s'; see ec2-imaged --help",
                          cmd->name, c->argv[optind - 1]);
                return -EINVAL;
        }
        if (!(cmd->options & (unsigned)o)) {
                log_error("%s: unknown option '--%s'; see ec2-imaged --help", cmd->name,
                          command_options[idx].name);
                return -EINVAL;
        }
        if (value && !*optarg) {
                log_error("%s: empty value for '%s'; see ec2-imaged --help", cmd->name,
                          command_options[idx].name);
                return -EINVAL;
        }
        if (value)
                *value = optarg;
        return 0;
}

/*
 * The command's options and its argument, from c->argv; -EINVAL (said) for an option it does
 * not take or the wrong number of arguments.
 */
static int parse_command_options(const struct command *cmd, struct cli *c)
{
        unsigned given = 0;
        int o, idx = 0;

        /*
         * Options may follow the argument (GNU getopt permutes); its own messages are ours.
         * optind 0: glibc starts afresh, parse_options() having parsed with "+" before.
         */
        optind = 0;
        opterr = 0;
        while ((o = getopt_long(c->argc, c->argv, "", command_options, &idx)) >= 0) {
                if (take_option(cmd, c, o, idx) < 0)
                        return -EINVAL;
                given |= (unsigned)o;
        }
        if (cmd->argument && optind + 1 != c->argc) {
                log_error("%s: give %s; see ec2-imaged --help", cmd->name, cmd->argument);
                return -EINVAL;
        }
        if (cmd->argument)
                c->argument = c->argv[optind++];
        if (optind < c->argc) {
                log_error("%s: unexpected argument '%s'", cmd->name, c->argv[optind]);
                return -EINVAL;
        }
        c->json = given & OPT_JSON;
        c->dry_run = given & OPT_DRY_RUN;
        c->wait = given & OPT_WAIT;
        c->all = given & OPT_ALL;
        c->revoke_expired = given & OPT_REVOKE_EXPIRED;
        return 0;
}

/*
 * The options before the command. Returns -1 to go on with the command at argv[optind], else
 * the exit code: after --help or --version, for a bad option or no command.
 */
static int parse_options(int argc, char **argv, struct cli *c)
{
        static const struct option opts[] = {
                CMDLINE_COMMON_OPTIONS,
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {},
        };
        int o;

        while ((o = getopt_long(argc, argv, "+c:vh", opts, NULL)) >= 0) {
                if (cmdline_common_option(o, optarg, &c->common))
                        continue;
                if (o == 'h')
                        return cmd_help(c);
                if (o == 'V')
                        return cmd_version(c);
                return EXIT_USAGE;
        }
        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        return -1;
}

/* Set up what cmd needs, run it, and take it down again; returns the exit code. */
static int run_command(const struct command *cmd, struct cli *c)
{
        struct config config;
        struct context bare = {.config = &config};
        int rc;

        if (cmd->setup == SETUP_NONE)
                return cmd->run(c);
        if (load_config(&c->common, &config) < 0)
                return EXIT_USAGE;
        c->ctx = &bare;
        if (cmd->setup == SETUP_CLIENTS && context_new(&config, &c->ctx) < 0) {
                config_done(&config);
                return EXIT_USAGE;
        }
        rc = cmd->run(c);
        if (c->ctx != &bare)
                context_free(c->ctx);
        config_done(&config);
        return rc;
}

/* At exit, the lines a command held (.hold_log) if nothing released them before. */
static void release_held_log(void)
{
        if (log_is_held())
                log_hold(false);
}

int main(int argc, char **argv)
{
        struct cli c = {.common.config_path = CONFIG_DEFAULT_PATH};
        const struct command *cmd = NULL;
        int rc;

        /*
         * Never a core dump: this process may hold AWS credentials, and a dump onto a frozen
         * filesystem would keep the freeze until the guard's timeout. execve() resets it, so the
         * hooks and scripts we start are not affected.
         */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        rc = parse_options(argc, argv, &c);
        if (rc >= 0)
                return rc;
        c.argc = argc - optind;
        c.argv = argv + optind;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(c.argv[0], commands[i].name))
                        cmd = &commands[i];
        if (!cmd) {
                log_error("unknown command '%s'; see ec2-imaged --help", c.argv[0]);
                return EXIT_USAGE;
        }
        if (cmd->hold_log) {
                log_hold(true);
                atexit(release_held_log);
        }
        if (!cmd->own_arguments && parse_command_options(cmd, &c) < 0)
                return EXIT_USAGE;
        return run_command(cmd, &c);
}
