/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the EC2 XML parsers (error bodies, DescribeInstances, DescribeImages, CreateImage,
 * and the distribution answers: CopyImage, launch template versions, DescribeVolumes,
 * <return>true</return>; and the boot check's: RunInstances, instances by tag, DescribeTags,
 * instance status, console output).
 * Every input goes through all of them, since any EC2 answer can reach any parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/ec2.h"
#include "aws/ec2_boot.h"
#include "aws/ec2_dist.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data;
        struct aws_error e = {};
        struct ec2_instance in = {};
        struct ec2_image *ims = NULL;
        size_t n = 0;
        char *id = NULL;
        struct ec2_lt_version *v = NULL;
        char **ids = NULL;
        int64_t version;
        struct ec2_instance_status st = {};

        log_set_max_level(LOG_EMERG);
        if (ec2_parse_error(body, size, &e) == 0)
                aws_error_done(&e);
        if (ec2_parse_instance(body, size, &in) == 0)
                ec2_instance_done(&in);
        if (ec2_parse_images(body, size, &ims, &n) == 0)
                ec2_images_free(ims, n);
        if (ec2_parse_create_image(body, size, &id) == 0)
                free(id);
        if (ec2_parse_copy_image(body, size, &id) == 0)
                free(id);
        (void)ec2_parse_create_lt_version(body, size, &version);
        if (ec2_parse_lt_versions(body, size, &v, &n) == 0)
                ec2_lt_versions_free(v, n);
        if (ec2_parse_lt_ids(body, size, &ids) == 0) {
                for (char **s = ids; *s; s++)
                        free(*s);
                free(ids);
        }
        if (ec2_parse_volume_keys(body, size, &ids) == 0) {
                for (char **s = ids; *s; s++)
                        free(*s);
                free(ids);
        }
        (void)ec2_parse_return_true(body, size, "EnableImageDeprecationResponse");
        if (ec2_parse_run_instance(body, size, &id) == 0)
                free(id);
        if (ec2_parse_instance_ids(body, size, &ids) == 0) {
                for (char **s = ids; *s; s++)
                        free(*s);
                free(ids);
        }
        if (ec2_parse_tag_value(body, size, "ec2-imaged:boot-check-result", &id) == 0)
                free(id);
        if (ec2_parse_instance_status(body, size, &st) == 0)
                ec2_instance_status_done(&st);
        if (ec2_parse_console_output(body, size, &id, &n) == 0)
                free(id);
        return 0;
}
