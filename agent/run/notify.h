/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Telling people how a run ended ([notify]): an EventBridge event, an SNS message and a
 * Prometheus textfile, at the end of every run, a resumed one included, good or bad. None of them
 * ever changes how the run ended: a failed notification is logged (after the retries the
 * transport and its retry budget allow) and the run's result stands.
 */
#pragma once

#include "core/state.h"

struct context;

/* The detail-types of the EventBridge event and the source it comes from. */
#define NOTIFY_EVENT_SOURCE       "ec2-imaged"
#define NOTIFY_DETAIL_SUCCEEDED   "Image Run Succeeded"
#define NOTIFY_DETAIL_FAILED      "Image Run Failed"
#define NOTIFY_SNS_ATTRIBUTE_NAME "result"

/*
 * The run run (PHASE_DONE or PHASE_FAILED) ended at end; st is the state with the run already in
 * its history (for the totals of the textfile). Sends what [notify] configures; returns nothing,
 * since nothing here may fail the run.
 */
void notify_run_end(struct context *ctx, const struct state *st, const struct run_state *run,
                    usec_t end);

/*
 * The Prometheus textfile (notify_metrics.c): the exposition text for run and st (see the README,
 * "Notifications"), and its atomic replacement of path (absolute; its directory reached without
 * following a symlink, the file itself replaced by rename, never written through). Exposed for
 * the unit tests.
 */
int notify_metrics_render(const struct state *st, const struct run_state *run, usec_t end,
                          char **ret);
int notify_metrics_write(const char *path, const char *text);
