"""The errors the Chiron Python client raises.

Every error carries a message that says what went wrong and what to do. Errors that come from a
gRPC call keep its status code in `code` (a `grpc.StatusCode`), so a caller can branch on it as
the C++ client branches on its Status codes.
"""


class ChironError(Exception):
    """Base class: anything the client refuses or the server refused."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class AttestationError(ChironError):
    """The server's evidence did not verify under the owner's policy, or did not bind the key the
    TLS handshake proved. Nothing was sent to that server."""


class AuditChainError(ChironError):
    """The audit chain the server returned is broken: a record was altered, removed, inserted,
    reordered, or the log was truncated or rolled back since the head seen before."""


class JobFailedError(ChironError):
    """A training job ended failed or cancelled; `view` is its last OwnerJobView."""

    def __init__(self, message, view):
        super().__init__(message)
        self.view = view


class RateLimitedError(ChironError):
    """Predict was refused by the model's per-minute rate limit and the caller chose not to wait
    (or the wait would exceed its bound); `retry_after` is the server's wait in seconds."""

    def __init__(self, message, retry_after, code=None):
        super().__init__(message, code)
        self.retry_after = retry_after


def from_rpc_error(error, call):
    """A ChironError for a grpc.RpcError raised by `call`, with the server's message."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    message = "%s: %s" % (call, details)
    try:
        import grpc

        if code == grpc.StatusCode.UNAVAILABLE:
            message += " (is chirond running at that address? check the server address)"
    except ImportError:  # pragma: no cover - grpc is a hard dependency
        pass
    return ChironError(message, code)
