# SPDX-License-Identifier: Apache-2.0
"""Helpers that prepare a moto server for tests, using Debian's python3-botocore.

enable_moto_auth() turns on moto's request authentication, after which moto checks every
SigV4 signature against the IAM keys it knows, as AWS does: a wrong secret is an AuthFailure.
This cannot be undone on a running server (moto's reset keeps the auth switch but drops the
IAM user), so use it on a server of its own.

Moto quirks worth knowing (moto 5.2):
  * a key of an IAM user (AKIA...) sent with X-Amz-Security-Token is refused (InvalidToken ->
    AuthFailure), so role credentials served by IMDS must be real STS credentials:
    role_credentials() assumes a role and returns (ASIA..., secret, token) for imds_server.py's
    --access-key-id/--secret-access-key/--session-token;
  * an assumed role's session token is compared exactly, so the IMDS server keeps a given
    session token across its rotations.
"""

import json
import urllib.request

import botocore.session
from botocore.config import Config

# Keys for moto while auth is off: moto accepts anything then, but botocore needs some.
DUMMY_CREDS = ("testing", "testing")
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["ec2:*", "iam:*", "kms:*", "ssm:*", "sts:*", "sns:*", "events:*"],
    "Resource": "*"}]})


def client(endpoint, service, creds=None, region="us-east-1", retries=0):
    """A botocore client for SERVICE at ENDPOINT; creds is (akid, secret[, token])."""
    creds = creds or DUMMY_CREDS
    session = botocore.session.Session()
    return session.create_client(
        service, region_name=region, endpoint_url=endpoint,
        aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
        aws_session_token=creds[2] if len(creds) > 2 else None,
        config=Config(retries={"total_max_attempts": retries + 1}))


def enable_moto_auth(endpoint, user_name="ec2-imaged-test"):
    """Create an admin-ish IAM user with an access key, then switch moto's auth on.

    Returns (access_key_id, secret_access_key).  Callers must not log the secret."""
    iam = client(endpoint, "iam")
    iam.create_user(UserName=user_name)
    arn = iam.create_policy(PolicyName=user_name + "-allow",
                            PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    iam.attach_user_policy(UserName=user_name, PolicyArn=arn)
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    # The body is the number of unauthenticated requests still allowed: none from now on.
    req = urllib.request.Request(endpoint.rstrip("/") + "/moto-api/reset-auth", data=b"0",
                                 headers={"Content-Type": "text/plain"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise RuntimeError("moto reset-auth answered %d" % r.status)
    return key["AccessKeyId"], key["SecretAccessKey"]


def role_credentials(endpoint, creds, role_name="ec2-imaged-instance-role"):
    """Create a role allowed ec2/iam/kms/ssm/sts and assume it with CREDS.

    Returns (access_key_id, secret_access_key, session_token): credentials moto accepts with
    their token, for an IMDS server to serve as the instance role's."""
    iam = client(endpoint, "iam", creds)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName=role_name, PolicyName="allow", PolicyDocument=ALLOW_ALL)
    c = client(endpoint, "sts", creds).assume_role(
        RoleArn=role["Arn"], RoleSessionName="i-imaged", DurationSeconds=3600)["Credentials"]
    return c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]


def create_moto_instance(endpoint, creds=None, region="us-east-1", image_id=None,
                         instance_type="t3.micro"):
    """Run one instance in moto and return its id.

    Without image_id, the first AMI moto ships for the region is used (moto loads a set of
    real AMI ids at start; ami-12c6146b is among them in us-east-1)."""
    ec2 = client(endpoint, "ec2", creds, region)
    if image_id is None:
        images = ec2.describe_images(Owners=["amazon"])["Images"]
        image_id = images[0]["ImageId"] if images else "ami-12c6146b"
    r = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                          InstanceType=instance_type)
    return r["Instances"][0]["InstanceId"]
