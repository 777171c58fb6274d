"""Upstream error text made safe to pass on: the one rule every provider codec applies.

Where it sits: :mod:`~llmrelay.wire.openai_errors`, :mod:`~llmrelay.wire.anthropic_errors` and
:mod:`~llmrelay.wire.gemini_errors` call :func:`clean` on every message they take from an upstream
(unary replies and error events inside a 200 stream) and :func:`summarise` on bodies that are not
JSON; :class:`~llmrelay.providers.http.Upstream` applies :meth:`Credentials.redact` once more to any
error raised while a stream is read, because the stream decoders build their errors without the
target's credentials. Whatever leaves here becomes a canonical error's ``message``, which callers,
logs and metrics see.

Why: upstreams echo what they were sent. A proxy in front of an OpenAI-compatible server answers
"your key was Bearer sk-...", a misconfigured one dumps its request headers, an HTML error page can
hold anything. So:

- every configured credential of the target (:class:`Credentials`: its ``api_key``, the values of its
  ``headers``, the userinfo of its ``base_url``) is replaced by ``[redacted]``;
- so is anything shaped like a credential, configured or not: ``Bearer``/``Basic`` values,
  ``sk-...`` and ``sk-ant-...`` keys (masked ones too), Google ``AIza...`` keys, JWTs, URL userinfo
  and long tokens after ``key=``, ``token=``, ``api_key:`` and the like;
- the result is capped at :data:`MAX_MESSAGE` characters, after scrubbing and at a word boundary, so
  a cut can never leave half a credential that no longer matches;
- a body that is not JSON is never quoted, only described: ``upstream returned 502 (text/html,
  1.2 KB)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from llmrelay.errors import RelayError, UpstreamAuthError

REDACTED = "[redacted]"

# Long enough for any real error message (OpenAI's longest, the context-length one, is ~350
# characters); short enough that a log line or an SDK exception stays readable.
MAX_MESSAGE = 500

# Shorter configured values are not scrubbed: no credential scheme uses them, and replacing every
# "on" or "v1" would make messages unreadable.
_MIN_SECRET = 4

_TOKEN = r"[A-Za-z0-9+/=_.~\-]"
_SHAPES = re.compile(
    "|".join(
        (
            # Authorization header values: keep the scheme, drop what follows it. Case-sensitive,
            # so the words "bearer" and "basic" in prose are left alone.
            r"(?P<scheme>\b(?-i:Bearer|BEARER)\s+)[^\s\"',;]{8,}",
            r"(?P<basic>\b(?-i:Basic)\s+)[A-Za-z0-9+/]{12,}={0,2}",
            # OpenAI (sk-, sk-proj-) and Anthropic (sk-ant-) keys, also as echoed masked (sk-...****abcd).
            r"\bsk-[A-Za-z0-9_*\-]{6,}",
            r"\bAIza[0-9A-Za-z_\-]{20,}",  # Google API keys
            r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",  # JWTs
            r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",  # user:password@ in URLs
            # key=..., token: ..., "api_key": "..." followed by a long token (hex, base64, ...).
            r"(?P<name>\b(?:api[_-]?key|key|token|access[_-]?token|secret|password|passwd|auth"
            r"|authorization|signature|sig|credential)s?[\"']?\s*[=:]\s*[\"']?)" + _TOKEN + r"{16,}",
        )
    ),
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")


def _keep_label(match: re.Match[str]) -> str:
    label = match.group("scheme") or match.group("basic") or match.group("name") or ""
    return label + REDACTED


@dataclass(frozen=True)
class Credentials:
    """The secrets of one target, to be scrubbed from anything its upstream says.

    Build it with :meth:`of`; ``values`` is longest first, so a secret that contains another is
    replaced whole. The default (no values) still scrubs credential-shaped text.
    """

    values: tuple[str, ...] = ()
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values:
            alternatives = "|".join(re.escape(v) for v in self.values)
            object.__setattr__(self, "_pattern", re.compile(alternatives))

    def __repr__(self) -> str:
        return f"Credentials({len(self.values)} values)"

    @classmethod
    def of(cls, secrets: Iterable[str | None] = (), *, base_url: str | None = None) -> Credentials:
        """The credential set from configured values (an api key, header values) and a base URL.

        A header value with a scheme (``Bearer abc``) contributes the token alone too, since that is
        what an upstream usually echoes; a base URL contributes its userinfo, raw and decoded.
        """
        found: set[str] = set()
        for value in secrets:
            if value is None:
                continue
            value = value.strip()
            found.add(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha():
                found.add(token.strip())
        if base_url:
            parts = urlsplit(base_url)
            userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
            if userinfo:
                user, _, password = userinfo.partition(":")
                found.update((userinfo, unquote(userinfo), user, unquote(user), password, unquote(password)))
        kept = sorted((v for v in found if len(v) >= _MIN_SECRET), key=lambda v: (-len(v), v))
        return cls(tuple(kept))

    def scrub(self, text: str) -> str:
        """``text`` without the configured secrets or anything shaped like a credential."""
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        return _SHAPES.sub(_keep_label, text)

    def redact(self, err: RelayError) -> None:
        """Scrub an already built error in place (one built by a stream decoder without credentials).

        In place, not a copy raised ``from`` the original: the original would travel along as the
        ``__cause__`` of the copy, secrets and all, into every logged traceback.
        """
        err.message = self.scrub(err.message)
        err.args = (err.message,)
        if err.param is not None:
            err.param = self.scrub(err.param)


NO_CREDENTIALS = Credentials()


def clean(text: str, credentials: Credentials = NO_CREDENTIALS) -> str:
    """An upstream's message made fit for a canonical error: scrubbed, on one line, capped."""
    text = _SPACE.sub(" ", credentials.scrub(text)).strip()
    if len(text) <= MAX_MESSAGE:
        return text
    cut = text[:MAX_MESSAGE]
    if not text[MAX_MESSAGE].isspace() and " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # never split a word: half a secret would escape the scrub
    return cut.rstrip() + " …"


def summarise(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """Describe a body that is not JSON without quoting it: ``upstream returned 502 (text/html, 1.2 KB)``."""
    if not body:
        return f"upstream returned {status} (empty body)"
    media = _header(headers, "content-type").partition(";")[0].strip().lower() or "no content type"
    return f"upstream returned {status} ({media}, {_size(len(body))})"


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.strip().lower() == name:
            return value
    return ""


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def rejected_credentials(provider: str, status: int, *, reason: str | None = None) -> UpstreamAuthError:
    """The error for an upstream refusing the target's own key (its 401 or 403, whatever the body).

    The message is fixed: upstreams echo (masked) keys in these replies, and what helps the caller
    is knowing the fault is the gateway's configuration, not their request.
    """
    detail = f"{reason}, {status}" if reason else str(status)
    return UpstreamAuthError(
        f"{provider} rejected the configured credentials ({detail}); the gateway's provider"
        " configuration needs fixing",
        status=status,
        provider=provider,
    )
