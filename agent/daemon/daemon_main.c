/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ec2-imaged-daemon: the daemon's loop in an executable of its own, which `ec2-imaged daemon`
 * execs into. It links libsystemd, cJSON and inih and none of the imaging's libraries, so that an
 * idle daemon costs a few MiB; every run is a worker started from the full ec2-imaged (--binary).
 * Like main.c, the only place of this executable that decides how it exits.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "daemon/daemon.h"
#include "util/log.h"

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"binary", required_argument, NULL, 'b'},
                {"config", required_argument, NULL, 'c'},
                {"verbose", no_argument, NULL, 'v'},
                {},
        };
        struct daemon_opts o = {};
        int c, r;

        while ((c = getopt_long(argc, argv, "b:c:v", opts, NULL)) >= 0) {
                switch (c) {
                case 'b':
                        o.worker_binary = optarg;
                        break;
                case 'c':
                        o.config_path = optarg;
                        o.config_explicit = true;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        o.verbose = true;
                        break;
                default:
                        return 2;
                }
        }
        if (optind < argc || !o.worker_binary) {
                fprintf(stderr,
                        "Usage: %s --binary PATH-OF-EC2-IMAGED [--config PATH] [-v]\n"
                        "(started by `ec2-imaged daemon`)\n",
                        argv[0]);
                return 2;
        }
        r = daemon_run(&o);
        return r == -EINVAL ? 2 : r < 0 ? 1 : r; /* r: 0 or DAEMON_EXIT_RESTART */
}
