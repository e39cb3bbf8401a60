/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A configuration as it was accepted, in a sealed memfd: what the daemon hands to each worker, so
 * that a worker runs with the configuration the daemon loaded (at its start or at the last
 * reload it accepted) and not with whatever the files on disk say by then.
 *
 * Format: the line "ec2-imaged-config-snapshot 1", then records, each a line "TAG LEN[ LEN]" and
 * the bytes it announces: "path N" and the N bytes of the main path (as given to config_load());
 * "file N M" and the N bytes of a file's name and the M bytes of its contents, once per file in
 * the order they were parsed. Loading parses each file's contents under its own name, as
 * config_load() did, so the result (and any message) is the same.
 */
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/macro.h"
#include "util/str.h"

#define SNAPSHOT_MAGIC "ec2-imaged-config-snapshot 1\n"
#define SNAPSHOT_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
/* The main file and its drop-ins, each at most CONFIG_MAX_SIZE. */
#define SNAPSHOT_MAX (16u * CONFIG_MAX_SIZE)

int config_add_source(struct config *c, const char *name, const char *data, size_t len)
{
        struct config_source *n = reallocarray(c->sources, c->n_sources + 1, sizeof(*n));
        struct config_source s = {.name = strdup(name), .data = malloc(len + 1), .len = len};

        if (n)
                c->sources = n;
        if (!n || !s.name || !s.data) {
                free(s.name);
                free(s.data);
                return -ENOMEM;
        }
        memcpy(s.data, data, len);
        s.data[len] = '\0';
        c->sources[c->n_sources++] = s;
        return 0;
}

static int write_record(int fd, const char *tag, const char *name, const char *data, size_t len)
{
        char head[64];
        int n, r;

        if (data)
                n = snprintf(head, sizeof(head), "%s %zu %zu\n", tag, strlen(name), len);
        else
                n = snprintf(head, sizeof(head), "%s %zu\n", tag, strlen(name));
        r = write_all(fd, head, (size_t)n);
        if (r >= 0)
                r = write_all(fd, name, strlen(name));
        if (r >= 0 && data)
                r = write_all(fd, data, len);
        return r;
}

int config_snapshot_new(const struct config *c)
{
        _cleanup_close_ int fd = -1;
        int r;

        fd = memfd_create("ec2-imaged-config", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        r = write_all(fd, SNAPSHOT_MAGIC, strlen(SNAPSHOT_MAGIC));
        if (r >= 0)
                r = write_record(fd, "path", strempty(c->path), NULL, 0);
        for (size_t i = 0; r >= 0 && i < c->n_sources; i++)
                r = write_record(fd, "file", c->sources[i].name, c->sources[i].data,
                                 c->sources[i].len);
        if (r < 0)
                return r;
        if (fcntl(fd, F_ADD_SEALS, SNAPSHOT_SEALS) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* The whole snapshot, from offset 0 (the fd's own offset is the writer's). */
static int read_snapshot(int fd, char **ret, size_t *ret_len)
{
        int seals;

        /* Only a sealed memfd is a snapshot: nobody can have changed it since it was made. */
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return errno == EINVAL ? -EPERM : -errno; /* EINVAL: no seals on this kind */
        if ((seals & SNAPSHOT_SEALS) != SNAPSHOT_SEALS)
                return -EPERM;
        return read_fd_bounded(fd, true, SNAPSHOT_MAX, ret, ret_len);
}

/* One record header at *p: "TAG N[ M]\n"; moves *p past it. */
static int next_record(const char **p, const char *end, char tag[8], size_t *n, size_t *m)
{
        const char *nl = memchr(*p, '\n', (size_t)(end - *p));
        char line[64];
        unsigned long long a, b;
        int k;

        if (!nl || (size_t)(nl - *p) >= sizeof(line))
                return -EBADMSG;
        memcpy(line, *p, (size_t)(nl - *p));
        line[nl - *p] = '\0';
        k = sscanf(line, "%7s %llu %llu", tag, &a, &b);
        if (k < 2)
                return -EBADMSG;
        *n = (size_t)a;
        *m = k == 3 ? (size_t)b : 0;
        if (*n > (size_t)(end - nl - 1) || *m > (size_t)(end - nl - 1) - *n)
                return -EBADMSG;
        *p = nl + 1;
        return 0;
}

int config_load_snapshot(int fd, struct config *ret, struct config_error *err)
{
        _cleanup_free_ char *buf = NULL;
        const char *p, *end;
        struct config c;
        size_t len = 0;
        int r;

        r = read_snapshot(fd, &buf, &len);
        if (r < 0)
                return r;
        if (len < strlen(SNAPSHOT_MAGIC) || !startswith(buf, SNAPSHOT_MAGIC))
                return -EBADMSG;
        config_init(&c);
        end = buf + len;
        for (p = buf + strlen(SNAPSHOT_MAGIC); p < end;) {
                _cleanup_free_ char *name = NULL;
                char tag[8];
                size_t n, m;

                r = next_record(&p, end, tag, &n, &m);
                if (r < 0)
                        break;
                name = strndup(p, n);
                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                if (streq(tag, "path") && !c.path) {
                        c.path = TAKE_PTR(name);
                } else if (streq(tag, "file")) {
                        r = config_parse_buffer(&c, p + n, m, name, err);
                        if (r >= 0)
                                r = config_add_source(&c, name, p + n, m);
                        if (r < 0)
                                break;
                } else {
                        r = -EBADMSG;
                        break;
                }
                p += n + m;
        }
        if (r >= 0 && !c.path)
                r = -EBADMSG;
        if (r < 0) {
                config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}
