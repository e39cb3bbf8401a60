/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mount selection for the freeze: parse a mountinfo file (with a ceiling on its size, and the
 * kernel's octal escapes undone) and choose from it the mount points to freeze, by the rules
 * freeze_select() in freeze.h describes. Reads files only; freezing is freeze.c's.
 */
#pragma once

#include <stdbool.h>

/* Ceiling on the size of a mountinfo file; more than this is refused with -EFBIG. */
#define FREEZE_MOUNTINFO_MAX (8u * 1024u * 1024u)

/*
 * What freeze_select() returns, read from mountinfo_path (NULL: /proc/self/mountinfo), with the
 * loop devices' backing files read from sysfs_path (NULL: /sys; dev/block/MAJ:MIN/loop/
 * backing_file, through partitions and slaves/) to order a filesystem before the one that holds
 * its backing file. With lenient (for freeze_thaw_all(), whose saved list may name mounts that
 * are gone by now), an explicit entry that cannot be used is skipped with a warning instead of
 * failing the selection. *ret is a NULL-terminated vector, possibly empty, for strv_free().
 * Errors are logged here.
 */
int mountinfo_select(const char *const *configured, const char *mountinfo_path,
                     const char *sysfs_path, bool lenient, char ***ret);
