/* SPDX-License-Identifier: Apache-2.0 */
/* The imaging run: phases, their persistence, resume, and the one-image-per-run rule. */
#include "run/flow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/context.h"
#include "distribute/distribute.h"
#include "distribute/distribute_check.h"
#include "distribute/distribute_grants.h"
#include "run/flow_image.h"
#include "run/flow_internal.h"
#include "host/freeze.h"
#include "host/hooks.h"
#include "run/imagename.h"
#include "run/provenance.h"
#include "run/late_images.h"
#include "run/notify.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

int flow_save(struct flow *f)
{
        int r;

        r = state_save_run(f->cfg->state_dir, &f->state, f->run);
        if (r < 0)
                return log_error_errno(r, "Cannot save the run state in %s: %m", f->cfg->state_dir);
        return 0;
}

/* Once the image id is known, every record of the run carries IMAGE_ID= as well. */
static void log_image_id(struct flow *f)
{
        if (f->run->image_id)
                log_context_set("IMAGE_ID", f->run->image_id);
}

static void notify_phase(struct flow *f)
{
        if (f->opts->on_phase && !f->run->dry_run)
                f->opts->on_phase(f->run, f->opts->on_phase_userdata);
}

/* Enter a phase: record it and persist it before any of its work is done. */
int flow_enter(struct flow *f, enum run_phase p)
{
        int r;

        f->run->phase = p;
        f->run->times[p].start = now_usec(CLOCK_REALTIME);
        f->run->times[p].end = 0;
        log_context_set("PHASE", run_phase_to_string(p));
        log_image_id(f);
        log_debug("Phase %s", run_phase_to_string(p));
        r = flow_save(f);
        if (r >= 0)
                notify_phase(f);
        return r;
}

void flow_leave(struct flow *f, enum run_phase p)
{
        f->run->times[p].end = now_usec(CLOCK_REALTIME);
}

int flow_fail(struct flow *f, int r, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        run_state_set(&f->run->error, msg ? msg : strerror(-r));
        f->run->phase = PHASE_FAILED;
        log_image_id(f);
        log_struct(LOG_ERR, "MESSAGE_ID=6f1c3b2a9d0e4c5f8a7b1e2d3c4b5a69\n", "Run %s failed: %s",
                   f->run->run_id, strna(f->run->error));
        (void)flow_save(f);
        notify_phase(f);
        return r < 0 ? r : -EIO;
}

static bool phase_continues_on_error(const struct config *c, const char *phase)
{
        for (char **p = c->hooks_continue_on_error; p && *p; p++)
                if (streq(*p, phase))
                        return true;
        return false;
}

void flow_hooks_setup(struct flow *f, const char *phase, struct hooks_opts *o, struct hook_env *env)
{
        *o = (struct hooks_opts){
                .hooks_dir = f->cfg->hooks_dir,
                .required_uid = 0,
                .timeout_ms = f->cfg->hook_timeout_s * 1000,
                .kill_grace_ms = f->cfg->hook_kill_grace_s * 1000,
                .continue_on_error = phase_continues_on_error(f->cfg, phase),
        };
        *env = (struct hook_env){
                .run_id = f->run->run_id,
                .instance_id = f->run->instance_id,
                .region = f->run->region,
                .image_name = f->run->image_name,
                .image_id = f->run->image_id,
                .config_path = f->cfg->path,
                .mode = f->run->mode == MODE_REBOOT ? HOOKS_MODE_REBOOT : HOOKS_MODE_NO_REBOOT,
                .dry_run = f->run->dry_run,
        };
}

/* Run one phase's hooks with the run's environment; the caller decides what a failure means. */
static int hooks_phase(struct flow *f, const char *phase, struct hooks_phase_result *res)
{
        struct hooks_opts o;
        struct hook_env env;

        flow_hooks_setup(f, phase, &o, &env);
        return hooks_run_phase(&o, phase, &env, res);
}

static int run_hooks(struct flow *f, enum run_phase p, const char *phase)
{
        struct hooks_phase_result res = {};
        int r;

        r = flow_enter(f, p);
        if (r < 0)
                return flow_fail(f, r, "cannot persist the run state");
        r = hooks_phase(f, phase, &res);
        flow_leave(f, p);
        if (r < 0 && phase_continues_on_error(f->cfg, phase)) {
                log_warning("%s hooks failed, going on as configured: %s", phase,
                            strna(res.message));
                r = 0;
        } else if (r < 0) {
                r = flow_fail(f, r, "%s", res.message ? res.message : "hooks failed");
        }
        hooks_phase_result_done(&res);
        return r;
}

/*
 * Pre-freeze hooks may have quiesced an application or moved the instance's identity aside for
 * the freeze; when the run fails between them and the thaw, the post-thaw hooks still run, so
 * that the instance is given back as it was. The run's failure stands whatever they do.
 */
static void undo_pre_freeze(struct flow *f)
{
        struct hooks_phase_result res = {};
        int r;

        log_notice("Running the post-thaw hooks to undo the pre-freeze hooks after the failure");
        r = hooks_phase(f, HOOK_PHASE_POST_THAW, &res);
        if (r < 0)
                log_error("post-thaw hooks after the failure: %s", strna(res.message));
        hooks_phase_result_done(&res);
}

/*
 * The image name, and the tags of the run's images with their provenance (run/provenance.h),
 * from templates, before anything is changed: a name or a tag EC2 would refuse fails the run here.
 */
static int name_image(struct flow *f)
{
        _cleanup_free_ char *err = NULL;
        int r;

        r = run_name_and_tags(f->ctx, f->run, &err);
        if (r < 0)
                return flow_fail(f, r, "%s", strna(err));
        /*
         * Encrypted in place, the image that keeps the configured name is the encrypted copy;
         * the unencrypted original, deregistered once the copy is available, is made under a
         * name of the run's own (AMI names are unique in a region).
         */
        if (distribute_encrypts_in_place(f->cfg, f->ctx->region)) {
                f->run->create_name = strprintf("ec2-imaged-unencrypted-%s", f->run->run_id);
                if (!f->run->create_name)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        return 0;
}

static int new_run(struct flow *f)
{
        struct run_state *run;
        int r;

        r = run_state_new(f->opts->mode, f->opts->dry_run, &run);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        f->state.current = f->run = run;
        log_context_set("RUN_ID", run->run_id);
        if (run_state_set(&run->instance_id, f->ctx->identity.instance_id) < 0 ||
            run_state_set(&run->region, f->ctx->region) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = name_image(f);
        if (r < 0)
                return r;
        log_struct(LOG_INFO, "MESSAGE_ID=2b7e4c1d8a9f4e6b9c3d5a7f1e2b4c6d\n",
                   "Run %s started: %s image '%s' of %s%s", run->run_id,
                   run_mode_to_string(run->mode), run->image_name, run->instance_id,
                   run->dry_run ? " (dry run)" : "");
        return 0;
}

/*
 * Before anything disruptive: the instance is known to EC2, CreateImage on it is permitted, the
 * name is free, and in no-reboot mode the mounts to freeze exist and can be frozen.
 */
static int preflight(struct flow *f)
{
        struct aws_error e = {};
        struct ec2_instance in = {};
        int r;

        r = flow_enter(f, PHASE_PREFLIGHT);
        if (r < 0)
                return flow_fail(f, r, "cannot persist the run state");
        r = ec2_describe_instance(f->ctx->ec2, f->run->instance_id, &in, &e);
        ec2_instance_done(&in);
        if (r < 0)
                return flow_fail(f, r, "DescribeInstances %s: %s: %s", f->run->instance_id,
                                 aws_error_describe(&e, r), strempty(e.message));
        r = flow_image_dry_run(f->ctx, f->run, f->cfg, &e);
        if (r < 0) {
                r = flow_fail(f, r, "DryRun CreateImage: %s: %s", aws_error_describe(&e, r),
                              strempty(e.message));
                aws_error_done(&e);
                return r;
        }
        aws_error_done(&e);
        /* A dry run checks distribution itself, with the lines of its report. */
        if (!f->run->dry_run) {
                _cleanup_free_ char *why = NULL;
                r = distribute_check(f->ctx, f->run->instance_id, false, NULL, &why);
                if (r < 0)
                        return flow_fail(f, r, "[distribute] pre-flight: %s", strna(why));
        }
        if (f->run->mode == MODE_NO_REBOOT) {
                char **mounts = NULL;
                r = freeze_select((const char *const *)f->cfg->freeze_mounts, NULL, &mounts);
                if (r < 0)
                        return flow_fail(f, r, "[freeze] mounts: cannot select what to freeze: %s",
                                         strerror(-r));
                strv_free(f->run->frozen_mounts);
                f->run->frozen_mounts = mounts;
        }
        flow_leave(f, PHASE_PREFLIGHT);
        return 0;
}

static int wait_and_finish(struct flow *f)
{
        int r;

        if (f->run->phase == PHASE_WAITING) {
                _cleanup_free_ char *why = NULL;
                r = flow_enter(f, PHASE_WAITING);
                if (r < 0)
                        return flow_fail(f, r, "cannot persist the run state");
                r = flow_image_wait(f->ctx, f->run, f->cfg, &why);
                flow_leave(f, PHASE_WAITING);
                if (r < 0)
                        return flow_fail(f, r, "image %s did not become available: %s",
                                         f->run->image_id, strna(why));
                f->run->phase =
                        distribute_configured(f->cfg) ? PHASE_DISTRIBUTING : PHASE_POST_IMAGE;
        }
        if (f->run->phase == PHASE_DISTRIBUTING) {
                _cleanup_free_ char *why = NULL;
                r = flow_enter(f, PHASE_DISTRIBUTING);
                if (r >= 0)
                        r = distribute_run(f->ctx, &f->state, f->run, &why);
                flow_leave(f, PHASE_DISTRIBUTING);
                if (r < 0)
                        return flow_fail(f, r, "distribution of %s failed: %s", f->run->image_id,
                                         strna(why));
                f->run->phase = PHASE_POST_IMAGE;
        }
        if (f->run->phase == PHASE_POST_IMAGE) {
                r = run_hooks(f, PHASE_POST_IMAGE, HOOK_PHASE_POST_IMAGE);
                if (r < 0)
                        return r;
        }
        f->run->phase = PHASE_DONE;
        log_image_id(f);
        log_struct(LOG_NOTICE, "MESSAGE_ID=9a4d2e6f1b3c4d5e8f7a6b5c4d3e2f1a\n",
                   "Run %s done: image %s '%s' is %s (%s)", f->run->run_id, f->run->image_id,
                   f->run->image_name, strna(f->run->image_state),
                   strna(consistency_to_string(f->run->consistency)));
        r = flow_save(f);
        notify_phase(f);
        return r;
}

/*
 * STATE_DIR/reboot-required is how a pre-image hook (the shipped patch hook, with [patch]
 * on_reboot_required = reboot-mode) asks for a reboot-mode image: the update it installed needs a
 * reboot, which the image's reboot gives. Taking the file away answers it; it is removed before
 * the hooks run too, so that one left by an earlier run never switches this one. True when the
 * file was there.
 */
static bool take_reboot_request(struct flow *f)
{
        _cleanup_free_ char *path = strprintf("%s/reboot-required", f->cfg->state_dir);

        return path && unlink(path) == 0;
}

/* The phases from wherever the run stands; a fresh run stands at PHASE_PREFLIGHT. */
static int drive(struct flow *f)
{
        struct run_state *run = f->run;
        int r;

        if (run->phase == PHASE_PREFLIGHT) {
                r = preflight(f);
                if (r < 0)
                        return r;
                run->phase = PHASE_PRE_IMAGE;
        }
        if (run->phase == PHASE_PRE_IMAGE) {
                (void)take_reboot_request(f);
                r = run_hooks(f, PHASE_PRE_IMAGE, HOOK_PHASE_PRE_IMAGE);
                if (r < 0)
                        return r;
                if (take_reboot_request(f) && run->mode == MODE_NO_REBOOT) {
                        log_notice("A pre-image hook asked for a reboot: this run takes a "
                                   "reboot-mode image");
                        run->mode = MODE_REBOOT;
                }
                run->phase = run->mode == MODE_REBOOT ? PHASE_REBOOTING : PHASE_PRE_FREEZE;
        }
        if (run->phase == PHASE_PRE_FREEZE) {
                r = run_hooks(f, PHASE_PRE_FREEZE, HOOK_PHASE_PRE_FREEZE);
                if (r < 0) {
                        undo_pre_freeze(f);
                        return r;
                }
                run->phase = PHASE_FREEZING;
        }
        if (run->phase == PHASE_FREEZING || run->phase == PHASE_CREATING) {
                r = flow_create_frozen(f);
                if (r < 0) {
                        undo_pre_freeze(f);
                        return r;
                }
                run->phase = PHASE_POST_THAW;
        }
        if (run->phase == PHASE_REBOOTING) {
                r = flow_create_rebooting(f);
                if (r < 0 || f->result->reboot_pending)
                        return r;
                run->phase = PHASE_WAITING;
        }
        if (run->phase == PHASE_POST_THAW) {
                r = run_hooks(f, PHASE_POST_THAW, HOOK_PHASE_POST_THAW);
                if (r < 0)
                        return r;
                run->phase = PHASE_WAITING;
        }
        return wait_and_finish(f);
}

/* A dry run: everything that changes nothing, reported line by line. */
static int dry_run(struct flow *f)
{
        static const char *const phases[] = {HOOK_PHASE_PRE_IMAGE, HOOK_PHASE_PRE_FREEZE,
                                             HOOK_PHASE_HOLD, HOOK_PHASE_POST_THAW,
                                             HOOK_PHASE_POST_IMAGE};
        struct hooks_opts o = {.hooks_dir = f->cfg->hooks_dir};
        char ***out = &f->result->dry_run_report;
        int r, refused = 0;

        r = preflight(f);
        if (r < 0)
                return r;
        strv_pushf(out, "image name: %s", f->run->image_name);
        strv_pushf(out, "DryRun CreateImage on %s (NoReboot=%s): allowed", f->run->instance_id,
                   f->run->mode == MODE_REBOOT ? "false" : "true");
        for (size_t i = 0; i < ELEMENTSOF(phases); i++) {
                _cleanup_free_ char *text = NULL;
                if (f->run->mode == MODE_REBOOT && i >= 1 && i <= 3)
                        continue;
                r = hooks_dry_run_phase(&o, phases[i], &text);
                if (r < 0)
                        return flow_fail(f, r, "%s hooks: %s", phases[i], strerror(-r));
                refused += r;
                for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                        nl = strchr(line, '\n');
                        if (nl)
                                *nl = '\0';
                        strv_pushf(out, "hooks %s", line);
                }
        }
        if (f->run->mode == MODE_NO_REBOOT) {
                if (!f->run->frozen_mounts || !*f->run->frozen_mounts)
                        strv_pushf(out, "would freeze: nothing (crash-consistent image)");
                for (char **m = f->run->frozen_mounts; m && *m; m++)
                        strv_pushf(out, "would freeze: %s", *m);
        } else {
                strv_pushf(out,
                           "would reboot: EC2 stops the instance, copies its volumes, starts it");
        }
        if (distribute_configured(f->cfg)) {
                _cleanup_free_ char *why = NULL;
                r = distribute_check(f->ctx, f->run->instance_id, true, out, &why);
                if (r < 0)
                        return flow_fail(f, r, "[distribute] pre-flight: %s", strna(why));
        }
        if (refused > 0)
                return flow_fail(f, -EPERM, "%d hook(s) would be refused", refused);
        f->run->phase = PHASE_DONE;
        return 0;
}

/*
 * A run belongs to the instance that started it. The state is saved before CreateImage, so every
 * image carries an unfinished run, and an instance launched from it finds that run in its own
 * state.json: resuming it would re-tag, re-publish or even re-create the source's image (and in
 * reboot mode reboot the source). Such a run goes into the history as "inherited", untouched;
 * nothing of it runs, no AWS call is made for it. Every run and resume passes here first.
 */
static int file_inherited(struct flow *f)
{
        struct run_state *cur = f->state.current;
        const char *self = f->ctx->identity.instance_id;
        int r;

        if (!self)
                return log_error_errno(-ENXIO, "This instance's id is unknown: no run can start "
                                               "or resume");
        if (!cur || streq_ptr(cur->instance_id, self))
                return 0;
        log_notice("Run %s (phase %s) is instance %s's, not this instance's (%s): it came with the "
                   "image; filed as inherited, nothing of it is resumed",
                   cur->run_id, run_phase_to_string(cur->phase), strna(cur->instance_id),
                   strna(self));
        r = run_state_set(&f->result->inherited_run_id, cur->run_id);
        if (r >= 0)
                r = state_inherit_current(&f->state, now_usec(CLOCK_REALTIME));
        if (r >= 0)
                r = state_save(f->cfg->state_dir, &f->state);
        if (r < 0)
                return log_error_errno(r, "Cannot file the inherited run in %s: %m",
                                       f->cfg->state_dir);
        return 0;
}

static int start(struct flow *f)
{
        struct run_state *cur;
        int r;

        r = state_load(f->cfg->state_dir, &f->state);
        if (r < 0)
                return log_error_errno(r, "%s/state.json: cannot load the run state: %m",
                                       f->cfg->state_dir);
        r = file_inherited(f);
        if (r < 0)
                return r;
        flow_thaw_leftovers(f->state.current);
        /* Before anything of this run: the images earlier failed runs may have left behind. */
        r = late_images_sweep(f->ctx, &f->state);
        if (r < 0)
                return r;
        /* And the KMS grants whose lifetime is over, whether or not this run makes an image. */
        r = grants_revoke_expired(f->ctx, &f->state, now_usec(CLOCK_REALTIME), NULL, NULL);
        if (r < 0)
                return r;
        cur = f->state.current;
        if (cur && cur->phase == PHASE_PREFLIGHT && f->opts->action == FLOW_RUN) {
                /* Interrupted before it changed anything: nothing to resume, file it away. */
                cur->phase = PHASE_FAILED;
                run_state_set(&cur->error, "interrupted during the pre-flight checks");
        }
        if (cur && (cur->phase == PHASE_DONE || cur->phase == PHASE_FAILED)) {
                state_finish_current(&f->state, cur->updated);
                cur = NULL;
        }
        if (f->opts->action == FLOW_RESUME) {
                if (!cur) {
                        f->result->nothing_to_resume = true;
                        return 0;
                }
                f->run = cur;
                log_context_set("RUN_ID", cur->run_id);
                if (cur->phase == PHASE_REBOOTING)
                        cur->boots++;
                log_notice("Resuming run %s in phase %s", cur->run_id,
                           run_phase_to_string(cur->phase));
                return 1;
        }
        if (cur) {
                log_error("Run %s is unfinished (phase %s, image '%s'); "
                          "`ec2-imaged resume` continues it",
                          cur->run_id, run_phase_to_string(cur->phase), strna(cur->image_name));
                return -EEXIST;
        }
        r = new_run(f);
        return r < 0 ? r : 1;
}

int flow_execute(struct context *ctx, const struct flow_opts *o, struct flow_result *ret)
{
        struct flow f = {.ctx = ctx, .cfg = ctx->config, .opts = o, .result = ret, .lock_fd = -1};
        int r;

        *ret = (struct flow_result){};
        r = context_open_ec2(ctx);
        if (r < 0)
                return r;
        if (o->dry_run) {
                /* No lock and no state: a dry run changes nothing, ours included. */
                r = new_run(&f);
                if (r >= 0)
                        r = dry_run(&f);
                goto out;
        }

        f.lock_fd = state_lock(ctx->config->state_dir);
        if (f.lock_fd == -EBUSY) {
                log_error("Another run is under way (lock %s/run.lock held); not starting a second",
                          ctx->config->state_dir);
                return -EBUSY;
        }
        if (f.lock_fd < 0)
                return log_error_errno(f.lock_fd, "Cannot take the run lock in %s: %m",
                                       ctx->config->state_dir);
        r = start(&f);
        if (r <= 0)
                goto out;
        r = drive(&f);
out:
        if (f.run && f.run->dry_run) {
                ret->run = TAKE_PTR(f.state.current);
        } else if (f.run) {
                int r2 = run_state_copy(f.run, &ret->run);
                if (r2 < 0 && r >= 0)
                        r = r2;
                /*
                 * A finished run, good or bad, goes into the history; a new run may start. Then
                 * it is told ([notify]); nothing the telling does changes the result.
                 */
                if (f.run->phase == PHASE_DONE || f.run->phase == PHASE_FAILED) {
                        usec_t end = now_usec(CLOCK_REALTIME);

                        state_finish_current(&f.state, end);
                        r2 = state_save(ctx->config->state_dir, &f.state);
                        if (r2 < 0)
                                log_error_errno(r2, "Cannot save the run state: %m");
                        notify_run_end(ctx, &f.state, ret->run, end);
                }
        }
        state_done(&f.state);
        safe_close(f.lock_fd);
        log_context_set("PHASE", NULL);
        log_context_set("IMAGE_ID", NULL);
        return r;
}

void flow_result_done(struct flow_result *r)
{
        run_state_free(r->run);
        free(r->inherited_run_id);
        strv_free(r->dry_run_report);
        *r = (struct flow_result){};
}
