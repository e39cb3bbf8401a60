# SPDX-License-Identifier: Apache-2.0
"""The shipped patch hook against a real Debian root filesystem and a local package repository.

The root is the mmdebstrap one of test_sanitize.py (tests/peers/rootfs.py, cached); the
repository is made by the test: .debs built with dpkg-deb, indexed with apt-ftparchive, served
to apt as file:/srv/repo inside the root, so no outside mirror is used. The hook runs chrooted
into a copy of the root in a private mount namespace, as the agent would run it in pre-image.
"""

import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "peers"))
import rootfs  # noqa: E402

REBOOT_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
        touch /var/run/reboot-required
        echo ec2i-kernel >> /var/run/reboot-required.pkgs
fi
"""


@pytest.fixture(scope="module")
def base():
    why = rootfs.unavailable()
    if why:
        pytest.skip(why)
    for tool in ("dpkg-deb", "apt-ftparchive"):
        if not shutil.which(tool):
            pytest.skip("%s not installed (apt-get install dpkg-dev apt-utils)" % tool)
    try:
        return rootfs.ensure(log=str(REPO / "build" / "test-logs" / "rootfs-build.log"))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        pytest.fail("cannot build the Debian root filesystem: %s" % e)


def build_deb(out, name, version, postinst=None):
    d = out / ("%s_%s" % (name, version))
    (d / "DEBIAN").mkdir(parents=True)
    (d / "usr/share" / name).mkdir(parents=True)
    (d / "usr/share" / name / "version").write_text(version + "\n")
    (d / "DEBIAN/control").write_text(
        "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: test <t@example.com>\n"
        "Description: ec2-imaged patch test package\n" % (name, version))
    if postinst:
        (d / "DEBIAN/postinst").write_text(postinst)
        os.chmod(d / "DEBIAN/postinst", 0o755)
    deb = out / ("%s_%s_all.deb" % (name, version))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(d), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(d)
    return deb


# What a package's maintainer script sees of the hook's environment (NUL-separated).
ENV_POSTINST = """#!/bin/sh
set -e
[ "$1" != configure ] || env -0 > /var/tmp/ec2i-app.postinst-env
"""


def make_root(tmp_path, extra=()):
    """A copy of the root (with the packages extra) with version 1.0 of three packages installed
    and a local repository holding 1.1 of each (ec2i-kernel's 1.1 asks for a reboot, as kernel
    packages do; ec2i-app's 1.1 records its postinst's environment)."""
    r = rootfs.clone(tmp_path / "root", extra=extra)
    old = tmp_path / "old"
    old.mkdir()
    names = ("ec2i-app", "ec2i-held", "ec2i-kernel")
    debs = [build_deb(old, n, "1.0") for n in names]
    repo = r / "srv/repo"
    repo.mkdir(parents=True)
    postinsts = {"ec2i-kernel": REBOOT_POSTINST, "ec2i-app": ENV_POSTINST}
    for n in names:
        build_deb(repo, n, "1.1", postinsts.get(n))
    with open(repo / "Packages", "w") as f:
        subprocess.run(["apt-ftparchive", "packages", "."], cwd=repo, stdout=f, check=True)
    with open(repo / "Release.tmp", "w") as f:
        subprocess.run(["apt-ftparchive", "release", "."], cwd=repo, stdout=f, check=True)
    (repo / "Release.tmp").rename(repo / "Release")
    for f in (r / "etc/apt/sources.list.d").glob("*"):
        f.unlink()
    (r / "etc/apt/sources.list").write_text("deb [trusted=yes] file:/srv/repo ./\n")
    (r / "etc/apt/apt.conf.d/99test").write_text('APT::Sandbox::User "root";\n')
    for d in debs:
        shutil.copy(d, r / "tmp" / d.name)
    res = rootfs.ns_run(r, "inroot dpkg -i %s" % " ".join("/tmp/" + d.name for d in debs))
    assert res.returncode == 0, res
    return r


@pytest.fixture
def root(base, tmp_path):
    r = make_root(tmp_path)
    yield r
    assert rootfs.mounts_under(tmp_path) == []


def version(root, name):
    return (root / "usr/share" / name / "version").read_text().strip()


def patch(root, config, dry=False):
    rootfs.install_hooks(root, config, enable=("patch",))
    env = ("EC2_IMAGED_PHASE=pre-image EC2_IMAGED_MODE=no-reboot INSTANCE_ID=i-0123456789abcdef0"
           " EC2_IMAGED_RUN_ID=3f2a0c1e-0000-4000-8000-00000000cafe")
    if dry:
        env += " EC2_IMAGED_DRY_RUN=1"
    return rootfs.ns_run(root, "rc=0; inroot %s /etc/ec2-imaged/hooks/pre-image.d/10-patch"
                         " || rc=$?; exit $rc" % env)


def assert_patched_at(root, before):
    """hooks/patch recorded its upgrade: STATE_DIR/patched-at holds the time (ISO 8601 UTC,
    seconds), no earlier than the hook's start, and no temporary file is left."""
    text = (root / "var/lib/ec2-imaged/patched-at").read_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n", text), text
    at = datetime.datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ")
    assert at.replace(tzinfo=datetime.timezone.utc).timestamp() >= before
    assert not (root / "var/lib/ec2-imaged/patched-at.tmp").exists()


def test_upgrade_honours_the_hold_list_and_asks_for_a_reboot_mode_image(root):
    before = int(time.time())
    r = patch(root, "[patch]\nhold = ec2i-held\non_reboot_required = reboot-mode\n"
                    "[run]\nstate_dir = /var/lib/ec2-imaged\n")
    assert r.returncode == 0, r
    assert version(root, "ec2i-app") == "1.1"
    assert version(root, "ec2i-kernel") == "1.1"
    assert version(root, "ec2i-held") == "1.0"
    # Held for the upgrade only: the image does not carry a hold nobody asked for.
    held = rootfs.ns_run(root, "inroot apt-mark showhold")
    assert held.returncode == 0 and held.stdout.strip() == "", held
    marker = root / "var/lib/ec2-imaged/reboot-required"
    assert "/run/reboot-required" in marker.read_text() and "ec2i-kernel" in marker.read_text()
    assert "asking for a reboot-mode image" in r.stderr
    assert_patched_at(root, before)


def test_a_hold_set_by_the_operator_stays(root):
    assert rootfs.ns_run(root, "inroot apt-mark hold ec2i-app").returncode == 0
    r = patch(root, "[patch]\nhold = ec2i-app ec2i-held\n")
    assert r.returncode == 0, r
    assert version(root, "ec2i-app") == "1.0" and version(root, "ec2i-held") == "1.0"
    held = rootfs.ns_run(root, "inroot apt-mark showhold")
    assert held.stdout.split() == ["ec2i-app"], held


def test_reboot_required_can_stop_the_run(root):
    before = int(time.time())
    r = patch(root, "[patch]\non_reboot_required = fail\n")
    assert r.returncode == 100, r
    assert_patched_at(root, before)  # the upgrade itself went through
    assert "a reboot is required (/run/reboot-required (packages: ec2i-kernel ))" in r.stderr
    assert version(root, "ec2i-held") == "1.1"
    assert not (root / "var/lib/ec2-imaged/reboot-required").exists()


def test_reboot_required_ignored_by_default(root):
    r = patch(root, "")
    assert r.returncode == 0, r
    assert "on_reboot_required = ignore" in r.stderr
    assert not (root / "var/lib/ec2-imaged/reboot-required").exists()


def test_dry_run_changes_nothing(root):
    r = patch(root, "[patch]\nhold = ec2i-held\n", dry=True)
    assert r.returncode == 0, r
    assert "Inst ec2i-app" in r.stdout and "Inst ec2i-held" not in r.stdout
    assert version(root, "ec2i-app") == "1.0"
    assert not (root / "run/reboot-required").exists()
    assert not (root / "var/lib/ec2-imaged/patched-at").exists()
    assert not list((root / "var/lib/apt/lists").glob("*Packages"))
    assert not list((root / "tmp").glob("ec2-imaged-patch.*"))
    held = rootfs.ns_run(root, "inroot apt-mark showhold")
    assert held.returncode == 0 and held.stdout.strip() == "", held


def test_the_agent_checks_the_config_and_runs_the_script(tmp_path, agent_bin):
    conf = tmp_path / "ec2-imaged.conf"
    conf.write_text("[patch]\nscript = %s\nhold = linux-image-amd64\n" % (REPO / "hooks/patch"))
    r = subprocess.run([agent_bin, "--config", str(conf), "patch", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Usage:" in r.stdout, r
    conf.write_text("[patch]\non_reboot_required = later\n")
    r = subprocess.run([agent_bin, "--config", str(conf), "patch", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "[patch] on_reboot_required" in r.stderr, r
    conf.write_text("[patch]\nscript = %s\n" % (tmp_path / "missing"))
    r = subprocess.run([agent_bin, "--config", str(conf), "patch"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cannot run" in r.stderr, r


# ---------------------------------------------------------------- needrestart

# needrestart's reading of its configuration and its choice for one service, as in
# /usr/sbin/needrestart (3.6): the config file is evaluated with %nrconf in scope (it evaluates
# conf.d/*.conf in turn), then the first override_rc pattern that matches the unit decides.
# With an argument: the environment is the one recorded in that file (NUL-separated).
NR_DECISION = r"""
our %nrconf = (verbosity => 1, defno => 0, override_rc => {});
our $LOGPREF = "[main]";
if (@ARGV) {
    open my $e, "<", $ARGV[0] or die "$ARGV[0]: $!";
    local $/ = "\0";
    %ENV = map { chomp; split /=/, $_, 2 } <$e>;
}
eval do { local $/; open my $fh, "<", "/etc/needrestart/needrestart.conf" or die "$!"; <$fh> };
die "needrestart.conf: $@" if $@;
my $restart = !$nrconf{defno};
foreach my $re (keys %{$nrconf{override_rc}}) {
    next unless "ec2-imaged.service" =~ /$re/;
    $restart = $nrconf{override_rc}->{$re};
    last;
}
print $restart ? "restart\n" : "deferred\n";
"""


@pytest.fixture
def nr_root(base, tmp_path):
    """The root with needrestart, its apt hook taken out (run in a chroot, needrestart would look
    at this machine's processes) and ec2-imaged's needrestart snippet installed as the package
    installs it."""
    r = make_root(tmp_path, extra=("needrestart",))
    (r / "etc/apt/apt.conf.d/99needrestart").unlink()
    shutil.copy(REPO / "packaging/needrestart.conf", r / "etc/needrestart/conf.d/ec2-imaged.conf")
    (r / "var/tmp/nr-decision.pl").write_text(NR_DECISION)
    yield r
    assert rootfs.mounts_under(tmp_path) == []


def needrestart_decision(root, env_file=None):
    r = rootfs.ns_run(root, "inroot perl /var/tmp/nr-decision.pl %s" % (env_file or ""))
    assert r.returncode == 0, r
    return r.stdout.strip()


def test_needrestart_leaves_the_service_alone_during_a_run(nr_root):
    r = patch(nr_root, "")
    assert r.returncode == 0, r
    assert version(nr_root, "ec2i-app") == "1.1"
    # What the upgrade's maintainer scripts (and apt's needrestart hook) see of the hook.
    env = dict(kv.split("=", 1) for kv in
               (nr_root / "var/tmp/ec2i-app.postinst-env").read_text().split("\0") if kv)
    assert env["NEEDRESTART_MODE"] == "a" and env["EC2_IMAGED_RUN_ID"], env
    assert needrestart_decision(nr_root, "/var/tmp/ec2i-app.postinst-env") == "deferred"
    # Outside a run (an administrator's own upgrade), it is restarted like any other service.
    assert needrestart_decision(nr_root) == "restart"


NEEDRESTART_STUB = """#!/bin/sh
echo "$*" >> /var/tmp/needrestart.calls
echo "NEEDRESTART-VER: 3.6"
echo "NEEDRESTART-SVC: cron.service"
%s
"""


@pytest.mark.parametrize("outdated", [True, False])
def test_the_daemon_restarts_after_the_run_when_it_runs_outdated_libraries(root, outdated):
    # needrestart's batch mode lists the services it would restart; a stand-in says whether
    # ec2-imaged.service is among them. /run/ec2-imaged exists while the service runs.
    (root / "run/ec2-imaged").mkdir(mode=0o700)
    stub = root / "usr/local/sbin/needrestart"
    stub.write_text(NEEDRESTART_STUB % ("echo NEEDRESTART-SVC: ec2-imaged.service"
                                        if outdated else ""))
    stub.chmod(0o755)
    r = patch(root, "")
    assert r.returncode == 0, r
    assert (root / "var/tmp/needrestart.calls").read_text() == "-b -r l\n"
    assert (root / "run/ec2-imaged/restart-pending").exists() == outdated
    assert ("ec2-imaged.service runs outdated libraries: it restarts once this run is over"
            in r.stderr) == outdated
