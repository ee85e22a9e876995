"""Errors of the CRI server, each carrying the gRPC status it maps to."""

from pyrunc.errors import PyruncError


class CriError(PyruncError):
    """Root of the CRI server's errors; ``code`` names a grpc.StatusCode."""

    code = "UNKNOWN"


class NotFound(CriError):
    """The pod, container or image named in the request does not exist."""

    code = "NOT_FOUND"


class AlreadyExists(CriError):
    """A pod or container of that name already exists."""

    code = "ALREADY_EXISTS"


class InvalidArgument(CriError):
    """The request is malformed or asks for something contradictory."""

    code = "INVALID_ARGUMENT"


class FailedPrecondition(CriError):
    """The object is not in a state that allows the operation."""

    code = "FAILED_PRECONDITION"


class Unimplemented(CriError):
    """A part of the CRI that pyrunc-cri does not implement (yet)."""

    code = "UNIMPLEMENTED"


class DeadlineExceeded(CriError):
    """A command run on the caller's behalf did not finish in time."""

    code = "DEADLINE_EXCEEDED"


class RuntimeFailed(CriError):
    """The runtime binary, conmon or a CNI plugin reported a failure."""

    code = "UNKNOWN"


class PullFailed(CriError):
    """A registry pull failed for another reason than a missing image."""

    code = "UNKNOWN"
