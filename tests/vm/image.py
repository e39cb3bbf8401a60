# SPDX-License-Identifier: Apache-2.0
"""Guest disk images for the end-to-end test, built without mounting anything.

The base system is a Debian 12 tarball made by mmdebstrap and cached outside the repository
(E2E_CACHE, default /var/cache/ec2-imaged-e2e/base-<hash>.tar), keyed by a hash of everything
that shapes it.  Each run unpacks it into build/e2e/, installs the freshly built .deb with dpkg
in a chroot (deb-systemd-helper enables the units as on a real install; nothing is started, the
chroot has no systemd), writes the guest's test settings, and makes the root disk with
`mkfs.ext4 -d` and the data disk with mkfs.xfs: no loop device and no mount on this machine.
The kernel and initrd are taken from the tree and booted directly by qemu (-kernel), so the
disks need no boot loader and the root filesystem is the whole of /dev/vda.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "udev", "dbus", "linux-image-cloud-amd64", "cloud-init",
            "openssh-server", "xfsprogs", "e2fsprogs", "ca-certificates", "iproute2",
            # what the .deb depends on, so that `dpkg -i` needs no network
            "libcurl4", "libcjson1", "libinih1", "libxml2", "libssl3", "libsystemd0")
CACHE = Path(os.environ.get("E2E_CACHE", "/var/cache/ec2-imaged-e2e"))


def debian_mirror():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))
    import rootfs  # the same mirror discovery as the other rootfs tests
    return rootfs.debian_mirror()


def base_key(mirror):
    text = "\n".join([SUITE, "minbase+", mirror] + sorted(PACKAGES))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_tarball(log):
    """The cached base tarball, built first when missing (built aside, renamed when whole)."""
    mirror = debian_mirror()
    dest = CACHE / ("base-%s.tar" % base_key(mirror))
    if dest.exists():
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tar.tmp")
    cmd = ["mmdebstrap", "--mode=root", "--variant=apt", "--include=" + ",".join(PACKAGES),
           "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
           "--dpkgopt=path-exclude=/usr/share/locale/*", "--format=tar", SUITE, str(tmp), mirror]
    with open(log, "w") as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           timeout=1800)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("mmdebstrap failed (%d); see %s" % (r.returncode, log))
    tmp.rename(dest)
    return dest


if __name__ == "__main__":
    print(base_tarball("/dev/stderr"))
