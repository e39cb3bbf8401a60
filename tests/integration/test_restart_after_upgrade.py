# SPDX-License-Identifier: Apache-2.0
"""What the packages do about the running daemon after an upgrade: packaging/restart-after-upgrade,
which both packages call (Debian's postinst, the RPM's %postun), run against a fake systemctl.

It never restarts, stops or starts the service: a restart would kill a run under way, and the
run's own patch hook may be the one upgrading the package. It leaves /run/ec2-imaged/
restart-pending and asks for a reload (SIGHUP), whether a run is under way or not: the daemon
decides, once idle (test_daemon_lifecycle.py shows it exiting for the restart at once when idle,
and only after the run when one is under way). The script runs in a private mount namespace with
a tmpfs on /run, where the test decides whether systemd runs (/run/systemd/system) and what
state the unit is in; nothing reaches this machine's /run or its systemd.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "packaging" / "restart-after-upgrade"
SPEC = REPO / "packaging" / "rpm" / "ec2-imaged.spec"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a mount namespace")

FAKE_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> %(log)s
if [ "$1" = is-active ]; then
        cat %(state)s
        [ "$(cat %(state)s)" = active ]
fi
"""
FAKE_DSI = """#!/bin/sh
echo "deb-systemd-invoke $*" >> %(log)s
"""
# A service that runs has its RuntimeDirectory; the run lock of a run under way is elsewhere.
NS = """set -e
mount -t tmpfs -o mode=0755 tmpfs /run
[ "$SYSTEMD" = 0 ] || mkdir -p /run/systemd/system
[ "$RUNNING" = 0 ] || mkdir -m 0700 /run/ec2-imaged
rc=0
env -i PATH="$FAKE_PATH" ${DPKG_ROOT:+DPKG_ROOT=$DPKG_ROOT} "$SCRIPT" > "$OUT" 2>&1 || rc=$?
if [ -e /run/ec2-imaged/restart-pending ]; then echo marker; else echo none; fi
exit $rc
"""


def run(tmp_path, state="active", systemd=True, debian=True, dpkg_root=None):
    """Run the script; returns (exit status, marker left, [commands run], its output)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log, state_file = tmp_path / "calls", tmp_path / "state"
    state_file.write_text(state + "\n")
    fakes = {"systemctl": FAKE_SYSTEMCTL}
    if debian:
        fakes["deb-systemd-invoke"] = FAKE_DSI
    for name, text in fakes.items():
        (bin_dir / name).write_text(text % {"log": log, "state": state_file})
        os.chmod(bin_dir / name, 0o755)
    # Only what the script may use besides the fakes: no way to reach the real systemctl.
    for tool in ("mkdir", "cat"):
        os.symlink("/bin/" + tool, bin_dir / tool)
    env = dict(os.environ, SYSTEMD="1" if systemd else "0",
               RUNNING="1" if state in ("active", "reloading") else "0",
               FAKE_PATH=str(bin_dir), SCRIPT=str(SCRIPT), OUT=str(tmp_path / "out"),
               DPKG_ROOT=dpkg_root or "")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", NS],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() in ("marker", "none"), r
    calls = log.read_text().splitlines() if log.exists() else []
    return r.returncode, r.stdout.strip() == "marker", calls, (tmp_path / "out").read_text()


def test_running_daemon_is_told_not_restarted(tmp_path):
    rc, marker, calls, out = run(tmp_path, "active")
    assert rc == 0 and marker, out
    assert calls == ["systemctl is-active ec2-imaged.service",
                     "deb-systemd-invoke reload ec2-imaged.service"]
    assert "restarts into the new version once no run is under way" in out


def test_without_debian_tools_systemctl_reloads(tmp_path):
    # The RPM's %postun: no deb-systemd-invoke there.
    rc, marker, calls, _ = run(tmp_path, "active", debian=False)
    assert rc == 0 and marker
    assert calls == ["systemctl is-active ec2-imaged.service",
                     "systemctl reload ec2-imaged.service"]


@pytest.mark.parametrize("state", ["inactive", "failed"])
def test_a_daemon_that_does_not_run_is_left_alone(tmp_path, state):
    rc, marker, calls, _ = run(tmp_path, state)
    assert rc == 0 and not marker
    assert calls == ["systemctl is-active ec2-imaged.service"]


def test_nothing_without_systemd(tmp_path):
    rc, marker, calls, _ = run(tmp_path, systemd=False)
    assert rc == 0 and not marker and calls == []


def test_nothing_in_a_root_being_made_elsewhere(tmp_path):
    rc, marker, calls, _ = run(tmp_path, dpkg_root="/srv/root")
    assert rc == 0 and not marker and calls == []


def test_the_rpm_calls_it_after_an_upgrade_instead_of_restarting():
    spec = "\n".join(ln for ln in SPEC.read_text().splitlines() if not ln.startswith("#"))
    postun = spec[spec.index("\n%postun\n"):spec.index("\n%files")]
    assert "%systemd_postun_with_restart" not in spec
    assert "try-restart" not in spec and "systemctl restart" not in spec
    assert '[ "$1" -ge 1 ]' in postun
    assert "%{_prefix}/lib/ec2-imaged/restart-after-upgrade" in postun
    assert "%{_prefix}/lib/ec2-imaged/restart-after-upgrade\n" in spec[spec.index("%files"):]


def test_scripts_are_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    r = subprocess.run(["shellcheck", "-s", "sh", str(SCRIPT),
                        str(REPO / "packaging" / "debian" / "postinst")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
