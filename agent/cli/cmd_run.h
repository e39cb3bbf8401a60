/* SPDX-License-Identifier: Apache-2.0 */
/* The run's commands: `run`, `resume`, `first-boot`, `status` and `thaw`. */
#pragma once

#include "cli/command.h"

int cmd_run(const struct cli *c);
int cmd_resume(const struct cli *c);
int cmd_first_boot(const struct cli *c);
int cmd_status(const struct cli *c);
int cmd_thaw(const struct cli *c);
