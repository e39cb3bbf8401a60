/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The child's side of a supervised child (supervise.h): set up a clean process between fork() and
 * execve() and execute the file, telling the parent why when it cannot. Only supervise.c uses it.
 */
#pragma once

struct supervise_child {
        const char *path;
        int exec_fd; /* the vetted file to execute, or -1: execve(path) */
        char *const *argv;
        char **envp;
        int null_fd, out_fd, err_fd; /* stdin; stdout and stderr; the errno of a failed execve */
        int max_fd;                  /* above the highest descriptor that may be open */
        int pass_fd;                 /* > 2: a descriptor the child gets, as pass_as */
        int pass_as;                 /* > 2 */
};

/* A pipe, both ends O_CLOEXEC and above stdio; 0 or -errno. */
int supervise_pipe(int *ret_read, int *ret_write);

/*
 * In the child, right after fork(): its own process group, default dispositions, an empty mask,
 * stdin from null_fd, stdout and stderr to out_fd, cwd "/", umask 022, no other descriptors (but
 * pass_fd), then execute. On failure the errno goes to err_fd and the child exits with 127.
 * Async-signal-safe.
 */
_Noreturn void supervise_child_exec(const struct supervise_child *c);
