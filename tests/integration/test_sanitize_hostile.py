# SPDX-License-Identifier: Apache-2.0
"""The shipped sanitize hook against what other users can put in the trees it cleans.

A copy of the Debian root of test_sanitize.py (tests/peers/rootfs.py), with the hooks and the
agent installed in it, gets what a service account or a user could have planted in /var/log,
/tmp, /var/tmp, /var/mail, the cron spool, /var/crash and /home: names holding newlines, tabs,
spaces, globs and leading dashes; directories named so that reading their paths line by line
names a file elsewhere (`x<newline>etc/shadow`); a name a rotated-log glob matches
(`libc.so.6`); symlinks out of the tree; a hard link to a file outside; a mount point; symlinked
.ssh and .local directories in /home; and a process that keeps swapping directories for
symlinks (renameat2 RENAME_EXCHANGE) while the hook runs. The hook runs chrooted at the copy's
/ in a private mount namespace, as in test_sanitize.py.

The check: a checksum inventory (path, type, mode, owner, size, sha256 or link target) of the
whole copy, minus what the enabled operations may change, is the same before and after; and
what the operations should have handled, they did.
"""

import ctypes
import fnmatch
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "peers"))
import rootfs  # noqa: E402

ROOT_KEY = "ssh-ed25519 AAAAroot root@laptop\n"
HISTORIES = (".bash_history", ".zsh_history", ".sh_history", ".ash_history", ".history",
             ".python_history", ".lesshst", ".mysql_history", ".psql_history", ".viminfo",
             ".local/share/fish/fish_history")
HOME_FILES = HISTORIES + (".ssh/authorized_keys", ".ssh/authorized_keys2")

# What the operations (all enabled) may change: whole trees below these tops, and these paths.
TREES = ("/var/log", "/tmp", "/var/tmp", "/var/mail", "/var/spool/mail",
         "/var/spool/cron/crontabs", "/var/spool/cron/atjobs", "/var/spool/at", "/var/crash",
         "/var/lib/systemd/coredump", "/var/lib/cloud", "/var/cache/dnf", "/var/cache/yum",
         "/var/cache/zypp/packages", "/var/cache/apt/archives/partial", "/var/lib/dhclient",
         "/var/lib/systemd/network", "/var/lib/ec2-imaged", "/run", "/proc")
PATHS = ("/var/lib/ec2-imaged", "/etc/ssh/ssh_host_*", "/etc/machine-id", "/var/lib/dbus/machine-id",
         "/var/account/pacct*", "/etc/netplan/50-cloud-init.yaml",
         "/etc/network/interfaces.d/50-cloud-init*",
         "/etc/NetworkManager/system-connections/cloud-init-*.nmconnection",
         "/etc/systemd/network/10-cloud-init-*.network", "/etc/ssh/sshd_config.d/50-cloud-init.conf",
         "/etc/sysconfig/network-scripts/ifcfg-*", "/var/cache/apt/archives/*.deb",
         "/var/cache/apt/*.bin", "/var/lib/dhcp/*.leases", "/var/lib/dhcpcd/*.lease*",
         "/var/lib/dhcpcd5/*.lease*", "/var/lib/NetworkManager/*.lease",
         "/var/lib/wicked/lease-*", "/etc/udev/rules.d/70-persistent-net.rules",
         "/var/lib/systemd/random-seed", "/var/lib/urandom/random-seed", "/var/lib/random-seed",
         "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-", "/etc/subuid-",
         "/etc/subgid-", "/var/lib/rpm/__db.*", "/var/lib/yum/uuid")


@pytest.fixture
def root(debian_rootfs, tmp_path, agent_bin):
    r = rootfs.clone(tmp_path / "root")
    yield r
    assert rootfs.mounts_under(tmp_path) == []


def put(root, path, data="x\n", mode=0o644, uid=0, gid=0):
    p = Path(root) / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(p, mode)
    os.chown(p, uid, gid)
    return p


def link(root, path, target):
    p = Path(root) / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, p)


# ---------------------------------------------------------------- the inventory

def homes(root):
    """The homes the hook handles: /root and every real directory in /home (not dot-names)."""
    out = ["/root"]
    for n in sorted(os.listdir(Path(root) / "home")):
        p = Path(root) / "home" / n
        if not n.startswith(".") and p.is_dir() and not p.is_symlink():
            out.append("/home/" + n)
    return out


def may_change(path, home_files):
    """True for what the operations may change: below a tree's top (the top itself stays as it
    is), the listed paths, and the history and key files of each home."""
    if any(path.startswith(t + "/") for t in TREES) or path in home_files:
        return True
    return any(fnmatch.fnmatchcase(path, g) for g in PATHS)


def inventory(root, skip):
    """path -> (type, mode, uid, gid, size, sha256 or link target) for everything under root
    but the paths skip(path) accepts."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = "/" + os.path.relpath(p, root)
            if skip(rel):
                continue
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                what = h.hexdigest()
            else:
                what = None
            out[rel] = (kind, st.st_mode & 0o7777, st.st_uid, st.st_gid,
                        st.st_size if stat.S_ISREG(st.st_mode) else 0, what)
    return out


def guarded(root):
    """An inventory of everything the operations must leave alone."""
    hf = {h + "/" + f for h in homes(root) for f in HOME_FILES}
    return inventory(root, lambda p: may_change(p, hf))


def diff(before, after):
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def parse_manifest(text):
    rows = [tuple(l.split("\t")) for l in text.splitlines()]
    bad = [r for r in rows if len(r) != 3]
    assert not bad, "manifest lines that are not OPERATION<TAB>ACTION<TAB>PATH: %s" % bad
    return rows


def run(root, script):
    """rootfs.ns_run, with a hook that hangs reported as a failed run (returncode None)."""
    try:
        return rootfs.ns_run(root, script, timeout=300)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, (e.stdout or b"").decode(errors="replace"),
                                           "timed out after %ss" % e.timeout)


def hook(phase, mode, dry=False):
    env = "EC2_IMAGED_PHASE=%s EC2_IMAGED_MODE=%s EC2_IMAGED_RUN_ID=run-1 INSTANCE_ID=i-0123" % (
        phase, mode)
    if dry:
        env += " EC2_IMAGED_DRY_RUN=1"
    return "inroot %s /etc/ec2-imaged/hooks/%s.d/50-sanitize" % (env, phase)


# ---------------------------------------------------------------- what hostile users plant

def plant_logs(root):
    # Read line by line, "x\n" + "etc/shadow" names etc/shadow relative to the hook's cwd (/)
    # and "y\n" + "usr/lib/.../libc.so.6" names the C library, which `*.[0-9]` matches.
    put(root, "/var/log/x\netc/shadow", "service log\n")
    put(root, "/var/log/y\nusr/lib/x86_64-linux-gnu/libc.so.6", "service log\n")
    put(root, "/var/log/z\n/etc/canary.1", "service log\n")
    put(root, "/etc/canary.1", "not a log\n")
    for n in ("-rf", "--help.log", "a b.log", "*", "?", "[0-9]", "x\ty.log", "back\\slash.log",
              " lead", "new\nline.log"):
        put(root, "/var/log/svc/" + n, "logged\n", uid=100, gid=100)
    for n in ("-n.1", "* .gz", "app.log.12", "auth.log-20261120", "[0-9].old"):
        put(root, "/var/log/svc/" + n, "rotated\n", uid=100, gid=100)
    # Links: one named like a log (left: never followed, never truncated), one named like a
    # rotated log (the link goes, not /etc/passwd).
    link(root, "/var/log/evil.log", "/etc/passwd")
    link(root, "/var/log/evil.1", "/etc/passwd")
    link(root, "/var/log/svcdir", "/etc")
    # A hard link to a file outside /var/log: truncating it would empty that file.
    put(root, "/srv/hardlink-target", "precious\n")
    os.link(Path(root) / "srv/hardlink-target", Path(root) / "var/log/svc/hard.log")


def plant_spools(root):
    for top in ("/tmp", "/var/tmp", "/var/mail", "/var/spool/cron/crontabs", "/var/crash"):
        for n in ("-rf", "a b", "*", "?", "[0-9]", "x\ny", ".hidden", "--", "t\tab"):
            put(root, top + "/" + n, "user file\n", uid=1000, gid=1000)
        put(root, top + "/d\n/etc/deep", "user file\n", uid=1000, gid=1000)
        link(root, top + "/to-etc", "/etc")
        link(root, top + "/to-passwd", "/etc/passwd")
    put(root, "/srv/bound/data", "behind a mount point\n")
    (Path(root) / "tmp/mnt").mkdir()


def plant_homes(root):
    put(root, "/root/.ssh/authorized_keys", ROOT_KEY, 0o600)
    put(root, "/root/.bash_history", "aws s3 ls\n", 0o600)
    for name in ("admin", "a b", "*", "-rf", "x\ny", "[0-9]"):
        h = "/home/" + name
        put(root, h + "/.ssh/authorized_keys", "ssh-ed25519 AAAA %s\n" % name, 0o600, 1000, 1000)
        put(root, h + "/.bash_history", "history of %s\n" % name, 0o600, 1000, 1000)
        put(root, h + "/.local/share/fish/fish_history", "fish\n", 0o600, 1000, 1000)
        put(root, h + "/keep.txt", "not a history\n", 0o600, 1000, 1000)
    # $(homes) splits "a b" into /home/a and "b": "b/.bash_history" relative to /.
    put(root, "/b/.bash_history", "not a home\n")
    # .ssh and .local as symlinks out of the home, and a home that is a symlink.
    put(root, "/srv/git/.ssh/authorized_keys", "ssh-ed25519 AAAAgit deploy\n", 0o600)
    put(root, "/srv/v-local/share/fish/fish_history", "not this home's\n")
    put(root, "/srv/w-home/.bash_history", "not a home of /home\n")
    put(root, "/home/u/.bash_history", "u\n", 0o600, 1001, 1001)
    link(root, "/home/u/.ssh", "/srv/git/.ssh")
    put(root, "/home/v/.bash_history", "v\n", 0o600, 1002, 1002)
    link(root, "/home/v/.local", "/srv/v-local")
    link(root, "/home/w", "/srv/w-home")
    put(root, "/home/.hidden/.bash_history", "not a home\n")


def test_hostile_names_links_and_mounts(root, tmp_path):
    plant_logs(root)
    plant_spools(root)
    plant_homes(root)
    rootfs.install_hooks(root, "[sanitize]\nenable = all\n")
    before = guarded(root)
    assert "/etc/shadow" in before and "/usr/lib/x86_64-linux-gnu/libc.so.6" in before
    everything = inventory(root, lambda p: False)

    # A dry run first, then the real one (reboot mode: everything enabled goes for good); a bind
    # mount under /tmp stands for a user's FUSE mount.
    mount = 'mount --bind "$ROOT/srv/bound" "$ROOT/tmp/mnt"\n'
    rd = run(root, mount + hook("pre-image", "reboot", dry=True))
    after_dry = inventory(root, lambda p: False)
    r = run(root, mount + hook("pre-image", "reboot"))
    after = guarded(root)
    assert diff(before, after) == [], "changed outside the sanitized trees:\n%s\n%s" % (
        diff(before, after), r.stderr)
    assert diff(everything, after_dry) == [], rd.stderr
    assert rd.returncode == 0, rd
    assert r.returncode == 0, r
    dry = parse_manifest(rd.stdout)
    manifest = parse_manifest(r.stdout)
    assert sorted(dry) == sorted(manifest)
    ops = {(op, a, p) for op, a, p in manifest}

    # Logs: names as they are, escaped in the manifest; current ones truncated, rotated removed.
    for n in ("-rf", "--help.log", "a b.log", "*", "?", "[0-9]", "x\ty.log", "back\\slash.log",
              " lead", "new\nline.log"):
        assert (root / "var/log/svc" / n).stat().st_size == 0, n
    assert (root / "var/log/x\netc/shadow").stat().st_size == 0
    assert ("logfiles", "truncate", "/var/log/x\\netc/shadow") in ops
    assert ("logfiles", "truncate", "/var/log/svc/x\\ty.log") in ops
    assert ("logfiles", "truncate", "/var/log/svc/back\\\\slash.log") in ops
    for n in ("-n.1", "* .gz", "app.log.12", "auth.log-20261120", "[0-9].old"):
        assert not os.path.lexists(root / "var/log/svc" / n), n
    assert not os.path.lexists(root / "var/log/y\nusr/lib/x86_64-linux-gnu/libc.so.6")
    assert not os.path.lexists(root / "var/log/z\n/etc/canary.1")
    assert os.readlink(root / "var/log/evil.log") == "/etc/passwd"
    assert not os.path.lexists(root / "var/log/evil.1")
    assert (root / "var/log/svc/hard.log").read_text() == "precious\n"
    assert "/var/log/svc/hard.log" in r.stderr

    # Spools: emptied, top-level names in the manifest, the mount point left as it is.
    assert sorted(os.listdir(root / "tmp")) == ["mnt"]
    assert "/tmp/mnt" in r.stderr
    for top in ("var/tmp", "var/mail", "var/spool/cron/crontabs", "var/crash"):
        assert os.listdir(root / top) == [], top
    assert ("tmp-files", "remove", "/tmp/x\\ny") in ops
    assert ("tmp-files", "remove", "/tmp/t\\tab") in ops
    assert ("mail-spool", "remove", "/var/mail/d\\n") in ops
    assert ("tmp-files", "remove", "/tmp/-rf") in ops

    # Homes: each real home's histories and keys, whatever its name; nothing behind a link.
    for h in ("/root", "/home/admin", "/home/a b", "/home/*", "/home/-rf", "/home/x\ny",
              "/home/[0-9]"):
        for f in HOME_FILES:
            assert not os.path.lexists(root / h.lstrip("/") / f), h + "/" + f
    assert not os.path.lexists(root / "home/u/.bash_history")
    assert not os.path.lexists(root / "home/v/.bash_history")
    assert (root / "home/a b/keep.txt").exists()
    assert ("shell-history", "remove", "/home/x\\ny/.bash_history") in ops
    assert ("ssh-authorized-keys", "remove", "/home/a b/.ssh/authorized_keys") in ops
    assert "/home/u/.ssh/authorized_keys" in r.stderr


def test_restore_does_not_follow_a_swapped_ssh(root, tmp_path):
    """No-reboot mode: between pre-freeze (stash) and post-thaw (restore) a user swaps their
    .ssh for a symlink to /root/.ssh. The restore refuses it, and root keeps its own key."""
    plant_homes(root)
    rootfs.install_hooks(root, "[sanitize]\nenable = ssh-authorized-keys\n")
    before = guarded(root)
    admin_key = (root / "home/admin/.ssh/authorized_keys").read_bytes()
    r = run(root, """
        %s > "$ROOT/../pre-freeze.manifest"
        mv "$ROOT/home/admin/.ssh" "$ROOT/home/admin/.ssh.real"
        ln -s /root/.ssh "$ROOT/home/admin/.ssh"
        %s > "$ROOT/../post-thaw.manifest"
        """ % (hook("pre-freeze", "no-reboot"), hook("post-thaw", "no-reboot")))
    assert (root / "root/.ssh/authorized_keys").read_text() == ROOT_KEY
    st = (root / "root/.ssh/authorized_keys").stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o600)
    assert r.returncode == 0, r
    stashed = parse_manifest((tmp_path / "pre-freeze.manifest").read_text())
    restored = parse_manifest((tmp_path / "post-thaw.manifest").read_text())
    assert ("ssh-authorized-keys", "stash", "/home/admin/.ssh/authorized_keys") in stashed
    assert ("restore", "restore", "/root/.ssh/authorized_keys") in restored
    assert ("restore", "restore", "/home/admin/.ssh/authorized_keys") not in restored
    assert "/home/admin/.ssh" in r.stderr
    # The symlink is left as the user made it, and nothing behind it was written.
    assert os.readlink(root / "home/admin/.ssh") == "/root/.ssh"
    assert not (root / "home/admin/.ssh.real/authorized_keys").exists()
    # The other homes got their keys back.
    assert (root / "home/a b/.ssh/authorized_keys").read_text() == "ssh-ed25519 AAAA a b\n"
    os.unlink(root / "home/admin/.ssh")
    os.rename(root / "home/admin/.ssh.real", root / "home/admin/.ssh")
    assert admin_key != ROOT_KEY.encode()
    assert diff(before, guarded(root)) == []


# ---------------------------------------------------------------- racing swaps

RACER = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
pairs, stop, limit = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def swap(a, b):
    return libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) == 0
flips = [0] * len(pairs)
open(stop + ".started", "w").close()
n = 0
while not os.path.exists(stop) and n < limit:
    for i, (a, b) in enumerate(pairs):
        if swap(a, b):
            flips[i] += 1
    n += 1
# Put each pair back the way it was (a pair the hook removed is gone for good).
for i, (a, b) in enumerate(pairs):
    if flips[i] % 2:
        swap(a, b)
print(json.dumps({"rounds": n, "flips": flips}))
"""


def plant_race(root):
    """Directories that a racer swaps with symlinks pointing at look-alike trees outside."""
    pairs = []
    for i in range(8):
        for top in ("/var/log/race", "/tmp/race", "/var/tmp/race", "/var/mail/race"):
            d = "%s/d%d" % (top, i)
            put(root, d + "/app.log", "racy log\n", uid=1000, gid=1000)
            put(root, d + "/app.log.1", "racy old log\n", uid=1000, gid=1000)
            put(root, d + "/sub/app.log", "racy log\n", uid=1000, gid=1000)
            link(root, d + ".swap", "/srv/canary")
            pairs.append((d, d + ".swap"))
    put(root, "/srv/canary/app.log", "canary\n")
    put(root, "/srv/canary/app.log.1", "canary\n")
    put(root, "/srv/canary/sub/app.log", "canary\n")
    for user, target in (("racer1", "/root/.ssh"), ("racer2", "/srv/git/.ssh")):
        h = "/home/" + user
        put(root, h + "/.ssh/authorized_keys", "ssh-ed25519 AAAA %s\n" % user, 0o600, 1000,
            1000)
        link(root, h + "/.ssh.swap", target)
        put(root, h + "/.local/share/fish/fish_history", "fish\n", 0o600, 1000, 1000)
        link(root, h + "/.local.swap", "/srv/git/.local")
        pairs += [(h + "/.ssh", h + "/.ssh.swap"), (h + "/.local", h + "/.local.swap")]
    put(root, "/srv/git/.local/share/fish/fish_history", "not this home's\n")
    return pairs


@pytest.mark.parametrize("mode", ["reboot", "no-reboot"])
def test_racing_swaps_never_lead_out(root, tmp_path, mode):
    plant_homes(root)
    pairs = plant_race(root)
    rootfs.install_hooks(root, "[sanitize]\nenable = all\n")
    before = guarded(root)
    stop = tmp_path / "stop"
    racer = subprocess.Popen(
        [sys.executable, "-c", RACER, json.dumps([(str(root) + a, str(root) + b)
                                                  for a, b in pairs]), str(stop), "2000000"],
        stdout=subprocess.PIPE, text=True)
    try:
        while not Path(str(stop) + ".started").exists() and racer.poll() is None:
            os.sched_yield()
        if mode == "reboot":
            script = hook("pre-image", "reboot")
        else:
            script = "%s\n%s\n" % (hook("pre-freeze", mode), hook("post-thaw", mode))
        r = run(root, script)
    finally:
        stop.touch()
        out, _ = racer.communicate(timeout=120)
    rounds = json.loads(out)
    assert rounds["rounds"] > 0 and any(rounds["flips"])
    after = guarded(root)
    assert diff(before, after) == [], "changed outside the sanitized trees:\n%s\n%s" % (
        diff(before, after), r.stderr)
    assert (root / "srv/canary/app.log").read_text() == "canary\n"
    if mode == "no-reboot":
        assert (root / "root/.ssh/authorized_keys").read_text() == ROOT_KEY
    assert r.returncode == 0, r
    parse_manifest(r.stdout)
