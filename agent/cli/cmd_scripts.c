/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands of the shipped hook scripts. `sanitize` and `patch` run the script the
 * configuration names. `fsop`: the safe file operations of host/safefs*.h for the sanitize
 * script, which calls them for every tree other users can write; manifest lines on stdout,
 * refusals and errors on stderr, exit 0 (refusals included), 1 when an operation failed, 2 on bad
 * usage.
 */
#include "cli/cmd_scripts.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/context.h"
#include "host/safefs.h"
#include "host/safefs_home.h"
#include "host/safefs_tree.h"
#include "util/log.h"
#include "util/macro.h"

/*
 * `sanitize` and `patch`: the shipped hook scripts do the work. The configuration is checked
 * first (an unknown operation name is reported with file and line); then this execs the script
 * it names with --config and the remaining arguments, and the script's exit code is ours.
 */
int cmd_script(const struct cli *c)
{
        const struct config *config = c->ctx->config;
        const char *name = c->argv[0];
        const char *script =
                streq(name, "sanitize") ? config->sanitize_script : config->patch_script;
        _cleanup_free_ char **args = calloc((size_t)c->argc + 3, sizeof(char *));

        if (!args) {
                log_error_errno(ENOMEM, "Out of memory");
                return EXIT_FAILED;
        }
        args[0] = (char *)script;
        args[1] = (char *)"--config";
        args[2] = (char *)c->common.config_path;
        memcpy(args + 3, c->argv + 1, (size_t)(c->argc - 1) * sizeof(char *));
        execv(script, args);
        log_error_errno(-errno, "%s: cannot run %s: %m", name, script);
        return EXIT_FAILED;
}

struct fsop_args {
        const char *root, *op, *keep, *stash_dir;
        bool dry_run, live_journal;
};

static void fsop_usage(FILE *f)
{
        fputs("Usage: ec2-imaged fsop COMMAND [--root DIR] [--manifest-op NAME] [--dry-run] "
              "[OPTIONS] [--] ARG...\n"
              "\n"
              "File operations on trees other users can write, for the sanitize hook: no "
              "symlink\n"
              "is followed, no other mount entered, no path handled as text; one manifest "
              "line,\n"
              "NAME<TAB>ACTION<TAB>PATH (escaped), per path acted on.\n"
              "\n"
              "  logs [--live-journal] TREE...   truncate logs, remove rotated ones and journal "
              "files\n"
              "  remove PATH...                  remove (a directory with all in it)\n"
              "  remove-matching DIR/PATTERN...  remove the names in DIR that PATTERN matches\n"
              "  remove-contents [--keep PATTERN] DIR...\n"
              "                                  remove everything in DIR\n"
              "  home-remove FILE...             remove FILE of /root and each /home/* home\n"
              "  home-stash --stash-dir DIR FILE...\n"
              "                                  the same, copied into DIR first\n"
              "  home-restore --stash-dir DIR    put back what home-stash copied\n"
              "\n"
              "PATH, TREE and DIR are absolute inside the root (default /); FILE is relative to "
              "a home.\n",
              f);
}

static int fsop_parse(int argc, char **argv, struct fsop_args *a)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},
                {"manifest-op", required_argument, NULL, 'o'},
                {"dry-run", no_argument, NULL, 'n'},
                {"keep", required_argument, NULL, 'k'},
                {"stash-dir", required_argument, NULL, 's'},
                {"live-journal", no_argument, NULL, 'l'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        /* Where each option goes: its argument, or true for the flags that take none. */
        const char **argument_of[] = {
                ['r'] = &a->root, ['o'] = &a->op, ['k'] = &a->keep, ['s'] = &a->stash_dir};
        bool *flag_of[] = {['n'] = &a->dry_run, ['l'] = &a->live_journal};
        int c;

        *a = (struct fsop_args){.root = "/", .op = "fsop"};
        optind = 1;
        while ((c = getopt_long(argc, argv, "+nh", opts, NULL)) >= 0) {
                if (c < (int)ELEMENTSOF(argument_of) && argument_of[c]) {
                        *argument_of[c] = optarg;
                } else if (c < (int)ELEMENTSOF(flag_of) && flag_of[c]) {
                        *flag_of[c] = true;
                } else if (c == 'h') {
                        fsop_usage(stdout);
                        return 1;
                } else {
                        return -1;
                }
        }
        return 0;
}

/* One command over its arguments; fs->error is the first failure. */
static int fsop_execute(struct safefs *fs, const char *cmd, const struct fsop_args *a, char **args)
{
        if (streq(cmd, "home-remove"))
                return safefs_home_remove(fs, args);
        if (streq(cmd, "home-stash"))
                return safefs_home_stash(fs, a->stash_dir, args);
        if (streq(cmd, "home-restore"))
                return safefs_home_restore(fs, a->stash_dir);
        for (char **p = args; *p; p++) {
                if (streq(cmd, "logs"))
                        safefs_logs(fs, *p, a->live_journal);
                else if (streq(cmd, "remove"))
                        safefs_remove(fs, *p);
                else if (streq(cmd, "remove-matching"))
                        safefs_remove_matching(fs, *p);
                else
                        safefs_remove_contents(fs, *p, a->keep);
        }
        return fs->error;
}

int cmd_fsop(const struct cli *c)
{
        static const char *const commands[] = {
                "logs",        "remove",     "remove-matching", "remove-contents",
                "home-remove", "home-stash", "home-restore"};
        int argc = c->argc;
        char **argv = c->argv;
        struct fsop_args a;
        struct safefs fs;
        const char *cmd;
        bool known = false;
        int r;

        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                fsop_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        cmd = argv[1];
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                known = known || streq(cmd, commands[i]);
        r = fsop_parse(argc - 1, argv + 1, &a);
        if (r > 0)
                return 0;
        if (!known || r < 0) {
                log_error("fsop: %s; see ec2-imaged fsop --help",
                          known ? "bad option" : "unknown command");
                return 2;
        }
        if (startswith(cmd, "home-") && !streq(cmd, "home-remove") && !a.stash_dir) {
                log_error("fsop %s: --stash-dir is required", cmd);
                return 2;
        }
        if (a.keep && !streq(cmd, "remove-contents")) {
                log_error("fsop %s: --keep is only for remove-contents", cmd);
                return 2;
        }
        if (safefs_open(a.root, a.op, a.dry_run, stdout, &fs) < 0)
                return 1;
        r = fsop_execute(&fs, cmd, &a, argv + 1 + optind);
        safefs_close(&fs);
        return r < 0 ? 1 : 0;
}
