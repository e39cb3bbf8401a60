/* SPDX-License-Identifier: Apache-2.0 */
/* `whoami` and `check`: what this instance is, and whether a run of it can start. */
#pragma once

#include "cli/command.h"

int cmd_whoami(const struct cli *c);
int cmd_check(const struct cli *c);
