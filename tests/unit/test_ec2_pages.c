/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The paged launch template listings (ec2_dist.c) against a loopback HTTP peer of this test that
 * answers every page with a NextToken up to a page count it is given: the listing is whole at the
 * 100-page limit, and one page more is an error that names the template, not a silent cut.
 */
#include "page_peer.h"

#include <errno.h>

#include "aws/ec2.h"
#include "aws/ec2_dist.h"

#define NS "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""

static char *answer(struct page_peer *p, const char *request, unsigned page)
{
        bool versions = strstr(request, "Action=DescribeLaunchTemplateVersions") != NULL;
        char next[64] = "";

        if (page < p->pages)
                snprintf(next, sizeof(next), "<nextToken>page-%u</nextToken>", page + 1);
        if (versions)
                return strprintf("<DescribeLaunchTemplateVersionsResponse " NS ">"
                                 "<requestId>r</requestId><launchTemplateVersionSet><item>"
                                 "<launchTemplateId>lt-0abc</launchTemplateId><versionNumber>%u"
                                 "</versionNumber><defaultVersion>false</defaultVersion>"
                                 "<launchTemplateData><imageId>ami-1</imageId>"
                                 "</launchTemplateData></item></launchTemplateVersionSet>%s"
                                 "</DescribeLaunchTemplateVersionsResponse>",
                                 page, next);
        return strprintf("<DescribeLaunchTemplatesResponse " NS "><requestId>r</requestId>"
                         "<launchTemplates><item><launchTemplateId>lt-%u"
                         "</launchTemplateId></item></launchTemplates>%s"
                         "</DescribeLaunchTemplatesResponse>",
                         page, next);
}

/* A client of a fresh peer that serves PAGES pages. */
static struct ec2_client *client(struct page_peer *p, unsigned pages, struct creds_provider **creds)
{
        struct ec2_client *c = NULL;

        *p = (struct page_peer){.content_type = "text/xml;charset=UTF-8", .answer = answer};
        page_peer_start(p, pages, "AWS_ENDPOINT_URL_EC2", creds);
        assert_int_equal(ec2_client_new(&(struct ec2_client_config){.region = "us-east-1",
                                                                    .endpoint_url = p->url},
                                        *creds, &c),
                         0);
        return c;
}

static void done(struct page_peer *p, struct ec2_client *c, struct creds_provider *creds)
{
        ec2_client_free(c);
        page_peer_stop(p, creds);
}

static void test_versions(void **state)
{
        struct creds_provider *creds;
        struct ec2_lt_version *v = NULL;
        struct aws_error e = {};
        struct page_peer p;
        struct ec2_client *c = client(&p, 100, &creds);
        size_t n = 0;

        /* 100 pages, the last without NextToken: the whole listing. */
        assert_int_equal(ec2_describe_launch_template_versions(c, "web", NULL, &v, &n, &e), 0);
        assert_int_equal(n, 100);
        assert_int_equal(v[99].version, 100);
        ec2_lt_versions_free(v, n);
        done(&p, c, creds);

        /* One page more: an error naming the template, after the 100 pages the limit allows. */
        c = client(&p, 101, &creds);
        v = NULL;
        assert_int_equal(ec2_describe_launch_template_versions(c, "web", NULL, &v, &n, &e), -E2BIG);
        assert_null(v);
        assert_int_equal(p.requests, 100);
        assert_non_null(e.message);
        assert_non_null(strstr(e.message, "launch template web"));
        assert_non_null(strstr(e.message, "more than 100 pages"));
        aws_error_done(&e);
        done(&p, c, creds);
}

static void test_templates(void **state)
{
        struct creds_provider *creds;
        struct aws_error e = {};
        struct page_peer p;
        struct ec2_client *c = client(&p, 100, &creds);
        char **ids = NULL;

        assert_int_equal(ec2_describe_launch_template_ids(c, &ids, &e), 0);
        assert_int_equal(strv_length(ids), 100);
        assert_string_equal(ids[99], "lt-100");
        strv_free(ids);
        done(&p, c, creds);

        c = client(&p, 1000, &creds);
        ids = NULL;
        assert_int_equal(ec2_describe_launch_template_ids(c, &ids, &e), -E2BIG);
        assert_null(ids);
        assert_int_equal(p.requests, 100);
        assert_non_null(strstr(e.message, "launch templates: more than 100 pages"));
        aws_error_done(&e);
        done(&p, c, creds);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_templates),
        };

        return cmocka_run_group_tests_name("ec2 pages", tests, NULL, NULL);
}
