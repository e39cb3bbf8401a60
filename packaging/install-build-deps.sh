#!/bin/sh
# Install the Debian 12 packages that building and testing ec2-imaged need, when any is missing.
# Quiet and quick when everything is there already.
set -eu

PKGS="build-essential pkg-config clang clang-format libclang-rt-14-dev
libcurl4-openssl-dev libcjson-dev libsystemd-dev libinih-dev libxml2-dev libssl-dev libcmocka-dev
python3 python3-pytest python3-botocore amazon-ec2-utils awscli
xfsprogs e2fsprogs util-linux procps"

missing=""
for p in $PKGS; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done
if [ -n "$missing" ]; then
        echo "installing build dependencies:$missing"
        if [ "$(id -u)" -ne 0 ]; then
                echo "not root: run 'sudo apt-get install$missing' first" >&2
                exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
