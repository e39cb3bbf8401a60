/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS side of distribution: one EC2, KMS and SSM client per region of the run (made once,
 * with [aws] settings and the run's credentials, sharing one rate limit and retry quota), the KMS
 * key configured for a region, and the check that refuses sharing an image encrypted with an
 * AWS-managed key.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aws/budget.h"
#include "core/state.h"

struct aws_error;
struct awsjson_client;
struct config;
struct context;
struct creds_provider;
struct ec2_client;
struct kms_key;

struct dist_clients {
        struct context *ctx; /* its EC2 client serves the run's own region (unless foreign) */
        bool foreign;        /* made with other credentials: every region has its own clients */
        struct {
                char *region;
                struct ec2_client *ec2; /* NULL for the run's own region: ctx->ec2 */
                struct awsjson_client *kms, *ssm;
                struct aws_budget budget; /* shared by the three: one rate and quota a region */
        } r[RUN_DIST_MAX];
        size_t n;
};

/* Make the clients of each region in regions (NULL-terminated; the run's own region first). */
int dist_clients_open(struct dist_clients *c, struct context *ctx, char *const *regions);
/*
 * The same, signed with creds (borrowed: another account's, say) instead of the run's: each
 * region gets EC2, KMS and SSM clients of its own, the run's own region too.
 */
int dist_clients_open_as(struct dist_clients *c, struct context *ctx, struct creds_provider *creds,
                         char *const *regions);
void dist_clients_done(struct dist_clients *c);
/* The client of a region given to dist_clients_open() (NULL for any other region). */
struct ec2_client *dist_clients_ec2(struct dist_clients *c, const char *region);
struct awsjson_client *dist_clients_kms(struct dist_clients *c, const char *region);
struct awsjson_client *dist_clients_ssm(struct dist_clients *c, const char *region);

/*
 * The regions of a run: own (the run's region) first, then [distribute] regions, each once. A
 * NULL-terminated vector for the caller to free.
 */
int dist_regions(const char *own, const struct config *cfg, char ***ret);

/*
 * An AWS call of a step failed with r: the first failure of the run (or check) is kept in *why
 * as "WHAT in REGION: CODE: MESSAGE"; e is released. Returns r.
 */
int dist_fail(char **why, int r, struct aws_error *e, const char *what, const char *region);

/*
 * The NAME of words (launch_template, ssm_parameter) for region: a REGION:NAME word of that
 * region; else, when plain_everywhere or region is own, the first NAME word. NULL: none.
 */
const char *dist_word_for(char *const *words, const char *region, const char *own,
                          bool plain_everywhere);
/* The key of [distribute] kms_key for region (the part after "REGION:"), or NULL. */
const char *dist_kms_key_for(const struct config *cfg, const char *region);
/*
 * Whether a key is managed by AWS: KMS says KeyManager AWS, or it is named by an alias under
 * alias/aws/, which AWS reserves for its own keys.
 */
bool dist_key_is_aws_managed(const char *key_id, const struct kms_key *k);
/*
 * DescribeKey of key_id with kms (a client of region): 0 with *ret filled; -errno and *ret_why
 * when KMS refuses it, or -EPERM when the key is not Enabled.
 */
int dist_describe_key(struct awsjson_client *kms, const char *region, const char *key_id,
                      struct kms_key *ret, char **ret_why);
/*
 * dist_describe_key() with the KMS client of region. With for_sharing, an AWS-managed key is
 * refused (-EPERM) with a message naming the key and the image and saying what to do.
 */
int dist_check_key(struct dist_clients *c, const char *region, const char *key_id,
                   const char *image_id, bool for_sharing, struct kms_key *ret, char **ret_why);

/* How dist_wait_image() waits, and what it tells its caller on the way. */
struct dist_wait {
        unsigned timeout_s, poll_max_s; /* [run] wait_timeout_s, wait_poll_max_s */
        const char *what;               /* "the copy": how messages name the image */
        /* Called with each new state DescribeImages gives (to record it); < 0 stops the wait. */
        int (*on_state)(void *userdata, const char *state);
        void *userdata;
};
/*
 * Wait until this account's image image_id in c's region is available (an image not listed yet
 * is waited for: EC2 is eventually consistent). -EIO when it ends in another state (failed,
 * error: with its reason), -ETIME after w->timeout_s; *ret_why says which.
 */
int dist_wait_image(struct ec2_client *c, const char *region, const char *image_id,
                    const struct dist_wait *w, char **ret_why);
