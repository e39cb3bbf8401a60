/* SPDX-License-Identifier: Apache-2.0 */
/* Run state: round trip, history bound, corrupt files rejected, atomic save, the run lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/state.h"
#include "util/fileio.h"
#include "util/macro.h"
#include "util/str.h"

static void test_round_trip(void **unused)
{
        char dir[] = "/tmp/ec2-imaged-state-XXXXXX";
        struct state s = {}, l = {};
        struct run_state *r;
        struct stat st;
        char *path;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(state_load(dir, &l), 0); /* missing file: empty state */
        assert_null(l.current);

        assert_int_equal(run_state_new(MODE_REBOOT, false, &r), 0);
        assert_int_equal(strlen(r->run_id), 36);
        run_state_set(&r->image_name, "golden-\"quoted\"-\u00e9");
        run_state_set(&r->image_id, "ami-0123456789abcdef0");
        r->phase = PHASE_REBOOTING;
        r->freeze_window_ms = 42;
        r->times[PHASE_PRE_IMAGE].start = 1000000;
        r->times[PHASE_PRE_IMAGE].end = 3000000;
        strv_push(&r->frozen_mounts, "/");
        strv_push(&r->frozen_mounts, "/data");
        s.current = r;
        assert_int_equal(state_save(dir, &s), 0);

        path = strprintf("%s/state.json", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        assert_int_equal(state_load(dir, &l), 0);
        assert_non_null(l.current);
        assert_string_equal(l.current->run_id, r->run_id);
        assert_int_equal(l.current->phase, PHASE_REBOOTING);
        assert_int_equal(l.current->mode, MODE_REBOOT);
        assert_string_equal(l.current->image_name, r->image_name);
        assert_int_equal(l.current->freeze_window_ms, 42);
        assert_int_equal(l.current->times[PHASE_PRE_IMAGE].end, 3000000);
        assert_string_equal(l.current->frozen_mounts[1], "/data");
        state_done(&l);

        /* finishing moves the run into the history, newest first, at most STATE_HISTORY_MAX */
        s.current->phase = PHASE_DONE;
        assert_int_equal(state_finish_current(&s, 5), 0);
        assert_null(s.current);
        assert_int_equal(s.n_history, 1);
        assert_int_equal(s.history[0].result, RESULT_SUCCESS);
        for (int i = 0; i < STATE_HISTORY_MAX + 5; i++) {
                assert_int_equal(run_state_new(MODE_NO_REBOOT, false, &s.current), 0);
                s.current->phase = PHASE_FAILED;
                assert_int_equal(state_finish_current(&s, (usec_t)i), 0);
        }
        assert_int_equal(s.n_history, STATE_HISTORY_MAX);
        assert_int_equal(s.history[0].result, RESULT_FAILED);
        assert_int_equal(s.history[0].finished, STATE_HISTORY_MAX + 4);
        assert_int_equal(state_save(dir, &s), 0);
        assert_int_equal(state_load(dir, &l), 0);
        assert_int_equal(l.n_history, STATE_HISTORY_MAX);
        state_done(&l);
        state_done(&s);

        unlink(path);
        free(path);
        rmdir(dir);
}

static void test_corrupt(void **unused)
{
        static const char *const bad[] = {
                "",
                "{",
                "[]",
                "{\"current\": 5}",
                "{\"current\": {\"run_id\": \"x\", \"phase\": \"nope\", \"mode\": \"reboot\"}}",
                "{\"current\": {\"run_id\": \"x\", \"phase\": \"done\", \"mode\": \"sideways\"}}",
                "{\"current\": {\"phase\": \"done\", \"mode\": \"reboot\"}}",
                "{\"current\": {\"run_id\": \"x\", \"phase\": \"done\", \"mode\": \"reboot\", "
                "\"frozen_mounts\": [\"relative\"]}}",
                "{\"current\": {\"run_id\": \"x\", \"phase\": \"done\", \"mode\": \"reboot\", "
                "\"freeze_window_ms\": \"12\"}}",
                "{\"history\": [{\"run_id\": 1}]}",
                "{\"grants\": {}}",
                "{\"grants\": [{\"key_arn\": \"k\", \"grantee\": \"1\", \"region\": \"r\"}]}",
                "{\"grants\": [{\"grant_id\": \"g\", \"key_arn\": \"k\", \"grantee\": "
                "\"1\", \"region\": \"r\", \"created_us\": \"soon\"}]}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct state s = {};
                if (state_parse(bad[i], strlen(bad[i]), &s) != -EBADMSG)
                        fail_msg("accepted: %s", bad[i]);
        }
}

/*
 * The grants outlive the runs: a top-level list, kept through a round trip; a file without it
 * (an older version) has none; the list is bounded by dropping revoked records, never standing
 * ones.
 */
static void test_grants(void **unused)
{
        static const char old[] = "{\"version\": 1, \"current\": null, \"history\": []}";
        struct grant_record g = {.grant_id = (char *)"g1",
                                 .key_arn = (char *)"arn:aws:kms:us-west-2:1:key/k",
                                 .grantee = (char *)"111122223333",
                                 .image_id = (char *)"ami-1",
                                 .region = (char *)"us-west-2",
                                 .run_id = (char *)"run",
                                 .created = 1000};
        struct state s = {}, t = {};
        _cleanup_free_ char *text = NULL;
        char id[16];

        assert_int_equal(state_parse(old, strlen(old), &s), 0);
        assert_int_equal(s.n_grants, 0);
        assert_int_equal(state_add_grant(&s, &g), 0);
        g.grant_id = (char *)"g2";
        g.revoked = 2000;
        assert_int_equal(state_add_grant(&s, &g), 0);
        text = state_format(&s);
        assert_non_null(text);
        assert_int_equal(state_parse(text, strlen(text), &t), 0);
        assert_int_equal(t.n_grants, 2);
        assert_string_equal(t.grants[0].key_arn, g.key_arn);
        assert_string_equal(t.grants[1].grant_id, "g2");
        assert_int_equal(t.grants[0].created, 1000);
        assert_int_equal(t.grants[0].revoked, 0);
        assert_int_equal(t.grants[1].revoked, 2000);
        assert_ptr_equal(state_find_grant(&t, "g2"), &t.grants[1]);
        assert_null(state_find_grant(&t, "g3"));
        /* Full: the revoked g2 makes room; with none revoked, -E2BIG. */
        g.revoked = 0;
        for (size_t i = 2; i < STATE_GRANTS_MAX; i++) {
                snprintf(id, sizeof(id), "x%zu", i);
                g.grant_id = id;
                assert_int_equal(state_add_grant(&t, &g), 0);
        }
        g.grant_id = (char *)"last";
        assert_int_equal(state_add_grant(&t, &g), 0);
        assert_null(state_find_grant(&t, "g2"));
        assert_non_null(state_find_grant(&t, "g1"));
        assert_int_equal(state_add_grant(&t, &g), -E2BIG);
        state_done(&s);
        state_done(&t);
}

static void test_lock(void **unused)
{
        char dir[] = "/tmp/ec2-imaged-lock-XXXXXX";
        char *p;
        int fd;

        assert_non_null(mkdtemp(dir));
        fd = state_lock(dir);
        assert_true(fd >= 0);
        /* flock locks belong to the open file description: a second open must fail */
        assert_int_equal(state_lock(dir), -EBUSY);
        close(fd);
        fd = state_lock(dir);
        assert_true(fd >= 0);
        close(fd);
        p = strprintf("%s/run.lock", dir);
        unlink(p);
        free(p);
        rmdir(dir);
}

/* Two versions of a file, each recognisable whole: a different size and one byte throughout. */
#define VERSION_A_LEN (192u * 1024u)
#define VERSION_B_LEN (320u * 1024u)
#define WRITER_KILLS  150

static char *version(char c, size_t len)
{
        char *p = malloc(len);

        assert_non_null(p);
        memset(p, c, len);
        return p;
}

static bool is_whole(const char *data, size_t len, char c, size_t want)
{
        if (len != want)
                return false;
        for (size_t i = 0; i < len; i++)
                if (data[i] != c)
                        return false;
        return true;
}

static void remove_dir(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *e;

        assert_non_null(d);
        while ((e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                        assert_int_equal(unlinkat(dirfd(d), e->d_name, 0), 0);
        closedir(d);
        assert_int_equal(rmdir(path), 0);
}

/*
 * A writer killed mid-save leaves the old file or the new one, whole. A child saves the two
 * versions in turn, forever; it is SIGKILLed at a random point (after a random wait of up to a
 * few saves' time), a bounded number of times, and after each kill the file must be exactly one
 * of the two versions. Writing in place (open, truncate, write) fails this within a few kills.
 */
static void test_atomic_write_killed_writer(void **unused)
{
        char dir[] = "/tmp/ec2-imaged-io-XXXXXX";
        char *a = version('a', VERSION_A_LEN), *b = version('b', VERSION_B_LEN);
        unsigned seen_a = 0, seen_b = 0;
        char *p, *data;
        size_t len;

        assert_non_null(mkdtemp(dir));
        p = strprintf("%s/f", dir);
        assert_int_equal(write_file_atomic(p, a, VERSION_A_LEN, 0600), 0);
        srandom((unsigned)getpid());
        /*
         * At least WRITER_KILLS kills, and more (up to 20 times as many) until both versions have
         * been seen: on a loaded machine a kill can keep landing at the same point of the loop.
         * The writer reports each whole save on a pipe, so no kill lands before it has started.
         */
        for (int k = 0; k < WRITER_KILLS || (!(seen_a && seen_b) && k < 20 * WRITER_KILLS); k++) {
                struct timespec ts = {.tv_nsec = (random() % 4000) * 1000L};
                int status, progress[2];
                char c;
                pid_t pid;

                assert_int_equal(pipe2(progress, O_CLOEXEC | O_NONBLOCK), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        close(progress[0]);
                        signal(SIGPIPE, SIG_IGN); /* the parent stops listening after one */
                        for (unsigned i = 0;; i++) {
                                if (write_file_atomic(p, i % 2 ? a : b,
                                                      i % 2 ? VERSION_A_LEN : VERSION_B_LEN,
                                                      0600) < 0)
                                        _exit(1);
                                (void)!write(progress[1], "", 1);
                        }
                }
                close(progress[1]);
                {
                        struct pollfd pfd = {.fd = progress[0], .events = POLLIN};
                        assert_int_equal(poll(&pfd, 1, -1), 1);
                }
                (void)!read(progress[0], &c, 1);
                close(progress[0]);
                nanosleep(&ts, NULL);
                assert_int_equal(kill(pid, SIGKILL), 0);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                /* Killed, not exited: a failing save would have ended the child by itself. */
                assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

                assert_int_equal(read_file_bounded(p, VERSION_B_LEN, &data, &len), 0);
                if (is_whole(data, len, 'a', VERSION_A_LEN))
                        seen_a++;
                else if (is_whole(data, len, 'b', VERSION_B_LEN))
                        seen_b++;
                else
                        fail_msg("kill %d left a torn file of %zu bytes starting with '%c'", k, len,
                                 len ? data[0] : '-');
                free(data);
        }
        /* The kills landed at different points of the loop: both versions were seen. */
        assert_true(seen_a > 0 && seen_b > 0);
        assert_int_equal(read_file_bounded(p, 3, &data, &len), -EFBIG);

        /* The killed writers' temporary files go with the directory. */
        remove_dir(dir);
        free(p);
        free(a);
        free(b);
}

static void test_distribution(void **unused)
{
        static const char *const bad[] = {
                /* not a list, an entry without region, a region twice, a step that is no string */
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":"
                "\"reboot\",\"distribution\":{}}}",
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":"
                "\"reboot\",\"distribution\":[{\"image_id\":\"ami-1\"}]}}",
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":"
                "\"reboot\",\"distribution\":[{\"region\":\"a\"},{\"region\":\"a\"}]}}",
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":"
                "\"reboot\",\"distribution\":[{\"region\":\"a\",\"done\":[1]}]}}",
        };
        struct state s = {}, l = {};
        struct run_state *r, *c = NULL;
        struct run_dist *d;
        char *text;

        assert_int_equal(run_state_new(MODE_REBOOT, false, &r), 0);
        r->phase = PHASE_DISTRIBUTING;
        assert_string_equal(run_phase_to_string(PHASE_DISTRIBUTING), "distributing");
        assert_int_equal(run_phase_from_string("distributing"), PHASE_DISTRIBUTING);
        assert_int_equal(run_state_add_dist(r, "us-east-1", &d), 0);
        run_state_set(&d->image_id, "ami-1");
        assert_int_equal(run_dist_mark(d, "shared"), 0);
        assert_int_equal(run_dist_mark(d, "shared"), 0);
        assert_int_equal(run_state_add_dist(r, "us-west-2", &d), 0);
        run_state_set(&d->lt_version, "3");
        assert_null(run_state_find_dist(r, "eu-west-1"));
        s.current = r;
        text = state_format(&s);
        assert_non_null(text);
        assert_int_equal(state_parse(text, strlen(text), &l), 0);
        free(text);
        assert_int_equal(l.current->phase, PHASE_DISTRIBUTING);
        assert_int_equal(l.current->n_dist, 2);
        d = run_state_find_dist(l.current, "us-east-1");
        assert_string_equal(d->image_id, "ami-1");
        assert_true(run_dist_done(d, "shared"));
        assert_null(d->done[1]);
        assert_false(run_dist_done(d, "copied"));
        d = run_state_find_dist(l.current, "us-west-2");
        assert_null(d->image_id);
        assert_string_equal(d->lt_version, "3");
        assert_int_equal(run_state_copy(l.current, &c), 0);
        assert_string_equal(c->dist[1].region, "us-west-2");
        run_state_free(c);
        state_done(&l);
        for (size_t i = 0; i < RUN_DIST_MAX - 2; i++) {
                char name[16];
                snprintf(name, sizeof(name), "r-%zu", i);
                assert_int_equal(run_state_add_dist(r, name, NULL), 0);
        }
        assert_int_equal(run_state_add_dist(r, "one-too-many", NULL), -E2BIG);
        state_done(&s);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(state_parse(bad[i], strlen(bad[i]), &l), -EBADMSG);
}

/*
 * Encryption in place: its fields round-trip, a state written before they existed loads with
 * none of them (the run's image is image_id, CreateImage's name image_name), bad shapes are
 * refused.
 */
static void test_encryption_fields(void **unused)
{
        static const char old[] = "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\","
                                  "\"mode\":\"reboot\",\"image_name\":\"golden\","
                                  "\"image_id\":\"ami-1\"}}";
        static const char *const bad[] = {
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"waiting\",\"mode\":\"reboot\","
                "\"unencrypted_snapshot_ids\":\"snap-1\"}}",
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"waiting\",\"mode\":\"reboot\","
                "\"unencrypted_snapshot_ids\":[1]}}",
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"waiting\",\"mode\":\"reboot\","
                "\"create_name\":7}}",
        };
        struct state s = {}, l = {};
        struct run_state *r;
        char *text;

        assert_int_equal(state_parse(old, strlen(old), &l), 0);
        assert_null(l.current->create_name);
        assert_null(l.current->unencrypted_image_id);
        assert_null(l.current->unencrypted_snapshot_ids);
        assert_false(l.current->unencrypted_deregistered);
        assert_string_equal(run_state_create_name(l.current), "golden");
        state_done(&l);

        assert_int_equal(run_state_new(MODE_REBOOT, false, &r), 0);
        run_state_set(&r->image_name, "golden");
        run_state_set(&r->create_name, "ec2-imaged-unencrypted-r");
        run_state_set(&r->image_id, "ami-2");
        run_state_set(&r->unencrypted_image_id, "ami-1");
        assert_int_equal(strv_push(&r->unencrypted_snapshot_ids, "snap-1"), 0);
        assert_int_equal(strv_push(&r->unencrypted_snapshot_ids, "snap-2"), 0);
        r->unencrypted_deregistered = true;
        s.current = r;
        text = state_format(&s);
        assert_non_null(text);
        assert_int_equal(state_parse(text, strlen(text), &l), 0);
        free(text);
        assert_string_equal(run_state_create_name(l.current), "ec2-imaged-unencrypted-r");
        assert_string_equal(l.current->image_id, "ami-2");
        assert_string_equal(l.current->unencrypted_image_id, "ami-1");
        assert_string_equal(l.current->unencrypted_snapshot_ids[1], "snap-2");
        assert_null(l.current->unencrypted_snapshot_ids[2]);
        assert_true(l.current->unencrypted_deregistered);
        state_done(&l);
        state_done(&s);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(state_parse(bad[i], strlen(bad[i]), &l), -EBADMSG);
}

/* The boot check's record: absent in older files, kept across a save, refused when malformed. */
static void test_boot_check_fields(void **unused)
{
        static const char old[] = "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\","
                                  "\"mode\":\"reboot\",\"image_id\":\"ami-1\"}}";
        static const char *const bad[] = {
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":\"reboot\","
                "\"boot_check\":\"launching\"}}",
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":\"reboot\","
                "\"boot_check\":{\"stage\":\"flying\"}}}",
                "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":\"reboot\","
                "\"boot_check\":{\"instance_id\":\"i-1\"}}}",
        };
        struct state s = {}, l = {};
        struct run_state *r;
        char *text;

        assert_int_equal(state_parse(old, strlen(old), &l), 0);
        assert_int_equal(l.current->boot_check.stage, BOOT_CHECK_NONE);
        text = state_format(&l);
        assert_null(strstr(text, "boot_check"));
        free(text);
        state_done(&l);

        assert_int_equal(run_state_new(MODE_REBOOT, false, &r), 0);
        r->boot_check.stage = BOOT_CHECK_FAILED;
        run_state_set(&r->boot_check.instance_id, "i-0abc");
        run_state_set(&r->boot_check.reason, "ssh.service failed");
        r->boot_check.started = 1234567;
        r->boot_check.terminated = true;
        s.current = r;
        text = state_format(&s);
        assert_non_null(text);
        assert_int_equal(state_parse(text, strlen(text), &l), 0);
        free(text);
        assert_int_equal(l.current->boot_check.stage, BOOT_CHECK_FAILED);
        assert_string_equal(l.current->boot_check.instance_id, "i-0abc");
        assert_string_equal(l.current->boot_check.reason, "ssh.service failed");
        assert_int_equal(l.current->boot_check.started, 1234567);
        assert_true(l.current->boot_check.terminated);
        assert_false(l.current->boot_check.image_handled);
        state_done(&l);
        state_done(&s);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(state_parse(bad[i], strlen(bad[i]), &l), -EBADMSG);
}

/* Another instance's run goes into the history as inherited; a freeze counts only in its boot. */
static void test_inherited(void **unused)
{
        static const char other_boot[] = "00000000-0000-4000-8000-000000000000";
        struct state s = {}, l = {};
        char *text;

        assert_non_null(state_this_boot());
        assert_int_equal(strlen(state_this_boot()), 36);
        assert_int_equal(run_state_new(MODE_NO_REBOOT, false, &s.current), 0);
        run_state_set(&s.current->instance_id, "i-0source");
        s.current->phase = PHASE_CREATING;
        run_state_set(&s.current->boot_id, state_this_boot());
        assert_true(run_state_frozen_in_this_boot(s.current));
        run_state_set(&s.current->boot_id, other_boot);
        assert_false(run_state_frozen_in_this_boot(s.current));
        run_state_set(&s.current->boot_id, NULL);
        assert_false(run_state_frozen_in_this_boot(s.current));
        run_state_set(&s.current->boot_id, state_this_boot());
        s.current->phase = PHASE_WAITING;
        assert_false(run_state_frozen_in_this_boot(s.current));
        assert_false(run_state_frozen_in_this_boot(NULL));

        s.current->phase = PHASE_FREEZING;
        assert_int_equal(state_inherit_current(&s, 7), 0);
        assert_null(s.current);
        assert_int_equal(s.n_history, 1);
        assert_int_equal(s.history[0].result, RESULT_INHERITED);
        assert_string_equal(s.history[0].instance_id, "i-0source");
        assert_non_null(strstr(s.history[0].error, "i-0source"));
        assert_non_null(strstr(s.history[0].error, "freezing"));
        text = state_format(&s);
        assert_non_null(text);
        assert_int_equal(state_parse(text, strlen(text), &l), 0);
        assert_int_equal(l.history[0].result, RESULT_INHERITED);
        assert_string_equal(l.history[0].instance_id, "i-0source");
        free(text);
        state_done(&l);
        state_done(&s);
}

/* The outcome of CreateImage survives the file; a failed run that tracks an image stays. */
static void test_create_outcome(void **unused)
{
        struct state s = {}, l = {};
        char *text;

        for (int o = 0; o < _CREATE_OUTCOME_MAX; o++)
                assert_int_equal(create_outcome_from_string(create_outcome_to_string(o)),
                                 o == CREATE_NOT_SENT ? -EINVAL : o);
        assert_int_equal(create_outcome_from_string("maybe"), -EINVAL);

        /* The oldest run failed with its CreateImage unanswered: it outlives the newer ones. */
        assert_int_equal(run_state_new(MODE_NO_REBOOT, false, &s.current), 0);
        run_state_set(&s.current->image_name, "golden-unknown");
        s.current->phase = PHASE_FAILED;
        s.current->create_outcome = CREATE_UNKNOWN;
        s.current->unknown_since = 123;
        text = run_state_format(s.current);
        assert_non_null(strstr(text, "\"create_outcome\":\t\"unknown\""));
        free(text);
        assert_int_equal(state_finish_current(&s, 1), 0);
        assert_true(history_tracks_late_image(&s.history[0]));
        for (int i = 0; i < STATE_HISTORY_MAX + 3; i++) {
                assert_int_equal(run_state_new(MODE_NO_REBOOT, false, &s.current), 0);
                s.current->phase = i % 2 ? PHASE_DONE : PHASE_FAILED;
                s.current->create_outcome = CREATE_ANSWERED;
                assert_int_equal(state_finish_current(&s, (usec_t)i + 2), 0);
                assert_false(history_tracks_late_image(&s.history[0]));
        }
        assert_int_equal(s.n_history, STATE_HISTORY_MAX);
        assert_string_equal(s.history[STATE_HISTORY_MAX - 1].image_name, "golden-unknown");
        assert_int_equal(s.history[STATE_HISTORY_MAX - 1].create_outcome, CREATE_UNKNOWN);
        assert_int_equal(s.history[STATE_HISTORY_MAX - 2].finished, 6); /* 2 to 5 went */

        text = state_format(&s);
        assert_int_equal(state_parse(text, strlen(text), &l), 0);
        assert_int_equal(l.history[STATE_HISTORY_MAX - 1].create_outcome, CREATE_UNKNOWN);
        assert_int_equal(l.history[0].create_outcome, CREATE_ANSWERED);
        free(text);
        state_done(&l);
        /* Settled, it goes like any other. */
        s.history[STATE_HISTORY_MAX - 1].create_outcome = CREATE_DEREGISTERED;
        assert_false(history_tracks_late_image(&s.history[STATE_HISTORY_MAX - 1]));
        assert_int_equal(run_state_new(MODE_NO_REBOOT, false, &s.current), 0);
        s.current->phase = PHASE_DONE;
        assert_int_equal(state_finish_current(&s, 99), 0);
        for (size_t i = 0; i < s.n_history; i++)
                assert_false(s.history[i].image_name &&
                             strcmp(s.history[i].image_name, "golden-unknown") == 0);
        state_done(&s);

        /* A value nobody knows is a corrupt file. */
        static const char bad[] = "{\"current\": {\"run_id\": \"x\", \"phase\": \"failed\", "
                                  "\"mode\": \"reboot\", \"create_outcome\": \"maybe\"}}";
        assert_int_equal(state_parse(bad, strlen(bad), &l), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_grants),
                cmocka_unit_test(test_lock),
                cmocka_unit_test(test_atomic_write_killed_writer),
                cmocka_unit_test(test_distribution),
                cmocka_unit_test(test_encryption_fields),
                cmocka_unit_test(test_boot_check_fields),
                cmocka_unit_test(test_inherited),
                cmocka_unit_test(test_create_outcome),
        };
        return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
