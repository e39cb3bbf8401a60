/* SPDX-License-Identifier: Apache-2.0 */
/* File reading with a ceiling, and atomic replacement that survives a crash at any point. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * Replace path with data: write a temporary file in the same directory, fsync it, rename it over
 * path, fsync the directory. After a crash the file is either wholly old or wholly new.
 */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Read a whole regular file of at most max bytes (-EFBIG beyond). The result is NUL-terminated. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len);
/* read_file_bounded() of dir/name, where a missing file is no error: 0 with *ret NULL. */
int read_file_in(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len);

/* mkdir -p for one level of parents, with mode for what it creates. */
int mkdir_parents(const char *path, mode_t mode);

/*
 * The first regular, executable file called name in the colon-separated directories of
 * search_path (empty entries and relative directories are skipped). -ENOENT when none.
 */
int find_executable(const char *name, const char *search_path, char **ret);

/*
 * A descriptor that is none of stdin, stdout, stderr (a child maps those, a guard maps /dev/null
 * onto them): fd itself when above 2, else a close-on-exec duplicate above 2 (fd is closed), or
 * -errno. A negative fd is returned as it is.
 */
int fd_move_above_stdio(int fd);
