/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's output module: a result's text and JSON come from the one tree, a failed allocation
 * anywhere in the building is reported once at the end, and the answer of the daemon's worker is
 * passed on as it came when it is not one JSON document.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "core/state.h"

/* What output_print() writes for res, as a string the caller frees; r its return value. */
static char *printed(const struct result *res, bool json, int *r)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        assert_non_null(f);
        *r = output_print(res, json, f);
        assert_int_equal(fclose(f), 0);
        return text;
}

static void assert_printed(const struct result *res, bool json, const char *want)
{
        int r;
        char *text = printed(res, json, &r);

        assert_int_equal(r, 0);
        assert_string_equal(text, want);
        free(text);
}

static void test_run_text_and_json(void **unused)
{
        struct run_state *run = NULL;
        char *report[] = {"would freeze: /srv", NULL};
        struct result res;
        char *json;
        cJSON *j;
        int r;

        assert_int_equal(run_state_new(MODE_NO_REBOOT, true, &run), 0);
        assert_int_equal(run_state_set(&run->run_id, "r-1"), 0);
        assert_int_equal(run_state_set(&run->image_name, "img"), 0);
        run->phase = PHASE_DONE;
        run->freeze_window_ms = 12;
        run->create_call_ms = 5;
        run->times[PHASE_PRE_IMAGE] = (struct phase_time){.start = 1000000, .end = 1250000};
        /* Timed, but not among the phases the text lists. */
        run->times[PHASE_CREATING] = (struct phase_time){.start = 1000000, .end = 2000000};
        result_take(&res, VIEW_RUN, run_state_to_json(run));
        result_add_strv(&res, res.tree, "dry_run_report", report);
        assert_printed(&res, false,
                       "would freeze: /srv\n"
                       "run:          r-1 (no-reboot, dry run)\n"
                       "phase:        done\n"
                       "image:        n/a img\n"
                       "state:        n/a\n"
                       "consistency:  n/a\n"
                       "freeze:       12 ms (CreateImage call 5 ms)\n"
                       "  pre-image   250 ms\n");

        /* The JSON is the tree: the run's fields and the report after them. */
        json = printed(&res, true, &r);
        j = cJSON_Parse(json);
        assert_int_equal(r, 0);
        assert_non_null(j);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "run_id")), "r-1");
        assert_string_equal(j->child->string, "run_id");
        assert_string_equal(cJSON_GetArrayItem(j, cJSON_GetArraySize(j) - 1)->string,
                            "dry_run_report");
        assert_non_null(strchr(json, '\t'));
        assert_int_equal(json[strlen(json) - 1], '\n');
        cJSON_Delete(j);
        free(json);
        result_done(&res);
        run_state_free(run);
}

static void test_failed_allocation_is_reported_once(void **unused)
{
        struct result res;
        cJSON *lost;
        int r;
        char *text;

        /* A tree that could not be built elsewhere, and a parent whose own add failed. */
        result_take(&res, VIEW_STATUS, NULL);
        assert_int_equal(res.error, -ENOMEM);
        text = printed(&res, true, &r);
        assert_int_equal(r, -ENOMEM);
        assert_string_equal(text, "");
        free(text);

        result_new(&res, VIEW_CHECK);
        assert_int_equal(res.error, 0);
        lost = result_add_object(&res, NULL, "item");
        assert_null(lost);
        assert_null(result_add_str(&res, lost, "name", "x"));
        assert_non_null(result_add_bool(&res, res.tree, "ok", true));
        assert_int_equal(res.error, -ENOMEM);
        text = printed(&res, false, &r);
        assert_int_equal(r, -ENOMEM);
        assert_string_equal(text, "");
        free(text);
        result_done(&res);
}

static void test_worker_answers(void **unused)
{
        static const char run[] = "{\n\t\"run_id\":\t\"r-2\",\n\t\"phase\":\t\"failed\",\n"
                                  "\t\"image_id\":\tnull,\n\t\"error\":\t\"CreateImage: no\"\n}\n";
        static const char other[] = "{\n\t\"resumed\":\tfalse\n}\n";
        /* Not one JSON document (cut short, or followed by more): passed on as it came. */
        static const char *const raw[] = {"{\n\t\"run_id\":\t\"r-", "{}\n{}\n", "oops\n", ""};
        struct result res;

        /* A run: one line of text; the JSON as the worker printed it. */
        result_worker_answer(&res, run);
        assert_null(res.raw);
        assert_printed(&res, false, "run r-2: failed, image n/a: CreateImage: no\n");
        assert_printed(&res, true, run);
        result_done(&res);

        /* JSON that is not a run is shown as JSON in both forms. */
        result_worker_answer(&res, other);
        assert_printed(&res, false, other);
        assert_printed(&res, true, other);
        result_done(&res);

        for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
                result_worker_answer(&res, raw[i]);
                assert_ptr_equal(res.raw, raw[i]);
                assert_printed(&res, false, raw[i]);
                assert_printed(&res, true, raw[i]);
                result_done(&res);
        }
        result_worker_answer(&res, NULL);
        assert_printed(&res, true, "");
        result_done(&res);
}

static void test_strv_and_nulls(void **unused)
{
        char *mounts[] = {"/", "/srv", NULL};
        struct result res;

        result_new(&res, VIEW_THAWED);
        result_add_strv(&res, res.tree, "thawed", mounts);
        assert_printed(&res, false, "thawed /\nthawed /srv\n");
        assert_printed(&res, true, "{\n\t\"thawed\":\t[\"/\", \"/srv\"]\n}\n");
        result_done(&res);

        result_new(&res, VIEW_THAWED);
        result_add_strv(&res, res.tree, "thawed", NULL);
        assert_printed(&res, false, "nothing was frozen\n");
        assert_printed(&res, true, "{\n\t\"thawed\":\t[]\n}\n");
        result_done(&res);

        result_new(&res, VIEW_NO_FIRST_BOOT);
        result_add_bool(&res, res.tree, "first_boot_run", false);
        result_add_str(&res, res.tree, "reason", NULL);
        assert_printed(&res, true, "{\n\t\"first_boot_run\":\tfalse,\n\t\"reason\":\tnull\n}\n");
        assert_printed(&res, false, "no first-boot run: n/a\n");
        result_done(&res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_run_text_and_json),
                cmocka_unit_test(test_failed_allocation_is_reported_once),
                cmocka_unit_test(test_worker_answers),
                cmocka_unit_test(test_strv_and_nulls),
        };
        return cmocka_run_group_tests_name("cli_output", tests, NULL, NULL);
}
