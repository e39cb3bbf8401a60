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

Both are applied to moto's own EC2 backend and response classes before the server starts, so that
every client (the agent, botocore in the tests, the VM test's EC2 front) sees them, with or
without moto's authentication.  Usage is moto.server's: moto_server.py -H 127.0.0.1 -p PORT.
Run with the python3 that has moto (tests/peers/peers.py finds it).
"""

import inspect
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
# tests/peers holds modules of ours (peers.py, ...): keep them from shadowing moto's imports.
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import moto.server  # noqa: E402
from moto.core.responses import ActionResult  # noqa: E402
from moto.ec2.exceptions import EC2ClientError  # noqa: E402
from moto.ec2.models.amis import AmiBackend  # noqa: E402
from moto.ec2.responses.amis import AmisResponse  # noqa: E402

# moto's server answers requests in threads: the check and the creation happen under one lock.
LOCK = threading.RLock()
COPY_TOKENS = {}  # (account, region, ClientToken) -> image id


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


def install():
    for name in ("create_image", "copy_image", "register_image"):
        setattr(AmiBackend, name, unique_name(getattr(AmiBackend, name)))
    AmisResponse.copy_image = idempotent_copy(AmisResponse.copy_image)


if __name__ == "__main__":
    install()
    moto.server.main(sys.argv[1:])
