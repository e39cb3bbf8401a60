#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# EC2 user-data for an instance that images itself once, on its first boot, with ec2-imaged's own
# user-data option: set `[daemon] user_data = yes` in /etc/ec2-imaged/ec2-imaged.conf (baked into
# the source image), and put this line anywhere in the user-data. It is a comment to the shell and
# to cloud-init, so it combines with any script or #cloud-config.
#
#ec2-imaged: run=first-boot mode=no-reboot
#
# Keys: run=first-boot (the only value), mode=no-reboot|reboot (default: [run] mode). The daemon
# acts on it once per instance id (recorded in /var/lib/ec2-imaged/first-boot); a reboot-mode run
# resumes after its reboot without starting again.
echo "first boot of $(hostname)"
