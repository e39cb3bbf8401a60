#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install the Debian 12 packages that building and testing ec2-imaged need, when any is missing.
# Quiet and quick when everything is there already.
set -eu

PKGS="build-essential pkg-config clang clang-format libclang-rt-14-dev
libcurl4-openssl-dev libcjson-dev libsystemd-dev libinih-dev libxml2-dev libssl-dev libcmocka-dev
python3 python3-pytest python3-botocore amazon-ec2-utils awscli
xfsprogs e2fsprogs util-linux procps time
shellcheck mmdebstrap dpkg-dev apt-utils rpm createrepo-c"

# shellcheck disable=SC2086 # one word per package
"$(dirname "$0")/install-debs.sh" $PKGS

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
