/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key policies for sharing with organizations and OUs. A KMS grant names one principal, never an
 * organization, so a customer key of an image shared with share_organizations / share_ous must
 * allow the recipients in its key policy: the operations a recipient's CopyImage needs, through
 * EC2 of the key's region (kms:ViaService), for principals of the organizations
 * (aws:PrincipalOrgID) or under the OUs (aws:PrincipalOrgPaths). `ec2-imaged kms-policy` prints
 * these statements; the pre-flight reads each key's policy and refuses one that lacks them.
 */
#pragma once

#include <cjson/cJSON.h>

struct config;
struct dist_clients;

/* The statements for a key in region (NULL when no organization or OU is configured). */
int dist_policy_statements(const struct config *cfg, const char *region, cJSON **ret);

/*
 * Whether policy (the key's policy, JSON text) allows what dist_policy_statements() asks: 0, or
 * -EPERM with *ret_why naming key and the missing statement (its Sid); -EBADMSG for a policy
 * that is not JSON.
 */
int dist_policy_check(const struct config *cfg, const char *key, const char *policy,
                      char **ret_why);

/* GetKeyPolicy of key in region and dist_policy_check() of it; *ret_why says what failed. */
int dist_check_key_policy(struct dist_clients *c, const struct config *cfg, const char *region,
                          const char *key, char **ret_why);
