/* SPDX-License-Identifier: Apache-2.0 */
/* `grants`: the KMS grants runs made, and the revocation of the expired ones. */
#pragma once

#include "cli/command.h"

int cmd_grants(const struct cli *c);
