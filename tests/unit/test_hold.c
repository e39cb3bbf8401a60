/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Held hooks (host/hold.h): the protocol's lines, and real sh holders in a temporary hold.d run
 * through hold_start(), hold_wait_ready(), hold_lost() and hold_release(): READY and KEY=VALUE,
 * the release by end of file, a missed deadline, a closed descriptor, a bad line, a holder that
 * ends while it holds. And the holders' results in the run's JSON, read back.
 */
#include "hooks_fixture.h"

#include <cjson/cJSON.h>
#include <sys/wait.h>
#include <time.h>

#include "core/state.h"
#include "host/hold.h"

static int setup_hold(void **state)
{
        struct fixture *f;

        setup(state);
        f = *state;
        snprintf(f->phase, sizeof(f->phase), "%s/hold.d", f->dir);
        assert_int_equal(mkdir(f->phase, 0755), 0);
        assert_int_equal(chmod(f->phase, 0755), 0);
        return 0;
}

static void sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

static void test_parse_line(void **state)
{
        char key[HOLD_KEY_MAX + 3], value[HOLD_VALUE_MAX + 4];
        const struct {
                const char *line;
                int want;
        } cases[] = {
                {"READY", 1},         {"BINLOG_POS=1234", 0}, {"k_1=a b=c", 0},     {"K=", 0},
                {"READY ", -EBADMSG}, {"ready", -EBADMSG},    {"=x", -EBADMSG},     {"K", -EBADMSG},
                {"K-1=x", -EBADMSG},  {"K=a\tb", -EBADMSG},   {"K=\x7f", -EBADMSG}, {"", -EBADMSG},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(hold_parse_line(cases[i].line, strlen(cases[i].line)),
                                 cases[i].want);
        /* The bounds: a KEY of 64 bytes and a VALUE of 256 pass, one more byte does not. */
        memset(key, 'K', HOLD_KEY_MAX);
        snprintf(key + HOLD_KEY_MAX, 3, "=v");
        assert_int_equal(hold_parse_line(key, strlen(key)), 0);
        memset(key, 'K', HOLD_KEY_MAX + 1);
        snprintf(key + HOLD_KEY_MAX + 1, 2, "=");
        assert_int_equal(hold_parse_line(key, strlen(key)), -EBADMSG);
        value[0] = 'K';
        value[1] = '=';
        memset(value + 2, 'v', HOLD_VALUE_MAX);
        value[HOLD_VALUE_MAX + 2] = '\0';
        assert_int_equal(hold_parse_line(value, strlen(value)), 0);
        value[HOLD_VALUE_MAX + 2] = 'v';
        value[HOLD_VALUE_MAX + 3] = '\0';
        assert_int_equal(hold_parse_line(value, strlen(value)), -EBADMSG);
        /* A NUL inside the line is not printable. */
        assert_int_equal(hold_parse_line("K=a\0b", 5), -EBADMSG);

        for (int e = 0; e < _HOLDER_END_MAX; e++)
                assert_int_equal(holder_end_from_string(holder_end_to_string(e)), e);
        assert_int_equal(holder_end_from_string("held"), -EINVAL);
}

static struct hold_set *start(struct fixture *f)
{
        struct hold_set *s = NULL;
        _cleanup_free_ char *msg = NULL;

        assert_int_equal(hold_start(&f->opts, &f->env, &s, &msg), 0);
        assert_null(msg);
        return s;
}

static void test_ready_values_and_release(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *body = strprintf(
                "env | sort > %1$s/env\n"
                "printf 'BINLOG_FILE=mysql-bin.000003\\nBINLOG_POS=4\\n' >&$EC2_IMAGED_READY_FD\n"
                "echo READY >&$EC2_IMAGED_READY_FD\n"
                "cat <&$EC2_IMAGED_READY_FD\n"
                "echo released > %1$s/released\n",
                f->dir);
        _cleanup_free_ char *env = NULL, *released = NULL, *msg = NULL;
        _cleanup_(hold_freep) struct hold_set *s = NULL;
        const struct holder_result *h;

        hook(f, "50-db", 0755, body);
        /* Exits 3 once released: it held, so the run stands, but it did not end "released". */
        hook(f, "60-undo-fails", 0755, "echo READY >&3\ncat <&3\nexit 3");
        s = start(f);
        assert_int_equal(hold_count(s), 2);
        assert_int_equal(hold_wait_ready(s, 5000), 0);
        assert_null(hold_lost(s));
        assert_null(read_text(f->dir, "released")); /* held until the release */
        hold_release(s);

        h = hold_result(s, 0);
        assert_string_equal(h->name, "50-db");
        assert_int_equal(h->end, HOLDER_RELEASED);
        assert_false(h->lost);
        assert_true(h->ready_ms >= 0 && h->held_ms >= 0);
        assert_null(h->message);
        assert_non_null(h->values);
        assert_string_equal(h->values[0], "BINLOG_FILE=mysql-bin.000003");
        assert_string_equal(h->values[1], "BINLOG_POS=4");
        assert_null(h->values[2]);
        h = hold_result(s, 1);
        assert_string_equal(h->name, "60-undo-fails");
        assert_int_equal(h->end, HOLDER_EXITED);
        assert_int_equal(h->exit_status, 3);
        assert_false(h->lost);
        assert_true(h->held_ms >= 0);
        assert_string_equal(h->message, "hook 60-undo-fails (hold) exited with status 3 after its "
                                        "release");
        assert_null(hold_message(s));
        released = read_text(f->dir, "released");
        assert_non_null(released);
        env = read_text(f->dir, "env");
        assert_non_null(env);
        assert_contains(env, "EC2_IMAGED_PHASE=hold\n");
        assert_contains(env, "EC2_IMAGED_READY_FD=3\n");
        assert_contains(env, "EC2_IMAGED_RUN_ID=run-1\n");
}

/* One holder that fails its READY in some way: the code, and the message after the release. */
static void expect_fault(struct fixture *f, const char *body, int code, const char *message)
{
        _cleanup_(hold_freep) struct hold_set *s = NULL;
        _cleanup_free_ char *msg = NULL;

        hook(f, "30-h", 0755, body);
        s = start(f);
        assert_int_equal(hold_wait_ready(s, 400), code);
        hold_release(s);
        msg = hold_message(s);
        assert_non_null(msg);
        assert_contains(msg, message);
        assert_int_equal(hold_result(s, 0)->ready_ms, -1);
}

static void test_faults_before_ready(void **state)
{
        struct fixture *f = *state;

        expect_fault(f, "exec sleep 10", -ETIMEDOUT,
                     "hook 30-h (hold) did not say READY within 400 ms and was killed (SIGTERM)");
        expect_fault(f, "exit 4", -EPROTO, "hook 30-h (hold) exited with status 4 before it said");
        expect_fault(f, "exec 3>&-\nexec sleep 10", -EPROTO,
                     "hook 30-h (hold) closed EC2_IMAGED_READY_FD before it said READY");
        expect_fault(f, "echo 'pos: 4' >&3\necho READY >&3\nexec sleep 10", -EPROTO,
                     "wrote a line on EC2_IMAGED_READY_FD that is neither READY nor KEY=VALUE");
        expect_fault(f, "i=0; while [ $i -lt 17 ]; do echo K$i=v >&3; i=$((i+1)); done\nsleep 10",
                     -EPROTO, "wrote more than 16 KEY=VALUE lines");
}

static void test_not_executed(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *path = strprintf("%s/30-h", f->phase), *msg = NULL;
        _cleanup_(hold_freep) struct hold_set *s = NULL;
        FILE *fp = fopen(path, "we");

        assert_non_null(fp);
        fputs("#!/nonexistent/interpreter\n", fp);
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(chmod(path, 0755), 0);
        s = start(f);
        assert_int_equal(hold_wait_ready(s, 2000), -EPROTO);
        hold_release(s);
        assert_int_equal(hold_result(s, 0)->end, HOLDER_EXEC_FAILED);
        msg = hold_message(s);
        assert_non_null(msg);
        assert_string_equal(msg, "hook 30-h (hold) could not be executed: No such file or "
                                 "directory (missing interpreter?)");
}

static void test_lost_while_holding(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *body = strprintf(
                "echo READY >&3\nwhile [ ! -e %s/go ]; do sleep 0.05; done\nexit 0", f->dir);
        _cleanup_free_ char *go = strprintf("%s/go", f->dir), *msg = NULL;
        _cleanup_(hold_freep) struct hold_set *s = NULL;
        const struct holder_result *h;
        int i;

        hook(f, "50-db", 0755, body);
        s = start(f);
        assert_int_equal(hold_wait_ready(s, 5000), 0);
        assert_null(hold_lost(s));
        fclose(fopen(go, "we"));
        for (i = 0; i < 200 && !hold_lost(s); i++)
                sleep_ms(25);
        assert_non_null(hold_lost(s));
        assert_string_equal(hold_lost(s), "50-db");
        hold_release(s);
        h = hold_result(s, 0);
        assert_true(h->lost);
        assert_int_equal(h->end, HOLDER_EXITED);
        msg = hold_message(s);
        assert_non_null(msg);
        assert_contains(msg, "hook 50-db (hold) exited with status 0 while it held");
}

/*
 * A holder that ends while it holds and is not looked at again before the release (the frozen
 * window's last look came before its end): the release itself finds that it was lost.
 */
static void test_lost_unnoticed_until_release(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *body =
                strprintf("echo READY >&3\nwhile [ ! -e %1$s/go ]; do sleep 0.05; done\n"
                          "echo $$ > %1$s/pid.tmp && mv %1$s/pid.tmp %1$s/pid\nexit 3",
                          f->dir);
        _cleanup_free_ char *go = strprintf("%s/go", f->dir), *pid = NULL, *msg = NULL;
        _cleanup_(hold_freep) struct hold_set *s = NULL;
        const struct holder_result *h;
        siginfo_t si = {};

        hook(f, "50-db", 0755, body);
        s = start(f);
        assert_int_equal(hold_wait_ready(s, 5000), 0);
        assert_null(hold_lost(s));
        fclose(fopen(go, "we"));
        while (!(pid = read_text(f->dir, "pid")))
                sleep_ms(25);
        /* Wait for its end without reaping it (the supervisor's waitid() still sees it). */
        assert_int_equal(waitid(P_PID, (id_t)strtol(pid, NULL, 10), &si, WEXITED | WNOWAIT), 0);
        hold_release(s);
        h = hold_result(s, 0);
        assert_true(h->lost);
        assert_int_equal(h->end, HOLDER_EXITED);
        assert_int_equal(h->exit_status, 3);
        msg = hold_message(s);
        assert_non_null(msg);
        assert_string_equal(msg, "hook 50-db (hold) exited with status 3 while it held, before "
                                 "its release");
}

static void test_hang_at_release(void **state)
{
        struct fixture *f = *state;
        _cleanup_(hold_freep) struct hold_set *s = NULL;
        const struct holder_result *h;

        hook(f, "50-stuck", 0755,
             "trap '' TERM\necho READY >&3\ncat <&3\nwhile :; do sleep 0.05; done");
        s = start(f);
        assert_int_equal(hold_wait_ready(s, 5000), 0);
        hold_release(s);
        h = hold_result(s, 0);
        assert_int_equal(h->end, HOLDER_TIMED_OUT);
        assert_int_equal(h->signal, SIGKILL);
        assert_false(h->lost);
        assert_contains(h->message, "hook 50-stuck (hold) did not exit within 200 ms of its "
                                    "release and was killed (SIGKILL)");
        assert_null(hold_message(s)); /* a hang at the release does not fail the run */
}

/* r's state file with its first holder's field k replaced by v (removed when v is NULL). */
static char *state_text_with(const struct run_state *r, const char *k, cJSON *v)
{
        cJSON *root = cJSON_CreateObject(), *cur = run_state_to_json(r), *h0;
        char *text;

        assert_non_null(root);
        assert_non_null(cur);
        h0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cur, "holders"), 0);
        assert_non_null(h0);
        if (v)
                assert_true(cJSON_ReplaceItemInObjectCaseSensitive(h0, k, v));
        else
                cJSON_DeleteItemFromObjectCaseSensitive(h0, k);
        cJSON_AddItemToObject(root, "current", cur);
        text = cJSON_PrintUnformatted(root);
        assert_non_null(text);
        cJSON_Delete(root);
        return text;
}

static void expect_holders_refused(const struct run_state *r, const char *k, cJSON *v)
{
        _cleanup_free_ char *good = state_text_with(r, "name", cJSON_CreateString("50-db"));
        _cleanup_free_ char *bad = state_text_with(r, k, v);
        struct state s = {};

        assert_int_equal(state_parse(good, strlen(good), &s), 0);
        assert_non_null(s.current);
        assert_int_equal(s.current->n_holders, r->n_holders);
        state_done(&s);
        if (state_parse(bad, strlen(bad), &s) != -EBADMSG)
                fail_msg("a holder with a bad \"%s\" was read back", k);
}

static cJSON *many_values(int n)
{
        cJSON *o = cJSON_CreateObject();

        for (int i = 0; o && i < n; i++) {
                char k[16];

                snprintf(k, sizeof(k), "K%d", i);
                cJSON_AddStringToObject(o, k, "v");
        }
        return o;
}

static cJSON *too_long_message(void)
{
        _cleanup_free_ char *m = malloc(4098);

        assert_non_null(m);
        memset(m, 'm', 4097);
        m[4097] = '\0';
        return cJSON_CreateString(m);
}

static void test_holders_in_json(void **state)
{
        _cleanup_(run_state_freep) struct run_state *r = NULL, *copy = NULL;
        struct run_holder *h;
        cJSON *o;

        (void)state;
        assert_int_equal(run_state_new(MODE_NO_REBOOT, false, &r), 0);
        assert_int_equal(run_state_add_holder(r, &h), 0);
        h->name = strdup("50-db");
        h->end = strdup("released");
        h->ready_ms = 12;
        h->held_ms = 3456;
        assert_int_equal(strv_push(&h->values, "BINLOG_POS=4"), 0);
        assert_int_equal(run_state_add_holder(r, &h), 0);
        h->name = strdup("60-x");
        h->end = strdup("killed");
        h->signal = 9;
        h->lost = true;
        h->message = strdup("hook 60-x (hold) was killed by signal SIGKILL while it held");
        assert_int_equal(run_state_add_holder(r, &h), 0);
        h->name = strdup("70-y");
        h->end = strdup("exited");
        h->exit_status = 3;
        h->ready_ms = 5;
        h->held_ms = 7;
        h->message = strdup("hook 70-y (hold) exited with status 3 after its release");

        assert_int_equal(run_state_copy(r, &copy), 0);
        assert_int_equal(copy->n_holders, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_string_equal(copy->holders[i].name, r->holders[i].name);
                assert_string_equal(copy->holders[i].end, r->holders[i].end);
                assert_int_equal(copy->holders[i].exit_status, r->holders[i].exit_status);
                assert_int_equal(copy->holders[i].signal, r->holders[i].signal);
        }
        assert_string_equal(copy->holders[0].name, "50-db");
        assert_string_equal(copy->holders[0].end, "released");
        assert_int_equal(copy->holders[0].ready_ms, 12);
        assert_int_equal(copy->holders[0].held_ms, 3456);
        assert_string_equal(copy->holders[0].values[0], "BINLOG_POS=4");
        assert_null(copy->holders[0].message);
        assert_false(copy->holders[0].lost);
        assert_int_equal(copy->holders[1].signal, 9);
        assert_int_equal(copy->holders[1].ready_ms, -1);
        assert_true(copy->holders[1].lost);
        assert_string_equal(copy->holders[1].message, r->holders[1].message);

        /* What the state file holds is read back within bounds, as the rest of the state. */
        expect_holders_refused(r, "exit_status", cJSON_CreateNumber(256));
        expect_holders_refused(r, "signal", cJSON_CreateNumber(65));
        expect_holders_refused(r, "ready_ms", cJSON_CreateNumber(-2));
        expect_holders_refused(r, "end", NULL);
        expect_holders_refused(r, "name", cJSON_CreateNumber(1));
        expect_holders_refused(r, "values", cJSON_CreateString("BINLOG_POS=4"));
        expect_holders_refused(r, "values", many_values(17));
        expect_holders_refused(r, "message", too_long_message());

        /* A run without holders writes no "holders" at all. */
        run_state_clear_holders(r);
        o = run_state_to_json(r);
        assert_non_null(o);
        assert_null(cJSON_GetObjectItemCaseSensitive(o, "holders"));
        cJSON_Delete(o);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_line),
                cmocka_unit_test_setup_teardown(test_ready_values_and_release, setup_hold,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_faults_before_ready, setup_hold, teardown),
                cmocka_unit_test_setup_teardown(test_not_executed, setup_hold, teardown),
                cmocka_unit_test_setup_teardown(test_lost_while_holding, setup_hold, teardown),
                cmocka_unit_test_setup_teardown(test_lost_unnoticed_until_release, setup_hold,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_hang_at_release, setup_hold, teardown),
                cmocka_unit_test(test_holders_in_json),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
