/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key table (config.c) is the one description of every key; the shipped file
 * (conf/ec2-imaged.conf) and the manual (ec2-imaged.conf(5)) document each key with the table's
 * default, a number with its bounds and an enumerated key with every value, and document no key
 * the table lacks. The shipped hooks, which read some keys themselves, use the same defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "util/macro.h"
#include "util/str.h"

/* One documented key: where, its default as written, and the text that describes it. */
struct doc_key {
        char section[32];
        char name[64];
        char def[256];
        char text[2048];
};

struct doc {
        const char *file;
        struct doc_key keys[128];
        size_t n;
};

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        static char text[1 << 17];
        size_t n;

        if (!f)
                fail_msg("cannot open %s", path);
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        assert_true(n < sizeof(text) - 1);
        text[n] = '\0';
        return text;
}

static void append(char *buf, size_t size, const char *s)
{
        size_t l = strlen(buf);

        snprintf(buf + l, size - l, "%s ", s);
}

/* "name = default" (the default may be empty): fills k's name and default. */
static bool split_entry(const char *line, struct doc_key *k)
{
        const char *eq = strstr(line, " =");
        size_t n;

        if (!eq || eq == line || (eq[2] != ' ' && eq[2] != '\0'))
                return false;
        n = (size_t)(eq - line);
        if (n >= sizeof(k->name))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!islower((unsigned char)line[i]) && !isdigit((unsigned char)line[i]) &&
                    line[i] != '_')
                        return false;
        memcpy(k->name, line, n);
        k->name[n] = '\0';
        snprintf(k->def, sizeof(k->def), "%s", eq[2] ? eq + 3 : "");
        return true;
}

/*
 * The shipped file: "[section]", then per key the comment lines ("# ...") right above its
 * commented-out "#name = default" line.
 */
static void parse_conf(char *text, struct doc *d)
{
        char section[32] = "", block[2048] = "";

        d->file = "conf/ec2-imaged.conf";
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
                struct doc_key *k = &d->keys[d->n];

                if (l[0] == '[') {
                        snprintf(section, sizeof(section), "%.*s", (int)strcspn(l + 1, "]"), l + 1);
                        block[0] = '\0';
                } else if (startswith(l, "# ") || streq(l, "#")) {
                        append(block, sizeof(block), l + 1);
                } else if (l[0] == '#' && split_entry(l + 1, k)) {
                        assert_true(d->n < ELEMENTSOF(d->keys) - 1);
                        snprintf(k->section, sizeof(k->section), "%s", section);
                        snprintf(k->text, sizeof(k->text), "%s", block);
                        d->n++;
                        block[0] = '\0';
                } else {
                        block[0] = '\0';
                }
        }
}

/* troff's "\-" is a plain '-' in what a reader copies; quotes only group words. */
static void untroff(char *s)
{
        char *w = s;

        for (const char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] == '-')
                        continue;
                if (*r != '"')
                        *w++ = *r;
        }
        *w = '\0';
}

/*
 * The manual's KEYS: ".SS [section]", then per key ".TP", a line ".B name = default" and the
 * lines that describe it, up to the next .TP, .SS or .SH.
 */
static void parse_man(char *text, struct doc *d)
{
        char section[32] = "";
        bool in_keys = false, entry_next = false;
        struct doc_key *k = NULL;

        d->file = "packaging/man/ec2-imaged.conf.5";
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
                untroff(l);
                if (startswith(l, ".SH "))
                        in_keys = streq(l, ".SH KEYS");
                if (!in_keys || startswith(l, ".SH ") || startswith(l, ".SS ") ||
                    startswith(l, ".TP")) {
                        k = NULL;
                        entry_next = startswith(l, ".TP");
                        if (startswith(l, ".SS "))
                                snprintf(section, sizeof(section), "%.*s", (int)strcspn(l + 5, "]"),
                                         l + 5);
                        continue;
                }
                if (entry_next) {
                        const char *e = startswith(l, ".BI ") ? l + 4 : l + 3;
                        entry_next = false;
                        assert_true(d->n < ELEMENTSOF(d->keys) - 1);
                        k = &d->keys[d->n];
                        if (!startswith(l, ".B") || !split_entry(e, k))
                                fail_msg("%s: '%s' after .TP is not '.B key = default'", d->file,
                                         l);
                        snprintf(k->section, sizeof(k->section), "%s", section);
                        d->n++;
                        continue;
                }
                if (k)
                        append(k->text, sizeof(k->text), l);
        }
}

static bool word_char(char c)
{
        return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* w stands in text as a word of its own ("reboot" is not in "no-reboot"). */
static bool has_word(const char *text, const char *w)
{
        size_t n = strlen(w);

        for (const char *p = strstr(text, w); p; p = strstr(p + 1, w))
                if ((p == text || !word_char(p[-1])) && !word_char(p[n]))
                        return true;
        return false;
}

/* Every "N..M" in text must be "min..max": the bounds of a number, and no others. */
static void check_bounds(const struct doc *d, const struct doc_key *dk, const struct config_key *k)
{
        char want[64];
        unsigned found = 0;

        snprintf(want, sizeof(want), "%lu..%lu", k->min, k->max);
        for (const char *p = dk->text; *p; p++) {
                char *end;
                unsigned long a, b;

                if (!isdigit((unsigned char)*p) || (p > dk->text && isdigit((unsigned char)p[-1])))
                        continue;
                a = strtoul(p, &end, 10);
                if (!startswith(end, "..") || !isdigit((unsigned char)end[2]))
                        continue;
                b = strtoul(end + 2, NULL, 10);
                if (a != k->min || b != k->max)
                        fail_msg("%s: [%s] %s states %lu..%lu, the table says %s", d->file,
                                 k->section, k->name, a, b, want);
                found++;
        }
        if (found == 0)
                fail_msg("%s: [%s] %s does not state its bounds %s", d->file, k->section, k->name,
                         want);
}

static void check_doc(const struct doc *d)
{
        size_t n_keys;
        const struct config_key *keys = config_keys(&n_keys);
        unsigned seen[128] = {};

        assert_true(n_keys <= ELEMENTSOF(seen));
        for (size_t i = 0; i < d->n; i++) {
                const struct doc_key *dk = &d->keys[i];
                const struct config_key *k = NULL;
                _cleanup_free_ char *def = NULL;

                /* [image] tag is repeatable and parsed by itself, outside the table. */
                if (streq(dk->section, "image") && streq(dk->name, "tag"))
                        continue;
                for (size_t j = 0; j < n_keys && !k; j++)
                        if (streq(keys[j].section, dk->section) && streq(keys[j].name, dk->name)) {
                                k = &keys[j];
                                seen[j]++;
                        }
                if (!k)
                        fail_msg("%s documents [%s] %s, which the key table lacks", d->file,
                                 dk->section, dk->name);
                def = config_key_default(k);
                assert_non_null(def);
                if (!streq(def, dk->def))
                        fail_msg("%s: [%s] %s = '%s', the table's default is '%s'", d->file,
                                 k->section, k->name, dk->def, def);
                if (k->type == CONFIG_KEY_UINT)
                        check_bounds(d, dk, k);
                for (size_t v = 0; k->type == CONFIG_KEY_ENUM && v < k->n_values; v++)
                        if (!has_word(dk->text, k->values[v]))
                                fail_msg("%s: [%s] %s does not name the value %s", d->file,
                                         k->section, k->name, k->values[v]);
        }
        for (size_t j = 0; j < n_keys; j++)
                if (seen[j] != 1)
                        fail_msg("%s documents [%s] %s %u times", d->file, keys[j].section,
                                 keys[j].name, seen[j]);
}

static void test_table(void **state)
{
        size_t n_keys;
        const struct config_key *keys = config_keys(&n_keys);
        struct config c;

        /* The defaults lie within their own bounds, and config_init() applies them. */
        config_init(&c);
        for (size_t i = 0; i < n_keys; i++) {
                const struct config_key *k = &keys[i];
                if (k->type == CONFIG_KEY_UINT) {
                        assert_true(k->min <= k->def && k->def <= k->max);
                        assert_int_equal(*(unsigned *)((char *)&c + k->offset), k->def);
                }
                if (k->type == CONFIG_KEY_STRING) /* a key that may not be empty has a default */
                        assert_true(k->min == 0 || (k->def_text && strlen(k->def_text) >= k->min &&
                                                    strlen(k->def_text) <= k->max));
                if (k->type == CONFIG_KEY_ENUM) {
                        assert_true(k->def < k->n_values);
                        assert_int_equal(*(int *)((char *)&c + k->offset), (int)k->def);
                }
        }
        config_done(&c);
}

static void test_shipped_conf(void **state)
{
        static struct doc d;

        parse_conf(slurp(SRCDIR "/conf/ec2-imaged.conf"), &d);
        check_doc(&d);
}

static void test_manual(void **state)
{
        static struct doc d;

        parse_man(slurp(SRCDIR "/packaging/man/ec2-imaged.conf.5"), &d);
        check_doc(&d);
}

/* The shipped hooks read their keys themselves ("conf_get SECTION KEY DEFAULT"): the same default.
 */
static void test_hook_defaults(void **state)
{
        static const char *const hooks[] = {
                "firstboot",    "lib.sh",     "patch",           "sanitize",
                "db.sh",        "mysql-hold", "postgresql-hold", "postgresql-checkpoint",
                "services-stop"};
        size_t n_keys;
        const struct config_key *keys = config_keys(&n_keys);
        unsigned checked = 0;

        for (size_t h = 0; h < ELEMENTSOF(hooks); h++) {
                _cleanup_free_ char *path = strprintf(SRCDIR "/hooks/%s", hooks[h]);
                const char *text = slurp(path);

                for (const char *p = strstr(text, "conf_get "); p; p = strstr(p + 1, "conf_get ")) {
                        char section[32], name[64], def[256] = "";
                        const struct config_key *k = NULL;
                        _cleanup_free_ char *want = NULL;

                        /* the definition and its comment name SECTION KEY DEFAULT in capitals */
                        if (sscanf(p, "conf_get %31[a-z_] %63[a-z_] %255[^ )|\n]", section, name,
                                   def) < 2)
                                continue;
                        if (streq(def, "\"\""))
                                def[0] = '\0';
                        for (size_t j = 0; j < n_keys && !k; j++)
                                if (streq(keys[j].section, section) && streq(keys[j].name, name))
                                        k = &keys[j];
                        if (!k)
                                fail_msg("hooks/%s reads [%s] %s, which the key table lacks",
                                         hooks[h], section, name);
                        want = config_key_default(k);
                        if (!streq(want, def))
                                fail_msg("hooks/%s: [%s] %s defaults to '%s', the table says '%s'",
                                         hooks[h], section, name, def, want);
                        checked++;
                }
        }
        assert_true(checked > 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_shipped_conf),
                cmocka_unit_test(test_manual),
                cmocka_unit_test(test_hook_defaults),
        };
        return cmocka_run_group_tests_name("config_docs", tests, NULL, NULL);
}
