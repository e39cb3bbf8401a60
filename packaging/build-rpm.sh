#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build the RPM into OUTDIR (default build/) with rpmbuild, from a tarball of the source tree as
# git knows it, and check it with rpmlint: any error fails the build. On Debian the build
# dependencies are Debian packages (rpmbuild --nodeps); systemd's rpm macros, which Debian does
# not ship, come from packaging/rpm/macros.systemd-fallback, and the debuginfo package that
# Fedora's redhat-rpm-config asks for from packaging/rpm/macros.debuginfo-fallback.
set -eu
cd "$(dirname "$0")/.."
# Variables of a calling make (SAN=1 from `make check-san` running the tests) must not reach
# the package's own build.
unset MAKEFLAGS MFLAGS MAKELEVEL
OUT=$(realpath -m "${1:-build}")
VERSION=${2:-$(sed -n 's/^VERSION *:= *//p' Makefile)}

PKGS="rpm rpmlint debugedit elfutils build-essential pkg-config libcurl4-openssl-dev libcjson-dev libsystemd-dev
libinih-dev libxml2-dev libssl-dev"
# shellcheck disable=SC2086 # one word per package
"$(dirname "$0")/install-debs.sh" $PKGS

spec_version=$(sed -n 's/^Version: *//p' packaging/rpm/ec2-imaged.spec)
if [ "$spec_version" != "$VERSION" ]; then
        echo "packaging/rpm/ec2-imaged.spec says $spec_version, the Makefile $VERSION" >&2
        exit 1
fi

top="$OUT/rpm"
rm -rf "$top"
mkdir -p "$top/SOURCES"
packaging/copy-source.sh "$top/stage/ec2-imaged-$VERSION"
tar -C "$top/stage" -czf "$top/SOURCES/ec2-imaged-$VERSION.tar.gz" "ec2-imaged-$VERSION"

set -- --define "_topdir $top" --nodeps \
        --define "packager ec2-imaged maintainers <maintainers@users.noreply.r-seed-b0a0da86.example>"
if [ -z "$(rpm --eval '%{?systemd_post:yes}')" ]; then
        set -- "$@" --load "$PWD/packaging/rpm/macros.systemd-fallback"
fi
if [ -z "$(rpm --eval '%{?_enable_debug_packages}')" ]; then
        set -- "$@" --load "$PWD/packaging/rpm/macros.debuginfo-fallback"
fi
rpmbuild "$@" -bb packaging/rpm/ec2-imaged.spec > "$top/build.log" 2>&1 || {
        tail -40 "$top/build.log" >&2
        echo "rpmbuild failed; the whole log is $top/build.log" >&2
        exit 1
}
rpmfile=$(find "$top/RPMS" -name "ec2-imaged-$VERSION-*.rpm" | head -n 1)
cp "$rpmfile" "$OUT/"
echo "built $OUT/$(basename "$rpmfile")"

# rpmlint exits 64 on errors (and 66 on badness over the threshold); a warning fails the build
# here, as with lintian. Only the main package is linted: the debuginfo package's .debug files
# draw rpmlint's warnings about unstripped, dependency-less objects, which is what they are.
out=$(rpmlint -c packaging/rpm/rpmlint.toml "$OUT/$(basename "$rpmfile")") || {
        echo "$out"
        exit 1
}
echo "$out"
if ! echo "$out" | grep -q ' 0 errors, 0 warnings'; then
        echo "rpmlint: warnings (packaging/rpm/rpmlint.toml lists the accepted ones)" >&2
        exit 1
fi
# What rpmlint's no-manual-page-for-binary is meant to check (see rpmlint.toml).
files=$(rpm -qlp "$OUT/$(basename "$rpmfile")")
exes=$(echo "$files" | sed -n 's|^/usr/s\{0,1\}bin/||p')
[ -n "$exes" ] || { echo "no binary in /usr/bin or /usr/sbin in the package" >&2; exit 1; }
for exe in $exes; do
        if ! echo "$files" | grep -Eq "^/usr/share/man/man[1-8]/$exe\.[1-8]\.gz$"; then
                echo "no man page for /usr/*bin/$exe in the package" >&2
                exit 1
        fi
done
echo "rpmlint: no errors, no warnings; every binary in the PATH has its man page"
