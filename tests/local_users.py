"""What another user of the same machine can do to this deployment's local sockets."""

from __future__ import annotations

import os
import pwd
import socket


def send_as_another_user(datagram: bytes, address: str) -> None:
    """Sends `datagram` to `address` from a child process that runs as the user `nobody`."""
    nobody = pwd.getpwnam("nobody")
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.sendto(datagram, address)
            code = 0
        finally:
            os._exit(code)
    _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
