# SPDX-License-Identifier: Apache-2.0
"""The shipped sanitize hook and first-boot script against a real Debian root filesystem.

The root is built by mmdebstrap (tests/peers/rootfs.py, cached under build/rootfs/) and copied
for each test; the hooks are installed into the copy as the package installs them and run
chrooted into it, inside a private mount namespace (`unshare --mount`), so that nothing they do
can reach this machine's own files and nothing they mount outlives the test. A copy of the root
taken between pre-freeze and post-thaw (`cp -ax`, which stays on one filesystem as a snapshot
of the volume would) stands for the image.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "peers"))
import rootfs  # noqa: E402

GOLDEN = "i-0123456789abcdef0"
CLONE = "i-0fedcba9876543210"
MID = "0123456789abcdef0123456789abcdef"
DBUS_MID = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def root(debian_rootfs, tmp_path):
    r = rootfs.clone(tmp_path / "root")
    yield r
    assert rootfs.mounts_under(tmp_path) == []


def write(root, path, data, mode=0o644, uid=0, gid=0):
    p = Path(root) / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    p.write_bytes(data)
    os.chmod(p, mode)
    os.chown(p, uid, gid)
    return p


def lived_in(root):
    """What a golden instance that ran for a while holds."""
    write(root, "/etc/machine-id", MID + "\n", 0o444)
    write(root, "/var/lib/dbus/machine-id", DBUS_MID + "\n")
    os.makedirs(Path(root) / "home/admin/.ssh", exist_ok=True)
    write(root, "/root/.ssh/authorized_keys", "ssh-ed25519 AAAAroot root@laptop\n", 0o600)
    write(root, "/home/admin/.ssh/authorized_keys", "ssh-ed25519 AAAAadm admin@laptop\n", 0o600,
          1000, 1000)
    write(root, "/var/log/syslog", "Nov 26 sshd: Accepted publickey for root\n" * 50, 0o640)
    write(root, "/var/log/syslog.1", "older\n")
    write(root, "/var/log/syslog.2.gz", b"\x1f\x8b older")
    write(root, "/var/log/auth.log-20261120", "old auth\n")
    write(root, "/var/log/apt/history.log", "Start-Date: 2026-11-26\n")
    write(root, "/var/log/journal/%s/system.journal" % MID, b"LPKSHHRH" + b"\0" * 100)
    write(root, "/var/log/journal/%s/system@0001-0002.journal" % MID, b"LPKSHHRH" + b"\0" * 100)
    write(root, "/var/log/wtmp", b"\1" * 384, 0o664)
    write(root, "/var/log/cloud-init.log", "cloud-init ran\n")
    write(root, "/var/log/cloud-init-output.log", "cloud-init said\n")
    write(root, "/root/.bash_history", "aws s3 ls\n", 0o600)
    write(root, "/root/.lesshst", "x\n", 0o600)
    write(root, "/home/admin/.bash_history", "sudo -i\n", 0o600, 1000, 1000)
    write(root, "/home/admin/.python_history", "import os\n", 0o600, 1000, 1000)
    write(root, "/tmp/build.tmp", "scratch\n")
    write(root, "/tmp/.hidden/x", "scratch\n")
    write(root, "/var/tmp/cache.bin", "scratch\n")
    write(root, "/tmp/systemd-private-0f1e-nginx.service-Xa1/tmp/upload", "in use\n")
    write(root, "/var/cache/apt/archives/hello_1.0_amd64.deb", "deb\n")
    write(root, "/var/cache/apt/pkgcache.bin", "bin\n")
    write(root, "/var/lib/dhcp/dhclient.ens5.leases", "lease { fixed-address 10.0.0.5; }\n")
    write(root, "/etc/udev/rules.d/70-persistent-net.rules", 'SUBSYSTEM=="net", NAME="eth0"\n')
    write(root, "/var/lib/cloud/instances/%s/obj.pkl" % GOLDEN, "pickle\n")
    os.symlink("/var/lib/cloud/instances/%s" % GOLDEN, Path(root) / "var/lib/cloud/instance")
    write(root, "/var/lib/cloud/data/instance-id", GOLDEN + "\n")
    write(root, "/var/lib/cloud/seed/nocloud/meta-data", "instance-id: seed\n")
    write(root, "/etc/network/interfaces.d/50-cloud-init", "auto ens5\n")
    write(root, "/etc/sysconfig/network-scripts/ifcfg-eth0", "# Created by cloud-init\nBOOTPROTO=dhcp\n")
    write(root, "/etc/sysconfig/network-scripts/ifcfg-eth1", "BOOTPROTO=static\n")
    write(root, "/var/lib/systemd/random-seed", b"\x42" * 512, 0o600)
    write(root, "/var/crash/_usr_sbin_sshd.0.crash", "core\n")
    write(root, "/var/mail/admin", "From: boss\n", 0o660, 1000, 8)
    write(root, "/var/spool/cron/crontabs/admin", "* * * * * true\n", 0o600, 1000, 0)


def identity(root):
    """The identity items of a root, as an inventory."""
    inv = rootfs.inventory(root, tops=("etc/ssh", "etc/machine-id", "var/lib/dbus", "root/.ssh",
                                       "home/admin/.ssh"))
    for p in ("/etc/machine-id",):
        f = Path(root) / p.lstrip("/")
        st = f.lstat()
        inv[p] = ("file", st.st_mode & 0o7777, st.st_uid, st.st_gid, f.read_bytes())
    return inv


def hook(phase, mode="no-reboot", dry=False, instance=GOLDEN):
    env = "EC2_IMAGED_PHASE=%s EC2_IMAGED_MODE=%s EC2_IMAGED_RUN_ID=run-1 INSTANCE_ID=%s" % (
        phase, mode, instance)
    if dry:
        env += " EC2_IMAGED_DRY_RUN=1"
    return "inroot %s /etc/ec2-imaged/hooks/%s.d/50-sanitize" % (env, phase)


def parse_manifest(text):
    rows = [tuple(l.split("\t")) for l in text.splitlines() if l]
    assert all(len(r) == 3 for r in rows), text
    return rows


def no_reboot_run(root, image, extra=""):
    """pre-image, pre-freeze, the image (cp -ax), post-thaw: the manifest of pre-freeze."""
    r = rootfs.ns_run(root, ("""
        %s
        %s > "$ROOT/../pre-freeze.manifest"
        %s
        cp -ax "$ROOT" "$IMAGE"
        %s > "$ROOT/../post-thaw.manifest"
        """ % (hook("pre-image"), hook("pre-freeze"), extra, hook("post-thaw"))).replace(
        "$IMAGE", str(image)))
    assert r.returncode == 0, r
    return (parse_manifest((root.parent / "pre-freeze.manifest").read_text()),
            parse_manifest((root.parent / "post-thaw.manifest").read_text()), r)


def test_no_reboot_image_is_clean_and_the_live_identity_is_back(root, tmp_path):
    lived_in(root)
    rootfs.install_hooks(root, "[sanitize]\nenable = ssh-authorized-keys\n")
    live_identity = identity(root)
    before = rootfs.inventory(root)
    live_cloud = {p: v for p, v in before.items() if p.startswith("/var/lib/cloud/")}
    assert "/var/lib/cloud/instances/%s/obj.pkl" % GOLDEN in live_cloud
    image = tmp_path / "image"
    # While the identity is away, the stash is a root-only tmpfs of its own.
    probe = 'grep " $ROOT/run/ec2-imaged-identity " /proc/mounts > "$ROOT/../stash.mount"\n' \
            'stat -c %a "$ROOT/run/ec2-imaged-identity" > "$ROOT/../stash.mode"'
    manifest, restored, r = no_reboot_run(root, image, probe)
    assert "nothing to do in pre-image" in r.stderr
    mnt = (tmp_path / "stash.mount").read_text().split()
    assert mnt[2] == "tmpfs" and "mode=700" in mnt[3], mnt
    assert (tmp_path / "stash.mode").read_text().strip() == "700"

    # The image, file by file.
    img = rootfs.inventory(image)
    assert not [p for p in img if p.startswith("/etc/ssh/ssh_host_")]
    assert (image / "etc/machine-id").read_text() == "uninitialized\n"
    assert not (image / "var/lib/dbus/machine-id").exists()
    assert not (image / "root/.ssh/authorized_keys").exists()
    assert not (image / "home/admin/.ssh/authorized_keys").exists()
    assert (image / "var/log/syslog").stat().st_size == 0
    assert oct(img["/var/log/syslog"][1]) == oct(0o640)  # truncated in place, not replaced
    assert (image / "var/log/apt/history.log").stat().st_size == 0
    assert (image / "var/log/wtmp").stat().st_size == 0
    for gone in ("var/log/syslog.1", "var/log/syslog.2.gz", "var/log/auth.log-20261120",
                 "var/log/journal/%s/system.journal" % MID,
                 "var/log/journal/%s/system@0001-0002.journal" % MID,
                 "var/log/cloud-init.log", "var/log/cloud-init-output.log",
                 "root/.bash_history", "root/.lesshst", "home/admin/.bash_history",
                 "home/admin/.python_history", "tmp/build.tmp", "tmp/.hidden",
                 "var/tmp/cache.bin", "var/cache/apt/archives/hello_1.0_amd64.deb",
                 "var/cache/apt/pkgcache.bin", "var/lib/dhcp/dhclient.ens5.leases",
                 "etc/udev/rules.d/70-persistent-net.rules", "var/lib/cloud/instances",
                 "var/lib/cloud/instance", "var/lib/cloud/data",
                 "etc/network/interfaces.d/50-cloud-init",
                 "etc/sysconfig/network-scripts/ifcfg-eth0", "var/lib/systemd/random-seed",
                 "var/crash/_usr_sbin_sshd.0.crash", "etc/passwd-", "etc/shadow-"):
        assert not os.path.lexists(image / gone), gone
    # Kept: cloud-init's seed, the directories themselves, and what is off by default.
    assert (image / "var/lib/cloud/seed/nocloud/meta-data").exists()
    assert (image / "etc/sysconfig/network-scripts/ifcfg-eth1").exists()
    assert (image / "tmp").is_dir() and oct((image / "tmp").stat().st_mode & 0o7777) == "0o1777"
    # A running service's private /tmp stays on the live instance (and so in the image).
    assert (root / "tmp/systemd-private-0f1e-nginx.service-Xa1/tmp/upload").exists()
    assert (image / "var/mail/admin").read_text() == "From: boss\n"
    assert (image / "var/spool/cron/crontabs/admin").exists()
    assert (image / "var/lib/ec2-imaged/imaged-instance-id").read_text() == GOLDEN + "\n"
    # Nothing of the stash reached the image.
    assert not [p for p in img if p.startswith("/run/ec2-imaged-identity/")]

    # Exactly what the manifest says changed, and nothing else.
    # (/run is a tmpfs on the instance, never in an image; a directory made for a listed file
    # is that file's.)
    changed = {p for p in set(before) | set(img)
               if before.get(p) != img.get(p) and not p.startswith("/run/")}
    listed = {path for _, action, path in manifest if action != "stash"}
    under = {p for p in changed
             if not any(p == q or p.startswith(q + "/") or q.startswith(p + "/") for q in listed)}
    assert under == set(), "changed but not in the manifest: %s" % sorted(under)
    assert {p for _, a, p in manifest if a == "stash"} == {
        p for p in live_identity if p.startswith("/etc/ssh/ssh_host_")} | {
        "/etc/machine-id", "/var/lib/dbus/machine-id", "/root/.ssh/authorized_keys",
        "/home/admin/.ssh/authorized_keys", "/var/lib/cloud/instances", "/var/lib/cloud/instance",
        "/var/lib/cloud/data"}

    # The live root has its identity back, bytes, owner and mode.
    assert identity(root) == live_identity
    # and cloud-init's record of its first boot, directories, symlinks and all.
    assert {p: v for p, v in rootfs.inventory(root).items()
            if p.startswith("/var/lib/cloud/")} == live_cloud
    assert sorted(p for _, a, p in restored) == sorted(p for _, a, p in manifest if a == "stash")
    assert not (root / "run/ec2-imaged-identity").exists()


def test_dry_run_prints_the_same_manifest_and_changes_nothing(root, tmp_path):
    lived_in(root)
    rootfs.install_hooks(root, "[sanitize]\ndisable = tmp-files, logfiles\n")
    before = rootfs.inventory(root)
    r = rootfs.ns_run(root, hook("pre-freeze", dry=True))
    assert r.returncode == 0, r
    dry = parse_manifest(r.stdout)
    assert rootfs.inventory(root) == before
    assert not [op for op, _, _ in dry if op in ("tmp-files", "logfiles")]
    manifest, _, _ = no_reboot_run(root, tmp_path / "image")
    assert sorted(dry) == sorted(manifest), (sorted(set(dry) - set(manifest)), sorted(set(manifest) - set(dry)))
    assert (tmp_path / "image/tmp/build.tmp").exists()
    assert (tmp_path / "image/var/log/syslog").stat().st_size > 0


def first_boot(instance):
    return "inroot /usr/lib/ec2-imaged/hooks/firstboot --instance-id %s" % instance


def host_keys(root):
    return {p.name: p.read_bytes() for p in (Path(root) / "etc/ssh").glob("ssh_host_*")}


def test_first_boot_of_a_clone_makes_a_new_identity_once(root, tmp_path):
    lived_in(root)
    rootfs.install_hooks(root)
    golden_keys = host_keys(root)
    image = tmp_path / "image"
    no_reboot_run(root, image)
    r = rootfs.ns_run(image, first_boot(CLONE))
    assert r.returncode == 0, r
    keys = host_keys(image)
    assert {k for k in keys if k.endswith("_key")} >= {"ssh_host_ed25519_key", "ssh_host_rsa_key"}
    assert not set(keys.values()) & set(golden_keys.values())
    mid = (image / "etc/machine-id").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{32}", mid) and mid != MID
    assert os.readlink(image / "var/lib/dbus/machine-id") == "/etc/machine-id"
    assert (image / "var/lib/ec2-imaged/imaged-instance-id").read_text() == CLONE + "\n"
    # The next boot of the same clone changes nothing.
    r = rootfs.ns_run(image, first_boot(CLONE))
    assert r.returncode == 0, r
    assert host_keys(image) == keys and (image / "etc/machine-id").read_text().strip() == mid
    # The golden instance booting from its own (no-reboot) disk keeps its identity.
    r = rootfs.ns_run(root, first_boot(GOLDEN))
    assert r.returncode == 0, r
    assert host_keys(root) == golden_keys
    assert (root / "etc/machine-id").read_text() == MID + "\n"


def test_first_boot_replaces_a_machine_id_left_in_the_image(root, tmp_path):
    lived_in(root)
    rootfs.install_hooks(root, "[sanitize]\ndisable = machine-id\n")
    image = tmp_path / "image"
    no_reboot_run(root, image)
    assert (image / "etc/machine-id").read_text() == MID + "\n"
    r = rootfs.ns_run(image, first_boot(CLONE))
    assert r.returncode == 0, r
    mid = (image / "etc/machine-id").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{32}", mid) and mid != MID


def test_reboot_mode_removes_the_identity_and_the_next_boot_regenerates_it(root):
    lived_in(root)
    rootfs.install_hooks(root)
    golden_keys = host_keys(root)
    r = rootfs.ns_run(root, hook("pre-image", mode="reboot"))
    assert r.returncode == 0, r
    manifest = parse_manifest(r.stdout)
    assert not [a for _, a, _ in manifest if a == "stash"]
    assert host_keys(root) == {}
    assert (root / "etc/machine-id").read_text() == "uninitialized\n"
    assert not (root / "run/ec2-imaged-identity").exists()
    # /tmp is emptied on the live root, but for the private /tmp of a running service.
    assert not (root / "tmp/build.tmp").exists() and not (root / "var/tmp/cache.bin").exists()
    assert (root / "tmp/systemd-private-0f1e-nginx.service-Xa1/tmp/upload").exists()
    # The same instance boots again (EC2 rebooted it for the image): keys and machine-id anew.
    r = rootfs.ns_run(root, first_boot(GOLDEN))
    assert r.returncode == 0, r
    keys = host_keys(root)
    assert keys and not set(keys.values()) & set(golden_keys.values())
    assert re.fullmatch(r"[0-9a-f]{32}\n", (root / "etc/machine-id").read_text())


def test_symlinks_never_lead_out_of_the_root(root, tmp_path, agent_bin):
    """Run on the host side with EC2_IMAGED_ROOT (no chroot): absolute symlinks in the root,
    which would resolve to this machine's files, are neither followed nor written through."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "file.log").write_text("keep me\n")
    (canary / "sub").mkdir()
    (canary / "sub/x").write_text("keep me too\n")
    os.symlink(str(canary / "file.log"), root / "var/log/evil.log")
    os.symlink(str(canary), root / "var/log/evildir")
    shutil.rmtree(root / "var/crash", ignore_errors=True)
    os.symlink(str(canary), root / "var/crash")
    shutil.rmtree(root / "var/lib/systemd/coredump", ignore_errors=True)
    os.symlink(str(canary), root / "var/lib/systemd/coredump")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                        str(REPO / "hooks/sanitize"), "--root", str(root), "--config", "/dev/null"],
                       env=dict(os.environ, EC2_IMAGED_ROOT=str(root), EC2_IMAGED_BIN=agent_bin),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r
    assert (canary / "file.log").read_text() == "keep me\n"
    assert (canary / "sub/x").read_text() == "keep me too\n"


def test_list_and_config_through_the_agent(tmp_path, agent_bin, debian_rootfs):
    conf = tmp_path / "ec2-imaged.conf"
    conf.write_text("[sanitize]\nscript = %s\nenable = mail-spool\ndisable = tmp-files\n"
                    % (REPO / "hooks/sanitize"))
    r = subprocess.run([agent_bin, "--config", str(conf), "sanitize", "--list"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    rows = {l.split()[0]: l.split()[1:3] for l in r.stdout.splitlines()[1:]}
    assert rows["mail-spool"] == ["off", "yes"] and rows["tmp-files"] == ["on", "no"]
    assert rows["ssh-hostkeys"] == ["on", "yes"] and rows["ssh-authorized-keys"] == ["off", "no"]
    # The agent checks the names against its own table: the two lists must agree.
    table = re.search(r"sanitize_ops\[\] = \{(.*?)\};", (REPO / "agent/core/config.c").read_text(),
                      re.S).group(1)
    assert sorted(re.findall(r'"([a-z-]+)"', table)) == sorted(["all"] + list(rows))
    conf.write_text("[sanitize]\ndisable = tmp-file\n")
    r = subprocess.run([agent_bin, "--config", str(conf), "sanitize", "--list"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "ec2-imaged.conf:2: [sanitize] disable: 'tmp-file'" in r.stderr
    # A dry run through the agent, against a copy of the root: the manifest, nothing changed.
    root = rootfs.clone(tmp_path / "root")
    lived_in(root)
    conf.write_text("[sanitize]\nscript = %s\n" % (REPO / "hooks/sanitize"))
    before = rootfs.inventory(root)
    r = subprocess.run([agent_bin, "--config", str(conf), "sanitize", "--dry-run"],
                       env=dict(os.environ, EC2_IMAGED_ROOT=str(root), EC2_IMAGED_BIN=agent_bin),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r
    assert ("ssh-hostkeys", "remove", "/etc/ssh/ssh_host_ed25519_key") in parse_manifest(r.stdout)
    assert rootfs.inventory(root) == before


def test_hooks_are_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    scripts = [str(REPO / "hooks" / n) for n in ("lib.sh", "sanitize", "patch", "firstboot",
                                                 "db.sh", "mysql-hold", "postgresql-checkpoint",
                                                 "postgresql-hold", "services-stop")]
    r = subprocess.run(["shellcheck", "-x", "-s", "sh"] + scripts, capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stdout


def test_pre_image_sanitizes_when_the_patch_hook_asked_for_a_reboot(root):
    """After the patch hook asked for a reboot-mode image (STATE_DIR/reboot-required), the
    agent switches the run to reboot mode and pre-freeze never comes: pre-image sanitizes."""
    lived_in(root)
    rootfs.install_hooks(root, "[run]\nstate_dir = /var/lib/ec2-imaged\n")
    write(root, "/var/lib/ec2-imaged/reboot-required", "/run/reboot-required\n")
    r = rootfs.ns_run(root, hook("pre-image"))
    assert r.returncode == 0, r
    assert "a reboot-mode image was asked for" in r.stderr
    assert host_keys(root) == {}
    assert (root / "etc/machine-id").read_text() == "uninitialized\n"
    assert not (root / "run/ec2-imaged-identity").exists()


def test_first_boot_asks_imds_through_the_agent(root, tmp_path, imds_factory, agent_env,
                                                 agent_bin):
    """Without --instance-id the script asks `ec2-imaged whoami --json` (IMDS: our test server).
    Run from the host side on the root (--root), as `ec2-imaged` is not in the Debian root."""
    lived_in(root)
    rootfs.install_hooks(root)
    golden_keys = host_keys(root)
    image = tmp_path / "image"
    no_reboot_run(root, image)
    imds = imds_factory(instance_id=CLONE)
    env = agent_env(imds=imds, EC2_IMAGED_BIN=agent_bin, EC2_IMAGED_ROOT=str(image))
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                        str(REPO / "hooks/firstboot")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r
    assert "launched from an image of %s: this is %s" % (GOLDEN, CLONE) in r.stderr
    keys = host_keys(image)
    assert keys and not set(keys.values()) & set(golden_keys.values())
    assert (image / "var/lib/ec2-imaged/imaged-instance-id").read_text() == CLONE + "\n"
