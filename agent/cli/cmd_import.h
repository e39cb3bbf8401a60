/* SPDX-License-Identifier: Apache-2.0 */
/* `import`: copy an image shared with this account into it, under this account's KMS key. */
#pragma once

#include "cli/command.h"

int cmd_import(const struct cli *c);
