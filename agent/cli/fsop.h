/* SPDX-License-Identifier: Apache-2.0 */
/* `ec2-imaged fsop`: the sanitize hook's file operations on trees other users can write. */
#pragma once

/* argv[0] is "fsop"; returns the exit code (0, 1 failed, 2 usage). */
int cmd_fsop(int argc, char **argv);
