/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tags ec2-imaged puts on its images and snapshots: one list, for the run that makes an image
 * and for distribution and retention, which find images by them.
 */
#pragma once

#include <stddef.h>

#include "aws/ec2.h"
#include "core/config.h"

struct run_state;

#define TAG_RUN_ID      "ec2-imaged:run-id"
#define TAG_CONSISTENCY "ec2-imaged:consistency"
#define TAG_SOURCE      "ec2-imaged:source-instance"
#define TAG_LINEAGE     "ec2-imaged:lineage"
/*
 * Provenance, by default on every image (run/provenance.h): the AMI this instance was launched
 * from, and "{os_id} {os_version}". An operator's [image] tag of the same key replaces ours.
 */
#define TAG_SOURCE_IMAGE "ec2-imaged:source-image"
#define TAG_OS           "ec2-imaged:os"

/*
 * The boot check (distribute_bootcheck.c, run/bootcheck_report.c): the instance launched from an
 * image carries TAG_BOOT_CHECK = the run id and reports by tagging itself TAG_BOOT_CHECK_RESULT =
 * "ok" or "failed:REASON"; an image whose check failed is tagged TAG_BOOT_CHECK = "failed". The
 * user-data line that tells the instance's ec2-imaged to report, parsed by run/firstboot.c.
 */
#define TAG_BOOT_CHECK            "ec2-imaged:boot-check"
#define TAG_BOOT_CHECK_RESULT     "ec2-imaged:boot-check-result"
#define BOOT_CHECK_VERDICT_FAILED "failed"
#define BOOT_CHECK_USERDATA_FMT   "#!/bin/sh\n#ec2-imaged: boot-check=%s\n"

/*
 * EC2 allows 50 tags on a resource (aws: ones aside), and ours take up to 7 of them: run id,
 * consistency, source instance, lineage, source image, os and, on an image whose boot check
 * failed, boot-check. The configuration allows no more than the rest (core/config_load.c).
 */
#define EC2_TAGS_MAX   50
#define IMAGE_TAGS_OWN 7
#define IMAGE_TAGS_MAX EC2_TAGS_MAX

/*
 * The tags of a run's images: the run's rendered tags ([image] tags and the provenance defaults,
 * run->tags; a run saved by an older version has none, and gets cfg's as they are written), then
 * the run id, the consistency (crash until it is known) and the source instance, and the lineage
 * when one is given (CreateImage passes NULL: distribution adds it). The strings are borrowed
 * from cfg, run and lineage. Returns the count.
 */
size_t image_tags_build(const struct config *cfg, const struct run_state *run, const char *lineage,
                        struct ec2_tag tags[static IMAGE_TAGS_MAX]);

/* The value of an image's tag key, or NULL when it has none. */
const char *image_tag(const struct ec2_image *im, const char *key);
