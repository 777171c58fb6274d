"""The HTTP seam between providers and upstream APIs: one pooled aiohttp session per upstream.

aiohttp over httpx because it costs 3-10x less CPU per request on one core, which is the whole
budget of a gateway's hot path (``bench/http_clients.py`` measures both in one run).

Transport failures are mapped to the canonical tree here, once: connect failures and resets to
:class:`ConnectionFailed`, socket timeouts to :class:`Timeout`. Messages name the host only, never
the URL's query or headers, so credentials cannot leak through an error. Status handling is the
codecs' job: this layer returns any status as it came.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from llmrelay.errors import ConnectionFailed, RelayError, Timeout

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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self.provider = provider
        self._headers = dict(headers or {})
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


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
