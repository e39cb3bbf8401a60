#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install the Debian 12 packages that building and testing ec2-imaged need, when any is missing.
# Quiet and quick when everything is there already.
#   install-build-deps.sh          everything `make check`, `make demo` and the benchmarks use: the
#                                  packaging tests' debhelper, lintian and rpmlint and the patching
#                                  tests' rpm tools included (the dnf and zypper they run are
#                                  Debian packages installed into their test roots, not here)
#   install-build-deps.sh --build  only what `make` and `make unit` need (the Makefile asks for
#                                  this much when nothing more is wanted)
set -eu

# Compiling, and the unit tests (cmocka; botocore for the SigV4 comparison).
BUILD_PKGS="build-essential pkg-config libcurl4-openssl-dev libcjson-dev libsystemd-dev
libinih-dev libxml2-dev libssl-dev libcmocka-dev python3 python3-botocore"
# The rest of `make check`: clang (format, fuzz), pytest and the tools the integration tests run.
TEST_PKGS="clang clang-format libclang-rt-14-dev git python3-pytest amazon-ec2-utils awscli curl
systemd xfsprogs e2fsprogs util-linux procps time shellcheck mmdebstrap dpkg-dev apt-utils
debhelper fakeroot lintian rpm rpmlint createrepo-c"

case "${1:-}" in
--build) PKGS=$BUILD_PKGS ;;
"") PKGS="$BUILD_PKGS $TEST_PKGS" ;;
*) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086 # one word per package
"$(dirname "$0")/install-debs.sh" $PKGS
[ "${1:-}" != --build ] || exit 0

# The database tests (`make check-db`) start their own servers from these binaries (pgbench is
# postgresql-15's). Installing them must not start Debian's own services: a policy-rc.d that
# exits 101 refuses every start during the install and goes away after it (one already there,
# as in a container, is left as it is).
DB_PKGS="postgresql-15 mariadb-server mariadb-client"
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ] && [ "$(id -u)" -eq 0 ]; then
        printf '#!/bin/sh\n# ec2-imaged install-build-deps.sh: no service starts during the install\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        ours=1
fi
rc=0
# shellcheck disable=SC2086 # one word per package
"$(dirname "$0")/install-debs.sh" $DB_PKGS || rc=$?
[ -z "$ours" ] || rm -f "$policy"
[ "$rc" -eq 0 ] || exit "$rc"

# moto's server is the AWS peer of the tests; Debian does not package it. Look where the tests
# look (tests/peers/peers.py find_moto_python) and try pip only when no python3 has it.
have_moto() {
        for py in ${MOTO_PYTHON:-} $(command -v python3 2>/dev/null) \
                  ${PYENV_ROOT:+$PYENV_ROOT/versions/*/bin/python3} "$HOME"/.pyenv/versions/*/bin/python3; do
                [ -x "$py" ] && "$py" -c 'import moto.server' >/dev/null 2>&1 && return 0
        done
        return 1
}
if ! have_moto; then
        echo "no python3 with moto[server]; trying: python3 -m pip install 'moto[server]'"
        if ! python3 -m pip install --quiet 'moto[server]' 2>/dev/null &&
           ! python3 -m pip install --quiet --break-system-packages 'moto[server]'; then
                echo "cannot install moto[server]: install it for some python3 and set MOTO_PYTHON" >&2
                exit 1
        fi
fi
