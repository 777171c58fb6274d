"""The HTTP seam between providers and upstream APIs: one pooled aiohttp session per upstream.

aiohttp over httpx because it costs 3-10x less CPU per request on one core, which is the whole
budget of a gateway's hot path (``bench/http_clients.py`` measures both in one run).

Transport failures are mapped to the canonical tree here, once: connect failures and resets to
:class:`ConnectionFailed`, socket timeouts to :class:`Timeout`. Messages name ``host[:port]`` only,
never the URL's userinfo, path or query, nor a header, so credentials cannot leak through an error.
Status handling is the codecs' job: this layer returns any status as it came.

``credentials`` is the target's credential set (:class:`~llmrelay.wire.upstream_text.Credentials`):
providers pass it to the codecs that decode error replies, and :meth:`Upstream.stream` scrubs any
error raised while its response is open, because the stream decoders, which see the error events
inside a 200 stream, do not know the target's credentials.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from llmrelay.errors import ConfigError, ConnectionFailed, RelayError, Timeout
from llmrelay.wire.upstream_text import Credentials

if TYPE_CHECKING:
    import aiohttp


class HttpReply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


class StreamReply:
    """An open streaming response. Read ``body()`` on an error status, else ``read()`` until ``b""``.

    ``read()`` is a plain method, not a generator, so a provider that stops early leaves nothing
    behind to close: the response itself is closed by :meth:`Upstream.stream`.
    """

    def __init__(self, response: aiohttp.ClientResponse, upstream: Upstream) -> None:
        self._response = response
        self._upstream = upstream
        self.status = response.status
        self.headers = _lower(response.headers)

    async def body(self) -> bytes:
        with self._upstream.mapped_errors():
            return await self._response.read()

    async def read(self) -> bytes:
        """The bytes that arrived since the last read (waits for some); ``b""`` at the end."""
        try:
            return await self._response.content.readany()
        except Exception as exc:
            mapped = self._upstream.mapped_error(exc)
            if mapped is None:
                raise
            raise mapped from exc


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        max_connections: int = 256,
        provider: str,
        secrets: Iterable[str | None] = (),
    ) -> None:
        """``secrets``: the target's configured credentials (api key, header values); with the
        userinfo of ``base_url`` they make :attr:`credentials`.

        Userinfo (``http://user:pass@host``) is taken out of the URL and sent as
        ``Authorization: Basic``, as aiohttp would, so no URL this class keeps or names holds it;
        a target that also sends its own ``Authorization`` header is a :class:`ConfigError` (aiohttp
        would refuse every request).
        """
        self._headers = dict(headers or {})
        self.base_url, basic = _take_userinfo(base_url.rstrip("/"))
        if basic is not None:
            if any(name.lower() == "authorization" for name in self._headers):
                raise ConfigError(
                    f"this {provider} target has user:password in its base_url (sent as Authorization:"
                    " Basic) and also sends an Authorization header (api_key or headers): keep one"
                )
            self._headers["authorization"] = basic
        self.host = host_of(self.base_url)
        self.provider = provider
        self.credentials = Credentials.of((*secrets, basic), base_url=base_url)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        import aiohttp  # deferred: `import llmrelay` must stay light

        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self._connect_timeout, sock_read=self._read_timeout
            ),
            headers=self._headers,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("upstream used before open(); use `async with Relay(...)`")
        return self._session

    async def post(self, path: str, body: bytes, *, headers: Mapping[str, str]) -> HttpReply:
        session = self._require_session()
        with self.mapped_errors():
            async with session.post(self.base_url + path, data=body, headers=headers) as resp:
                return HttpReply(resp.status, _lower(resp.headers), await resp.read())

    async def get(self, path: str, *, headers: Mapping[str, str]) -> HttpReply:
        session = self._require_session()
        with self.mapped_errors():
            async with session.get(self.base_url + path, headers=headers) as resp:
                return HttpReply(resp.status, _lower(resp.headers), await resp.read())

    @asynccontextmanager
    async def stream(
        self, path: str, body: bytes, *, headers: Mapping[str, str]
    ) -> AsyncIterator[StreamReply]:
        """POST and keep the response open. Leaving early closes the connection (cancels upstream)."""
        session = self._require_session()
        with self.mapped_errors():
            response = await session.post(self.base_url + path, data=body, headers=headers)
        finished = False
        try:
            yield StreamReply(response, self)
            finished = response.content.at_eof()
        except RelayError as err:
            self.credentials.redact(err)  # built by a stream decoder that never saw the credentials
            raise
        finally:
            if finished:
                response.release()
            else:
                response.close()

    @contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Turn aiohttp/asyncio transport failures into canonical errors naming only the host."""
        try:
            yield
        except Exception as exc:
            mapped = self.mapped_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def mapped_error(self, exc: Exception) -> RelayError | None:
        """The canonical error for a transport failure; ``None`` for anything else (a bug)."""
        import aiohttp

        host, provider = self.host, self.provider
        if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
            return Timeout(f"{provider} at {host} timed out", provider=provider)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ConnectionFailed(f"could not connect to {provider} at {host}", provider=provider)
        if isinstance(exc, aiohttp.ClientError | ConnectionError):
            return ConnectionFailed(
                f"connection to {provider} at {host} failed: {type(exc).__name__}", provider=provider
            )
        return None


def _take_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without its userinfo, and the ``Authorization: Basic`` value it stood for."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, netloc = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


def host_of(url: str) -> str:
    """``host[:port]`` of ``url``: what an error may say about where an upstream is."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return "the configured base_url"  # unparseable; never echo it, it may hold userinfo
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
