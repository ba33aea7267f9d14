"""One exception tree for the mediator; the default message is the class docstring."""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg.errors


class MediatorError(Exception):
    """mediator error"""

    decision: ClassVar[str] = "error"  # what the metrics and request log call it

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "error").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class TokenError(MediatorError):
    """invalid token"""

    decision = "token_invalid"


class NotFound(MediatorError):
    """not found"""

    decision = "denied"

    # Every trust failure says exactly this: unknown tool, bad session, paused
    # customer, missing scope, cross-tenant reference. Never subclass it with a
    # more precise message.


class InvalidArguments(MediatorError):
    """invalid arguments"""

    decision = "invalid_arguments"

    def __init__(self, errors: list[dict[str, Any]] | None = None) -> None:
        self.errors = errors or []
        parts = []
        for err in self.errors:
            loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        super().__init__("invalid arguments: " + "; ".join(parts) if parts else None)


class RateLimited(MediatorError):
    """rate limited, retry later"""

    decision = "rate_limited"


class NoCredit(MediatorError):
    """not enough credits"""

    decision = "no_credit"


class ApprovalRequired(MediatorError):
    """approval required"""

    decision = "approval_required"

    def __init__(self, approval_id: str, approver: str = "operator") -> None:
        self.approval_id = approval_id
        self.approver = approver
        who = (
            "the session's operator must answer it in the host"
            if approver == "host"
            else "another operator of the org must approve it (tenantgate approvals approve)"
        )
        super().__init__(f"approval required: approval {approval_id} is pending; {who}, then "
                         "call again with the same arguments")


class ApprovalDenied(MediatorError):
    """approval denied"""

    decision = "approval_denied"


class ApprovalUsed(MediatorError):
    """approval already used"""

    decision = "denied"


class RequestKeyReused(MediatorError):
    """request id already used for another tool or other arguments: use a fresh one"""

    decision = "denied"


class UpstreamNotConfigured(MediatorError):
    """upstream not configured for this customer"""

    decision = "upstream_error"

    def __init__(self) -> None:
        super().__init__(
            "upstream not configured for this customer: an admin stores its key "
            "(tenantgate secrets set) and the connector's --base-url"
        )


class UpstreamFailed(MediatorError):
    """upstream unavailable, retry later"""

    decision = "upstream_error"


class Unavailable(MediatorError):
    """service unavailable, retry later"""

    decision = "unavailable"


# SQLSTATEs raised by sql/80_mediator on purpose.
RATE_LIMITED_STATE = "TG429"
NO_CREDIT_STATE = "TG402"
APPROVAL_USED_STATE = "TG409"


def from_psycopg(exc: psycopg.Error) -> MediatorError:
    """Map a database error to what the host may see; never its text."""
    state = exc.sqlstate or ""
    if state == RATE_LIMITED_STATE:
        return RateLimited()
    if state == NO_CREDIT_STATE:
        return NoCredit()
    if state == APPROVAL_USED_STATE:
        return ApprovalUsed()
    if state in ("42501", "P0002") or isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return NotFound()
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable()
    return MediatorError("internal error")


class HttpToolFailed(UpstreamFailed):
    """the upstream call failed"""

    # Failures of an HTTP-backed tool (mediator/http_call.py). Each carries what the outcome
    # audit row records; none carries the key, the upstream body or a traceback context.
    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        attempts: int = 0,
        latency_ms: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.latency_ms = latency_ms


class UpstreamRejected(HttpToolFailed):
    """the upstream refused the request (HTTP 4xx)"""


class UpstreamUnavailable(HttpToolFailed):
    """the upstream failed or could not be reached (HTTP 5xx), retry later"""


class UpstreamTimeout(HttpToolFailed):
    """the upstream did not answer in time, retry later"""


class UpstreamTooLarge(HttpToolFailed):
    """the upstream answer is larger than the tool's size limit"""


class UpstreamInvalid(HttpToolFailed):
    """the upstream answered something that is not the JSON the tool expects"""


class CredentialUnreadable(HttpToolFailed):
    """the customer's stored API key cannot be decrypted: run `tenantgate secrets check`"""


class EgressRefused(HttpToolFailed):
    """the connector's upstream is not allowed by the mediator's egress policy"""
