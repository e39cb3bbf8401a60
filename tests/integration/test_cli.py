# SPDX-License-Identifier: Apache-2.0
"""The CLI's output, byte for byte: each command's text and its --json, against the peers of
test_run.py (moto behind the fault proxy, the IMDS test server, a loop-mounted ext4).

Every --json output is cJSON's formatted print (tabs, `"key":<TAB>value`), pinned here by
cjson_print(), which formats a parsed value the way cJSON_Print() does.  The text of each
command is pinned by a renderer written here from the same command's JSON: the text and the JSON
are two views of one result, so they must agree field by field.

Run as root:
    /usr/bin/python3 -m pytest -q tests/integration/test_cli.py
"""

import json
import os
import re
import time
import uuid

import pytest

import test_daemon
from scratchfs import wait_until
from test_run import ACCOUNT, EXIT_USAGE, REGION, rig  # noqa: F401 (rig: the fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: losetup and mount")

EXIT_CHECK = 3
RUN_TEXT_PHASES = ("preflight", "pre-image", "pre-freeze", "freezing", "rebooting", "post-thaw",
                   "waiting", "post-image")
CHECK_LABELS = {"ok": "ok", "skipped": "skip", "failed": "FAIL"}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


# ---------------------------------------------------------------- what the output must be


def cjson_number(n):
    """A number as cJSON's print_number() writes it."""
    d = float(n)
    if d.is_integer() and -2 ** 31 <= d <= 2 ** 31 - 1:
        return "%d" % d
    s = "%1.15g" % d
    return s if float(s) == d else "%1.17g" % d


def cjson_print(v, depth=0):
    """V as cJSON_Print() formats it: objects one member a line, indented with tabs, arrays on
    one line with ", " between the items."""
    if isinstance(v, dict):
        inner = "\t" * (depth + 1)
        members = ["%s%s:\t%s" % (inner, cjson_string(k), cjson_print(x, depth + 1))
                   for k, x in v.items()]
        return "{\n%s\n%s}" % (",\n".join(members), "\t" * depth) if members \
            else "{\n%s}" % ("\t" * depth)
    if isinstance(v, list):
        return "[%s]" % ", ".join(cjson_print(x, depth + 1) for x in v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return cjson_number(v)
    return cjson_string(v)


def cjson_string(s):
    return json.dumps(s, ensure_ascii=False)


def json_out(a):
    """The parsed --json output of agent run A, checked to be exactly cJSON's print of it (one
    document and a newline)."""
    j = json.loads(a.out)
    assert a.out == cjson_print(j) + "\n", a.out
    return j


def na(s):
    return "n/a" if s is None else s


def run_text(j, report=()):
    """What print_run() writes for the run whose JSON is J."""
    lines = list(report)
    lines.append("run:          %s (%s%s)" % (j["run_id"], j["mode"],
                                              ", dry run" if j["dry_run"] else ""))
    lines.append("phase:        %s" % j["phase"])
    lines.append("image:        %s %s" % (na(j["image_id"]), na(j["image_name"])))
    lines.append("state:        %s" % na(j["image_state"]))
    lines.append("consistency:  %s" % na(j["consistency"]))
    if j["freeze_window_ms"] >= 0:
        lines.append("freeze:       %d ms (CreateImage call %d ms)"
                     % (j["freeze_window_ms"], j["create_call_ms"]))
    for phase in RUN_TEXT_PHASES:
        t = j["phase_times"].get(phase)
        if t and "ms" in t:
            lines.append("  %-11s %d ms" % (phase, t["ms"]))
    if j["error"] is not None:
        lines.append("error:        %s" % j["error"])
    return "\n".join(lines) + "\n"


def check_text(j):
    lines = ["%-5s %-13s %s" % ("ok", "config", j["config"])]
    lines += ["%-5s %-13s %s" % (CHECK_LABELS[c["result"]], c["name"], na(c["detail"]))
              for c in j["checks"]]
    lines.append("ready: this instance can be imaged" if j["ok"]
                 else "NOT READY: fix the first failed item above")
    return "\n".join(lines) + "\n"


def whoami_text(j):
    expires = "-" if j["credential_source"] is None else j["credential_expiration"] or "never"
    return ("instance:    %s\nregion:      %s (%s)\naccount:     %s\nrole:        %s\n"
            "credentials: %s\nexpires:     %s\n"
            % (j["instance_id"], j["region"], na(j["availability_zone"]), j["account_id"],
               j["role"] or "(none)", j["credential_source"] or "(none)", expires))


def keys(j):
    return list(j)


def plant_current_run(rig, **fields):
    """state.json with an unfinished run of this instance, every field print_run() shows set;
    FIELDS override.  Returns the planted run (the test compares `status --json` with it)."""
    now = int(time.time() * 1e6)
    current = {
        "run_id": str(uuid.uuid4()), "phase": "waiting", "mode": "reboot", "dry_run": True,
        "instance_id": rig.instance_id, "region": REGION, "image_name": "itest-planted",
        "image_id": "ami-0123456789abcdef0", "image_state": "pending",
        "consistency": "rebooted", "error": "planted: no error really",
        "boot_id": str(uuid.uuid4()), "freeze_window_ms": 1234, "create_call_ms": 567,
        "frozen_mounts": [], "started_us": now - 10 ** 7, "updated_us": now,
        # creating and distributing are not in the text; an end before the start has no ms.
        "phase_times": {
            "preflight": {"start_us": now - 10 ** 7, "end_us": now - 9 * 10 ** 6},
            "pre-image": {"start_us": now - 9 * 10 ** 6, "end_us": now - 9 * 10 ** 6 + 1500},
            "creating": {"start_us": now - 8 * 10 ** 6, "end_us": now - 7 * 10 ** 6},
            "rebooting": {"start_us": now - 7 * 10 ** 6, "end_us": now - 8 * 10 ** 6},
            "waiting": {"start_us": now - 6 * 10 ** 6, "end_us": now - 10 ** 6 + 999},
        },
    }
    current.update(fields)
    (rig.state_dir / "state.json").write_text(json.dumps(
        {"version": 1, "current": current, "history": []}))
    return current


def plant_history(rig, *entries):
    (rig.state_dir / "state.json").write_text(json.dumps(
        {"version": 1, "current": None, "history": list(entries)}))


def history_entry(result, error=None, image_id="ami-0fedcba9876543210"):
    now = int(time.time() * 1e6)
    return {"run_id": str(uuid.uuid4()), "result": result, "instance_id": "i-0abc",
            "image_id": image_id, "image_name": "itest-old", "consistency": "fs-frozen",
            "error": error, "started_us": now - 10 ** 6, "finished_us": now}


def use_imds(rig, imds_factory, agent_env, **flags):
    """The rig's agent from now on asks an IMDS of its instance started with FLAGS."""
    imds = imds_factory(instance_id=rig.instance_id, region=REGION, account_id=ACCOUNT, **flags)
    rig.env = agent_env(imds=imds, endpoint=rig.proxy)


# ---------------------------------------------------------------- whoami and check


def test_whoami_text_and_json(rig):
    rig.add_fs("ext4")
    rig.configure()
    a = rig.agent("whoami", "--json")
    assert a.rc == 0, a.err
    j = json_out(a)
    assert keys(j) == ["instance_id", "region", "availability_zone", "account_id",
                       "architecture", "image_id", "instance_type", "role", "credential_source",
                       "credential_expiration", "imds_endpoint"], j
    assert (j["instance_id"], j["region"], j["account_id"]) == \
        (rig.instance_id, REGION, ACCOUNT), j
    assert j["role"] and j["credential_source"] and j["credential_expiration"], j
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j["credential_expiration"]), j
    t = rig.agent("whoami")
    assert t.rc == 0, t.err
    assert t.out == whoami_text(j)


def test_whoami_with_keys_that_never_expire(rig, agent_env):
    rig.add_fs("ext4")
    rig.configure()
    rig.env = agent_env(imds=rig.imds, endpoint=rig.proxy, creds=("AKIDEXAMPLE", "secret"))
    j = json_out(rig.agent("whoami", "--json"))
    assert (j["role"], j["credential_expiration"]) == (None, None), j
    assert j["credential_source"], j
    t = rig.agent("whoami")
    assert t.out == whoami_text(j)
    assert "role:        (none)\n" in t.out and t.out.endswith("expires:     never\n")


def test_whoami_without_credentials(rig, imds_factory, agent_env):
    rig.add_fs("ext4")
    rig.configure()
    use_imds(rig, imds_factory, agent_env, no_iam_role=True)
    a = rig.agent("whoami", "--json")
    assert a.rc == 1, a.err
    j = json_out(a)
    assert (j["role"], j["credential_source"], j["credential_expiration"]) == \
        (None, None, None), j
    t = rig.agent("whoami")
    assert t.rc == 1
    assert t.out == whoami_text(j)
    assert t.out.endswith("credentials: (none)\nexpires:     -\n"), t.out


def test_check_ready_text_and_json(rig):
    rig.add_fs("ext4")
    rig.configure()
    a = rig.agent("check", "--json")
    assert a.rc == 0, a.err
    j = json_out(a)
    assert keys(j) == ["checks", "config", "ok"] and j["ok"] is True, j
    assert j["config"] == str(rig.config_path)
    assert all(keys(c) == ["name", "result", "detail"] and c["result"] == "ok"
               for c in j["checks"]), j
    t = rig.agent("check")
    assert t.rc == 0, t.err
    assert t.out == check_text(j)


def test_check_not_ready_text_and_json(rig, imds_factory, agent_env):
    """A failed item and the items skipped after it."""
    rig.add_fs("ext4")
    rig.configure()
    use_imds(rig, imds_factory, agent_env, no_iam_role=True)
    a = rig.agent("check", "--json")
    assert a.rc == EXIT_CHECK, a.err
    j = json_out(a)
    assert j["ok"] is False
    results = [c["result"] for c in j["checks"]]
    assert "failed" in results and "skipped" in results, j
    t = rig.agent("check")
    assert t.rc == EXIT_CHECK
    assert t.out == check_text(j)
    assert "\nFAIL  " in t.out and "\nskip  " in t.out


# ---------------------------------------------------------------- run, status, resume


def test_dry_run_text_and_json(rig):
    ext4 = rig.add_fs("ext4")
    rig.hook("pre-image", "10-stop-app", "exit 0\n")
    rig.configure()
    a = rig.agent("run", "--dry-run", "--json")
    assert a.rc == 0, a.err
    j = json_out(a)
    assert list(j)[-1] == "dry_run_report", j
    assert "would freeze: %s" % ext4 in j["dry_run_report"], j
    t = rig.agent("run", "--dry-run")
    assert t.rc == 0, t.err
    # Two runs: their ids and durations differ, nothing else.
    [run_id] = re.findall(r"^run: +(%s) " % UUID, t.out, re.M)

    def same(text):
        return re.sub(r"\d+ ms", "N ms", text.replace(j["run_id"], run_id))
    assert same(t.out) == same(run_text(j, j["dry_run_report"]))
    assert re.search(r"^run: +%s \(no-reboot, dry run\)$" % UUID, t.out, re.M), t.out


def test_status_of_a_run_under_way(rig):
    rig.add_fs("ext4")
    rig.configure()
    planted = plant_current_run(rig)
    a = rig.agent("status", "--json")
    assert a.rc == 0, a.err
    j = json_out(a)
    assert keys(j) == ["version", "current", "history", "grants"], j
    cur = j["current"]
    assert {k: cur[k] for k in planted if k != "phase_times"} == \
        {k: v for k, v in planted.items() if k != "phase_times"}
    assert cur["phase_times"]["waiting"]["ms"] == 5000, cur
    assert "ms" not in cur["phase_times"]["rebooting"], cur
    t = rig.agent("status")
    assert t.rc == 0, t.err
    assert t.out == run_text(cur)
    assert "  pre-image   1 ms\n  waiting     5000 ms\nerror:" in t.out, t.out

    plant_current_run(rig, dry_run=False, mode="no-reboot", image_id=None, image_state=None,
                      consistency=None, error=None, freeze_window_ms=-1, phase_times={})
    cur = json_out(rig.agent("status", "--json"))["current"]
    t = rig.agent("status")
    assert t.out == run_text(cur)
    assert "(no-reboot)\n" in t.out and "image:        n/a itest-planted\n" in t.out, t.out


@pytest.mark.parametrize("result,error", [("success", None), ("failed", "CreateImage: boom")])
def test_status_of_the_last_run(rig, result, error):
    rig.add_fs("ext4")
    rig.configure()
    h = history_entry(result, error)
    plant_history(rig, h, history_entry("success"))
    a = rig.agent("status", "--json")
    assert a.rc == 0, a.err
    j = json_out(a)
    assert j["current"] is None and [e["run_id"] for e in j["history"]][0] == h["run_id"]
    t = rig.agent("status")
    assert t.rc == 0, t.err
    assert t.out == "no run under way; last run %s: %s, image %s %s (%s)%s\n" % (
        h["run_id"], result, h["image_id"], h["image_name"], h["consistency"],
        ": " + error if error else "")


def test_status_before_any_run(rig):
    rig.add_fs("ext4")
    rig.configure()
    t = rig.agent("status")
    assert (t.rc, t.out) == (0, "no run yet\n"), t.err
    a = rig.agent("status", "--json")
    assert json_out(a) == {"version": 1, "current": None, "history": [], "grants": []}


def test_resume_with_nothing_to_resume(rig):
    rig.add_fs("ext4")
    rig.configure()
    t = rig.agent("resume")
    assert (t.rc, t.out) == (0, "no unfinished run to resume\n"), t.err
    a = rig.agent("resume", "--json")
    assert a.rc == 0, a.err
    assert json_out(a) == {"resumed": False}


def test_resume_files_another_instances_run(rig):
    rig.add_fs("ext4")
    rig.configure()
    planted = plant_current_run(rig, instance_id="i-0another00000000", boot_id="other")
    t = rig.agent("resume")
    assert t.rc == 0, t.err
    assert t.out == ("no unfinished run to resume (run %s came with the image of another "
                     "instance: filed as inherited)\n" % planted["run_id"])
    planted = plant_current_run(rig, instance_id="i-0another00000000", boot_id="other")
    a = rig.agent("resume", "--json")
    assert a.rc == 0, a.err
    j = json_out(a)
    assert keys(j) == ["resumed", "inherited"] and j == \
        {"resumed": False, "inherited": planted["run_id"]}


def test_first_boot_without_user_data(rig, imds_factory, agent_env):
    rig.add_fs("ext4")
    rig.configure()
    use_imds(rig, imds_factory, agent_env, no_user_data=True)
    a = rig.agent("first-boot", "--json")
    assert a.rc == 0, a.err
    j = json_out(a)
    assert keys(j) == ["first_boot_run", "reason"], j
    assert j == {"first_boot_run": False, "reason": "the instance has no user-data"}
    t = rig.agent("first-boot")
    assert (t.rc, t.out) == (0, "no first-boot run: the instance has no user-data\n"), t.err


# ---------------------------------------------------------------- trigger (the daemon's worker)


@pytest.fixture
def daemon_rig(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin):
    """test_daemon.py's rig: its daemon answers `trigger`."""
    yield from test_daemon.rig_of(tmp_path, moto, fault_proxy, imds_factory, agent_env, agent_bin)


def test_trigger_text_and_json(daemon_rig):
    d = daemon_rig.daemon()
    d.ready()
    r = daemon_rig.trigger("--wait", "--json")
    assert r.returncode == 0, (r.stderr, d.err)
    j = json.loads(r.stdout)
    # The worker's `run --json`, passed on as the worker printed it.
    assert r.stdout == cjson_print(j) + "\n", r.stdout
    assert j["phase"] == "done" and j["image_id"].startswith("ami-"), j
    assert [i["ImageId"] for i in daemon_rig.images()] == [j["image_id"]]

    r = daemon_rig.trigger("--wait")
    assert r.returncode == 0, (r.stderr, d.err)
    h = daemon_rig.history()[0]
    assert r.stdout == "run %s: done, image %s\n" % (h["run_id"], h["image_id"])

    r = daemon_rig.trigger()
    assert (r.returncode, r.stdout) == (0, "run started\n"), r.stderr
    assert wait_until(lambda: len(daemon_rig.history()) == 3,
                                  timeout=test_daemon.RUN_DEADLINE), d.err
    # cJSON's print like every other --json (it was printf'd on one line, `{"started": true}`).
    # The third run is in the history a moment before its worker has exited, and until then the
    # daemon answers busy (exit 4, nothing started): ask again until it is idle.
    answers = []

    def trigger_json():
        answers.append(daemon_rig.trigger("--json"))
        return answers[-1].returncode != test_daemon.EXIT_BUSY

    assert wait_until(trigger_json, step=0.2), answers[-1].stderr
    r = answers[-1]
    assert r.returncode == 0, r.stderr
    assert r.stdout == cjson_print({"started": True}) + "\n", r.stdout


# ---------------------------------------------------------------- the command line


def test_options_a_command_does_not_take(rig):
    rig.add_fs("ext4")
    rig.configure()
    for args in (("status", "--wait"), ("thaw", "--json"), ("check", "--dry-run"),
                 ("trigger", "--mode", "reboot"), ("daemon", "--json"), ("status", "extra")):
        a = rig.agent(*args)
        assert (a.rc, a.out) == (EXIT_USAGE, ""), (args, a.err)
        assert "ec2-imaged: %s: " % args[0] in a.err, a.err
    a = rig.agent("nonsense")
    assert a.rc == EXIT_USAGE and "unknown command 'nonsense'" in a.err, a.err
    a = rig.agent("run", "--mode", "sideways")
    assert a.rc == EXIT_USAGE and "--mode must be no-reboot or reboot" in a.err, a.err


def test_import_command_line(rig):
    """import's options and its one image id, through the shared option parsing: a bad command
    line exits 2 with nothing on stdout, says what is wrong, and sends nothing to AWS."""
    rig.add_fs("ext4")
    rig.configure()
    for args, said in ((("import",), "import: give one image id (ami-...)"),
                       (("import", "ami-1", "ami-2"), "import: give one image id (ami-...)"),
                       (("import", "--json", "--region", "us-east-1"),
                        "import: give one image id (ami-...)"),
                       (("import", "ami-1", "--bogus"),
                        "import: unknown option or no value for '--bogus'"),
                       (("import", "ami-1", "--kms-key"),
                        "import: unknown option or no value for '--kms-key'"),
                       (("import", "ami-1", "--name", ""), "import: empty value for 'name'"),
                       (("import", "ami-1", "--mode", "reboot"), "import: unknown option '--mode'"),
                       (("import", "-x", "ami-1"), "import: unknown option '-x'"),
                       (("kms-policy", "--region="), "kms-policy: empty value for 'region'"),
                       (("status", "--name", "n"), "status: unknown option '--name'")):
        a = rig.agent(*args)
        assert (a.rc, a.out) == (EXIT_USAGE, ""), (args, a.err)
        assert "ec2-imaged: %s; see ec2-imaged --help" % said in a.err, (args, a.err)
    assert rig.proxy.requests() == []
