/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tree operations of the sanitize hook (logfiles, the removals by pattern, the contents of
 * /tmp, /var/tmp and the spools), on top of safefs.h and by its rules. Each returns 0, or the
 * first error met (the rest of the tree is still done); refusals are reported, not errors. A
 * tree whose top is missing is nothing to do; one reached through a symlink is left, with a
 * notice.
 */
#pragma once

#include <stdbool.h>

#include "host/safefs.h"

/*
 * True for the names of rotated logs: ending in .N or .NN (N a digit), .gz, .xz, .bz2, .zst,
 * .old, or -YYYYMMDD (eight digits).
 */
bool safefs_is_rotated_log(const char *name);

/*
 * The logs under tree: rotated logs (safefs_is_rotated_log) and symlinks so named removed;
 * files under a directory called "journal" removed (with live_journal only the archived ones,
 * NAME@... and *.journal~, journald maps its active files); every other non-empty regular file
 * truncated in place (a daemon writing into it goes on writing into the same file). Other
 * symlinks, devices, sockets and FIFOs are left. Walked depth first, in byte order of names.
 */
int safefs_logs(struct safefs *fs, const char *tree, bool live_journal);

/* Remove path (exact, absolute inside the root): a file or symlink, or a directory and all in it.
 */
int safefs_remove(struct safefs *fs, const char *path);

/*
 * Remove what matches pattern: a directory (exact) and a last component that is an fnmatch()
 * pattern, matched against each name of that directory with FNM_PERIOD (a leading dot must be
 * matched by a dot, as in sh). -EINVAL when the directory part holds a pattern character.
 */
int safefs_remove_matching(struct safefs *fs, const char *pattern);

/* Remove everything in directory dir but the names matching keep (fnmatch; NULL: none). */
int safefs_remove_contents(struct safefs *fs, const char *dir, const char *keep);
