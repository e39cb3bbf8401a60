/* The `#ec2-imaged:` directive in user-data: found line by line, key=value words, strict. */
#include "userdata.h"

#include <errno.h>
#include <string.h>

#include "util/macro.h"

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

/* One word "key=value" of a directive line; wlen bytes at w. */
static int apply_word(struct userdata_directive *d, const char *w, size_t wlen, const char **msg)
{
        const char *eq = memchr(w, '=', wlen);
        size_t kl, vl;
        const char *v;

        if (!eq) {
                *msg = "expected key=value";
                return -EINVAL;
        }
        kl = (size_t)(eq - w);
        v = eq + 1;
        vl = wlen - kl - 1;
        if (kl == 3 && memcmp(w, "run", 3) == 0) {
                if (vl == 10 && memcmp(v, "first-boot", 10) == 0) {
                        d->first_boot = true;
                        return 0;
                }
                *msg = "run: the only value is first-boot";
                return -EINVAL;
        }
        if (kl == 4 && memcmp(w, "mode", 4) == 0) {
                if (vl == 9 && memcmp(v, "no-reboot", 9) == 0)
                        d->mode = "no-reboot";
                else if (vl == 6 && memcmp(v, "reboot", 6) == 0)
                        d->mode = "reboot";
                else {
                        *msg = "mode: must be no-reboot or reboot";
                        return -EINVAL;
                }
                return 0;
        }
        *msg = "unknown key (known: run, mode)";
        return -EINVAL;
}

static int parse_line(struct userdata_directive *d, const char *p, size_t len, const char **msg)
{
        size_t i = 0;

        if (len > USERDATA_LINE_MAX) {
                *msg = "directive line too long";
                return -EINVAL;
        }
        for (size_t k = 0; k < len; k++)
                if ((unsigned char)p[k] < ' ' && p[k] != '\t') {
                        *msg = "control character in the directive";
                        return -EINVAL;
                } else if ((unsigned char)p[k] > '~') {
                        *msg = "non-ASCII character in the directive";
                        return -EINVAL;
                }
        while (i < len) {
                size_t start;
                int r;

                while (i < len && is_blank(p[i]))
                        i++;
                if (i == len)
                        break;
                if (p[i] == '#') /* a trailing comment */
                        break;
                start = i;
                while (i < len && !is_blank(p[i]))
                        i++;
                r = apply_word(d, p + start, i - start, msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

int userdata_parse(const char *data, size_t len, struct userdata_directive *ret, unsigned *ret_line,
                   const char **ret_message)
{
        struct userdata_directive d = {};
        const size_t plen = strlen(USERDATA_PREFIX);
        unsigned line = 0, n = 0;

        if (len > USERDATA_MAX)
                return -EFBIG;
        /* gzip (cloud-init accepts it); we do not decompress outside input */
        if (len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b) {
                *ret = d;
                return 0;
        }
        for (size_t pos = 0; pos < len;) {
                const char *p = data + pos, *nl = memchr(p, '\n', len - pos);
                size_t l = nl ? (size_t)(nl - p) : len - pos, i = 0;
                const char *msg = NULL;

                pos += l + 1;
                line++;
                if (l > 0 && p[l - 1] == '\r')
                        l--;
                while (i < l && is_blank(p[i]))
                        i++;
                if (l - i < plen || memcmp(p + i, USERDATA_PREFIX, plen) != 0)
                        continue;
                if (++n > USERDATA_DIRECTIVES_MAX)
                        msg = "more than 16 directive lines";
                else if (parse_line(&d, p + i + plen, l - i - plen, &msg) >= 0)
                        msg = NULL;
                if (msg) {
                        if (ret_line)
                                *ret_line = line;
                        if (ret_message)
                                *ret_message = msg;
                        return -EINVAL;
                }
                d.found = true;
                d.line = line;
        }
        *ret = d;
        return 0;
}
