/* SPDX-License-Identifier: Apache-2.0 */
/* `daemon` (the service) and `trigger` (its client). */
#pragma once

#include "cli/command.h"

int cmd_daemon(const struct cli *c);
int cmd_trigger(const struct cli *c);
