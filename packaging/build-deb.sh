#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build the Debian package into OUTDIR (default build/): the source tree as git knows it (tracked
# and new files, not ignored ones) is copied to OUTDIR/deb/ec2-imaged-VERSION/ with
# packaging/debian as its debian/, then dpkg-buildpackage builds the binary package and lintian
# checks it: any error or warning fails the build. Installs the Debian tools it needs when
# missing, the way install-build-deps.sh does.
set -eu
cd "$(dirname "$0")/.."
# Variables of a calling make (SAN=1 from `make check-san` running the tests) must not reach
# the package's own build.
unset MAKEFLAGS MFLAGS MAKELEVEL
OUT=$(realpath -m "${1:-build}")

PKGS="build-essential debhelper dpkg-dev fakeroot lintian pkg-config libcurl4-openssl-dev
libcjson-dev libsystemd-dev libinih-dev libxml2-dev libssl-dev"
# shellcheck disable=SC2086 # one word per package
"$(dirname "$0")/install-debs.sh" $PKGS

version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
make_version=$(sed -n 's/^VERSION *:= *//p' Makefile)
if [ "$version" != "$make_version" ]; then
        echo "packaging/debian/changelog says $version, the Makefile $make_version" >&2
        exit 1
fi

work="$OUT/deb"
src="$work/ec2-imaged-$version"
rm -rf "$work"
packaging/copy-source.sh "$src" packaging/debian/
cp -r packaging/debian "$src/debian"
# 3.0 (native) is only needed for a source build; the binary build takes the tree as it is.
(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign -j"$(nproc)" > "$work/build.log" 2>&1) || {
        tail -40 "$work/build.log" >&2
        echo "dpkg-buildpackage failed; the whole log is $work/build.log" >&2
        exit 1
}
deb="$work/ec2-imaged_${version}_$(dpkg --print-architecture).deb"
cp "$deb" "$OUT/"
echo "built $OUT/$(basename "$deb")"

# --fail-on error,warning: lintian exits non-zero on either.
lintian --fail-on error,warning --tag-display-limit 0 "$OUT/$(basename "$deb")"
echo "lintian: no errors, no warnings"
