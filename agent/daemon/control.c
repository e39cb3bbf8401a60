/* SPDX-License-Identifier: Apache-2.0 */
/* Progress datagrams from workers, and the root-only control socket of `ec2-imaged trigger`. */
#include "daemon/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"

int progress_fd_from_env(void)
{
        const char *e = getenv(PROGRESS_FD_ENV);
        uint64_t v;
        int type = 0;
        socklen_t len = sizeof(type);

        if (!e || safe_atou64(e, &v) < 0 || v < 3 || v > 1024)
                return -1;
        /* Only a SOCK_SEQPACKET socket: never write progress into a file that happens to be there.
         */
        if (getsockopt((int)v, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
                return -1;
        return (int)v;
}

void progress_send(int fd, const struct run_state *run)
{
        char msg[PROGRESS_MSG_MAX];
        int n;

        if (fd < 0 || !run)
                return;
        n = snprintf(msg, sizeof(msg), "phase=%s\nrun_id=%s\nimage_id=%s\nmode=%s\nmounts=%zu\n",
                     strna(run_phase_to_string(run->phase)), strna(run->run_id),
                     run->image_id ? run->image_id : "", run_mode_to_string(run->mode),
                     strv_length(run->frozen_mounts));
        if (n > 0 && (size_t)n < sizeof(msg))
                (void)send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int copy_value(char *dst, size_t size, const char *v, size_t len)
{
        if (len >= size)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if (v[i] <= ' ' || v[i] > '~')
                        return -EBADMSG;
        memcpy(dst, v, len);
        dst[len] = '\0';
        return 0;
}

int progress_parse(const char *msg, size_t len, struct progress *ret)
{
        struct progress p = {};
        const char *end = msg + len;
        bool have_phase = false;

        if (len == 0 || len > PROGRESS_MSG_MAX)
                return -EBADMSG;
        for (const char *line = msg; line < end;) {
                const char *nl = memchr(line, '\n', (size_t)(end - line));
                const char *eq;
                size_t l = nl ? (size_t)(nl - line) : (size_t)(end - line);
                int r = 0;

                eq = memchr(line, '=', l);
                if (!eq)
                        return -EBADMSG;
                size_t kl = (size_t)(eq - line), vl = l - kl - 1;
                if (kl == 5 && memcmp(line, "phase", 5) == 0) {
                        char name[24];
                        int ph;

                        r = copy_value(name, sizeof(name), eq + 1, vl);
                        ph = r >= 0 ? run_phase_from_string(name) : -1;
                        have_phase = ph >= 0;
                        if (have_phase)
                                p.phase = (enum run_phase)ph;
                } else if (kl == 6 && memcmp(line, "run_id", 6) == 0) {
                        r = copy_value(p.run_id, sizeof(p.run_id), eq + 1, vl);
                } else if (kl == 8 && memcmp(line, "image_id", 8) == 0) {
                        r = copy_value(p.image_id, sizeof(p.image_id), eq + 1, vl);
                } else if (kl == 4 && memcmp(line, "mode", 4) == 0) {
                        r = copy_value(p.mode, sizeof(p.mode), eq + 1, vl);
                } else if (kl == 6 && memcmp(line, "mounts", 6) == 0) {
                        char num[12];
                        uint64_t v;
                        r = copy_value(num, sizeof(num), eq + 1, vl);
                        if (r >= 0 && (safe_atou64(num, &v) < 0 || v > 4096))
                                r = -EBADMSG;
                        p.n_mounts = r >= 0 ? (unsigned)v : 0;
                } /* unknown keys are ignored: a newer worker may say more */
                if (r < 0)
                        return r;
                line += l + 1;
        }
        if (!have_phase)
                return -EBADMSG;
        *ret = p;
        return 0;
}

static int fill_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
        size_t l = strlen(path);

        if (l == 0 || l >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        memcpy(sa->sun_path, path, l + 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + 1);
        return 0;
}

int control_listen(const char *path)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *dir = strdup(path);
        struct sockaddr_un sa;
        socklen_t len;
        char *slash;
        int r;

        r = fill_addr(path, &sa, &len);
        if (r < 0)
                return r;
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                r = mkdir_parents(dir, 0755);
                if (r < 0)
                        return r;
        }
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A socket left by a daemon that died is replaced; anything else at the path is not. */
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(path) < 0)
                        return -errno;
        }
        /* Bind with a umask that leaves the socket 0600 from its first moment. */
        mode_t old = umask(0177);
        r = bind(fd, (struct sockaddr *)&sa, len);
        umask(old);
        if (r < 0)
                return -errno;
        if (chmod(path, 0600) < 0 || listen(fd, 16) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int control_check_peer(int fd)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        return cred.uid == 0 ? 0 : -EPERM;
}

int control_parse_request(const char *msg, size_t len, enum control_request *ret)
{
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\0'))
                len--;
        if (len == 7 && memcmp(msg, "trigger", 7) == 0)
                *ret = CONTROL_TRIGGER;
        else if (len == 14 && memcmp(msg, "trigger --wait", 14) == 0)
                *ret = CONTROL_TRIGGER_WAIT;
        else
                return -EBADMSG;
        return 0;
}

int control_reply(int fd, const char *msg, size_t len)
{
        ssize_t n = send(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0)
                return -errno;
        return (size_t)n == len ? 0 : -EIO;
}

#define CONTROL_CONNECTIONS_MAX 16

struct connection {
        struct control_server *server;
        int fd;
        sd_event_source *source;
        bool refused; /* a non-root peer: answered once its request has been read */
};

struct control_server {
        char *path;
        int fd;
        sd_event_source *source;
        control_request_fn on_request;
        void *userdata;
        struct connection *connections[CONTROL_CONNECTIONS_MAX]; /* awaiting their request */
};

static void connection_free(struct connection *c)
{
        struct control_server *s = c->server;

        for (size_t i = 0; i < CONTROL_CONNECTIONS_MAX; i++)
                if (s->connections[i] == c)
                        s->connections[i] = NULL;
        /* Out of epoll before the fd is closed: its number may be reused at once. */
        sd_event_source_disable_unref(c->source);
        safe_close(c->fd);
        free(c);
}

static int on_connection(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        struct connection *c = userdata;
        struct control_server *s = c->server;
        char msg[CONTROL_MSG_MAX + 1];
        enum control_request req;
        bool refused;
        ssize_t n;

        n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        fd = TAKE_FD(c->fd);
        refused = c->refused;
        connection_free(c); /* only the fd lives on */
        if (n > 0 && refused) {
                /* Replied only after the request is read: closing with it unread would
                 * reset the connection and the peer would lose the reply. */
                static const char no[] = "refused only root may trigger runs";
                (void)control_reply(fd, no, sizeof(no) - 1);
                log_notice("Control request from a non-root peer refused");
        } else if (n > 0 && control_parse_request(msg, (size_t)n, &req) >= 0) {
                s->on_request(req, fd, s->userdata);
                return 0;
        } else if (n > 0) {
                static const char bad[] = "refused unknown request";
                (void)control_reply(fd, bad, sizeof(bad) - 1);
        }
        safe_close(fd);
        return 0;
}

static int on_listen(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        struct control_server *s = userdata;

        for (;;) {
                _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                size_t slot = CONTROL_CONNECTIONS_MAX;
                struct connection *c;

                if (cfd < 0)
                        return 0; /* EAGAIN, or an error that the next connection may not have */
                for (size_t i = 0; i < CONTROL_CONNECTIONS_MAX && slot == CONTROL_CONNECTIONS_MAX;
                     i++)
                        if (!s->connections[i])
                                slot = i;
                if (slot == CONTROL_CONNECTIONS_MAX)
                        continue; /* too many silent clients: this one is closed */
                c = calloc(1, sizeof(*c));
                if (!c)
                        continue;
                *c = (struct connection){.server = s, .fd = TAKE_FD(cfd)};
                c->refused = control_check_peer(c->fd) < 0;
                if (sd_event_add_io(sd_event_source_get_event(source), &c->source, c->fd, EPOLLIN,
                                    on_connection, c) < 0) {
                        connection_free(c);
                        continue;
                }
                s->connections[slot] = c;
        }
}

int control_server_new(sd_event *e, const char *path, control_request_fn on_request, void *userdata,
                       struct control_server **ret)
{
        struct control_server *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        *s = (struct control_server){.fd = -1, .on_request = on_request, .userdata = userdata};
        s->path = strdup(path);
        if (!s->path) {
                control_server_free(s);
                return -ENOMEM;
        }
        s->fd = control_listen(path);
        if (s->fd < 0) {
                r = s->fd;
                free(TAKE_PTR(s->path)); /* not ours to unlink: we did not bind it */
                control_server_free(s);
                return r;
        }
        r = sd_event_add_io(e, &s->source, s->fd, EPOLLIN, on_listen, s);
        if (r < 0) {
                control_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

struct control_server *control_server_free(struct control_server *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < CONTROL_CONNECTIONS_MAX; i++)
                if (s->connections[i])
                        connection_free(s->connections[i]);
        sd_event_source_disable_unref(s->source);
        if (s->fd >= 0) {
                safe_close(s->fd);
                if (s->path)
                        (void)unlink(s->path);
        }
        free(s->path);
        free(s);
        return NULL;
}

/* One message; -EBADMSG on EOF. */
static int recv_msg(int fd, char *buf, size_t size, size_t *ret_len)
{
        ssize_t n;

        do
                n = recv(fd, buf, size - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -EBADMSG;
        buf[n] = '\0';
        *ret_len = (size_t)n;
        return 0;
}

int control_trigger(const char *path, bool wait, int *ret_status, char **ret_output,
                    char **ret_message)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *out = NULL;
        const char *req = wait ? "trigger --wait" : "trigger";
        char msg[CONTROL_MSG_MAX + 1];
        size_t len, out_len = 0;
        struct sockaddr_un sa;
        socklen_t sl;
        uint64_t status = 0;
        int r;

        r = fill_addr(path, &sa, &sl);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sl) < 0)
                return -errno;
        if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
                return -errno;
        r = recv_msg(fd, msg, sizeof(msg), &len);
        if (r < 0)
                return r;
        if (startswith(msg, "busy") || startswith(msg, "refused")) {
                const char *why = msg + (msg[0] == 'b' ? 4 : 7);
                if (ret_message)
                        *ret_message = strdup(why + (*why == ' '));
                return msg[0] == 'b' ? -EBUSY : -EPERM;
        }
        if (!streq(msg, "started"))
                return -EBADMSG;
        if (wait) {
                char chunk[4096];

                r = recv_msg(fd, msg, sizeof(msg), &len);
                if (r < 0)
                        return r == -EBADMSG ? -ECONNRESET : r; /* the daemon went away */
                if (!startswith(msg, "exit ") || safe_atou64(msg + 5, &status) < 0 || status > 255)
                        return -EBADMSG;
                for (;;) {
                        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
                        char *grown;
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -errno;
                        if (n == 0)
                                break;
                        if (out_len + (size_t)n > CONTROL_OUTPUT_MAX)
                                return -EFBIG;
                        grown = realloc(out, out_len + (size_t)n + 1);
                        if (!grown)
                                return -ENOMEM;
                        out = grown;
                        memcpy(out + out_len, chunk, (size_t)n);
                        out_len += (size_t)n;
                        out[out_len] = '\0';
                }
        }
        *ret_status = (int)status;
        if (ret_output)
                *ret_output = out ? TAKE_PTR(out) : strdup("");
        return 0;
}
