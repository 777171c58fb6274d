"""The one error tree of llmrelay.

Provider codecs map upstream statuses and bodies into this tree first; after that nothing in the
pipeline looks at raw HTTP again. :func:`llmrelay.classify.classify` reads the tree to decide retry,
failover and breaker accounting; the server turns any of these into the caller's wire shape.

::

    RelayError                      status, code, retry_after, provider, should_retry
    ├── ConfigError                 invalid configuration (raised at start-up, never per request)
    ├── InvalidRequest              400  the caller's request is wrong
    │   ├── ContextLengthExceeded   400  prompt + max_tokens do not fit the model
    │   └── ContentFiltered         400  refused by a safety filter
    ├── AuthenticationError         401  the caller's credentials (the gateway's own key check)
    ├── PermissionDenied            403  the caller may not do this
    ├── NotFound                    404  (unknown model alias, unknown upstream model)
    ├── Conflict                    409
    ├── PayloadTooLarge             413
    ├── UnprocessableEntity         422
    ├── RateLimited                 429  (upstream or our own limits; retry_after when known)
    │   └── TargetLimited           429  a target's own rpm/tpm refused locally (no retry, failover)
    ├── UpstreamError               5xx from the upstream
    │   ├── Overloaded              529 / 503-overloaded
    │   └── UpstreamAuthError       502  the upstream rejected the target's own key (its 401 / 403)
    ├── ConnectionFailed            502  connect error, reset, or a read error before the commit point
    ├── Timeout                     504  connect, first token, idle gap
    │   ├── DeadlineExceeded        504  the request's total time budget ran out
    │   └── StreamTimeout           504  a stream went silent after its commit point (never retried)
    ├── CircuitOpen                 503  the target's breaker is open
    ├── StreamInterrupted           502  a stream failed after its commit point (never retried)
    ├── InvalidOutput               502  the answer is not the JSON (or schema) the request asked for
    ├── OutputBlocked               502  a streamed answer the output moderation hook blocked
    └── AllTargetsFailed            the status of the last failure; names every target tried

Every error carries ``message`` (safe to show a caller: no secrets, no prompt text), ``status``,
``code`` (a stable machine string), ``retry_after`` (seconds or ``None``), ``provider`` and
``should_retry`` (an upstream's explicit hint such as OpenAI's ``x-should-retry``, else ``None``).
"""

from __future__ import annotations


class RelayError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        should_retry: bool | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        self.provider = provider
        self.should_retry = should_retry
        self.param = param

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status}, code={self.code!r})"


class ConfigError(RelayError):
    code = "config_error"


class InvalidRequest(RelayError):
    status = 400
    code = "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class ContentFiltered(InvalidRequest):
    code = "content_filter"


class AuthenticationError(RelayError):
    status = 401
    code = "invalid_api_key"


class PermissionDenied(RelayError):
    status = 403
    code = "permission_denied"


class NotFound(RelayError):
    status = 404
    code = "not_found"


class Conflict(RelayError):
    status = 409
    code = "conflict"


class PayloadTooLarge(RelayError):
    status = 413
    code = "payload_too_large"


class UnprocessableEntity(RelayError):
    status = 422
    code = "unprocessable_entity"


class RateLimited(RelayError):
    status = 429
    code = "rate_limit_exceeded"


class TargetLimited(RateLimited):
    """The gateway's own limit for a target (the upstream account's ``rpm``/``tpm``) refused an
    attempt before it was sent: retrying the same target cannot help sooner than ``retry_after``,
    another target may."""

    code = "target_rate_limited"


class UpstreamError(RelayError):
    status = 502
    code = "upstream_error"


class Overloaded(UpstreamError):
    status = 529
    code = "overloaded"


class UpstreamAuthError(UpstreamError):
    """An upstream answered 401 or 403 to the target's own credentials: the gateway is misconfigured.

    The caller is not at fault (their key, if any, was checked by the gateway), so a client sees a
    502, and the target is as good as down: the classifier fails over and counts a breaker failure.
    ``status`` stays 502 even when a generic call passes the upstream's ``status``; that one is kept
    as ``upstream_status``.
    """

    status = 502
    code = "upstream_auth_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        should_retry: bool | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(
            message, retry_after=retry_after, provider=provider, should_retry=should_retry, param=param
        )
        self.upstream_status = status


class ConnectionFailed(RelayError):
    status = 502
    code = "connection_error"


class Timeout(RelayError):
    status = 504
    code = "timeout"


class DeadlineExceeded(Timeout):
    code = "deadline_exceeded"


class StreamTimeout(Timeout):
    """The idle gap between chunks ran out after the commit point: a timeout, but never retried."""

    code = "stream_timeout"


class CircuitOpen(RelayError):
    status = 503
    code = "circuit_open"


class InvalidOutput(RelayError):
    """The upstream's answer is not valid JSON, or does not match the requested JSON schema, after
    the bounded re-asks of :mod:`llmrelay.policies.validate_output` (or at the end of a stream)."""

    status = 502
    code = "invalid_output"


class OutputBlocked(RelayError):
    """The output moderation hook blocked a streamed answer at its end
    (:mod:`llmrelay.policies.moderate_output`); a unary one ends with ``content_filter`` instead."""

    status = 502
    code = "output_blocked"


class StreamInterrupted(RelayError):
    status = 502
    code = "stream_interrupted"


class AllTargetsFailed(RelayError):
    """Every target (and fallback) failed; ``errors`` holds ``(target, error)`` in order tried."""

    def __init__(self, errors: list[tuple[str, RelayError]]) -> None:
        last = errors[-1][1]
        tried = ", ".join(f"{name} ({err.code})" for name, err in errors)
        super().__init__(
            f"{last.message} [tried: {tried}]",
            status=last.status,
            code=last.code,
            retry_after=last.retry_after,
            provider=last.provider,
        )
        self.errors = errors


_BY_STATUS: dict[int, type[RelayError]] = {
    400: InvalidRequest,
    401: UpstreamAuthError,
    403: UpstreamAuthError,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    429: RateLimited,
    529: Overloaded,
}


def error_for_status(status: int) -> type[RelayError]:
    """The canonical class for an upstream HTTP status (codecs refine it from the body).

    Upstream 401 and 403 are :class:`UpstreamAuthError`: what an upstream sees is the target's key,
    never the caller's.
    """
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status == 408:
        return Timeout
    if status >= 500:
        return UpstreamError
    return InvalidRequest
