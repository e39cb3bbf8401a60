# SPDX-License-Identifier: Apache-2.0
"""The end of a peer server's main() (imds_server.py, fault_proxy.py): tell the test where it
listens, then serve until SIGTERM."""

import os
import signal
import sys


def serve_until_stopped(server, port_file, banner):
    """Write SERVER's bound port to PORT_FILE when one is given (write then rename, so that a
    reader never sees part of the number), say BANNER on stderr and serve until SIGTERM."""
    if port_file:
        tmp = "%s.tmp.%d" % (port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.replace(tmp, port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write(banner + "\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
