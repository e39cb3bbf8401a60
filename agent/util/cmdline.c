/* SPDX-License-Identifier: Apache-2.0 */
/* The command-line options ec2-imaged and ec2-imaged-daemon share (see cmdline.h). */
#include "util/cmdline.h"

#include "util/log.h"

bool cmdline_common_option(int c, const char *arg, struct cmdline_common *o)
{
        switch (c) {
        case 'c':
                o->config_path = arg;
                o->config_explicit = true;
                return true;
        case 'v':
                log_set_max_level(LOG_DEBUG);
                o->verbose = true;
                return true;
        default:
                return false;
        }
}
