# SPDX-License-Identifier: Apache-2.0
"""The Debian package (`make deb`): its file list, conffiles, modes and maintainer scripts, and
lintian with no error and no warning.

The package is the one `make deb` left in build/ when it is newer than everything it is made
of; otherwise packaging/build-deb.sh builds it here, into the test's own directory (which also
runs lintian).  Skipped, with the reason, where the Debian packaging tools are absent; `make
check` installs them (packaging/install-build-deps.sh), and there such a skip fails the run.
"""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERSION = re.search(r"^VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
INPUTS = ["Makefile", "README.md", "agent", "units", "hooks", "conf", "packaging"]

EXPECTED = {
    "etc/ec2-imaged/ec2-imaged.conf",
    "etc/needrestart/conf.d/ec2-imaged.conf",
    "lib/systemd/system/ec2-imaged.service",
    "lib/systemd/system/ec2-imaged-firstboot.service",
    "lib/systemd/system/ec2-imaged-run.service",
    "lib/systemd/system/ec2-imaged-run.timer",
    "lib/systemd/system-preset/50-ec2-imaged.preset",
    "usr/sbin/ec2-imaged",
    "usr/libexec/ec2-imaged/ec2-imaged-daemon",
    "usr/lib/ec2-imaged/hooks/firstboot",
    "usr/lib/ec2-imaged/hooks/lib.sh",
    "usr/lib/ec2-imaged/hooks/patch",
    "usr/lib/ec2-imaged/hooks/sanitize",
    "usr/lib/ec2-imaged/hooks/db.sh",
    "usr/lib/ec2-imaged/hooks/mysql-hold",
    "usr/lib/ec2-imaged/hooks/postgresql-checkpoint",
    "usr/lib/ec2-imaged/hooks/postgresql-hold",
    "usr/lib/ec2-imaged/hooks/services-stop",
    "usr/lib/ec2-imaged/restart-after-upgrade",
    "usr/share/ec2-imaged/ec2-imaged-run.json",
    "usr/share/man/man8/ec2-imaged.8.gz",
    "usr/share/man/man5/ec2-imaged.conf.5.gz",
    "usr/share/doc/ec2-imaged/README.md",
    "usr/share/doc/ec2-imaged/copyright",
    "usr/share/doc/ec2-imaged/changelog.gz",
    "usr/share/doc/ec2-imaged/examples/ec2-imaged-run.timer.d/schedule.conf",
    "usr/share/doc/ec2-imaged/examples/user-data/cloud-config-runcmd.yaml",
    "usr/share/doc/ec2-imaged/examples/user-data/first-boot-directive.sh",
}
EXECUTABLES = {"usr/sbin/ec2-imaged", "usr/libexec/ec2-imaged/ec2-imaged-daemon",
               "usr/lib/ec2-imaged/hooks/firstboot", "usr/lib/ec2-imaged/hooks/patch",
               "usr/lib/ec2-imaged/hooks/sanitize", "usr/lib/ec2-imaged/restart-after-upgrade",
               "usr/lib/ec2-imaged/hooks/mysql-hold", "usr/lib/ec2-imaged/hooks/postgresql-hold",
               "usr/lib/ec2-imaged/hooks/postgresql-checkpoint",
               "usr/lib/ec2-imaged/hooks/services-stop"}


def newest_input():
    newest = 0.0
    for name in INPUTS:
        p = REPO / name
        for f in ([p] if p.is_file() else p.rglob("*")):
            if f.is_file():
                newest = max(newest, f.stat().st_mtime)
    return newest


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    missing = [t for t in ("dpkg-deb", "dpkg-buildpackage", "dh", "lintian") if not shutil.which(t)]
    if missing:
        pytest.skip("%s not installed (packaging/install-build-deps.sh installs them)"
                    % ", ".join(missing))
    name = "ec2-imaged_%s_%s.deb" % (VERSION, subprocess.check_output(
        ["dpkg", "--print-architecture"], text=True).strip())
    built = REPO / "build" / name
    if built.exists() and built.stat().st_mtime > newest_input():
        return built
    out = tmp_path_factory.mktemp("deb")
    r = subprocess.run([str(REPO / "packaging" / "build-deb.sh"), str(out)], cwd=REPO,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out / name


@pytest.fixture(scope="module")
def control(deb, tmp_path_factory):
    d = tmp_path_factory.mktemp("control")
    subprocess.run(["dpkg-deb", "-e", str(deb), str(d)], check=True)
    return d


def contents(deb):
    """{path: (mode, owner/group)} of the regular files in the package."""
    out = subprocess.check_output(["dpkg-deb", "-c", str(deb)], text=True)
    files = {}
    for line in out.splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        if perms.startswith("-"):
            files[path.lstrip("./")] = (perms, owner)
    return files


def test_file_list(deb):
    assert set(contents(deb)) == EXPECTED


def test_modes_and_owners(deb):
    for path, (perms, owner) in contents(deb).items():
        assert owner == "root/root", path
        assert perms == ("-rwxr-xr-x" if path in EXECUTABLES else "-rw-r--r--"), path


def test_conffiles(control):
    assert (control / "conffiles").read_text().split() == [
        "/etc/ec2-imaged/ec2-imaged.conf", "/etc/needrestart/conf.d/ec2-imaged.conf"]


def test_depends_on_the_libraries_it_links(control):
    fields = (control / "control").read_text()
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
    for lib in ("libcurl4", "libcjson1", "libinih1", "libxml2", "libssl3", "libsystemd0"):
        assert lib in depends, (lib, depends)


def test_postinst_enables_and_starts_the_daemon_but_not_the_timer(control):
    post = (control / "postinst").read_text()
    assert "deb-systemd-helper enable 'ec2-imaged.service'" in post
    assert "deb-systemd-invoke start 'ec2-imaged.service'" in post
    assert "deb-systemd-helper enable 'ec2-imaged-firstboot.service'" in post
    # The firstboot unit is for the boot of a launched instance, never started by an install.
    assert "deb-systemd-invoke $_dh_action 'ec2-imaged-firstboot.service'" not in post
    # The timer is only re-enabled on upgrade when the administrator had enabled it.
    timer = [b for b in post.split("# End automatically added section")
             if "ec2-imaged-run.timer" in b]
    assert timer and all("was-enabled 'ec2-imaged-run.timer'; then" in b for b in timer)
    assert all("deb-systemd-helper debian-installed 'ec2-imaged-run.timer'" in b for b in timer)
    assert "deb-systemd-invoke" not in "".join(timer)


def test_upgrade_never_stops_or_restarts_the_daemon(control):
    # A restart would kill a run under way (the patch hook's own upgrade of this package among
    # them): an upgrade tells the daemon instead (packaging/restart-after-upgrade), which
    # restarts once idle (test_restart_after_upgrade.py, test_daemon_lifecycle.py).
    post = (control / "postinst").read_text()
    assert not re.search(r"(restart|_dh_action)[^\n]*'ec2-imaged\.service'", post), post
    helper = post.index("\n        /usr/lib/ec2-imaged/restart-after-upgrade\n")
    assert post.rindex('if [ "$1" = configure ] && [ -n "${2:-}" ]', 0, helper) > \
        post.rindex("# End automatically added section", 0, helper)
    preinst = control / "preinst"
    assert not preinst.exists() or "ec2-imaged.service" not in preinst.read_text()
    prerm = (control / "prerm").read_text()
    assert re.search(r'\[ "\$1" = remove \][^\n]*\n[^\n]*stop \'ec2-imaged.service\'', prerm), prerm


def test_preset_keeps_the_timer_disabled(deb, tmp_path):
    # systemd applies presets to every unit at a first boot (machine-id "uninitialized", as in
    # an image), and Debian's own presets enable what they do not name.
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    lines = [ln.split() for ln in
             (tmp_path / "lib/systemd/system-preset/50-ec2-imaged.preset").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert sorted(lines) == [["disable", "ec2-imaged-run.timer"],
                             ["enable", "ec2-imaged-firstboot.service"],
                             ["enable", "ec2-imaged.service"]]


def test_removal_stops_and_purge_forgets_the_units(control):
    prerm = (control / "prerm").read_text()
    postrm = (control / "postrm").read_text()
    assert "deb-systemd-invoke stop 'ec2-imaged.service'" in prerm
    for unit in ("ec2-imaged.service", "ec2-imaged-firstboot.service", "ec2-imaged-run.timer"):
        assert "deb-systemd-helper purge '%s'" % unit in postrm, unit


def test_lintian_reports_no_error_and_no_warning(deb):
    r = subprocess.run(["lintian", "--fail-on", "error,warning", str(deb)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not re.search(r"^[EW]: ", r.stdout, re.M), r.stdout


def test_make_install_installs_what_the_package_holds(deb, tmp_path):
    if os.geteuid() != 0 and not os.access(REPO / "build", os.W_OK):
        pytest.skip("build/ not writable")
    dest = tmp_path / "root"
    # Not the calling make's variables (SAN=1 under check-san): the build/ tree, as packaged.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-s", "install", "DESTDIR=%s" % dest], cwd=REPO, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    installed = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    # dpkg's helpers add the copyright and changelog and compress the man pages.
    packaged = {p[:-3] if p.startswith("usr/share/man/") else p for p in contents(deb)}
    packaged -= {"usr/share/doc/ec2-imaged/copyright", "usr/share/doc/ec2-imaged/changelog.gz"}
    assert installed == packaged
    for p in EXECUTABLES:
        assert stat.S_IMODE((dest / p).stat().st_mode) == 0o755, p
