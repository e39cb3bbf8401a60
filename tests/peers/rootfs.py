"""A Debian root filesystem built with mmdebstrap, cached under build/ between runs.

The cache is keyed by a hash of everything that shapes it (suite, mirror, variant, package
list): build/rootfs/<hash>/.  It is built into a temporary directory and renamed into place
when mmdebstrap succeeds, so a cache entry is never half made.  Tests never touch the cached
tree: they copy it (`cp -a`) and work on the copy.
"""

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "rootfs"
SUITE = "bookworm"
VARIANT = "apt"
PACKAGES = ("openssh-server", "systemd", "dbus", "cloud-init", "cron", "ifupdown",
            "isc-dhcp-client", "ca-certificates")


def debian_mirror():
    """The Debian mirror this machine's apt uses (deb.debian.org when none is named)."""
    for f in [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*")):
        try:
            text = f.read_text()
        except OSError:
            continue
        for m in re.finditer(r"(?:URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(\S+/debian)/?\s", text, re.M):
            return m.group(1)
    return "http://deb.debian.org/debian"


def key(mirror=None):
    mirror = mirror or debian_mirror()
    text = "\n".join([SUITE, VARIANT, mirror] + sorted(PACKAGES))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unavailable():
    """Why a root filesystem cannot be built or used here, or None."""
    if os.geteuid() != 0:
        return "not root (building and chrooting into a Debian root needs root)"
    if not shutil.which("mmdebstrap"):
        return "mmdebstrap not installed (apt-get install mmdebstrap)"
    return None


def ensure(log=None):
    """Path of the cached root filesystem, building it first when missing."""
    mirror = debian_mirror()
    dest = CACHE / key(mirror)
    if (dest / "etc" / "os-release").exists():
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / (dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    cmd = ["mmdebstrap", "--mode=root", "--variant=" + VARIANT, "--include=" + ",".join(PACKAGES),
           "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
           "--dpkgopt=path-exclude=/usr/share/locale/*", SUITE, str(tmp), mirror]
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           timeout=1800)
    finally:
        if log:
            out.close()
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError("mmdebstrap failed (%d): %s; see %s" % (r.returncode, " ".join(cmd), log))
    tmp.rename(dest)
    return dest


if __name__ == "__main__":
    print(ensure(log="/dev/stderr"))
