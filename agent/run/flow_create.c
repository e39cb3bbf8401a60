/* SPDX-License-Identifier: Apache-2.0 */
/* The CreateImage step of a run, in both modes (see flow_internal.h). */
#include "run/flow_internal.h"
#include "run/flow.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds_provider.h"
#include "core/context.h"
#include "host/freeze.h"
#include "host/hold.h"
#include "run/flow_image.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* SIGTERM or SIGINT inside the frozen window: thaw first, then die of the signal. */
static void on_frozen_signal(int sig)
{
        freeze_emergency_thaw();
        signal(sig, SIG_DFL);
        raise(sig);
}

static void frozen_signals(bool on, struct sigaction old[2])
{
        struct sigaction sa = {.sa_handler = on_frozen_signal};

        if (on) {
                sigemptyset(&sa.sa_mask);
                sigaction(SIGTERM, &sa, &old[0]);
                sigaction(SIGINT, &sa, &old[1]);
        } else {
                sigaction(SIGTERM, &old[0], NULL);
                sigaction(SIGINT, &old[1], NULL);
        }
}

/* The image cannot be known to be fs-frozen (why): mark it crash-consistent, on it too. */
static void mark_crash(struct flow *f, const char *why)
{
        if (f->run->consistency == CONSISTENCY_CRASH)
                return;
        log_warning("Image %s is marked crash-consistent: %s", f->run->image_id, why);
        f->run->consistency = CONSISTENCY_CRASH;
        (void)flow_image_retag_consistency(f->ctx, f->run);
}

/*
 * CreateImage failed with r (what: which one, for the message). When EC2's answer says nothing
 * was made, the run fails. Otherwise the outcome is unknown: the request may have been acted on,
 * or may still be (a request held up in the network reaches EC2 after the client gave up). That
 * is saved first, then the name is looked up until [run] adopt_timeout_s; an image that appears
 * is adopted, and a run that ends without one keeps the outcome "unknown" in its history, which
 * every later run looks at (late_images.c). CreateImage is never sent again in this run.
 */
static int after_unclear_create(struct flow *f, int r, struct aws_error *e, const char *what)
{
        _cleanup_free_ char *why = NULL;
        int r2;

        if (!flow_image_outcome_unknown(r, e))
                return flow_fail(f, r, "%s: %s: %s%s%s", what, aws_error_describe(e, r),
                                 strempty(e->message), e->request_id ? " (request " : "",
                                 e->request_id ? e->request_id : "");
        log_warning("%s's outcome is unknown (%s); looking for image '%s' for up to %u s", what,
                    aws_error_describe(e, r), run_state_create_name(f->run),
                    f->cfg->adopt_timeout_s);
        f->run->create_outcome = CREATE_UNKNOWN;
        f->run->unknown_since = now_usec(CLOCK_REALTIME);
        (void)flow_save(f);
        r2 = flow_image_adopt(f->ctx, f->run, f->cfg, &why);
        if (r2 < 0)
                return flow_fail(f, r, "%s: %s: %s; %s", what, aws_error_describe(e, r),
                                 strempty(e->message), strna(why));
        f->run->create_outcome = CREATE_ADOPTED;
        return 0;
}

/* CreateImage returned r: answered, or after_unclear_create(). Releases e. */
static int after_create(struct flow *f, int r, struct aws_error *e, const char *what)
{
        if (r >= 0)
                f->run->create_outcome = CREATE_ANSWERED;
        else
                r = after_unclear_create(f, r, e, what);
        aws_error_done(e);
        return r;
}

/*
 * Resumed with the run's CreateImage sent before the interruption: adopt its image if it exists.
 * With the outcome unknown, keep looking for the rest of the adopt window and never send a second
 * request. 1 when the run has its image now, 0 when CreateImage is still to be sent.
 */
static int resume_create(struct flow *f)
{
        _cleanup_free_ char *why = NULL;
        struct aws_error e = {};
        int r;

        r = flow_image_find(f->ctx, f->run, &e);
        if (r < 0) {
                r = flow_fail(f, r, "DescribeImages: %s: %s", aws_error_describe(&e, r),
                              strempty(e.message));
                aws_error_done(&e);
                return r;
        }
        if (!f->run->image_id && f->run->create_outcome == CREATE_UNKNOWN) {
                r = flow_image_adopt(f->ctx, f->run, f->cfg, &why);
                if (r < 0)
                        return flow_fail(f, r,
                                         "CreateImage's outcome is unknown since the "
                                         "interruption: %s",
                                         strna(why));
        }
        if (!f->run->image_id)
                return 0;
        if (f->run->create_outcome != CREATE_ANSWERED)
                f->run->create_outcome = CREATE_ADOPTED;
        return 1;
}

/* Freeze what the run chose; r < 0 only when the run must stop. Sets *frozen. */
static int freeze(struct flow *f, struct freeze_set **set, struct sigaction old[2], bool *frozen)
{
        int r;

        *frozen = false;
        if (strv_length(f->run->frozen_mounts) == 0) {
                log_warning("No filesystem to freeze; the image is crash-consistent");
                f->run->consistency = CONSISTENCY_CRASH;
                return 0;
        }
        r = freeze_set_new(f->run->frozen_mounts, f->cfg->freeze_timeout_ms, set);
        if (r >= 0) {
                frozen_signals(true, old);
                r = freeze_set_freeze(*set);
                if (r < 0)
                        frozen_signals(false, old);
        }
        if (r < 0 && f->cfg->freeze_on_failure == FREEZE_ON_FAILURE_CONTINUE) {
                log_warning("Freeze failed (%s); taking a crash-consistent image as [freeze] "
                            "on_failure = continue allows",
                            strerror(-r));
                f->run->consistency = CONSISTENCY_CRASH;
                return 0;
        }
        if (r < 0)
                return flow_fail(f, r, "could not freeze the filesystems, nothing was imaged: %s",
                                 strerror(-r));
        *frozen = true;
        f->run->consistency = CONSISTENCY_FS_FROZEN;
        return 0;
}

/*
 * Made ready before the freeze: fresh credentials, and a resumed run's CreateImage looked for (a
 * warm connection as well). 0 when CreateImage is still to be sent, 1 when the run has its image,
 * else the run's failure.
 */
static int before_freeze(struct flow *f)
{
        const struct aws_credentials *creds;
        int r;

        /*
         * Resumed from the save after the thaw (the crash came before the post-thaw hooks): the
         * image and its consistency were settled then, with what the thaw reported.
         */
        if (f->run->image_id)
                return 1;
        r = creds_provider_get(f->ctx->creds, &creds);
        if (r < 0)
                return flow_fail(f, r, "no AWS credentials before the freeze: %s", strerror(-r));
        r = resume_create(f);
        if (r <= 0)
                return r;
        /*
         * Resumed after a crash inside the frozen window: CreateImage reached EC2, but the thaw
         * (by our signal handler, the guard or the boot) may have come before its answer, so the
         * freeze may not have covered the snapshot point.
         */
        mark_crash(f, "this run was interrupted in the frozen window before CreateImage answered");
        return 1;
}

/* After the thaw (rt: what it reported) and CreateImage's answer: the image's consistency. */
static int after_thaw(struct flow *f, bool frozen, int rt, const char *lost)
{
        _cleanup_free_ char *fields = NULL;
        int r;

        /*
         * The snapshot point is when EC2 acts on the request; only an answer read while the
         * freeze held proves it came before the thaw. After the guard's thaw (the freeze outlived
         * [freeze] timeout_ms) or an unclear answer, the image may postdate the thaw.
         */
        if (frozen && rt == -ETIMEDOUT)
                mark_crash(f, "the freeze outlived [freeze] timeout_ms and the guard thawed before "
                              "CreateImage answered");
        else if (frozen && f->run->create_outcome == CREATE_ADOPTED)
                mark_crash(f, "CreateImage's answer was unclear, so it may have reached EC2 after "
                              "the thaw");
        fields = strprintf("IMAGE_ID=%s\n", strna(f->run->image_id));
        log_struct(LOG_INFO, fields,
                   "CreateImage answered %s in %ld ms; filesystems frozen for %ld ms",
                   strna(f->run->image_id), f->run->create_call_ms, f->run->freeze_window_ms);
        /* The window is over: saved as such, a resume goes on with the post-thaw hooks. */
        f->run->phase = PHASE_POST_THAW;
        r = flow_save(f);
        /*
         * A holder that ended before its release let go of what it held, perhaps before the
         * snapshot point: the image is not what the held hooks promise. The run fails (and the
         * post-thaw hooks run); the image stays, named in the message.
         */
        if (r >= 0 && lost)
                return flow_fail(f, -EPROTO, "%s: image %s is not application-consistent", lost,
                                 strna(f->run->image_id));
        return r;
}

/* Start the held hooks and see that none of them ended since its READY; then the freeze. */
static int hold_and_freeze(struct flow *f, struct hold_set **hold, struct freeze_set **set,
                           struct sigaction old[2], bool *frozen)
{
        _cleanup_free_ char *msg = NULL;
        int r;

        *frozen = false;
        r = flow_hold_start(f, hold);
        if (r < 0)
                return r;
        r = flow_enter(f, PHASE_FREEZING);
        if (r >= 0 && hold_lost(*hold) && flow_hold_end(f, *hold, &msg) < 0)
                return flow_fail(f, -EPROTO, "%s; nothing was frozen", strna(msg));
        if (r < 0) {
                (void)flow_hold_end(f, *hold, &msg);
                return flow_fail(f, r, "cannot persist the run state before the freeze");
        }
        r = freeze(f, set, old, frozen);
        if (r < 0)
                (void)flow_hold_end(f, *hold, &msg);
        return r;
}

/*
 * No-reboot: freeze, one CreateImage round trip, thaw. Everything the call needs is made ready
 * first: fresh credentials, a warm connection (the name lookup), the state on disk. While frozen
 * nothing is written: log lines are held and the state is saved again only after the thaw.
 */
int flow_create_frozen(struct flow *f)
{
        _cleanup_freeze_set_ struct freeze_set *set = NULL;
        _cleanup_(hold_freep) struct hold_set *hold = NULL;
        _cleanup_free_ char *lost = NULL;
        struct sigaction old[2];
        struct aws_error e = {};
        bool frozen;
        int r, rt = 0;
        usec_t t0, t1;

        r = before_freeze(f);
        if (r != 0)
                return r < 0 ? r : 0;
        r = hold_and_freeze(f, &hold, &set, old, &frozen);
        if (r < 0)
                return r;

        /* The frozen window: one API round trip and nothing else. */
        f->run->phase = PHASE_CREATING;
        t0 = now_usec(CLOCK_MONOTONIC);
        r = flow_image_create(f->ctx, f->run, f->cfg, true, &e);
        t1 = now_usec(CLOCK_MONOTONIC);
        if (frozen) {
                rt = freeze_set_thaw(set);
                frozen_signals(false, old);
                f->run->freeze_window_ms = (long)freeze_set_window_ms(set);
        }
        /* The holders' release comes right after the thaw, before anything else. */
        (void)flow_hold_end(f, hold, &lost);
        f->run->create_call_ms = (long)((t1 - t0) / USEC_PER_MSEC);
        flow_leave(f, PHASE_FREEZING);
        if (rt < 0 && rt != -ETIMEDOUT)
                log_error_errno(rt, "Thaw reported an error: %m");

        r = after_create(f, r, &e, "CreateImage");
        if (r < 0)
                return r;
        return after_thaw(f, frozen, rt, lost);
}

/*
 * Reboot mode: the run is saved in PHASE_REBOOTING before the call, because EC2 shuts the
 * instance down right after it; the run resumes after the boot with the name lookup.
 */
int flow_create_rebooting(struct flow *f)
{
        struct aws_error e = {};
        int r;

        r = resume_create(f);
        if (r < 0)
                return r;
        if (r > 0) {
                flow_leave(f, PHASE_REBOOTING);
                return 0;
        }
        flow_hold_notice_reboot(f);
        f->run->consistency = CONSISTENCY_REBOOTED;
        r = flow_enter(f, PHASE_REBOOTING);
        if (r < 0)
                return flow_fail(f, r, "cannot persist the run state before the reboot");
        r = flow_image_create(f->ctx, f->run, f->cfg, false, &e);
        r = after_create(f, r, &e, "CreateImage (reboot)");
        if (r < 0)
                return r;
        log_notice("CreateImage answered %s; EC2 now reboots the instance and the run resumes "
                   "after the boot",
                   strna(f->run->image_id));
        f->result->reboot_pending = true;
        return flow_save(f);
}
