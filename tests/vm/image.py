# SPDX-License-Identifier: Apache-2.0
"""Guest disk images for the end-to-end test, built without mounting anything.

The base system is a Debian 12 tarball made by mmdebstrap and cached outside the repository
(E2E_CACHE, default /var/cache/ec2-imaged-e2e/base-<hash>.tar), keyed by a hash of everything
that shapes it.  Each run unpacks it into build/e2e/, installs the freshly built .deb with dpkg
in a chroot (deb-systemd-helper enables the units as on a real install; nothing is started, the
chroot has no systemd), writes the guest's test settings (guest_files()) and the test's hooks,
scripts and units (tests/vm/guest/, copied as they are), and makes the root disk with
`mkfs.ext4 -d` and the data disk with mkfs.xfs: no loop device and no mount on this machine.
The kernel and initrd are taken from the tree and booted directly by qemu (-kernel), so the
disks need no boot loader and the root filesystem is the whole of /dev/vda.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "udev", "dbus", "linux-image-cloud-amd64", "cloud-init",
            "openssh-server", "xfsprogs", "e2fsprogs", "ca-certificates", "iproute2",
            # what the .deb depends on, so that `dpkg -i` needs no network
            "libcurl4", "libcjson1", "libinih1", "libxml2", "libssl3", "libsystemd0")
CACHE = Path(os.environ.get("E2E_CACHE", "/var/cache/ec2-imaged-e2e"))
GUEST_TREE = Path(__file__).resolve().parent / "guest"


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


def guest_files(imds_ip, guest_ip, front_port):
    """The guest's settings for the test's network and peers: {path in the root: text}."""
    return {
        # Under TCG udev can take minutes to announce the disks: longer than systemd's 90 s.
        "etc/fstab": "/dev/vda / ext4 errors=remount-ro 0 1\n"
                     "/dev/vdb /data xfs defaults,x-systemd.device-timeout=600s 0 0\n",
        "etc/systemd/system.conf.d/50-e2e.conf":
            "[Manager]\nDefaultTimeoutStartSec=600s\n",
        "etc/hostname": "golden\n",
        "etc/systemd/network/10-e2e.network":
            "[Match]\nName=eth0\n\n[Network]\nAddress=%s/16\nLinkLocalAddressing=no\n" % guest_ip,
        # The datasource, its address and the test's network (static: no DHCP in the namespace).
        "etc/cloud/cloud.cfg.d/99-e2e.cfg":
            "datasource_list: [Ec2, None]\n"
            "datasource:\n  Ec2:\n    metadata_urls: ['http://%s']\n    max_wait: 240\n"
            "    timeout: 20\nnetwork:\n  config: disabled\n"
            # The base image has no locales package: C.UTF-8 needs no generation.
            "locale: C.UTF-8\n" % imds_ip,
        "etc/ec2-imaged/conf.d/50-e2e.conf":
            "# The EC2 API of the e2e test (tests/vm/ec2_front.py in the test's namespace).\n"
            "[aws]\nendpoint_url = http://%s:%d\n\n[daemon]\nuser_data = yes\n\n"
            "[freeze]\ntimeout_ms = 120000\n" % (imds_ip, front_port),
    }


def run(cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(c) for c in cmd], **kw)


def install_files(tree, files):
    """FILES (guest_files()) and tests/vm/guest/ into TREE; the hook directories root's only."""
    for rel, text in files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chmod(p, 0o644)
    for src in sorted(p for p in GUEST_TREE.rglob("*") if p.is_file()):
        p = tree / src.relative_to(GUEST_TREE)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, p)
        os.chmod(p, 0o755 if os.access(src, os.X_OK) else 0o644)
    # The shipped sanitize hook in the three phases it acts in (README: enabled by symlinks).
    for phase in ("pre-image", "pre-freeze", "post-thaw"):
        d = tree / "etc/ec2-imaged/hooks" / (phase + ".d")
        d.mkdir(parents=True, exist_ok=True)
        (d / "50-sanitize").symlink_to("/usr/lib/ec2-imaged/hooks/sanitize")
    hooks = tree / "etc/ec2-imaged/hooks"
    for d in [hooks] + [p for p in hooks.iterdir() if p.is_dir()]:
        os.chmod(d, 0o755)


def build_golden(deb, work, log, files):
    """root.img (ext4, made with mkfs.ext4 -d), data.img (xfs), vmlinuz and initrd in WORK,
    with DEB installed (its output in LOG) and FILES (guest_files()) written."""
    base = base_tarball(log.parent / "mmdebstrap.log")  # made by the caller first, offline here
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    run(["tar", "-C", tree, "--numeric-owner", "-xpf", base])
    shutil.copy(deb, tree / "tmp" / deb.name)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LANG": "C.UTF-8"}
    with open(log, "w") as out:
        run(["chroot", tree, "dpkg", "-i", "/tmp/" + deb.name], env=env, stdout=out,
            stderr=subprocess.STDOUT)
    (tree / "tmp" / deb.name).unlink()
    install_files(tree, files)
    (tree / "data").mkdir(exist_ok=True)
    (tree / "etc/machine-id").write_text("uninitialized\n")
    # A cloud image asks nobody anything at its first boot.
    (tree / "etc/systemd/system/systemd-firstboot.service").symlink_to("/dev/null")
    (tree / "etc/localtime").unlink(missing_ok=True)
    (tree / "etc/localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    for unit in ("systemd-networkd.service", "e2e-report.service", "e2e-tmp.service"):
        run(["systemctl", "--root=%s" % tree, "enable", unit], capture_output=True)
    # A console login prompt is not needed; serial-getty stays as it is.
    kernel = sorted((tree / "boot").glob("vmlinuz-*"))[-1]
    initrd = sorted((tree / "boot").glob("initrd.img-*"))[-1]
    shutil.copy(kernel, work / "vmlinuz")
    shutil.copy(initrd, work / "initrd.img")
    root = work / "root.img"
    root.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", tree, root, "3G"])
    data = work / "data.img"
    data.unlink(missing_ok=True)
    run(["truncate", "-s", "1G", data])
    run(["mkfs.xfs", "-q", "-L", "data", data])
    shutil.rmtree(tree)


if __name__ == "__main__":
    print(base_tarball("/dev/stderr"))
