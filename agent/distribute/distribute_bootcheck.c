/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot check (see distribute_internal.h): one instance launched from the run's image (after
 * its encryption in place), whose ec2-imaged reports by tagging itself, waited for, and then
 * terminated whatever happened.
 *
 * The run state says how far it got (run_state.boot_check), saved before each step that cannot
 * be undone: stage "launching" before RunInstances, so that a crash before the instance id is
 * saved leaves a run that looks the instance up by its tag (ec2-imaged:boot-check = run id)
 * rather than launching a second; RunInstances also carries a ClientToken of the run id, so EC2
 * itself makes one instance however often it is asked. Then the instance id ("waiting"), the
 * verdict ("passed" or "failed" with the reason), the termination, and for a failed image its
 * tag and, with [boot_check] on_failure = deregister, its deregistration.
 */
#include "distribute/distribute_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/ec2_boot.h"
#include "core/config.h"
#include "core/imagetags.h"
#include "core/state.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define CONSOLE_FILE_FMT "%s/boot-check-console-%s.txt"

static struct ec2_client *own_ec2(struct dist *d)
{
        return dist_clients_ec2(&d->clients, d->run->region);
}

/* The instance an earlier RunInstances of this run made, if any: found by its tag. */
static int find_instance(struct dist *d, char **ret)
{
        _cleanup_strv_free_ char **ids = NULL;
        struct aws_error e = {};
        int r;

        r = ec2_find_instances_by_tag(own_ec2(d), TAG_BOOT_CHECK, d->run->run_id, &ids, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "DescribeInstances", d->run->region);
        if (strv_length(ids) > 1)
                log_warning("%zu instances carry %s=%s; checking %s", strv_length(ids),
                            TAG_BOOT_CHECK, d->run->run_id, ids[0]);
        *ret = ids ? strdup(ids[0]) : NULL;
        return ids && !*ret ? -ENOMEM : 0;
}

int dist_boot_check_launch(struct ec2_client *c, const struct config *cfg, const char *image_id,
                           const char *run_id, bool dry_run, char **ret_instance_id,
                           struct aws_error *err)
{
        const struct ec2_tag tags[] = {{TAG_BOOT_CHECK, run_id}, {TAG_RUN_ID, run_id}};
        _cleanup_free_ char *ud = strprintf(BOOT_CHECK_USERDATA_FMT, run_id);
        _cleanup_free_ char *token = strprintf("%s-boot-check", run_id);
        struct ec2_run_instance_args a = {
                .image_id = image_id,
                .instance_type = cfg->boot_check_instance_type,
                .subnet_id = cfg->boot_check_subnet,
                .security_group_ids = (const char *const *)cfg->boot_check_security_groups,
                .instance_profile = cfg->boot_check_instance_profile,
                .user_data = ud,
                .client_token = token,
                .tags = tags,
                .n_tags = ELEMENTSOF(tags),
                .dry_run = dry_run,
        };

        if (!ud || !token)
                return -ENOMEM;
        return ec2_run_instance(c, &a, ret_instance_id, err);
}

static int run_instance(struct dist *d, char **ret)
{
        struct aws_error e = {};
        int r;

        r = dist_boot_check_launch(own_ec2(d), d->cfg, d->run->image_id, d->run->run_id, false, ret,
                                   &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "RunInstances", d->run->region);
        return 0;
}

/* Launch the instance, or take on the one a launch before an interruption made. */
static int launch(struct dist *d)
{
        struct run_boot_check *b = &d->run->boot_check;
        _cleanup_free_ char *id = NULL;
        int r;

        if (b->stage == BOOT_CHECK_NONE) {
                b->stage = BOOT_CHECK_LAUNCHING;
                b->started = now_usec(CLOCK_REALTIME);
                r = dist_save(d);
                if (r < 0)
                        return r;
        }
        if (b->stage != BOOT_CHECK_LAUNCHING)
                return 0;
        r = find_instance(d, &id);
        if (r >= 0 && id)
                log_notice("Boot check: instance %s of this run found by its tag", id);
        else if (r >= 0)
                r = run_instance(d, &id);
        if (r < 0)
                return r;
        log_notice("Boot check of %s: instance %s launched (%s)", d->run->image_id, id,
                   d->cfg->boot_check_instance_type);
        b->instance_id = TAKE_PTR(id);
        b->stage = BOOT_CHECK_WAITING;
        return dist_save(d);
}

/* The console output of an instance that did not report, beside the state file. */
static void save_console(struct dist *d)
{
        _cleanup_free_ char *out = NULL, *path = NULL;
        struct aws_error e = {};
        size_t len = 0;
        int r;

        r = ec2_get_console_output(own_ec2(d), d->run->boot_check.instance_id, &out, &len, &e);
        if (r < 0) {
                log_warning("Boot check: no console output of %s: %s%s%s",
                            d->run->boot_check.instance_id, strerror(-r), e.code ? ": " : "",
                            strempty(e.code));
                aws_error_done(&e);
                return;
        }
        path = strprintf(CONSOLE_FILE_FMT, d->cfg->state_dir, d->run->run_id);
        if (!path || !out)
                return;
        r = write_file_atomic(path, out, len, 0600);
        if (r < 0)
                log_warning_errno(r, "%s: %m", path);
        else
                log_notice("Boot check: the console output of %s is in %s",
                           d->run->boot_check.instance_id, path);
}

/* The verdict: stage passed or failed, with the reason. */
static int settle(struct dist *d, bool passed, char *reason)
{
        struct run_boot_check *b = &d->run->boot_check;

        if (!passed && !reason)
                return -ENOMEM;
        free(b->reason);
        b->reason = reason;
        b->stage = passed ? BOOT_CHECK_PASSED : BOOT_CHECK_FAILED;
        return dist_save(d);
}

/* Read the instance's report tag: 1 and settled when there is one, 0 when not yet. */
static int read_report(struct dist *d)
{
        const char *id = d->run->boot_check.instance_id;
        _cleanup_free_ char *v = NULL;
        struct aws_error e = {};
        int r;

        r = ec2_instance_tag(own_ec2(d), id, TAG_BOOT_CHECK_RESULT, &v, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "DescribeTags", d->run->region);
        if (!v)
                return 0;
        if (streq(v, "ok"))
                r = settle(d, true, NULL);
        else if (startswith(v, BOOT_CHECK_VERDICT_FAILED ":"))
                r = settle(d, false, strprintf("%s", v + strlen(BOOT_CHECK_VERDICT_FAILED ":")));
        else
                r = settle(d, false, strprintf("unreadable report '%s'", v));
        return r < 0 ? r : 1;
}

/*
 * EC2's side, while no report is there: an impaired status check, or an instance that stopped
 * without reporting, settles the check as failed (1); 0 while it may still report.
 */
static int read_status(struct dist *d)
{
        const char *id = d->run->boot_check.instance_id;
        struct ec2_instance_status s = {};
        struct aws_error e = {};
        char *why = NULL;
        int r;

        r = ec2_describe_instance_status(own_ec2(d), id, &s, &e);
        if (r == -ENOENT)
                return 0; /* a new instance is not listed at once */
        if (r < 0)
                return dist_fail(&d->why, r, &e, "DescribeInstanceStatus", d->run->region);
        if (streq_ptr(s.system_status, "impaired") || streq_ptr(s.instance_status, "impaired"))
                why = strprintf("EC2 status checks of %s: system %s, instance %s", id,
                                s.system_status, s.instance_status);
        else if (s.state && !streq(s.state, "pending") && !streq(s.state, "running"))
                why = strprintf("instance %s is %s and made no report", id, s.state);
        ec2_instance_status_done(&s);
        if (!why)
                return 0;
        /* It may have tagged itself just before it powered off. */
        r = read_report(d);
        if (r != 0) {
                free(why);
                return r;
        }
        r = settle(d, false, why);
        return r < 0 ? r : 1;
}

/* Wait for the report until [boot_check] timeout_s after the check started (across resumes). */
static int wait_report(struct dist *d)
{
        struct run_boot_check *b = &d->run->boot_check;
        usec_t deadline = b->started + (usec_t)d->cfg->boot_check_timeout_s * USEC_PER_SEC;
        usec_t poll = USEC_PER_SEC, cap = (usec_t)d->cfg->wait_poll_max_s * USEC_PER_SEC, left;
        int r;

        if (b->stage != BOOT_CHECK_WAITING)
                return 0;
        log_info("Boot check: waiting up to %u s for %s to report", d->cfg->boot_check_timeout_s,
                 b->instance_id);
        for (;;) {
                r = read_report(d);
                if (r == 0)
                        r = read_status(d);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (now_usec(CLOCK_REALTIME) >= deadline)
                        break;
                left = deadline - now_usec(CLOCK_REALTIME) + 1;
                (void)usleep((useconds_t)(poll < left ? poll : left));
                /* Doubling up to [run] wait_poll_max_s, as the wait for the image does. */
                poll = poll * 2 < cap ? poll * 2 : cap > USEC_PER_SEC ? cap : USEC_PER_SEC;
        }
        save_console(d);
        return settle(d, false, strprintf("no report within %u s", d->cfg->boot_check_timeout_s));
}

static int terminate(struct dist *d)
{
        struct run_boot_check *b = &d->run->boot_check;
        struct aws_error e = {};
        int r;

        if (b->terminated || !b->instance_id)
                return 0;
        r = ec2_terminate_instance(own_ec2(d), b->instance_id, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "TerminateInstances", d->run->region);
        log_info("Boot check: instance %s terminated", b->instance_id);
        b->terminated = true;
        return dist_save(d);
}

/* A run that fails while an instance may run: end it if it can be found. Best effort. */
static void terminate_after_failure(struct dist *d)
{
        struct run_boot_check *b = &d->run->boot_check;
        _cleanup_free_ char *keep = d->why ? strdup(d->why) : NULL;

        if (b->stage == BOOT_CHECK_LAUNCHING && !b->instance_id &&
            find_instance(d, &b->instance_id) < 0)
                log_warning("Boot check: cannot look for the instance of run %s", d->run->run_id);
        if (terminate(d) < 0)
                log_warning("Boot check: instance %s is left running: %s", strna(b->instance_id),
                            strna(d->why));
        /* The first failure is the run's. */
        free(d->why);
        d->why = TAKE_PTR(keep);
}

/* EC2's answer for an image that is no longer there (the error is then released). */
static bool image_gone(int r, struct aws_error *e)
{
        bool gone = r == -EREMOTEIO && startswith(strempty(e->code), "InvalidAMIID.");

        if (gone)
                aws_error_done(e);
        return gone;
}

static int mark_handled(struct dist *d)
{
        d->run->boot_check.image_handled = true;
        return dist_save(d);
}

/* A failed image: tagged so, and deregistered with its snapshots when configured. */
static int retire_image(struct dist *d)
{
        const struct ec2_tag tag = {TAG_BOOT_CHECK, BOOT_CHECK_VERDICT_FAILED};
        const char *ids[] = {d->run->image_id, NULL};
        struct aws_error e = {};
        int r;

        if (d->run->boot_check.image_handled)
                return 0;
        r = ec2_create_tags(own_ec2(d), ids, &tag, 1, false, &e);
        /* Resumed after the image was deregistered (and before that was saved): it is done. */
        if (image_gone(r, &e))
                return mark_handled(d);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "CreateTags", d->run->region);
        if (d->cfg->boot_check_on_failure == BOOT_CHECK_DEREGISTER) {
                r = ec2_deregister_image(own_ec2(d), d->run->image_id, true, false, &e);
                if (r < 0 && !image_gone(r, &e))
                        return dist_fail(&d->why, r, &e, "DeregisterImage", d->run->region);
                log_notice("Boot check: %s deregistered with its snapshots", d->run->image_id);
        }
        return mark_handled(d);
}

int dist_boot_check(struct dist *d)
{
        struct run_boot_check *b = &d->run->boot_check;
        int r = 0;

        /* A check under way is finished even if the configuration dropped it meanwhile. */
        if (b->stage == BOOT_CHECK_NONE && !d->cfg->boot_check_enable)
                return 0;
        if (b->stage == BOOT_CHECK_PASSED && (b->terminated || !b->instance_id))
                return 0;
        r = launch(d);
        if (r >= 0)
                r = wait_report(d);
        if (r < 0) {
                terminate_after_failure(d);
                return r;
        }
        r = terminate(d);
        if (r >= 0 && b->stage == BOOT_CHECK_FAILED)
                r = retire_image(d);
        if (r < 0)
                return r;
        if (b->stage == BOOT_CHECK_FAILED) {
                free(d->why);
                d->why = strprintf("boot check of %s failed: %s", d->run->image_id, b->reason);
                return -EIO;
        }
        log_notice("Boot check of %s passed", d->run->image_id);
        return 0;
}
