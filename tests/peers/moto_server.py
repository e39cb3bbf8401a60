#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""moto's server, made to keep two rules of EC2 that the agent relies on and moto 5 does not:

- An AMI name is unique per owner and region: CreateImage, CopyImage and RegisterImage with a
  name that an image of the same account in that region already has are refused with
  InvalidAMIName.Duplicate, "AMI name NAME is already in use by AMI ami-...", HTTP 400, as EC2
  answers them.  moto makes a second image.
- CopyImage with a ClientToken is idempotent: the same token again (in the same account and
  region) answers the image id of the first copy instead of making another.  moto ignores the
  token.
- An image shared with an account is visible to it: DescribeImages by id in account B lists an
  image of another account in the same region whose launch permissions name B (or all), and
  CopyImage in B copies it, as EC2 does.  moto keeps each account's images apart: B sees none.
- A KMS key of another account is usable by an account it granted DescribeKey to: DescribeKey by
  the key's ARN in account B answers with A's key when one of its grants names B (its root or
  a principal of B) with DescribeKey, else AccessDeniedException, as KMS does.  moto looks the
  ARN's key id up in B's own keys and answers NotFoundException.
- An image is encrypted when its source is: CreateImage of an instance whose root volume is
  encrypted with a KMS key, and CopyImage with Encrypted and KmsKeyId (or of an encrypted source
  without a key), give an image whose DescribeImages block device says Encrypted and the key's
  ARN, as EC2 does.  moto's images never say they are encrypted.
- Product codes: ModifyImageAttribute with ProductCode.N adds AWS Marketplace product codes to an
  image (EC2 once did so for DevPay codes; AWS Marketplace sets them on its own images, which no
  test can own), DescribeImages lists an image's codes, and DescribeInstances lists those of the
  image an instance was launched from, as EC2 does for an instance of a Marketplace image.  moto
  keeps product codes but never lists them, and has no way to set them.
- KMS CreateGrant with DryRun answers DryRunOperationException (HTTP 412) for a key it has,
  making no grant, as KMS does.  moto ignores DryRun and makes the grant.
- Deregistration protection: EnableImageDeregistrationProtection and
  DisableImageDeregistrationProtection (moto lacks both) set and clear it, DescribeImages shows
  it (DeregistrationProtection "enabled" or "disabled"), and DeregisterImage of a protected
  image is refused (InvalidParameterValue), as EC2 does.
- RunInstances with DryRun of an image EC2 does not have is refused (InvalidAMIID.NotFound)
  before DryRunOperation, as EC2 does.  moto answers DryRunOperation without looking.

All are applied to moto's own EC2 backend and response classes before the server starts, so that
every client (the agent, botocore in the tests, the VM test's EC2 front) sees them, with or
without moto's authentication.  Usage is moto.server's: moto_server.py -H 127.0.0.1 -p PORT.
Run with the python3 that has moto (tests/peers/peers.py finds it).
"""

import inspect
import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
# tests/peers holds modules of ours (peers.py, ...): keep them from shadowing moto's imports.
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import moto.server  # noqa: E402
from moto.core.responses import ActionResult  # noqa: E402
from moto.ec2.exceptions import EC2ClientError  # noqa: E402
from moto.ec2.models.amis import Ami, AmiBackend  # noqa: E402
from moto.ec2.models.instances import Instance  # noqa: E402
from moto.ec2.responses.amis import AmisResponse  # noqa: E402
from moto.ec2.responses.instances import InstanceResponse  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402
from moto.kms.responses import KmsResponse  # noqa: E402

# moto's server answers requests in threads: the check and the creation happen under one lock.
LOCK = threading.RLock()
COPY_TOKENS = {}  # (account, region, ClientToken) -> image id
ENCRYPTED = {}  # image id -> the ARN of the KMS key its snapshot is encrypted with
PROTECTED = set()  # image ids with deregistration protection


class InvalidAMINameDuplicate(EC2ClientError):
    def __init__(self, name, image_id):
        super().__init__("InvalidAMIName.Duplicate",
                         "AMI name %s is already in use by AMI %s" % (name, image_id))


def image_named(backend, name):
    """The id of this account's image called NAME in the backend's region, or None."""
    for ami in list(backend.amis.values()):
        if ami.name == name and ami.owner_id == backend.account_id:
            return ami.id
    return None


def unique_name(method):
    sig = inspect.signature(method)

    def wrapper(self, *args, **kwargs):
        name = sig.bind(self, *args, **kwargs).arguments.get("name")
        with LOCK:
            taken = image_named(self, name) if name else None
            if taken:
                raise InvalidAMINameDuplicate(name, taken)
            return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


def idempotent_copy(method):
    def copy_image(self):
        token = self._get_param("ClientToken")
        if not token or self._get_param("DryRun") in (True, "true"):
            return method(self)
        backend = self.ec2_backend
        key = (backend.account_id, backend.region_name, token)
        with LOCK:
            known = COPY_TOKENS.get(key)
            if known and known in backend.amis:
                return ActionResult({"ImageId": known})
            result = method(self)
            COPY_TOKENS[key] = result.result["ImageId"]
            return result

    return copy_image


def key_arn(backend, key_id):
    """The ARN of a key of the backend's account and region named by id, ARN or alias."""
    from moto.kms.models import kms_backends
    kms = kms_backends[backend.account_id][backend.region_name]
    try:
        return kms.describe_key(key_id).arn
    except Exception:  # an unknown key: EC2 would refuse; keep what was sent
        return key_id


def encrypted_create(method):
    def create_image(self, instance_id, *args, **kwargs):
        ami = method(self, instance_id, *args, **kwargs)
        instance = self.get_instance(instance_id)
        root = instance.block_device_mapping.get(instance.root_device_name)
        volume = self.get_volume(root.volume_id) if root else None
        if volume is not None and volume.encrypted and volume.kms_key_id:
            ENCRYPTED[ami.id] = key_arn(self, volume.kms_key_id)
        return ami

    create_image.__name__ = method.__name__
    return create_image


def encrypted_copy(method):
    def copy_image(self):
        result = method(self)
        image_id = result.result.get("ImageId") if self._get_param("DryRun") not in (
            True, "true") else None
        if image_id and self._get_param("Encrypted") in (True, "true"):
            key = self._get_param("KmsKeyId")
            src = ENCRYPTED.get(self._get_param("SourceImageId"))
            ENCRYPTED.setdefault(image_id, key_arn(self.ec2_backend, key) if key else src)
        elif image_id and self._get_param("SourceImageId") in ENCRYPTED:
            ENCRYPTED.setdefault(image_id, ENCRYPTED[self._get_param("SourceImageId")])
        return result

    return copy_image


def encrypted_mappings(prop):
    def block_device_mappings(self):
        mappings = prop.fget(self)
        if self.id in ENCRYPTED:
            for m in mappings:
                m["Ebs"]["Encrypted"] = True
                m["Ebs"]["KmsKeyId"] = ENCRYPTED[self.id]
        return mappings

    return property(block_device_mappings)


def product_codes(ami):
    """An image's product codes as DescribeImages lists them (moto's own model says that every
    code it keeps is of type marketplace)."""
    if ami is None:
        return []
    return [{"ProductCodeId": c, "ProductCodeType": "marketplace"}
            for c in sorted(ami.product_codes)]


def add_product_codes(method):
    def modify_image_attribute(self):
        codes = [v for k, v in sorted(self.querystring.items())
                 if k.startswith("ProductCode.") for v in v]
        if codes and self._get_param("DryRun") not in (True, "true"):
            with LOCK:
                ami = self.ec2_backend.describe_images(ami_ids=[self._get_param("ImageId")])[0]
                ami.product_codes = set(ami.product_codes) | set(codes)
        return method(self)

    return modify_image_attribute


class DryRunOperationException(JsonRESTError):
    code = 412

    def __init__(self):
        super().__init__("DryRunOperationException",
                         "The request would have succeeded, but the DryRun option is set.")


def grant_dry_run(method):
    def create_grant(self):
        if self._get_param("DryRun") in (True, "true"):
            self._validate_key_id(self._get_param("KeyId"))  # NotFoundException as KMS
            raise DryRunOperationException()
        return method(self)

    return create_grant


def shared_image(backend, image_id):
    """An image of another account in the backend's region that is shared with its account."""
    from moto.ec2.models import ec2_backends
    me = backend.account_id
    for account, regions in list(dict.items(ec2_backends)):
        other = dict.get(regions, backend.region_name) if account != me else None
        ami = other.amis.get(image_id) if other is not None else None
        if ami is not None and (ami.is_public or {"UserId": me} in ami.launch_permissions):
            return ami
    return None


def shared_images(method):
    def describe_images(self, ami_ids=None, filters=None, exec_users=None, owners=None):
        if not ami_ids:
            return method(self, ami_ids, filters, exec_users, owners)
        own = [i for i in ami_ids if i in self.amis or i in self.deleted_amis]
        shared = [a for a in (shared_image(self, i) for i in ami_ids if i not in own) if a]
        if shared and not own:
            return shared
        return method(self, own or ami_ids, filters, exec_users, owners) + shared

    describe_images.__name__ = method.__name__
    return describe_images


def granted_key(method):
    def describe_key(self):
        from moto.kms.exceptions import AccessDeniedException
        from moto.kms.models import kms_backends
        key_id = self._get_param("KeyId") or ""
        parts = key_id.split(":")
        if not (key_id.startswith("arn:") and len(parts) == 6 and ":key/" in key_id):
            return method(self)
        me = self.current_account
        if parts[4] == me:
            return method(self)
        owner = dict.get(kms_backends, parts[4])
        backend = dict.get(owner, parts[3]) if owner is not None else None
        key = backend.keys.get(key_id.split(":key/")[1]) if backend is not None else None
        if key is not None and any(
                "DescribeKey" in g.operations
                and g.grantee_principal.split(":")[4:5] == [me]
                for g in key.grants.values()):
            return json.dumps(key.to_dict())
        raise AccessDeniedException(
            "User: arn:aws:iam::%s:root is not authorized to perform: kms:DescribeKey on "
            "resource: %s" % (me, key_id))

    describe_key.__name__ = "describe_key"
    return describe_key
def set_protection(enable):
    def handler(self):
        ami_id = self._get_param("ImageId")
        self.ec2_backend.describe_images(ami_ids=[ami_id])  # InvalidAMIID.NotFound
        if self._get_param("DryRun") in (True, "true"):
            self.error_on_dryrun()
        with LOCK:
            (PROTECTED.add if enable else PROTECTED.discard)(ami_id)
        return ActionResult({"Return": "enabled" if enable else "disabled"})

    handler.__name__ = ("enable" if enable else "disable") + "_image_deregistration_protection"
    return handler


def protected_deregister(method):
    def deregister_image(self, ami_id, *args, **kwargs):
        if ami_id in PROTECTED:
            raise EC2ClientError("InvalidParameterValue",
                                 "Image %s has deregistration protection" % ami_id)
        return method(self, ami_id, *args, **kwargs)

    deregister_image.__name__ = method.__name__
    return deregister_image


def dry_run_image_checked(method):
    def run_instances(self):
        if self._get_param("DryRun") in (True, "true"):
            self.ec2_backend.describe_images(ami_ids=[self._get_param("ImageId")])
        return method(self)

    run_instances.__name__ = "run_instances"
    return run_instances


def install():
    for name in ("create_image", "copy_image", "register_image"):
        setattr(AmiBackend, name, unique_name(getattr(AmiBackend, name)))
    AmisResponse.copy_image = idempotent_copy(encrypted_copy(AmisResponse.copy_image))
    AmiBackend.create_image = encrypted_create(AmiBackend.create_image)
    Ami.block_device_mappings = encrypted_mappings(Ami.block_device_mappings)
    Ami.ProductCodes = property(product_codes)
    Instance.ProductCodes = property(lambda i: product_codes(i.ec2_backend.amis.get(i.image_id)))
    AmisResponse.modify_image_attribute = add_product_codes(AmisResponse.modify_image_attribute)
    KmsResponse.create_grant = grant_dry_run(KmsResponse.create_grant)
    AmiBackend.describe_images = shared_images(AmiBackend.describe_images)
    KmsResponse.describe_key = granted_key(KmsResponse.describe_key)
    AmisResponse.enable_image_deregistration_protection = set_protection(True)
    AmisResponse.disable_image_deregistration_protection = set_protection(False)
    AmiBackend.deregister_image = protected_deregister(AmiBackend.deregister_image)
    InstanceResponse.run_instances = dry_run_image_checked(InstanceResponse.run_instances)
    Ami.deregistration_protection = property(
        lambda self: "enabled" if self.id in PROTECTED else "disabled")


if __name__ == "__main__":
    install()
    moto.server.main(sys.argv[1:])
