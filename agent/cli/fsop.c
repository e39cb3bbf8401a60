/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ec2-imaged fsop`: the safe file operations of host/safefs*.h for the sanitize hook, which
 * calls them for every tree other users can write. Manifest lines on stdout, refusals and
 * errors on stderr. Exit 0 (refusals included), 1 when an operation failed, 2 on bad usage.
 */
#include "cli/fsop.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "host/safefs.h"
#include "host/safefs_home.h"
#include "host/safefs_tree.h"
#include "util/log.h"
#include "util/macro.h"

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
        int c;

        *a = (struct fsop_args){.root = "/", .op = "fsop"};
        optind = 1;
        while ((c = getopt_long(argc, argv, "+nh", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        a->root = optarg;
                        break;
                case 'o':
                        a->op = optarg;
                        break;
                case 'n':
                        a->dry_run = true;
                        break;
                case 'k':
                        a->keep = optarg;
                        break;
                case 's':
                        a->stash_dir = optarg;
                        break;
                case 'l':
                        a->live_journal = true;
                        break;
                case 'h':
                        fsop_usage(stdout);
                        return 1;
                default:
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

int cmd_fsop(int argc, char **argv)
{
        static const char *const commands[] = {
                "logs",        "remove",     "remove-matching", "remove-contents",
                "home-remove", "home-stash", "home-restore"};
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
