# SPDX-License-Identifier: Apache-2.0
"""The instances the EC2 front launches (tests/vm/ec2_front.py): RunInstances of an image the
front copied boots a VM from copies of that image's disks, as EC2 launches an instance from an
AMI. The run's boot check ([boot_check] enable = yes) launches one and waits for its report.

Each launched VM (a "clone") has:
  - the instance id moto gave the RunInstances the front forwarded (moto holds the instance, its
    tags and its state);
  - its own IMDS test server, with its own access key id and the request's user-data
    (base64-decoded), so the front can tell its calls from the golden's;
  - its own network namespace (NETNS, made by e2e.py with a tap device, the link-local
    169.254.169.254 on it and a DHCP server). The image's network configuration is static and
    the same in every copy (169.254.10.10), and IMDS lives on one well-known address: in one
    namespace two guests with one address could not be told apart by routing, nor two IMDS
    servers bound to 169.254.169.254:80. A namespace per VM needs neither policy routing nor
    NAT (no nftables in the namespace). The front listens in that namespace too (its second
    socket is made there, see in_netns()), so the clone reaches EC2 where the golden does.
  - the disks: copies of the image's copies (cp --sparse), so that the copies the test reads
    stay as CreateImage left them.
The clone's qemu exits when the guest powers off ([boot_check]: InstanceInitiatedShutdownBehavior
terminate): the front then terminates the instance in moto too, as EC2 would. TerminateInstances
of a running clone shuts its VM down (ACPI, then quit after STOP_AFTER_S) and stops its IMDS.
Every step is an event of the front.
"""

import ctypes
import subprocess
import sys
import threading
import time
from pathlib import Path

from vm import Proc, Vm

HERE = Path(__file__).resolve().parent
IMDS_IP = "169.254.169.254"
CLONE_NEWNET = 0x40000000
STOP_AFTER_S = 300  # TerminateInstances: how long the guest may take to shut down


def in_netns(name, fn):
    """FN() run with this thread in the network namespace NAME; a socket keeps the namespace it
    was made in, so a listener made here serves that namespace while the thread goes back."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open("/run/netns/" + name) as ns:
        if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns %s" % name)
        try:
            return fn()
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")


def access_key_id(n):
    return ("ASIAE2EBOOTCHECK%d" % n).ljust(20, "0")


class Clones:
    def __init__(self, front, upstream):
        self.front, self.upstream = front, upstream
        self.running = {}  # instance id -> {"vm", "imds", "name", "terminated"}
        self.n = 0

    def launch(self, image, instance_id, user_data):
        """Boot a clone of IMAGE (the front's record of one CreateImage) as INSTANCE_ID, in the
        background: RunInstances has answered already, as EC2's does while the instance is
        pending."""
        self.n += 1
        n = self.n
        threading.Thread(target=self._boot, args=(n, image, instance_id, user_data),
                         daemon=True).start()

    def name_on_net(self):
        """The clone that runs now, if any (one at a time): who calls over the clone network."""
        with self.front.lock:
            names = [c["name"] for c in self.running.values()]
        return names[0] if names else None

    def _boot(self, n, image, instance_id, user_data):
        spec, name = image["clone"], "bootcheck-%d" % n
        work, ns = Path(spec["dir"]), spec["netns"]
        try:
            if not image["done"].wait(900) or not image["ok"]:
                raise RuntimeError("the copies of %s did not complete" % image["id"])
            disks = {}  # in the VM's order: the first is /dev/vda, the root
            for dev, path in image["copies"].items():
                disks[dev] = str(work / ("%s-%s.img" % (name, dev)))
                subprocess.run(["cp", "--sparse=always", path, disks[dev]], check=True)
            akid = access_key_id(n)
            ud = work / ("user-data-" + name)
            ud.write_bytes(user_data)
            log = work / ("imds-%s.log" % name)
            imds = Proc("imds-" + name, [
                "ip", "netns", "exec", ns, sys.executable, HERE.parent / "peers/imds_server.py",
                "--host", IMDS_IP, "--port", "80", "--instance-id", instance_id,
                "--region", spec["region"], "--availability-zone", spec["region"] + "a",
                "--account-id", spec["account"], "--access-key-id", akid,
                "--user-data-file", ud], log)
            deadline = time.monotonic() + 60
            while "imds: listening" not in log.read_text(errors="replace"):
                if imds.p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the IMDS of %s did not start (%s)" % (name, log))
                time.sleep(0.2)
            vm = Vm(name, work, disks, "ec2e2e00-0000-4000-8000-0000000002%02d" % n,
                    tap=spec["tap"], mac="52:54:00:12:34:%02x" % (0x60 + n), mem=spec["mem"],
                    smp=1, netns=ns, stop_on_poweroff=False)
        except Exception as e:  # noqa: BLE001  (reported through the front's status)
            self.front.note("clone-failed", name=name, image=image["id"], error=str(e))
            return
        clone = {"vm": vm, "imds": imds, "name": name, "terminated": False,
                 "region": spec["region"]}
        with self.front.lock:
            self.running[instance_id] = clone
        self.front.note("clone-started", name=name, image=image["id"], instance=instance_id,
                        akid=akid, pid=vm.proc.p.pid, disks=disks)
        rc = vm.proc.p.wait()
        imds.stop()
        with self.front.lock:
            self.running.pop(instance_id, None)
        self.front.note("clone-exited", name=name, instance=instance_id, rc=rc,
                        by="TerminateInstances" if clone["terminated"] else "poweroff")
        if not clone["terminated"]:
            self._terminate_in_moto(instance_id, clone["region"])

    def _terminate_in_moto(self, instance_id, region):
        """The guest powered off: InstanceInitiatedShutdownBehavior=terminate, EC2's part."""
        sys.path.insert(0, str(HERE.parent / "peers"))
        import moto_auth
        try:
            ec2 = moto_auth.client(self.upstream, "ec2", region=region)
            ec2.terminate_instances(InstanceIds=[instance_id])
            self.front.note("clone-terminated-in-moto", instance=instance_id)
        except Exception as e:  # noqa: BLE001
            self.front.note("clone-terminate-failed", instance=instance_id, error=str(e))

    def terminate(self, instance_ids):
        """TerminateInstances reached moto: stop those that run here (EC2 stops the instance)."""
        for iid in instance_ids:
            with self.front.lock:
                clone = self.running.get(iid)
            if clone is None:
                continue
            clone["terminated"] = True
            self.front.note("clone-stopping", name=clone["name"], instance=iid)
            # As EC2 does: a clean shutdown first (the clone may be powering off already), so
            # that its disks can be checked after; then the VM is stopped in any case.
            try:
                clone["vm"].qmp.cmd("system_powerdown")
            except Exception:  # noqa: BLE001  (already gone: powered off meanwhile)
                pass
            threading.Timer(STOP_AFTER_S, self._quit, args=(clone,)).start()

    def _quit(self, clone):
        if clone["vm"].proc.p.poll() is None:
            self.front.note("clone-quit", name=clone["name"])
            try:
                clone["vm"].qmp.cmd("quit")
            except Exception:  # noqa: BLE001
                clone["vm"].kill()

    def stop_all(self):
        with self.front.lock:
            clones = list(self.running.values())
        for c in clones:
            c["terminated"] = True
            c["vm"].kill()
            c["imds"].stop()
