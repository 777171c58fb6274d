"""One classifier for every error: retry, router, circuit breaker and metrics all read it.

No policy keeps its own ladder of ``isinstance`` checks; a new error class gets one row here.

==========================================  =====  ========  =======
error                                       retry  failover  breaker
==========================================  =====  ========  =======
the caller's 400/401/403/404/409/413/422    no     no        no
context length exceeded                     no     yes       no
upstream 401 / 403 on the target's own key  no     yes       yes
upstream 429                                yes    yes       no
local target-limit refusal (our rpm/tpm)    no     yes       no
408, 5xx, 529, connection or read error     yes    yes       yes
timeout before the commit point             yes    yes       yes
deadline exceeded                           no     no        no
circuit open                                no     yes       no
stream interrupted after the commit point   no     no        yes
stream idle timeout after the commit point  no     no        yes
invalid output (JSON / schema)              no     yes       no
==========================================  =====  ========  =======

The first row is the caller's fault; an upstream rejecting the *target's* key
(:class:`~llmrelay.errors.UpstreamAuthError`) is not: the same key will be rejected again, so no
retry, but another target may hold a good one, and a target whose key is rejected is as good as down.

An invalid output was already re-asked on its target, with the validation error, by
``validate_output``: another target may comply, and the target itself is up.

An upstream's explicit hint (``x-should-retry``) overrides the retry column only.
"""

from __future__ import annotations

from typing import NamedTuple

from llmrelay.errors import (
    CircuitOpen,
    ConnectionFailed,
    ContextLengthExceeded,
    DeadlineExceeded,
    InvalidOutput,
    RateLimited,
    RelayError,
    StreamInterrupted,
    StreamTimeout,
    TargetLimited,
    Timeout,
    UpstreamAuthError,
    UpstreamError,
)


class Verdict(NamedTuple):
    retry: bool
    failover: bool
    breaker_failure: bool


_CALLER_FAULT = Verdict(retry=False, failover=False, breaker_failure=False)
_UPSTREAM_FAULT = Verdict(retry=True, failover=True, breaker_failure=True)


def classify(error: BaseException) -> Verdict:
    """Decide what may happen after ``error``. Unknown exceptions are treated as bugs: no retry."""
    verdict = _base_verdict(error)
    if isinstance(error, RelayError) and error.should_retry is not None:
        return verdict._replace(retry=error.should_retry)
    return verdict


def _base_verdict(error: BaseException) -> Verdict:
    if isinstance(error, DeadlineExceeded):
        return _CALLER_FAULT
    if isinstance(error, StreamInterrupted | StreamTimeout):
        return Verdict(retry=False, failover=False, breaker_failure=True)
    if isinstance(error, UpstreamAuthError):  # before UpstreamError, its base
        return Verdict(retry=False, failover=True, breaker_failure=True)
    if isinstance(error, UpstreamError | ConnectionFailed | Timeout):
        return _UPSTREAM_FAULT
    if isinstance(error, TargetLimited):  # before RateLimited, its base
        return Verdict(retry=False, failover=True, breaker_failure=False)
    if isinstance(error, RateLimited):
        return Verdict(retry=True, failover=True, breaker_failure=False)
    if isinstance(error, InvalidOutput):
        return Verdict(retry=False, failover=True, breaker_failure=False)
    if isinstance(error, CircuitOpen):
        return Verdict(retry=False, failover=True, breaker_failure=False)
    if isinstance(error, ContextLengthExceeded):
        return Verdict(retry=False, failover=True, breaker_failure=False)
    return _CALLER_FAULT
