"""pyrunc spec [--bundle DIR] [--rootless]: write a default config.json."""

import errno
import os

from pyrunc.errors import PyruncError
from pyrunc.log import go_strerror
from pyrunc.spec.default import default_spec
from pyrunc.state.gojson import dumps

CONFIG = "config.json"


def run(g, bundle="", rootless=False):
    """Write <bundle>/config.json; refuse to overwrite one, like runc."""
    if bundle and not os.path.isdir(bundle):
        # runc chdirs into the bundle and reports that step.
        err = errno.ENOTDIR if os.path.lexists(bundle) else errno.ENOENT
        raise PyruncError(f"chdir {bundle}: {go_strerror(err)}")
    path = os.path.join(bundle, CONFIG)
    if os.path.lexists(path):
        raise PyruncError(f"File {CONFIG} exists. Remove it first")
    data = dumps(default_spec(rootless=rootless), indent="\t")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    with open(os.open(path, flags, 0o666), "wb") as out:
        out.write(data.encode())
