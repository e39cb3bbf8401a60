/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leftovers of a supervised child: its process group and the orphans of its tree, found in /proc
 * and signalled there. See leftovers.h.
 */
#include "host/leftovers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

struct proc_entry {
        pid_t pid, ppid, pgrp;
        char state;
};

/* "pid (comm) state ppid pgrp ...", and comm may contain anything, ')' too. 0 or -errno. */
static int proc_entry_read(pid_t pid, struct proc_entry *ret)
{
        _cleanup_close_ int fd = -1;
        char path[64], buf[512];
        int ppid, pgrp;
        const char *p;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -ENODATA;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %c %d %d", &ret->state, &ppid, &pgrp) != 3)
                return -EBADMSG;
        ret->pid = pid;
        ret->ppid = ppid;
        ret->pgrp = pgrp;
        return 0;
}

/* Calls fn for every process in /proc (those that vanish meanwhile are left out). */
static int proc_for_each(int (*fn)(const struct proc_entry *e, void *userdata), void *userdata)
{
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                struct proc_entry e;
                unsigned pid;
                int r;

                if (safe_atou(de->d_name, &pid) < 0 || proc_entry_read((pid_t)pid, &e) < 0)
                        continue;
                r = fn(&e, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int remember_child(const struct proc_entry *e, void *userdata)
{
        struct leftovers *l = userdata;
        pid_t *k;

        if (e->ppid != getpid())
                return 0;
        k = reallocarray(l->known, l->n_known + 1, sizeof(pid_t));
        if (!k)
                return -ENOMEM;
        l->known = k;
        l->known[l->n_known++] = e->pid;
        return 0;
}

void leftovers_begin(struct leftovers *l)
{
        int was = 0, r;

        *l = (struct leftovers){};
        r = proc_for_each(remember_child, l);
        if (r < 0) {
                log_debug_errno(r, "Cannot list our children, orphans will not be adopted: %m");
                return;
        }
        if (prctl(PR_GET_CHILD_SUBREAPER, &was) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                log_debug_errno(errno, "Cannot become a subreaper: %m");
                return;
        }
        l->was_subreaper = was != 0;
        l->adopting = true;
}

void leftovers_set_leader(struct leftovers *l, pid_t leader)
{
        l->leader = leader;
}

void leftovers_end(struct leftovers *l)
{
        if (l->adopting && !l->was_subreaper)
                (void)prctl(PR_SET_CHILD_SUBREAPER, 0);
        free(l->known);
        *l = (struct leftovers){};
}

static bool is_known(const struct leftovers *l, pid_t pid)
{
        for (size_t i = 0; i < l->n_known; i++)
                if (l->known[i] == pid)
                        return true;
        return false;
}

/* Whether pid had sig already; records it when not (and when there is room). */
static bool already_sent(struct leftovers *l, pid_t pid, int sig)
{
        for (size_t i = 0; i < l->n_sent; i++)
                if (l->sent_pid[i] == pid) {
                        if (l->sent_sig[i] == sig)
                                return true;
                        l->sent_sig[i] = sig;
                        return false;
                }
        if (l->n_sent < LEFTOVERS_TRACK_MAX) {
                l->sent_pid[l->n_sent] = pid;
                l->sent_sig[l->n_sent++] = sig;
        }
        return false;
}

static void forget_sent(struct leftovers *l, pid_t pid)
{
        for (size_t i = 0; i < l->n_sent; i++)
                if (l->sent_pid[i] == pid) {
                        l->sent_pid[i] = l->sent_pid[--l->n_sent];
                        l->sent_sig[i] = l->sent_sig[l->n_sent];
                        return;
                }
}

struct sweep {
        struct leftovers *l;
        int sig;
        int alive;
};

static int sweep_one(const struct proc_entry *e, void *userdata)
{
        struct sweep *s = userdata;
        struct leftovers *l = s->l;
        bool dead = e->state == 'Z' || e->state == 'X';
        bool adopted =
                l->adopting && e->ppid == getpid() && e->pid != l->leader && !is_known(l, e->pid);

        if (e->pid == l->leader)
                return 0;
        if (adopted && dead) {
                /* Ours to reap: nobody else will, and its pid stays taken until we do. */
                (void)waitpid(e->pid, NULL, WNOHANG);
                forget_sent(l, e->pid);
                return 0;
        }
        if (dead || (!adopted && e->pgrp != l->leader))
                return 0;
        s->alive++;
        /*
         * An adopted orphan is our unreaped child, so neither its pid nor (when it leads one) its
         * group id can be reused while we signal them.
         */
        if (adopted && s->sig != 0 && !already_sent(l, e->pid, s->sig)) {
                (void)kill(e->pid, s->sig);
                if (e->pgrp == e->pid)
                        (void)kill(-e->pid, s->sig);
        }
        return 0;
}

int leftovers_sweep(struct leftovers *l, int sig)
{
        struct sweep s = {.l = l, .sig = sig};
        int r;

        r = proc_for_each(sweep_one, &s);
        return r < 0 ? r : s.alive;
}
