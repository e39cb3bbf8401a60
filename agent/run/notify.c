/* SPDX-License-Identifier: Apache-2.0 */
/* The end of a run told to EventBridge, SNS and a Prometheus textfile (see notify.h). */
#include "run/notify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2.h"
#include "aws/budget.h"
#include "aws/sns.h"
#include "aws/vocab.h"
#include "core/context.h"
#include "util/json.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* The two clients of one run's end share a rate limit and a retry quota, as distribution's do. */
#define NOTIFY_MAX_RATE 10.0
#define NOTIFY_BURST    20.0

/* The region of an EventBridge bus: an ARN names it, a bare name is in the run's own region. */
static char *bus_region(const char *bus, const char *own)
{
        char *region = NULL;

        if (!startswith(bus, "arn:"))
                return strdup(own);
        return aws_arn_region(bus, "events", &region) < 0 ? NULL : region;
}

static void put_event(struct context *ctx, struct aws_budget *b, const struct run_state *run,
                      const char *detail)
{
        const char *bus = ctx->config->notify_event_bus;
        _cleanup_free_ char *region = bus_region(bus, ctx->region), *id = NULL;
        struct awsjson_client *c = NULL;
        struct aws_error e = {};
        int r;

        if (!region)
                return (void)log_warning("[notify] event_bus %s: not a bus name or an event bus "
                                         "ARN; no event sent",
                                         bus);
        r = awsjson_client_new(
                &(struct awsjson_client_config){.service = AWSJSON_EVENTS,
                                                .region = region,
                                                .endpoint_url = ctx->config->endpoint_url,
                                                .transport = context_aws_transport(ctx)},
                ctx->creds, &c);
        if (r < 0)
                return (void)log_warning_errno(r, "EventBridge client for %s: %m; no event sent",
                                               region);
        awsjson_client_set_budget(c, b);
        r = events_put_event(c, bus, NOTIFY_EVENT_SOURCE,
                             run->phase == PHASE_DONE ? NOTIFY_DETAIL_SUCCEEDED
                                                      : NOTIFY_DETAIL_FAILED,
                             detail, &id, &e);
        if (r < 0)
                log_warning("EventBridge PutEvents on bus %s in %s failed: %s%s%s (the run's "
                            "result stands)",
                            bus, region, aws_error_describe(&e, r), e.message ? ": " : "",
                            strempty(e.message));
        else
                log_info("Run %s: event %s put on EventBridge bus %s", run->run_id, id, bus);
        aws_error_done(&e);
        awsjson_client_free(c);
}

/*
 * "ec2-imaged run RUN_ID succeeded: ami-..." or "... failed", within SNS's 100 characters: a run
 * id is 36, an image id at most 32 (a longer value from a hand-edited state is cut).
 */
static char *sns_subject(const struct run_state *run)
{
        if (run->phase == PHASE_DONE)
                return strprintf("ec2-imaged run %.36s succeeded: %.32s", run->run_id,
                                 strna(run->image_id));
        return strprintf("ec2-imaged run %.36s failed", run->run_id);
}

static char *sns_text(const struct run_state *run)
{
        if (run->phase == PHASE_DONE)
                return strprintf("Run %s of %s made image %s '%s' in %s (%s).", run->run_id,
                                 strna(run->instance_id), strna(run->image_id),
                                 strna(run->image_name), strna(run->region),
                                 strna(consistency_to_string(run->consistency)));
        return strprintf("Run %s of %s failed: %s (image %s).", run->run_id,
                         strna(run->instance_id), strna(run->error), strna(run->image_id));
}

static void publish(struct context *ctx, struct aws_budget *b, const struct run_state *run,
                    const char *json)
{
        const char *topic = ctx->config->notify_sns_topic_arn;
        _cleanup_free_ char *region = NULL, *id = NULL, *subject = sns_subject(run),
                            *text = sns_text(run);
        struct ec2_client *c = NULL;
        struct aws_error e = {};
        int r;

        if (!subject || !text)
                return (void)log_error("Out of memory");
        r = aws_arn_region(topic, "sns", &region);
        if (r < 0)
                return (void)log_warning("[notify] sns_topic_arn %s: not an SNS topic ARN; no "
                                         "message sent",
                                         topic);
        r = sns_client_new(&(struct ec2_client_config){.region = region,
                                                       .endpoint_url = ctx->config->endpoint_url,
                                                       .transport = context_aws_transport(ctx)},
                           ctx->creds, &c);
        if (r < 0)
                return (void)log_warning_errno(r, "SNS client for %s: %m; no message sent", region);
        ec2_client_set_budget(c, b);
        r = sns_publish(c,
                        &(struct sns_message){.topic_arn = topic,
                                              .subject = subject,
                                              .text = text,
                                              .attr_name = NOTIFY_SNS_ATTRIBUTE_NAME,
                                              .attr_value = json},
                        &id, &e);
        if (r < 0)
                log_warning("SNS Publish to %s failed: %s%s%s (the run's result stands)", topic,
                            aws_error_describe(&e, r), e.message ? ": " : "", strempty(e.message));
        else
                log_info("Run %s: message %s published to %s", run->run_id, id, topic);
        aws_error_done(&e);
        ec2_client_free(c);
}

static void write_textfile(const char *path, const struct state *st, const struct run_state *run,
                           usec_t end)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = notify_metrics_render(st, run, end, &text);
        if (r >= 0)
                r = notify_metrics_write(path, text);
        if (r < 0)
                log_warning_errno(r, "[notify] prometheus_textfile %s: cannot write it: %m", path);
}

void notify_run_end(struct context *ctx, const struct state *st, const struct run_state *run,
                    usec_t end)
{
        const struct config *cfg = ctx->config;
        _cleanup_json_ cJSON *tree = NULL;
        _cleanup_free_ char *json = NULL;
        struct aws_budget budget;

        if (!run || run->dry_run || (run->phase != PHASE_DONE && run->phase != PHASE_FAILED))
                return;
        if (cfg->notify_prometheus_textfile)
                write_textfile(cfg->notify_prometheus_textfile, st, run, end);
        if (!cfg->notify_event_bus && !cfg->notify_sns_topic_arn)
                return;
        /* The detail is what `run --json` prints for the run. */
        tree = run_state_to_json(run);
        json = tree ? cJSON_PrintUnformatted(tree) : NULL;
        if (!json)
                return (void)log_error("Out of memory");
        aws_budget_init(&budget, NOTIFY_MAX_RATE, NOTIFY_BURST);
        if (cfg->notify_event_bus)
                put_event(ctx, &budget, run, json);
        if (cfg->notify_sns_topic_arn)
                publish(ctx, &budget, run, json);
}
