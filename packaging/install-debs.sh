#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# install-debs.sh PKG...: install those Debian packages that are missing; quiet and quick when
# all are there. The one place the build, the packaging and the tests install what they need.
set -eu

missing=""
for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done
[ -n "$missing" ] || exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
        echo "not root: run 'sudo apt-get install$missing' first" >&2
        exit 1
fi
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
