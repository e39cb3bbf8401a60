/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `grants`: the KMS grants runs made, and the revocation of the expired ones. `kms-policy`: the
 * key-policy statements the customer keys need for sharing with organizations and OUs.
 */
#pragma once

#include "cli/command.h"

int cmd_grants(const struct cli *c);
int cmd_kms_policy(const struct cli *c);
