/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ec2-imaged-daemon: the daemon's loop in an executable of its own, which `ec2-imaged daemon`
 * execs into. It links libsystemd, cJSON and inih and none of the imaging's libraries, so that an
 * idle daemon costs a few MiB; every run is a worker started from the full ec2-imaged (--binary).
 * Like main.c, the only place of this executable that decides how it exits.
 */
#include <errno.h>
#include <stdio.h>

#include "daemon/daemon.h"
#include "util/cmdline.h"

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"binary", required_argument, NULL, 'b'},
                CMDLINE_COMMON_OPTIONS,
                {},
        };
        struct cmdline_common common = {};
        const char *binary = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "b:c:v", opts, NULL)) >= 0) {
                if (cmdline_common_option(c, optarg, &common))
                        continue;
                if (c != 'b')
                        return 2;
                binary = optarg;
        }
        if (optind < argc || !binary) {
                fprintf(stderr,
                        "Usage: %s --binary PATH-OF-EC2-IMAGED [--config PATH] [-v]\n"
                        "(started by `ec2-imaged daemon`)\n",
                        argv[0]);
                return 2;
        }
        r = daemon_run(&(struct daemon_opts){
                .config_path = common.config_path,
                .config_explicit = common.config_explicit,
                .verbose = common.verbose,
                .worker_binary = binary,
        });
        return r == -EINVAL ? 2 : r < 0 ? 1 : r; /* r: 0 or DAEMON_EXIT_RESTART */
}
