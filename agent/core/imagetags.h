/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tags ec2-imaged puts on its images and snapshots: one list, for the run that makes an image
 * and for distribution and retention, which find images by them.
 */
#pragma once

#define TAG_RUN_ID      "ec2-imaged:run-id"
#define TAG_CONSISTENCY "ec2-imaged:consistency"
#define TAG_SOURCE      "ec2-imaged:source-instance"
#define TAG_LINEAGE     "ec2-imaged:lineage"
