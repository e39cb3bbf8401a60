/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands of the shipped hook scripts: `sanitize` and `patch` run them, `fsop` does the
 * sanitize script's file operations on trees other users can write.
 */
#pragma once

#include "cli/command.h"

/* argv[0] is "sanitize" or "patch"; returns only on failure. */
int cmd_script(const struct cli *c);
/* argv[0] is "fsop"; returns the exit code (0, 1 failed, 2 usage). */
int cmd_fsop(const struct cli *c);
