import pytest

from llmrelay import errors
from llmrelay.classify import Verdict, classify

R, F, B = True, True, True
N = False


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (errors.InvalidRequest("x"), Verdict(N, N, N)),
        (errors.AuthenticationError("x"), Verdict(N, N, N)),
        (errors.PermissionDenied("x"), Verdict(N, N, N)),
        (errors.NotFound("x"), Verdict(N, N, N)),
        (errors.UnprocessableEntity("x"), Verdict(N, N, N)),
        (errors.ContentFiltered("x"), Verdict(N, N, N)),
        (errors.ContextLengthExceeded("x"), Verdict(N, F, N)),
        (errors.UpstreamAuthError("x", provider="openai"), Verdict(N, F, B)),
        (errors.RateLimited("x", retry_after=3), Verdict(R, F, N)),
        (errors.TargetLimited("x", retry_after=3), Verdict(N, F, N)),
        (errors.UpstreamError("x", status=500), Verdict(R, F, B)),
        (errors.UpstreamError("x", status=503), Verdict(R, F, B)),
        (errors.Overloaded("x"), Verdict(R, F, B)),
        (errors.ConnectionFailed("x"), Verdict(R, F, B)),
        (errors.Timeout("x"), Verdict(R, F, B)),
        (errors.DeadlineExceeded("x"), Verdict(N, N, N)),
        (errors.CircuitOpen("x"), Verdict(N, F, N)),
        (errors.StreamInterrupted("x"), Verdict(N, N, B)),
        (ValueError("bug"), Verdict(N, N, N)),
    ],
)
def test_classifier_table(error: BaseException, verdict: Verdict) -> None:
    assert classify(error) == verdict


def test_upstream_hint_overrides_retry_only() -> None:
    assert classify(errors.UpstreamError("x", should_retry=False)) == Verdict(N, F, B)
    assert classify(errors.Conflict("x", should_retry=True)) == Verdict(R, N, N)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.InvalidRequest),
        (401, errors.UpstreamAuthError),
        (403, errors.UpstreamAuthError),
        (404, errors.NotFound),
        (408, errors.Timeout),
        (409, errors.Conflict),
        (413, errors.PayloadTooLarge),
        (422, errors.UnprocessableEntity),
        (429, errors.RateLimited),
        (500, errors.UpstreamError),
        (502, errors.UpstreamError),
        (529, errors.Overloaded),
        (418, errors.InvalidRequest),
    ],
)
def test_error_for_status(status: int, cls: type[errors.RelayError]) -> None:
    assert errors.error_for_status(status) is cls


def test_upstream_auth_error_is_a_502_whatever_the_upstream_said() -> None:
    err = errors.error_for_status(401)("openai rejected the key", status=401, provider="openai")
    assert (err.status, err.code) == (502, "upstream_auth_error")
    assert isinstance(err, errors.UpstreamAuthError) and err.upstream_status == 401


def test_all_targets_failed_names_every_target() -> None:
    err = errors.AllTargetsFailed(
        [("a/m", errors.Overloaded("busy")), ("b/m", errors.RateLimited("slow", retry_after=2))]
    )
    assert err.status == 429
    assert err.retry_after == 2
    assert "a/m (overloaded)" in err.message and "b/m (rate_limit_exceeded)" in err.message
