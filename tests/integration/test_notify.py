# SPDX-License-Identifier: Apache-2.0
"""[notify]: the end of every run told to EventBridge, SNS and a Prometheus textfile, read back
from moto (an SQS queue subscribed to the topic, and an EventBridge rule on the bus whose target
is an SQS queue) and from the file.

Safety: the rig is test_run.py's (scratch loop mounts listed in [freeze] mounts, thawed,
unmounted and detached by its finalizer; loopback peers only).  Run as root.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from moto_auth import client  # tests/peers, on sys.path via conftest
from peers import dead_loopback_url
from test_run import EXIT_FAILED, PASS_DRY_RUN, REGION, pytestmark, rig  # noqa: F401

BUS = "golden-images"
TOPIC = "image-runs"


class Listener:
    """An SNS topic and an EventBridge bus in moto, each delivering to an SQS queue."""

    def __init__(self, moto):
        self.sqs = client(moto.url, "sqs", region=REGION)
        sns = client(moto.url, "sns", region=REGION)
        events = client(moto.url, "events", region=REGION)
        self.topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
        self.sns_queue, sns_arn = self.queue("from-sns")
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=sns_arn)
        self.events_queue, events_arn = self.queue("from-events")
        events.create_event_bus(Name=BUS)
        events.put_rule(Name="image-runs", EventBusName=BUS,
                        EventPattern=json.dumps({"source": ["ec2-imaged"]}))
        events.put_targets(Rule="image-runs", EventBusName=BUS,
                           Targets=[{"Id": "q", "Arn": events_arn}])

    def queue(self, name):
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, arn["Attributes"]["QueueArn"]

    def drain(self, url):
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def events(self):
        return self.drain(self.events_queue)

    def messages(self):
        return self.drain(self.sns_queue)


@pytest.fixture
def listener(moto):
    return Listener(moto)


def configure(rig, listener, **keys):
    rig.configure(notify__event_bus=BUS, notify__sns_topic_arn=listener.topic_arn,
                  notify__prometheus_textfile=rig.tmp / "metrics" / "ec2-imaged.prom", **keys)
    (rig.tmp / "metrics").mkdir(exist_ok=True)


def assert_told(listener, result, detail_type, subject):
    """One event and one message, each carrying the run's JSON result."""
    [event] = listener.events()
    assert event["source"] == "ec2-imaged" and event["detail-type"] == detail_type, event
    assert event["detail"] == result, event["detail"]
    [msg] = listener.messages()
    assert msg["TopicArn"] == listener.topic_arn
    assert re.fullmatch(subject, msg["Subject"]), msg["Subject"]
    assert msg["Subject"].startswith("ec2-imaged run %s " % result["run_id"]), msg["Subject"]
    assert result["run_id"] in msg["Message"]
    attr = msg["MessageAttributes"]["result"]
    assert attr["Type"] == "String" and json.loads(attr["Value"]) == result


# ---------------------------------------------------------------- the textfile

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")


def parse_exposition(text):
    """Check the text exposition format's rules (HELP and TYPE once per family, before its
    samples; metric and label names; escaped label values; a float per sample; no series twice;
    a final line feed) and return {(name, frozenset(labels)): value}."""
    assert text.endswith("\n")
    families, series, typed = {}, {}, None
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            assert METRIC_NAME.fullmatch(name), line
            families.setdefault(name, {})
            assert kind not in families[name], "second %s of %s" % (kind, name)
            assert not any(n == name for n, _ in series), "%s after its samples" % kind
            families[name][kind] = rest
            if kind == "TYPE":
                assert rest in ("gauge", "counter", "untyped"), line
                typed = name
            continue
        m = SAMPLE.fullmatch(line)
        assert m, "not a sample: %r" % line
        name, labels_text, value = m.groups()
        assert name == typed, "%s outside its family (%s)" % (name, typed)
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                assert lm, "bad labels: %r" % labels_text
                assert lm.group(1) not in labels
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
                if pos < len(labels_text):
                    assert labels_text[pos] == ",", labels_text
                    pos += 1
        key = (name, frozenset(labels.items()))
        assert key not in series, "series twice: %r" % line
        series[key] = float(value)
    for name, f in families.items():
        assert set(f) == {"HELP", "TYPE"}, name
    return series


def metrics(rig):
    path = rig.tmp / "metrics" / "ec2-imaged.prom"
    text = path.read_text()
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
    assert [p.name for p in path.parent.iterdir()] == [path.name], "temporary file left"
    return parse_exposition(text)


def value(series, name, **labels):
    return series[(name, frozenset(labels.items()))]


# ---------------------------------------------------------------- the runs


def test_successful_run_is_told(rig, listener):
    rig.add_fs("ext4")
    configure(rig, listener)

    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    result = a.json()
    assert result["phase"] == "done"
    assert_told(listener, result, "Image Run Succeeded",
                r"ec2-imaged run \S+ succeeded: " + result["image_id"])
    sent = [r["action"] for r in rig.proxy.requests()]
    assert sent.count("PutEvents") == 1 and sent.count("Publish") == 1, sent

    s = metrics(rig)
    assert value(s, "ec2_imaged_last_run_success") == 1
    assert value(s, "ec2_imaged_last_run_info", run_id=result["run_id"],
                 image_id=result["image_id"], result="success") == 1
    assert value(s, "ec2_imaged_last_run_freeze_window_seconds") == result["freeze_window_ms"] / 1000
    assert value(s, "ec2_imaged_last_run_create_image_seconds") == result["create_call_ms"] / 1000
    start = value(s, "ec2_imaged_last_run_start_time_seconds")
    end = value(s, "ec2_imaged_last_run_end_time_seconds")
    assert start <= end and value(s, "ec2_imaged_last_run_duration_seconds") == \
        pytest.approx(end - start, abs=0.002)
    assert value(s, "ec2_imaged_runs", result="success") == 1
    assert value(s, "ec2_imaged_runs", result="failed") == 0


def test_failed_run_is_told(rig, listener):
    rig.add_fs("ext4")
    configure(rig, listener, aws__max_attempts=2, aws__retry_deadline_ms=2000)
    # CreateImage refused: EC2 says the caller may not.
    rig.proxy.faults(PASS_DRY_RUN, {"kind": "reject_key", "action": "CreateImage",
                                    "access_key_id": role_key_id(rig),
                                    "code": "UnauthorizedOperation"})

    a = rig.agent("run", "--json")
    assert a.rc == EXIT_FAILED, a.err
    result = a.json()
    assert result["phase"] == "failed" and "UnauthorizedOperation" in result["error"], result
    assert_told(listener, result, "Image Run Failed", r"ec2-imaged run \S+ failed")

    s = metrics(rig)
    assert value(s, "ec2_imaged_last_run_success") == 0
    assert value(s, "ec2_imaged_last_run_info", run_id=result["run_id"], image_id="",
                 result="failed") == 1
    assert value(s, "ec2_imaged_runs", result="failed") == 1

    # The next run counts both, and tells its own end only.
    rig.proxy.clear()
    b = rig.agent("run", "--json")
    assert b.rc == 0, b.err
    assert_told(listener, b.json(), "Image Run Succeeded", r"ec2-imaged run \S+ succeeded: .*")
    s = metrics(rig)
    assert value(s, "ec2_imaged_runs", result="failed") == 1
    assert value(s, "ec2_imaged_runs", result="success") == 1


def role_key_id(rig):
    """The access key id of the role credentials IMDS serves now (the agent signs with them)."""
    return rig.imds.stats()["issued_credentials"][-1]["access_key_id"]


def test_resumed_run_is_told_once_at_its_end(rig, listener):
    rig.add_fs("ext4")
    configure(rig, listener)

    a = rig.agent("run", "--mode", "reboot", "--json")
    assert a.rc == 0, a.err
    assert rig.state()["current"]["phase"] == "rebooting"
    # Not ended: waiting for its reboot, nothing told, no textfile.
    assert listener.events() == [] and listener.messages() == []
    assert not (rig.tmp / "metrics" / "ec2-imaged.prom").exists()

    r = rig.agent("resume", "--json")
    assert r.rc == 0, r.err
    result = r.json()
    assert result["phase"] == "done" and result["boots"] >= 1
    assert_told(listener, result, "Image Run Succeeded",
                r"ec2-imaged run \S+ succeeded: " + result["image_id"])
    s = metrics(rig)
    assert value(s, "ec2_imaged_last_run_success") == 1
    assert ("ec2_imaged_last_run_freeze_window_seconds", frozenset()) not in s  # rebooted


def test_unreachable_notify_endpoints_do_not_fail_the_run(rig, listener):
    rig.add_fs("ext4")
    configure(rig, listener, aws__max_attempts=2, aws__retry_deadline_ms=2000)
    rig.env["AWS_ENDPOINT_URL_EVENTS"] = dead_loopback_url()
    rig.env["AWS_ENDPOINT_URL_SNS"] = dead_loopback_url()

    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    assert a.json()["phase"] == "done"
    assert "EventBridge PutEvents on bus %s in %s failed" % (BUS, REGION) in a.err, a.err
    assert "SNS Publish to %s failed" % listener.topic_arn in a.err, a.err
    assert listener.events() == [] and listener.messages() == []
    assert rig.state()["history"][0]["result"] == "success"
    assert value(metrics(rig), "ec2_imaged_last_run_success") == 1


def test_textfile_replaces_a_symlink_and_never_follows_one(rig, listener, tmp_path):
    rig.add_fs("ext4")
    configure(rig, listener)
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (rig.tmp / "metrics" / "ec2-imaged.prom").symlink_to(victim)

    a = rig.agent("run", "--json")
    assert a.rc == 0, a.err
    assert victim.read_text() == "untouched\n"
    assert not (rig.tmp / "metrics" / "ec2-imaged.prom").is_symlink()
    assert value(metrics(rig), "ec2_imaged_last_run_success") == 1

    # A directory reached through a symlink is refused (logged), and the run still succeeds.
    (rig.tmp / "elsewhere").mkdir()
    (rig.tmp / "linked").symlink_to(rig.tmp / "elsewhere")
    rig.configure(notify__prometheus_textfile=rig.tmp / "linked" / "ec2-imaged.prom")
    b = rig.agent("run", "--json")
    assert b.rc == 0, b.err
    assert "cannot write it" in b.err, b.err
    assert list((rig.tmp / "elsewhere").iterdir()) == []
