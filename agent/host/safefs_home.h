/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-user files of the homes (authorized_keys, shell histories), by the rules of safefs.h.
 *
 * The homes: /root, and every directory in /home whose name does not start with a dot (what the
 * sh glob of /home gave), in byte order; an entry of /home that is a symlink is no home. A home
 * may be a mount point of its own; below it nothing is followed or crossed: a file is reached
 * through its directories (.ssh, .local/share/fish) opened beneath the home without following a
 * symlink or entering another mount, so /home/u/.ssh -> /srv/git/.ssh is refused and reported,
 * and what /srv/git/.ssh holds is never touched.
 *
 * files: paths relative to a home (".ssh/authorized_keys"), NULL-terminated.
 */
#pragma once

#include "host/safefs.h"

/* The largest file home_stash copies (an authorized_keys file is a few KiB). */
#define SAFEFS_STASH_MAX (1024 * 1024)

/* Remove each of files from every home ("remove" lines). */
int safefs_home_remove(struct safefs *fs, char *const *files);

/*
 * Copy each of files of every home to stash_dir/user/<home>/<file> with its owner, mode, times
 * and extended attributes ("stash" line), then remove it ("remove" line). Only regular files of
 * one link (up to SAFEFS_STASH_MAX) and symlinks (as links) are stashed; anything else is left in
 * place and reported, so that nothing is removed that could not be put back.
 */
int safefs_home_stash(struct safefs *fs, const char *stash_dir, char *const *files);

/*
 * Put back what safefs_home_stash copied to stash_dir ("restore" lines): each file is written to
 * a new file in its directory and renamed over the name, so whatever is there now (a link
 * included) is replaced, never written through. A directory on the way that is now a symlink,
 * is gone, or is on another mount is refused and reported: its files are not restored.
 */
int safefs_home_restore(struct safefs *fs, const char *stash_dir);
