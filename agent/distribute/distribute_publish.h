/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publishing an image: a launch template version that uses it (made the default) and an SSM
 * parameter that holds its id. Called with explicit clients, by a run's distribution (its own
 * region) and by `import` (this account's copy), each keeping its own record of what is done.
 */
#pragma once

struct awsjson_client;
struct ec2_client;

/*
 * The version of template (in c's region) that uses image_id, as text: $Latest when it already
 * does (made before an interruption), else a new one copied from source_version with only the
 * image id changed, sent with client_token so that a retried call makes one version. On failure
 * -errno and *why (kept when already set) names the call and the AWS error.
 */
int dist_lt_version(struct ec2_client *c, const char *region, const char *template,
                    const char *source_version, const char *image_id, const char *description,
                    const char *client_token, char **ret_version, char **why);
/* ModifyLaunchTemplate: version (decimal text) becomes template's default. */
int dist_lt_set_default(struct ec2_client *c, const char *region, const char *template,
                        const char *version, char **why);
/* SSM PutParameter name = image_id (String, data type aws:ec2:image, overwritten). */
int dist_publish_ssm(struct awsjson_client *ssm, const char *region, const char *name,
                     const char *image_id, char **why);
