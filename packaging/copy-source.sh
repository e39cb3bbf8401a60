#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Copy the source tree as git knows it (tracked and new files, not ignored ones, not build/ or
# build-san/) into DEST, for the package builds: copy-source.sh DEST [EXCLUDED_PREFIX...].
# Files deleted but not yet committed are left out. Run from the top of the tree.
set -eu
dest=$1
shift
pattern='^(build|build-san)/'
for p; do pattern="$pattern|^$p"; done
mkdir -p "$dest"
# shellcheck disable=SC2016 # the inner script's own variables
git ls-files -z --cached --others --exclude-standard |
        grep -zvE "$pattern" |
        xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
        tar --null -T - -cf - | tar -xf - -C "$dest"
