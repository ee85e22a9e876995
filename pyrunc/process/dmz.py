"""The sealed trampoline the container's process execs its program from.

Until execve, the container's process is a clone of this Python process:
/proc/self/exe in it names the host's interpreter. If the program it
execs is a script whose interpreter is /proc/self/exe, the kernel would
start that host binary inside the container, whose code could then keep
a handle on it and overwrite it once nothing runs it (CVE-2019-5736).

So the process does not exec the program itself: it execs pyrunc-dmz,
a freestanding program of a few hundred bytes, from a sealed memfd, and
pyrunc-dmz execs the program. While the kernel starts the program,
/proc/self/exe is that memfd, which cannot be written, grown or shrunk,
and whose seals cannot be removed. runc re-executes itself from a
sealed copy for the same reason; copying 600 bytes is cheaper than
copying an interpreter.
"""

import fcntl
import os

from pyrunc.errors import PyruncError

PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_native",
                    "pyrunc-dmz")

SEALS = (fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
         | fcntl.F_SEAL_WRITE)


def sealed_fd():
    """A close-on-exec, sealed memfd holding pyrunc-dmz."""
    try:
        with open(PATH, "rb") as f:
            data = f.read()
    except OSError as err:
        raise PyruncError(f"read {PATH}: {err.strerror} (rebuild pyrunc: "
                          "scripts/setup.sh)") from None
    fd = os.memfd_create("pyrunc-dmz", os.MFD_CLOEXEC |
                         os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, data)
        os.fchmod(fd, 0o555)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd
