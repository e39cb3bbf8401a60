/*
 * Fuzz target: the EC2 XML parsers (error bodies, DescribeInstances, DescribeImages, CreateImage).
 * Every input goes through all of them, since any EC2 answer can reach any parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/ec2.h"
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

        log_set_max_level(LOG_EMERG);
        if (ec2_parse_error(body, size, &e) == 0)
                aws_error_done(&e);
        if (ec2_parse_instance(body, size, &in) == 0)
                ec2_instance_done(&in);
        if (ec2_parse_images(body, size, &ims, &n) == 0)
                ec2_images_free(ims, n);
        if (ec2_parse_create_image(body, size, &id) == 0)
                free(id);
        return 0;
}
