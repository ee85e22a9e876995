"""Exceptions raised by pyrunc, each mapped to the exit code of the CLI."""

import errno as _errno
import os


class PyruncError(Exception):
    """Root of every error pyrunc reports; the CLI exits with exit_code."""

    exit_code = 1


class ContainerNotFound(PyruncError):
    """No container of that id exists under the state root."""

    def __init__(self, cid=None):
        super().__init__("container does not exist")
        self.id = cid


class ContainerExists(PyruncError):
    """A container with that id already exists."""

    def __init__(self, cid):
        super().__init__("container with given ID already exists")
        self.id = cid


class InvalidId(PyruncError):
    """The container id has characters runc refuses."""

    def __init__(self, cid):
        super().__init__("invalid container ID format")
        self.id = cid


class ContainerNotRunning(PyruncError):
    """The operation needs a live container."""

    def __init__(self, msg="container not running"):
        super().__init__(msg)


class InvalidState(PyruncError):
    """The operation is not allowed in the container's current status."""


class SpecError(PyruncError):
    """config.json is malformed; the message names the JSON path."""

    def __init__(self, path, problem):
        where = path or "config.json"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.problem = problem


class ConfigError(PyruncError):
    """The configuration is valid JSON but cannot be honoured here."""


class NotSupported(PyruncError):
    """A feature pyrunc deliberately does not implement (yet)."""


class CgroupError(PyruncError):
    """Creating, configuring or removing a cgroup failed."""


class HookError(PyruncError):
    """A lifecycle hook failed or timed out."""


class ChildError(PyruncError):
    """A step of the launch plan failed inside the child process.

    Keeps the step index, the syscall and errno reported by the compiled
    executor so that tests can match on them.
    """

    def __init__(self, op, err, text, step=-1):
        self.op = op
        self.errno = err
        self.step = step
        self.text = text
        detail = text
        if err:
            # Go's lowercase errno text, as runc prints it: engines match
            # on it ("no such file or directory" is podman's exit 127).
            reason = os.strerror(err)
            detail = f"{text}: {reason[:1].lower()}{reason[1:]}"
        super().__init__(detail)


class ExecFailed(PyruncError):
    """exec into a running container failed before the process started."""

    exit_code = 255


def errno_name(err):
    """Return the symbolic name of an errno value, for log lines."""
    return _errno.errorcode.get(err, str(err))
