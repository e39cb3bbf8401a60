# SPDX-License-Identifier: Apache-2.0
"""STS AssumeRole (aws/sts.c) and credentials from the AWS shared files (aws/creds_profile.c,
aws/profile_file.c) against moto with its authentication on, so that a key from a file that did
not sign the request is refused.

Everything goes through build/tools/creds_probe: `whoami` takes the chain's credentials
(environment, then the shared files; no IMDS) and asks GetCallerIdentity with them;
`assume-role` assumes a role with the chain's credentials and then calls GetCallerIdentity (and
DescribeKey) with the role's. moto keeps one backend per account and knows which account an
assumed role's key belongs to, so a call made with it acts in that account. The fault proxy
records what was sent where moto does not look (ExternalId, which key signed the AssumeRole).
"""

import calendar
import errno
import json
import subprocess
import time

import pytest

import moto_auth as helpers
from conftest import start_moto_auth

HANG_GUARD_S = 120
REGION = "us-east-1"
OTHER = "111111111111"
THIRD = "222222222222"
ROLE = "arn:aws:iam::%s:role/ec2-imaged-target" % OTHER


def make_role(endpoint, account, name):
    """Create role NAME, allowed everything, in ACCOUNT (moto's x-moto-account-id header picks
    the account of a request; it works only while moto's authentication is off)."""
    iam = helpers.client(endpoint, "iam")

    def in_account(request, **_):
        request.headers["x-moto-account-id"] = account

    iam.meta.events.register("before-sign.iam.*", in_account)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName=name, PolicyName="allow", PolicyDocument=helpers.ALLOW_ALL)


@pytest.fixture
def moto_auth(moto_python, request):
    """A moto of its own with the roles of the other accounts made before its authentication is
    turned on (conftest's moto_auth cannot make roles in other accounts once it is locked up)."""
    def roles(url):
        for account, name in ((OTHER, "ec2-imaged-target"), (OTHER, "maker"), (THIRD, "deeper")):
            make_role(url, account, name)

    yield from start_moto_auth(moto_python, request, roles)


@pytest.fixture
def creds_probe(aws_probe, tmp_path):
    """creds_probe(endpoint, *call, creds=None, files=None, **env) -> (json, stderr).

    files: {"credentials": text, "config": text}, written under tmp_path and named by
    AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE (else /dev/null, as for every test)."""
    probe = aws_probe("creds_probe")

    def run(endpoint, *call, creds=None, files=None, **env):
        extra = dict(env)
        for name, var in (("credentials", "AWS_SHARED_CREDENTIALS_FILE"),
                          ("config", "AWS_CONFIG_FILE")):
            if files and name in files:
                f = tmp_path / ("aws-" + name)
                f.write_text(files[name])
                extra[var] = str(f)
        return probe(endpoint, "--region", REGION, *call, creds=creds, **extra)

    return run


def ok(r):
    out, err = r
    assert out["ok"], (out, err)
    return out


def user_arn(moto_auth):
    return helpers.client(moto_auth.url, "sts", moto_auth.creds).get_caller_identity()["Arn"]


def role_key_in(moto_auth, account):
    """A KMS key made in ACCOUNT by botocore, with a role assumed there; its id."""
    c = helpers.client(moto_auth.url, "sts", moto_auth.creds).assume_role(
        RoleArn="arn:aws:iam::%s:role/maker" % account, RoleSessionName="maker")["Credentials"]
    kms = helpers.client(moto_auth.url, "kms",
                         (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]))
    return kms.create_key(Description="in " + account)["KeyMetadata"]


def sent(proxy, action):
    return [r for r in proxy.requests() if r["action"] == action]


# ---------------------------------------------------------------- AssumeRole


def test_assume_role_acts_in_the_other_account(moto_auth, fault_proxy, creds_probe):
    key = role_key_in(moto_auth, OTHER)
    proxy = fault_proxy(moto_auth)
    before = time.time()
    r = ok(creds_probe(proxy, "assume-role", ROLE, "probe-session", "ext-id-42", "900",
                       key["KeyId"], creds=moto_auth.creds))
    # The role's own credentials, with their expiry (DurationSeconds honoured), no secret shown.
    c = r["credentials"]
    assert c["source"] == "assumed-role:" + ROLE and c["role_name"] == "ec2-imaged-target"
    assert c["session_token"] is True and c["access_key_id"] != moto_auth.access_key_id
    expires = calendar.timegm(time.strptime(c["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert before + 800 < expires < before + 1000, (c, before)
    # Calls signed with them are the role's, in the other account.
    assert r["identity"]["account"] == OTHER
    assert r["identity"]["arn"] == "arn:aws:sts::%s:assumed-role/ec2-imaged-target/probe-session" \
        % OTHER
    assert r["key"]["arn"] == key["Arn"] and (":%s:" % OTHER) in key["Arn"]
    # The key is not the owner's: its own account does not have it.
    with pytest.raises(Exception, match="NotFoundException"):
        helpers.client(moto_auth.url, "kms", moto_auth.creds).describe_key(KeyId=key["KeyId"])
    (req,) = sent(proxy, "AssumeRole")
    p = req["params"]
    assert p["RoleArn"] == ROLE and p["RoleSessionName"] == "probe-session"
    assert p["ExternalId"] == "ext-id-42" and p["DurationSeconds"] == "900"
    assert p["Version"] == "2011-06-15" and req["access_key_id"] == moto_auth.access_key_id
    # Nothing secret in what the probe printed.
    assert moto_auth.secret_access_key not in json.dumps(r)


def test_assume_role_refused_with_a_wrong_secret(moto_auth, creds_probe):
    out, _ = creds_probe(moto_auth, "assume-role", ROLE, "probe-session",
                         creds=(moto_auth.access_key_id, "not-the-secret"))
    assert not out["ok"] and out["errno"] == errno.EREMOTEIO
    assert out["error_code"] in ("SignatureDoesNotMatch", "InvalidClientTokenId"), out
    assert "credentials" not in out


def test_assume_role_checks_its_arguments_before_sending(moto, fault_proxy, creds_probe):
    proxy = fault_proxy(moto)
    for call in (("not-an-arn", "s1"), (ROLE, "x"), (ROLE, "s1", "-", "60"),
                 ("arn:aws:iam::12345:role/r", "s1"), (ROLE, "s1", "bad id with spaces")):
        out, _ = creds_probe(proxy, "assume-role", *call, creds=helpers.DUMMY_CREDS)
        assert not out["ok"] and out["errno"] == errno.EINVAL, (call, out)
    assert sent(proxy, "AssumeRole") == []


# ---------------------------------------------------------------- the shared files


def keys_ini(section, key):
    return "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (section, *key)


def test_static_keys_of_the_default_profile(moto_auth, creds_probe):
    # The same profile in both files: the credentials file's keys win, as in botocore.
    files = {"credentials": "# a comment\n" + keys_ini("default", moto_auth.creds),
             "config": "[default]\nregion = us-west-2\n"
                       "aws_access_key_id = AKIACONFIGNOTUSED000\naws_secret_access_key = c\n"}
    r = ok(creds_probe(moto_auth, "whoami", files=files))
    assert r["credentials"]["source"] == "profile:default"
    assert r["credentials"]["access_key_id"] == moto_auth.access_key_id
    assert r["credentials"]["session_token"] is False and r["credentials"]["expiration"] is None
    assert r["identity"]["arn"] == user_arn(moto_auth)


def test_static_keys_of_a_named_profile_in_the_config_file(moto_auth, creds_probe):
    # [profile NAME] in the config file; the credentials file's other profiles do not matter.
    files = {"credentials": keys_ini("default", ("AKIADEFAULTNOTUSED00", "x" * 40)),
             "config": "[profile dev]\nregion = us-east-1\n"
                       "aws_access_key_id = %s\naws_secret_access_key = %s\n" % moto_auth.creds}
    r = ok(creds_probe(moto_auth, "whoami", files=files, AWS_PROFILE="dev"))
    assert r["credentials"]["source"] == "profile:dev"
    assert r["identity"]["arn"] == user_arn(moto_auth)
    # The same without AWS_PROFILE takes the default profile, whose key moto refuses.
    out, _ = creds_probe(moto_auth, "whoami", files=files)
    assert not out["ok"] and out["error_code"] == "InvalidClientTokenId", out


def test_environment_keys_win_over_the_files(moto_auth, creds_probe):
    files = {"credentials": keys_ini("default", ("AKIADEFAULTNOTUSED00", "x" * 40))}
    r = ok(creds_probe(moto_auth, "whoami", files=files, creds=moto_auth.creds))
    assert r["credentials"]["source"] == "environment"


def test_role_arn_with_source_profile(moto_auth, fault_proxy, creds_probe):
    proxy = fault_proxy(moto_auth)
    files = {"credentials": keys_ini("base", moto_auth.creds),
             "config": "[profile target]\nrole_arn = %s\nsource_profile = base\n"
                       "external_id = ext-77\nrole_session_name = from-profile\n"
                       "duration_seconds = 1800\n" % ROLE}
    r = ok(creds_probe(proxy, "whoami", files=files, AWS_PROFILE="target"))
    c = r["credentials"]
    assert c["source"] == "profile:target" and c["role_name"] == "ec2-imaged-target"
    assert c["session_token"] is True and c["expiration"]
    assert r["identity"]["account"] == OTHER
    assert r["identity"]["arn"].endswith(":assumed-role/ec2-imaged-target/from-profile")
    (req,) = sent(proxy, "AssumeRole")
    assert req["access_key_id"] == moto_auth.access_key_id  # signed with base's key
    assert req["params"]["ExternalId"] == "ext-77"
    assert req["params"]["DurationSeconds"] == "1800"
    # GetCallerIdentity went out with the role's key, not base's.
    (who,) = sent(proxy, "GetCallerIdentity")
    assert who["access_key_id"] == c["access_key_id"] != moto_auth.access_key_id


def test_role_chain_through_two_profiles(moto_auth, fault_proxy, creds_probe):
    # third assumes a role in THIRD with the credentials of target's role in OTHER, which base's
    # keys assume; a source profile that holds keys uses them even if it names a role too.
    proxy = fault_proxy(moto_auth)
    third = "arn:aws:iam::%s:role/deeper" % THIRD
    files = {"credentials": keys_ini("base", moto_auth.creds),
             "config": "[profile target]\nrole_arn = %s\nsource_profile = base\n\n"
                       "[profile third]\nrole_arn = %s\nsource_profile = target\n"
                       "[profile base]\nrole_arn = %s\nsource_profile = third\n"
                       % (ROLE, third, ROLE)}
    r = ok(creds_probe(proxy, "whoami", files=files, AWS_PROFILE="third"))
    assert r["identity"]["account"] == THIRD
    first, second = sent(proxy, "AssumeRole")
    assert first["params"]["RoleArn"] == ROLE
    assert first["access_key_id"] == moto_auth.access_key_id
    assert second["params"]["RoleArn"] == third
    assert second["access_key_id"] not in (moto_auth.access_key_id, r["credentials"]["access_key_id"])


def test_missing_profile_is_an_error(moto, fault_proxy, creds_probe, tmp_path):
    proxy = fault_proxy(moto)
    files = {"credentials": keys_ini("default", ("AKIAEXAMPLEEXAMPLE00", "s" * 40))}
    out, err = creds_probe(proxy, "whoami", files=files, AWS_PROFILE="nope")
    assert not out["ok"] and out["errno"] == errno.EINVAL
    assert "The profile nope (AWS_PROFILE) is in neither %s nor %s" % (
        tmp_path / "aws-credentials", "/dev/null") in err, err
    assert proxy.requests() == []


def test_no_profile_and_no_files_means_no_credentials(moto, creds_probe):
    out, err = creds_probe(moto, "whoami")
    assert not out["ok"] and out["errno"] == errno.ENOKEY and err == ""
    # A default profile without any credentials (a region only) lets the chain go on too.
    out, err = creds_probe(moto, "whoami", files={"config": "[default]\nregion = eu-west-1\n"})
    assert not out["ok"] and out["errno"] == errno.ENOKEY and err == ""


def test_malformed_line_names_file_and_line(moto, creds_probe, tmp_path):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
    text = "[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\nthis line is %s\n" \
           "aws_secret_access_key = %s\n" % (secret, secret)
    out, err = creds_probe(moto, "whoami", files={"credentials": text})
    assert not out["ok"] and out["errno"] == errno.EINVAL
    assert "%s:3: neither [section] nor key = value" % (tmp_path / "aws-credentials") in err, err
    assert secret not in err and secret not in json.dumps(out)


def test_malformed_key_names_file_line_and_key_not_value(moto, creds_probe, tmp_path):
    secret = "has spaces in the secret"
    text = "[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\n\n" \
           "aws_secret_access_key = %s\n" % secret
    out, err = creds_probe(moto, "whoami", files={"credentials": text})
    assert not out["ok"] and out["errno"] == errno.EINVAL
    assert "%s:4: aws_secret_access_key: malformed" % (tmp_path / "aws-credentials") in err, err
    assert secret not in err
    half = "[default]\n\n; only half\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\n"
    out, err = creds_probe(moto, "whoami", files={"credentials": half})
    assert "%s:4: aws_access_key_id: set without aws_secret_access_key" % (
        tmp_path / "aws-credentials") in err, err


def test_source_profile_cycle_is_refused(moto, fault_proxy, creds_probe, tmp_path):
    proxy = fault_proxy(moto)
    config = ("[profile a]\nrole_arn = %s\nsource_profile = b\n"
              "[profile b]\nrole_arn = %s\nsource_profile = a\n" % (ROLE, ROLE))
    out, err = creds_probe(proxy, "whoami", files={"config": config}, AWS_PROFILE="a")
    assert not out["ok"] and out["errno"] == errno.ELOOP
    assert "%s:6: source_profile: a cycle: a -> b -> a" % (tmp_path / "aws-config") in err, err
    # A profile that is its own source without keys of its own is a cycle as well.
    config = "[profile self]\nrole_arn = %s\nsource_profile = self\n" % ROLE
    out, err = creds_probe(proxy, "whoami", files={"config": config}, AWS_PROFILE="self")
    assert out["errno"] == errno.ELOOP and "a cycle: self -> self" in err, err
    assert proxy.requests() == []


def test_whoami_of_the_agent_names_the_profile(agent_bin, agent_env, imds, tmp_path):
    # ec2-imaged's own chain (core/context.c) has the shared files between the environment and
    # the instance role: the IMDS server's role is not asked for.
    f = tmp_path / "credentials"
    f.write_text(keys_ini("dev", ("AKIAEXAMPLEEXAMPLE00", "s" * 40)))
    env = agent_env(imds=imds, AWS_SHARED_CREDENTIALS_FILE=str(f), AWS_PROFILE="dev")
    p = subprocess.run([agent_bin, "whoami", "--json"], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["credential_source"] == "profile:dev" and out["role"] is None
    assert "s" * 40 not in p.stdout + p.stderr
