/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ListGrants page by page (aws/kms.c) against a loopback HTTP peer of this test that answers
 * every page with Truncated and a NextMarker up to a page count it is given (moto never pages):
 * each marker is sent back, the listing is whole at the 100-page limit, and one page more is an
 * error naming the key, not a silent cut. Also an answer that says Truncated without a marker,
 * and one without a body (KMS's to an operation without output; moto answers null instead).
 */
#include "page_peer.h"

#include <errno.h>

#include "aws/kms.h"

#define KEY_ARN "arn:aws:kms:us-east-1:123456789012:key/0d1e2f3a-0000-4000-8000-000000000000"

struct peer {
        struct page_peer base; /* first: answer() is handed &base */
        bool no_marker;        /* answer Truncated without NextMarker */
        unsigned bad_markers;  /* requests whose Marker was not the one the last page gave */
};

static char *answer(struct page_peer *base, const char *request, unsigned page)
{
        struct peer *p = (struct peer *)base;
        char want[64], next[64] = "";

        /* Page N > 1 must come with the marker page N-1 gave. */
        snprintf(want, sizeof(want), "\"Marker\":\"page-%u\"", page);
        if ((page == 1) != (strstr(request, "\"Marker\"") == NULL) ||
            (page > 1 && !strstr(request, want)) || !strstr(request, "\"Limit\":100"))
                p->bad_markers++;
        if (page < base->pages)
                snprintf(next, sizeof(next), ",\"Truncated\":true%s%u%s",
                         p->no_marker ? ",\"X\":\"" : ",\"NextMarker\":\"page-", page + 1, "\"");
        return strprintf("{\"Grants\":[{\"GrantId\":\"g-%u\",\"KeyId\":\"" KEY_ARN "\","
                         "\"GranteePrincipal\":\"arn:aws:iam::%s:root\","
                         "\"Operations\":[\"Decrypt\",\"CreateGrant\"],"
                         "\"CreationDate\":1.7E9}]%s}",
                         page, page % 2 ? "111122223333" : "444455556666", next);
}

/* KMS's answer to an operation without output (RevokeGrant, PutKeyPolicy): no body at all. */
static char *no_body(struct page_peer *base, const char *request, unsigned page)
{
        return strdup("");
}

/* A client of a fresh peer that serves PAGES pages, each made by PAGES_OF. */
static struct awsjson_client *client_of(struct peer *p, unsigned pages,
                                        char *(*pages_of)(struct page_peer *, const char *,
                                                          unsigned),
                                        struct creds_provider **creds)
{
        struct awsjson_client *c = NULL;

        *p = (struct peer){
                .base = {.content_type = "application/x-amz-json-1.1", .answer = pages_of}};
        page_peer_start(&p->base, pages, "AWS_ENDPOINT_URL_KMS", creds);
        assert_int_equal(
                awsjson_client_new(&(struct awsjson_client_config){.service = AWSJSON_KMS,
                                                                   .region = "us-east-1",
                                                                   .endpoint_url = p->base.url},
                                   *creds, &c),
                0);
        return c;
}

/* A client of a fresh peer that serves PAGES pages of grants. */
static struct awsjson_client *client(struct peer *p, unsigned pages, struct creds_provider **creds)
{
        return client_of(p, pages, answer, creds);
}

static void done(struct peer *p, struct awsjson_client *c, struct creds_provider *creds)
{
        awsjson_client_free(c);
        page_peer_stop(&p->base, creds);
}

static void test_pages(void **state)
{
        struct creds_provider *creds;
        struct kms_grant *g = NULL;
        struct aws_error e = {};
        struct peer p;
        struct awsjson_client *c = client(&p, 3, &creds);
        size_t n = 0;

        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), 0);
        assert_int_equal(n, 3);
        assert_int_equal(p.base.requests, 3);
        assert_int_equal(p.bad_markers, 0);
        assert_string_equal(g[2].grant_id, "g-3");
        assert_string_equal(g[0].key_id, KEY_ARN);
        assert_string_equal(g[1].operations[1], "CreateGrant");
        assert_int_equal(g[0].creation_date, 1700000000ull * 1000000ull);
        kms_grants_free(g, n);
        /* The grantee filter keeps the odd pages' grants. */
        p.base.requests = 0;
        assert_int_equal(kms_list_grants(c, KEY_ARN, "arn:aws:iam::111122223333:root", &g, &n, &e),
                         0);
        assert_int_equal(n, 2);
        assert_string_equal(g[1].grant_id, "g-3");
        kms_grants_free(g, n);
        done(&p, c, creds);
}

static void test_page_ceiling(void **state)
{
        struct creds_provider *creds;
        struct kms_grant *g = NULL;
        struct aws_error e = {};
        struct peer p;
        struct awsjson_client *c = client(&p, KMS_GRANTS_MAX_PAGES, &creds);
        size_t n = 0;

        /* 100 pages, the last one not truncated: the whole listing. */
        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), 0);
        assert_int_equal(n, KMS_GRANTS_MAX_PAGES);
        assert_int_equal(p.bad_markers, 0);
        kms_grants_free(g, n);
        done(&p, c, creds);

        /* One page more: an error naming the key, after the 100 pages the limit allows. */
        c = client(&p, KMS_GRANTS_MAX_PAGES + 1, &creds);
        g = NULL;
        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), -E2BIG);
        assert_null(g);
        assert_int_equal(p.base.requests, KMS_GRANTS_MAX_PAGES);
        assert_non_null(e.message);
        assert_non_null(strstr(e.message, "grants of key " KEY_ARN ": more than 100 pages"));
        aws_error_done(&e);
        done(&p, c, creds);
}

static void test_truncated_without_marker(void **state)
{
        struct creds_provider *creds;
        struct kms_grant *g = NULL;
        struct aws_error e = {};
        struct peer p;
        struct awsjson_client *c = client(&p, 5, &creds);
        size_t n = 0;

        p.no_marker = true;
        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), -EBADMSG);
        assert_int_equal(p.base.requests, 1);
        assert_null(g);
        done(&p, c, creds);
}

static void test_answer_without_body(void **state)
{
        struct creds_provider *creds;
        struct aws_error e = {};
        struct peer p;
        struct awsjson_client *c = client_of(&p, 1, no_body, &creds);

        assert_int_equal(kms_revoke_grant(c, KEY_ARN, "g-1", &e), 0);
        assert_int_equal(kms_put_key_policy(c, KEY_ARN, "{\"Statement\":[]}", &e), 0);
        assert_int_equal(p.base.requests, 2);
        assert_null(e.code);
        done(&p, c, creds);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pages),
                cmocka_unit_test(test_page_ceiling),
                cmocka_unit_test(test_truncated_without_marker),
                cmocka_unit_test(test_answer_without_body),
        };

        return cmocka_run_group_tests_name("kms pages", tests, NULL, NULL);
}
