"""The failures of an upstream call, one class each; messages never hold a key or a body."""

from __future__ import annotations

__all__ = [
    "EgressDeniedError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "UpstreamTooLargeError",
    "UpstreamUnreachableError",
]


class UpstreamError(Exception):
    """the upstream call failed: try again later or check the connector's configuration."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)

    def with_message(self, message: str) -> UpstreamError:
        """The same failure with another message (a scrubbed one), no traceback or context."""
        return type(self)(message)


class EgressDeniedError(UpstreamError):
    """the upstream address is not on the egress allowlist (TENANTGATE_EGRESS_ALLOW)."""


class UpstreamTimeoutError(UpstreamError):
    """the upstream did not answer within the time limit: try again later."""


class UpstreamTooLargeError(UpstreamError):
    """the upstream answer is larger than the size limit."""


class UpstreamUnreachableError(UpstreamError):
    """the upstream could not be reached: try again later."""


class UpstreamProtocolError(UpstreamError):
    """the upstream answered something other than a JSON object (or a redirect, refused)."""


class UpstreamStatusError(UpstreamError):
    """the upstream answered with an error status."""

    def __init__(self, message: str | None = None, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    def with_message(self, message: str) -> UpstreamError:
        return UpstreamStatusError(message, self.status)
