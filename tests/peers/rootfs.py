# SPDX-License-Identifier: Apache-2.0
"""A Debian root filesystem built with mmdebstrap, cached under build/ between runs.

The cache is keyed by a hash of everything that shapes it (suite, mirror, variant, package
list): build/rootfs/<hash>/.  A caller may ask for packages beyond PACKAGES (extra=(...)): that
root is another cache entry, keyed by the whole list.  It is built into a temporary directory
and renamed into place when mmdebstrap succeeds, so a cache entry is never half made.  Tests
never touch the cached tree: they copy it (`cp -a`) and work on the copy.
"""

import fcntl
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


def key(mirror=None, extra=()):
    mirror = mirror or debian_mirror()
    text = "\n".join([SUITE, VARIANT, mirror] + sorted(PACKAGES + tuple(extra)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unavailable():
    """Why a root filesystem cannot be built or used here, or None."""
    if os.geteuid() != 0:
        return "not root (building and chrooting into a Debian root needs root)"
    if not shutil.which("mmdebstrap"):
        return "mmdebstrap not installed (apt-get install mmdebstrap)"
    return None


def ensure(log=None, extra=()):
    """Path of the cached root filesystem (with the packages extra besides PACKAGES), building it
    first when missing."""
    extra = tuple(extra)
    mirror = debian_mirror()
    dest = CACHE / key(mirror, extra)
    if (dest / "etc" / "os-release").exists():
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    # Test runs in parallel (other checkouts' `make check`) build it once: the others wait.
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / "etc" / "os-release").exists():
            return dest
        return _build(mirror, dest, log, extra)


def _build(mirror, dest, log, extra=()):
    tmp = CACHE / (dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    cmd = ["mmdebstrap", "--mode=root", "--variant=" + VARIANT,
           "--include=" + ",".join(PACKAGES + extra),
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


# ---------------------------------------------------------------- using it

HOOKS = REPO / "hooks"
LIB = "/usr/lib/ec2-imaged/hooks"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def clone(dest, extra=(), log=None):
    """A private copy of the cached root (with the packages extra) at dest (which must not
    exist)."""
    base = ensure(log=log or str(REPO / "build" / "test-logs" / "rootfs-build.log"), extra=extra)
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(dest)], check=True)
    return Path(dest)


def agent_path():
    """The built agent the tests use: $EC2_IMAGED_BIN, else build/ec2-imaged."""
    return os.environ.get("EC2_IMAGED_BIN") or str(REPO / "build" / "ec2-imaged")


def install_agent(root, binary=None):
    """The agent at /usr/sbin/ec2-imaged in root, where the sanitize hook calls it for its file
    operations, with the shared libraries it needs (ldd) that root lacks: root is a Debian 12
    like this machine, so the host's copies fit. A sanitizer build brings its runtime along."""
    root = Path(root)
    binary = binary or agent_path()
    if not os.access(binary, os.X_OK):
        raise RuntimeError("agent binary %s not built (run make, or set EC2_IMAGED_BIN)" % binary)
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for lib in re.findall(r"(/\S+) \(0x", out):
        dest = root / lib.lstrip("/")
        if not os.path.lexists(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dest)
    dest = root / "usr/sbin/ec2-imaged"
    shutil.copy2(binary, dest)
    os.chmod(dest, 0o755)


def install_hooks(root, config="", enable=("sanitize",)):
    """The hooks as the package installs them (LIB), enabled by symlinks in
    /etc/ec2-imaged/hooks/<phase>.d, and /etc/ec2-imaged/ec2-imaged.conf holding config. With
    sanitize, the agent too (install_agent): the hook does its file operations through it."""
    root = Path(root)
    if "sanitize" in enable:
        install_agent(root)
    lib = root / LIB.lstrip("/")
    lib.mkdir(parents=True, exist_ok=True)
    for n in ("lib.sh", "sanitize", "patch", "firstboot"):
        shutil.copy2(HOOKS / n, lib / n)
    links = {"sanitize": [("pre-image.d", "50-sanitize"), ("pre-freeze.d", "50-sanitize"),
                          ("post-thaw.d", "50-sanitize")],
             "patch": [("pre-image.d", "10-patch")]}
    for what in enable:
        for d, name in links[what]:
            (root / "etc/ec2-imaged/hooks" / d).mkdir(parents=True, exist_ok=True)
            os.symlink("%s/%s" % (LIB, what), root / "etc/ec2-imaged/hooks" / d / name)
    (root / "etc/ec2-imaged/ec2-imaged.conf").write_text(config)


def ns_run(root, script, timeout=600):
    """Run the sh script (as root on the host side, with $ROOT set) in a private mount namespace
    where $ROOT/proc is mounted; `inroot CMD...` runs CMD chrooted into $ROOT with a clean
    environment plus the variables given as NAME=VALUE words before CMD. Whatever is mounted
    dies with the namespace."""
    pre = ('set -eu\n'
           'mount -t proc proc "$ROOT/proc"\n'
           'inroot() { chroot "$ROOT" /usr/bin/env -i PATH=%s LANG=C.UTF-8 "$@"; }\n' % CHROOT_PATH)
    env = dict(os.environ, ROOT=str(root))
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                        pre + script], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    return r


def mounts_under(path):
    path = str(path)
    with open("/proc/mounts") as f:
        return [l for l in f if l.split()[1].startswith(path)]


def inventory(root, tops=("etc", "var", "root", "home", "tmp", "run")):
    """Path -> (kind, mode, uid, gid, content) for everything under the tops: what an image of
    root would hold there. content: the bytes of a file (hashed when large), a link's target."""
    root = Path(root)
    out = {}
    for top in tops:
        base = root / top
        if not base.exists() and not base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            for n in dirnames + filenames:
                p = Path(dirpath) / n
                st = p.lstat()
                rel = "/" + str(p.relative_to(root))
                if p.is_symlink():
                    out[rel] = ("link", 0, st.st_uid, st.st_gid, os.readlink(p))
                elif p.is_dir():
                    out[rel] = ("dir", st.st_mode & 0o7777, st.st_uid, st.st_gid, None)
                elif p.is_file():
                    data = p.read_bytes()
                    c = data if len(data) < 4096 else hashlib.sha256(data).hexdigest()
                    out[rel] = ("file", st.st_mode & 0o7777, st.st_uid, st.st_gid, c)
                else:
                    out[rel] = ("other", st.st_mode, st.st_uid, st.st_gid, None)
    return out
