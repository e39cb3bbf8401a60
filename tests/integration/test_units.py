# SPDX-License-Identifier: Apache-2.0
"""The systemd units in units/: `systemd-analyze verify` reports nothing, and the settings the
daemon relies on are there.

verify checks that every Exec*= binary exists, and /usr/sbin/ec2-imaged is not installed on a
build machine: the units are verified inside a scratch root (--root) that holds the built binary
at /usr/sbin/ec2-imaged, /bin/kill, a copy of the system's own units (for the targets ours refer
to) and ours in /etc/systemd/system.  Nothing is installed on the machine itself.
"""

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "units"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def unit(name):
    p = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    p.optionxform = str
    p.read(UNITS / name)
    return p


def test_systemd_analyze_verify_reports_nothing(tmp_path, agent_bin):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    if not SYSTEM_UNITS.is_dir():
        pytest.skip("%s missing: no system units to verify against" % SYSTEM_UNITS)
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(agent_bin, root / "usr/sbin/ec2-imaged")
    shutil.copy(shutil.which("kill") or "/bin/kill", root / "bin/kill")
    (root / "usr/lib/ec2-imaged/hooks").mkdir(parents=True)
    shutil.copy(REPO / "hooks/firstboot", root / "usr/lib/ec2-imaged/hooks/firstboot")
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    names = sorted(p.name for p in UNITS.iterdir() if p.is_file())
    assert names == ["ec2-imaged-firstboot.service", "ec2-imaged-run.service",
                     "ec2-imaged-run.timer", "ec2-imaged.service"]
    for n in names:
        shutil.copy(UNITS / n, root / "etc/systemd/system" / n)
    r = subprocess.run(["systemd-analyze", "verify", "--root=%s" % root] + names,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r


def test_firstboot_settings():
    u = unit("ec2-imaged-firstboot.service")
    # Host keys must exist before sshd reads them, under either name of the ssh unit.
    assert set(u["Unit"]["Before"].split()) >= {"ssh.service", "sshd.service"}
    assert u["Service"]["Type"] == "oneshot"
    assert u["Service"]["ExecStart"] == "/usr/lib/ec2-imaged/hooks/firstboot"


def test_service_settings():
    s = unit("ec2-imaged.service")["Service"]
    assert s["Type"] == "notify"
    assert s["ExecStart"] == "/usr/sbin/ec2-imaged daemon"
    assert s["ExecStopPost"] == "/usr/sbin/ec2-imaged thaw"
    assert s["Restart"] == "on-failure"
    assert s["WatchdogSec"] and s["StateDirectory"] == "ec2-imaged"
    assert s["RuntimeDirectory"] == "ec2-imaged"
    assert s["KillMode"] == "mixed"
    assert s["LimitCORE"] == "0"  # workers hold credentials; see README "No core dumps"
    # FIFREEZE needs CAP_SYS_ADMIN and hooks may patch the system: nothing may take those away.
    for key in ("CapabilityBoundingSet", "ProtectSystem", "ReadOnlyPaths", "PrivateDevices"):
        assert key not in s, key


# Every [Service] setting that makes systemd give the unit a mount namespace of its own (systemd's
# exec_needs_mount_namespace() in src/core/execute.c and the mounts of src/core/namespace.c, from
# v252 to today), with the values that do not. ProtectHostname= is here too: a UTS namespace of
# its own (a hook could not name the host) and read-only mounts over /proc/sys/kernel/hostname.
MOUNT_NAMESPACE_KEYS = {
    "PrivateTmp": (), "PrivateDevices": (), "PrivateMounts": (),
    "PrivateNetwork": (), "PrivateIPC": (), "PrivatePIDs": (), "PrivateBPF": (),
    "ProtectSystem": (), "ProtectHome": (), "ProtectKernelTunables": (),
    "ProtectKernelModules": (), "ProtectKernelLogs": (), "ProtectControlGroups": (),
    "ProtectHostname": (), "ProtectProc": ("default",), "ProcSubset": ("all",),
    "ReadWritePaths": None, "ReadOnlyPaths": None, "InaccessiblePaths": None, "ExecPaths": None,
    "NoExecPaths": None, "BindPaths": None, "BindReadOnlyPaths": None,
    "TemporaryFileSystem": None, "RootDirectory": None, "RootImage": None, "MountImages": None,
    "ExtensionImages": None, "ExtensionDirectories": None, "MountAPIVFS": (),
    "LogNamespace": None, "NetworkNamespacePath": None, "IPCNamespacePath": None,
    "MountFlags": ("shared",), "DynamicUser": (), "BindLogSockets": (),
}
OFF = ("no", "false", "0", "off", "")


def test_service_has_no_mount_namespace():
    """Hooks run in the service and must act on the host's mounts and files: the identity stash
    that sanitize mounts in pre-freeze must be visible to the restore timer (outside the
    service) and outlive the service, and its tmp-files operation must clean the /tmp and
    /var/tmp that go into the image (issue 11, finding 3)."""
    s = unit("ec2-imaged.service")["Service"]
    found = {}
    for key, fine in MOUNT_NAMESPACE_KEYS.items():
        if key not in s:
            continue
        value = s[key].strip().lower()
        if fine is None or value not in OFF + tuple(fine):
            found[key] = s[key]
    assert found == {}, "settings that give ec2-imaged.service its own mount namespace: %s" % found


def test_identity_stash_outlives_the_service():
    """sanitize's stash is a tmpfs on /run (in no image), outside the RuntimeDirectory= that
    systemd removes whenever the service stops."""
    text = (REPO / "hooks/sanitize").read_text()
    m = re.search(r"^STASH_DIR=\$\{EC2_IMAGED_STASH_DIR:-\$R(/[^}]+)\}$", text, re.M)
    assert m, "no default STASH_DIR in hooks/sanitize"
    stash = m.group(1)
    runtime = ["/run/" + d for d in unit("ec2-imaged.service")["Service"]
               .get("RuntimeDirectory", "").split()]
    assert stash.startswith("/run/")
    assert not [d for d in runtime if stash == d or stash.startswith(d + "/")], (stash, runtime)


def test_timer_settings():
    t = unit("ec2-imaged-run.timer")["Timer"]
    assert t["Persistent"] == "true" and t["RandomizedDelaySec"]
    assert unit("ec2-imaged-run.service")["Service"]["ExecStart"] == \
        "/usr/sbin/ec2-imaged trigger --wait"
    dropin = configparser.ConfigParser(strict=False, interpolation=None)
    dropin.optionxform = str
    dropin.read(REPO / "conf/ec2-imaged-run.timer.d/schedule.conf")
    assert dropin["Timer"]["OnCalendar"]


def test_service_is_started_again_after_the_daemon_exits_for_an_upgrade():
    # The daemon exits with DAEMON_EXIT_RESTART once idle after an upgrade (daemon/daemon.h):
    # that must restart the service, and must not count as a failure.
    header = (REPO / "agent/daemon/daemon.h").read_text()
    code = re.search(r"#define DAEMON_EXIT_RESTART\s+(\d+)", header).group(1)
    s = unit("ec2-imaged.service")["Service"]
    assert code in s["RestartForceExitStatus"].split()
    assert code in s["SuccessExitStatus"].split()
    assert s["RuntimeDirectory"] == "ec2-imaged"  # where the marker is left: /run/ec2-imaged
