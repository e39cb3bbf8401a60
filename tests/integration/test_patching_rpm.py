# SPDX-License-Identifier: Apache-2.0
"""The shipped patch hook's dnf and zypper paths, with Debian's own builds of the real dnf,
zypper (libzypp) and rpm.

test_patching.py covers apt. Here the roots are the mmdebstrap one of tests/peers/rootfs.py with
Debian's dnf, dnf-plugins-core (for `dnf needs-restarting`) and rpm added, and another with
zypper and rpm added (each its own cache entry); apt-get is removed from each copy, so the hook
takes the dnf or the zypper path. The packages are .rpms built by the test with rpmbuild,
indexed with createrepo_c and served as file:///srv/rpmrepo inside the root; the 1.0 versions
are installed first (with the root's dnf; with rpm in the zypper root). The rpm database holds
only the test's packages.

Reboot detection: `dnf needs-restarting -r` reports a reboot when a package it counts as core
was installed after boot; libzypp writes /run/reboot-needed when it installs a package that
provides installhint(reboot-needed). The 1.1 build of ec2i-kernel does both: it ships
/etc/dnf/plugins/needs-restarting.d/ec2i-kernel.conf naming itself, as the plugin lets a package
do, and has the provide; so upgrading it is what asks for the reboot.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "peers"))
import rootfs  # noqa: E402

EXTRA = ("dnf", "dnf-plugins-core", "rpm")
LOG = str(REPO / "build" / "test-logs" / "rootfs-rpm-build.log")
NAMES = ("ec2i-app", "ec2i-held", "ec2i-kernel")

SPEC = """Name: %(name)s
Version: %(version)s
Release: 1
Summary: ec2-imaged patch test package
License: MIT
BuildArch: noarch
%(provides)s

%%description
ec2-imaged patch test package.

%%install
mkdir -p %%{buildroot}/usr/share/%(name)s
echo %(version)s > %%{buildroot}/usr/share/%(name)s/version
%(install)s

%%files
/usr/share/%(name)s
%(files)s
"""

NEEDS_RESTARTING = "/etc/dnf/plugins/needs-restarting.d/%s.conf"


def build_rpm(top, name, version):
    """An .rpm of name-version-1.noarch holding /usr/share/NAME/version. ec2i-kernel 1.1 asks
    for a reboot as each package manager lets a package do: dnf's needs-restarting counts it
    as core through the needs-restarting.d file it ships, and libzypp flags a reboot
    (/run/reboot-needed) for it by its installhint(reboot-needed) provide."""
    install = files = provides = ""
    if name == "ec2i-kernel" and version != "1.0":
        provides = "Provides: installhint(reboot-needed)"
        conf = NEEDS_RESTARTING % name
        install = "mkdir -p %%{buildroot}%s\necho %s > %%{buildroot}%s" % (
            str(Path(conf).parent), name, conf)
        files = conf
    spec = top / ("%s-%s.spec" % (name, version))
    spec.write_text(SPEC % dict(name=name, version=version, install=install, files=files,
                                provides=provides))
    r = subprocess.run(["rpmbuild", "--define", "_topdir %s" % top,
                        "--define", "_dbpath %s/db" % top, "--nodeps", "-bb", str(spec)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r
    rpm = top / "RPMS" / "noarch" / ("%s-%s-1.noarch.rpm" % (name, version))
    assert rpm.exists(), r
    return rpm


@pytest.fixture(scope="module")
def rpms(tmp_path_factory):
    """The .rpms, built once: {"1.0": [paths], "1.1": [paths]}."""
    why = rootfs.unavailable()
    if why:
        pytest.skip(why)
    for tool, pkg in (("rpmbuild", "rpm"), ("createrepo_c", "createrepo-c")):
        if not shutil.which(tool):
            pytest.skip("%s not installed (apt-get install %s)" % (tool, pkg))
    top = tmp_path_factory.mktemp("rpmbuild")
    return {v: [build_rpm(top, n, v) for n in NAMES] for v in ("1.0", "1.1")}


def cached_root(extra, log, what):
    try:
        return rootfs.ensure(log=log, extra=extra)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        pytest.fail("cannot build the Debian root filesystem with %s: %s" % (what, e))


def rpm_root(dest, rpms, extra, log):
    """A copy of a cached root without apt-get (so that the hook takes its rpm path), with
    /srv/rpmrepo indexed by createrepo_c holding 1.1 of the packages, and the 1.0 ones in /tmp
    for the caller to install."""
    r = rootfs.clone(dest, extra=extra, log=log)
    (r / "usr/bin/apt-get").unlink()
    repo = r / "srv/rpmrepo"
    repo.mkdir(parents=True)
    for p in rpms["1.1"]:
        shutil.copy(p, repo / p.name)
    c = subprocess.run(["createrepo_c", "-q", str(repo)], capture_output=True, text=True,
                       timeout=300)
    assert c.returncode == 0, c
    for p in rpms["1.0"]:
        shutil.copy(p, r / "tmp" / p.name)
    return r


@pytest.fixture(scope="module")
def base(rpms):
    return cached_root(EXTRA, LOG, "dnf")


def dnf(root, args):
    return rootfs.ns_run(root, "inroot dnf %s" % args)


@pytest.fixture
def root(base, rpms, tmp_path):
    """A copy of the root without apt-get, with version 1.0 of the packages installed and a
    local repository holding 1.1 of each."""
    r = rpm_root(tmp_path / "root", rpms, EXTRA, LOG)
    for f in (r / "etc/yum.repos.d").glob("*"):
        f.unlink()
    (r / "etc/yum.repos.d").mkdir(parents=True, exist_ok=True)
    (r / "etc/yum.repos.d/ec2i.repo").write_text(
        "[ec2i]\nname=ec2-imaged test\nbaseurl=file:///srv/rpmrepo\ngpgcheck=0\n"
        "repo_gpgcheck=0\nenabled=1\n")
    # Debian enables dnf-plugins-core's "local" plugin, which copies every package dnf installs
    # into a repository of its own made with createrepo_c; Fedora, RHEL and Amazon Linux do not
    # ship it enabled.
    (r / "etc/dnf/plugins/local.conf").write_text("[main]\nenabled = false\n")
    res = dnf(r, "-y --disablerepo=* install %s"
              % " ".join("/tmp/" + p.name for p in rpms["1.0"]))
    assert res.returncode == 0, res
    for n in NAMES:
        assert installed(r, n) == "1.0"
    # dnf ran once already; each test's hook run must fetch the repository itself.
    shutil.rmtree(r / "var/cache/dnf", ignore_errors=True)
    yield r
    assert rootfs.mounts_under(tmp_path) == []


def installed(root, name):
    """The version of name in the root's rpm database, or None."""
    r = rootfs.ns_run(root, "inroot rpm -q --qf '%%{VERSION}' %s" % name)
    return r.stdout.strip() if r.returncode == 0 else None


def patch(root, config, dry=False):
    rootfs.install_hooks(root, config, enable=("patch",))
    env = "EC2_IMAGED_PHASE=pre-image EC2_IMAGED_MODE=no-reboot INSTANCE_ID=i-0123456789abcdef0"
    if dry:
        env += " EC2_IMAGED_DRY_RUN=1"
    # `dnf needs-restarting -r` takes the boot time from the time of /proc/1's inode; in the
    # fresh proc that ns_run mounts that inode is made when first looked at, after the upgrade,
    # so nothing would look newer than the boot. The hook gets the system's /proc instead, as
    # on an instance, where it has been there since boot.
    return rootfs.ns_run(root, 'umount "$ROOT/proc"; mount --bind /proc "$ROOT/proc"\n'
                         "rc=0; inroot %s /etc/ec2-imaged/hooks/pre-image.d/10-patch"
                         " || rc=$?; exit $rc" % env)


def test_upgrade_honours_the_hold_list_and_asks_for_a_reboot_mode_image(root):
    conf = (root / "etc/dnf/dnf.conf").read_bytes()
    r = patch(root, "[patch]\nhold = ec2i-held\non_reboot_required = reboot-mode\n"
                    "[run]\nstate_dir = /var/lib/ec2-imaged\n")
    assert r.returncode == 0, r
    assert installed(root, "ec2i-app") == "1.1"
    assert installed(root, "ec2i-kernel") == "1.1"
    assert installed(root, "ec2i-held") == "1.0"
    # Held for the upgrade only: dnf's configuration is as it was and the next upgrade (the
    # operator's, on an instance of the image) would take ec2i-held too.
    assert (root / "etc/dnf/dnf.conf").read_bytes() == conf
    later = dnf(root, "-q check-update")
    assert later.returncode == 100 and "ec2i-held" in later.stdout, later
    marker = root / "var/lib/ec2-imaged/reboot-required"
    assert marker.read_text() == "dnf needs-restarting -r\n"
    assert "asking for a reboot-mode image" in r.stderr


def test_reboot_required_can_stop_the_run(root):
    r = patch(root, "[patch]\non_reboot_required = fail\n")
    assert r.returncode == 100, r
    assert "a reboot is required (dnf needs-restarting -r)" in r.stderr
    assert [installed(root, n) for n in NAMES] == ["1.1"] * 3
    assert not (root / "var/lib/ec2-imaged/reboot-required").exists()


def test_reboot_required_ignored_by_default(root):
    r = patch(root, "")
    assert r.returncode == 0, r
    assert "on_reboot_required = ignore" in r.stderr
    assert not (root / "var/lib/ec2-imaged/reboot-required").exists()


def test_no_reboot_asked_when_no_core_package_changed(root):
    r = patch(root, "[patch]\nhold = ec2i-kernel\non_reboot_required = fail\n")
    assert r.returncode == 0, r
    assert "reboot" not in r.stderr
    assert installed(root, "ec2i-app") == "1.1" and installed(root, "ec2i-kernel") == "1.0"


def written(root, before):
    """The paths of rootfs.inventory(root) that differ from before (new, gone or changed), but
    for /etc/ec2-imaged, where patch() installs the hooks and the configuration."""
    after = rootfs.inventory(root)
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p)
                  and p != "/etc/ec2-imaged" and not p.startswith("/etc/ec2-imaged/"))


def test_dry_run_changes_nothing(root):
    before = rootfs.inventory(root)
    r = patch(root, "[patch]\nhold = ec2i-held\non_reboot_required = fail\n", dry=True)
    assert r.returncode == 0, r
    assert "ec2i-app" in r.stdout and "ec2i-held" not in r.stdout, r
    assert [installed(root, n) for n in NAMES] == ["1.0"] * 3
    assert not (root / "var/lib/ec2-imaged/reboot-required").exists()
    # Like the apt dry run's lists, the metadata goes to a scratch cache: there is still no
    # /var/cache/dnf (the fixture took away the one of the install), and dnf's logs and
    # everything else are as they were.
    assert not (root / "var/cache/dnf").exists()
    assert written(root, before) == []


# ---------------------------------------------------------------- zypper
#
# Debian's zypper (libzypp) in a root of its own: Debian's dnf-plugins-core Breaks zypper, whose
# package ships a needs-restarting too. libzypp reads the rpm database in /var/lib/rpm, where
# SUSE keeps it, while Debian's rpm defaults to ~/.rpmdb: the copy's rpm is told /var/lib/rpm
# (/etc/rpm/macros.dbpath) before anything is installed.

ZYPPER_EXTRA = ("zypper", "rpm")
ZYPPER_LOG = str(REPO / "build" / "test-logs" / "rootfs-zypper-build.log")


@pytest.fixture(scope="module")
def zypper_base(rpms):
    return cached_root(ZYPPER_EXTRA, ZYPPER_LOG, "zypper")


def zypper(root, args):
    return rootfs.ns_run(root, "inroot zypper --non-interactive %s" % args)


@pytest.fixture
def zroot(zypper_base, rpms, tmp_path):
    """A copy of the zypper root without apt-get, with version 1.0 of the packages installed
    and a local repository holding 1.1 of each."""
    r = rpm_root(tmp_path / "root", rpms, ZYPPER_EXTRA, ZYPPER_LOG)
    (r / "etc/rpm").mkdir(exist_ok=True)
    (r / "etc/rpm/macros.dbpath").write_text("%_dbpath /var/lib/rpm\n")
    (r / "etc/zypp/repos.d").mkdir(parents=True, exist_ok=True)
    (r / "etc/zypp/repos.d/ec2i.repo").write_text(
        "[ec2i]\nname=ec2-imaged test\nenabled=1\nautorefresh=1\n"
        "baseurl=file:///srv/rpmrepo\ntype=rpm-md\ngpgcheck=0\n")
    res = rootfs.ns_run(r, "inroot rpm -i %s" % " ".join("/tmp/" + p.name for p in rpms["1.0"]))
    assert res.returncode == 0, res
    for n in NAMES:
        assert installed(r, n) == "1.0"
    yield r
    assert rootfs.mounts_under(tmp_path) == []


def locks(root):
    r = zypper(root, "locks")
    assert r.returncode == 0, r
    return r.stdout


def locked(root):
    """The names zypper's locks name, as `zypper --xmlout locks` lists them."""
    r = zypper(root, "--xmlout locks")
    assert r.returncode == 0 and "<locks" in r.stdout, r
    return re.findall(r"<name>([^<]*)</name>", r.stdout)


def test_zypper_upgrade_honours_the_hold_list_and_asks_for_a_reboot_mode_image(zroot):
    r = patch(zroot, "[patch]\nhold = ec2i-held\non_reboot_required = reboot-mode\n"
                     "[run]\nstate_dir = /var/lib/ec2-imaged\n")
    assert r.returncode == 0, r
    assert installed(zroot, "ec2i-app") == "1.1"
    assert installed(zroot, "ec2i-kernel") == "1.1"
    assert installed(zroot, "ec2i-held") == "1.0"
    # Locked for the upgrade only.
    assert "ec2i-held" not in locks(zroot)
    marker = zroot / "var/lib/ec2-imaged/reboot-required"
    assert marker.read_text() == "/run/reboot-needed\n"
    assert "asking for a reboot-mode image" in r.stderr


def test_zypper_reboot_required_can_stop_the_run(zroot):
    r = patch(zroot, "[patch]\non_reboot_required = fail\n")
    assert r.returncode == 100, r
    assert "a reboot is required (/run/reboot-needed)" in r.stderr
    assert [installed(zroot, n) for n in NAMES] == ["1.1"] * 3


def test_zypper_no_reboot_asked_when_no_core_package_changed(zroot):
    r = patch(zroot, "[patch]\nhold = ec2i-kernel\non_reboot_required = fail\n")
    assert r.returncode == 0, r
    assert "reboot" not in r.stderr
    assert installed(zroot, "ec2i-app") == "1.1" and installed(zroot, "ec2i-kernel") == "1.0"


def test_zypper_a_lock_set_by_the_operator_stays(zroot):
    assert zypper(zroot, "addlock ec2i-app").returncode == 0
    r = patch(zroot, "[patch]\nhold = ec2i-app ec2i-held ec2i-absent\n")
    assert r.returncode == 0, r
    assert installed(zroot, "ec2i-app") == "1.0" and installed(zroot, "ec2i-held") == "1.0"
    assert installed(zroot, "ec2i-kernel") == "1.1"
    # The hook locked (and unlocked) ec2i-held only: the operator's lock is still there, and
    # nothing is locked for a package that is not installed (as apt holds none).
    assert locked(zroot) == ["ec2i-app"]
    assert "hold: ec2i-absent is not installed" in r.stderr, r
    assert installed(zroot, "ec2i-absent") is None


def test_zypper_dry_run_changes_nothing(zroot):
    # libzypp writes /var/lib/zypp/AnonymousUniqueId the first time it loads the system (it is
    # there on any SUSE system), and a read of the sqlite rpm database changes its -shm file: a
    # first zypper run makes both, before the snapshot.
    assert zypper(zroot, "search --installed-only ec2i").returncode == 0
    before = rootfs.inventory(zroot)
    r = patch(zroot, "[patch]\nhold = ec2i-held\non_reboot_required = fail\n", dry=True)
    # Taken before the test's own zypper runs, which log to /var/log/zypper.log.
    changed = written(zroot, before)
    assert r.returncode == 0, r
    assert "ec2i-app" in r.stdout and "ec2i-kernel" in r.stdout, r
    # The hold is reflected (ec2i-held is not listed as an update) without a lock in the root.
    assert "ec2i-held" not in r.stdout, r
    assert "would hold: ec2i-held" in r.stderr, r
    assert [installed(zroot, n) for n in NAMES] == ["1.0"] * 3
    assert "ec2i-held" not in locks(zroot)
    assert not (zroot / "run/reboot-needed").exists()
    # Nothing written: no metadata in /var/cache/zypp, no /etc/zypp/locks, no log.
    assert changed == []


def test_zypper_dry_run_sees_the_operators_locks(zroot):
    assert zypper(zroot, "addlock ec2i-app").returncode == 0
    before = (zroot / "etc/zypp/locks").read_bytes()
    r = patch(zroot, "[patch]\nhold = ec2i-held\n", dry=True)
    assert r.returncode == 0, r
    # The scratch locks file starts as a copy of the system's: both the operator's lock and the
    # hold keep their package off the list.
    assert "ec2i-kernel" in r.stdout, r
    assert "ec2i-app" not in r.stdout and "ec2i-held" not in r.stdout, r
    assert (zroot / "etc/zypp/locks").read_bytes() == before
    assert locked(zroot) == ["ec2i-app"]
