"""The HTTP seam between providers and upstream APIs: one pool of keep-alive connections per upstream.

The connections are :mod:`llmrelay.providers.http1`'s lean HTTP/1.1 client: a gateway's hot path
is a few hundred µs of CPU per request, and a general client spent a third of it.

Transport failures are mapped to the canonical tree here, once: connect failures and resets to
:class:`ConnectionFailed`, socket timeouts to :class:`Timeout`. Messages name ``host[:port]`` only,
never the URL's userinfo, path or query, nor a header, so credentials cannot leak through an error.
Status handling is the codecs' job: this layer returns any status as it came.

The provider key is not a fixed header: :attr:`Upstream.keys` (a
:class:`~llmrelay.providers.keyring.KeyRing`) picks one per attempt and the provider passes it as
``key``, sent in the header named by ``key_header`` (after ``key_prefix``, e.g. ``Bearer``).

``credentials`` is the target's credential set (:class:`~llmrelay.wire.upstream_text.Credentials`):
providers pass it to the codecs that decode error replies, and :meth:`Upstream.stream` scrubs any
error raised while its response is open, because the stream decoders, which see the error events
inside a 200 stream, do not know the target's credentials.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

from llmrelay.clock import SystemClock
from llmrelay.context import Context
from llmrelay.errors import ConfigError, ConnectionFailed, RelayError, Timeout
from llmrelay.providers.http1 import Connection, Pool
from llmrelay.providers.keyring import KeyRing
from llmrelay.wire.upstream_text import Credentials


class HttpReply:
    """A whole response. Its headers are read only on an error status, so they are decoded then."""

    __slots__ = ("_raw_headers", "body", "status")

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self._raw_headers = raw_headers
        self.body = body

    @property
    def headers(self) -> dict[str, str]:
        """Names lower-cased; decoded on each access (error paths read them once)."""
        return _lower(self._raw_headers)


class StreamReply:
    """An open streaming response. Read ``body()`` on an error status, else ``read()`` until ``b""``.

    ``read()`` is a plain method, not a generator, so a provider that stops early leaves nothing
    behind to close: the connection itself is released by :meth:`Upstream.stream`.
    """

    def __init__(self, connection: Connection, upstream: Upstream) -> None:
        self._connection = connection
        self._upstream = upstream
        self.status = connection.status
        self._raw_headers = connection.headers

    @property
    def headers(self) -> dict[str, str]:
        """Names lower-cased; decoded on access (only error paths read them)."""
        return _lower(self._raw_headers)

    async def body(self) -> bytes:
        with self._upstream.mapped_errors():
            return await self._connection.read_all()

    async def read(self) -> bytes:
        """The bytes that arrived since the last read (waits for some); ``b""`` at the end."""
        try:
            return await self._connection.read()
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
        keys: KeyRing | None = None,
        key_header: str = "authorization",
        key_prefix: str = "",
    ) -> None:
        """``secrets``: the target's configured credentials (header values); with the userinfo of
        ``base_url`` and the keys its ring has used they make :attr:`credentials`. A configured
        header of the name ``key_header`` gives way to the key when the target has one.

        Userinfo (``http://user:pass@host``) is taken out of the URL and sent as
        ``Authorization: Basic``, as browsers and HTTP clients do, so no URL this class keeps or
        names holds it; a target that also sends its own ``Authorization`` header is a
        :class:`ConfigError` (which of the two would win is anyone's guess).
        """
        self.keys = keys if keys is not None else KeyRing([], clock=SystemClock())
        self._key_header = f"{key_header}: {key_prefix}"
        self._headers = dict(headers or {})
        if self.keys:
            self._headers = {k: v for k, v in self._headers.items() if k.lower() != key_header}
        self.base_url, basic = _take_userinfo(base_url.rstrip("/"))
        if basic is not None:
            sends_key = bool(self.keys) and key_header == "authorization"
            if sends_key or any(name.lower() == "authorization" for name in self._headers):
                raise ConfigError(
                    f"this {provider} target has user:password in its base_url (sent as Authorization:"
                    " Basic) and also sends an Authorization header (api_key or headers): keep one"
                )
            self._headers["authorization"] = basic
        self.host = host_of(self.base_url)
        self.provider = provider
        self._secrets = (*secrets, basic)
        self._original_url = base_url
        self._credentials = Credentials.of(self._secrets, base_url=base_url)
        self._credentials_version = -1
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._pool: Pool | None = None
        self._path = urlsplit(self.base_url).path
        fixed = {"host": self.host, **{name.lower(): value for name, value in self._headers.items()}}
        for name, value in fixed.items():
            if not _safe_header(name, value):
                raise ConfigError(
                    f"header {name!r} of this {provider} target is not a valid HTTP header"
                    " (line breaks, or characters outside Latin-1)"
                )
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())

    @property
    def credentials(self) -> Credentials:
        """What to scrub from this upstream's messages: configured values and every key used."""
        if self._credentials_version != self.keys.version:
            self._credentials_version = self.keys.version
            self._credentials = Credentials.of(
                (*self._secrets, *self.keys.seen()), base_url=self._original_url
            )
        return self._credentials

    async def open(self) -> None:
        if self._pool is None:
            await self.keys.open()
            parts = urlsplit(self.base_url)
            tls = parts.scheme == "https"
            self._pool = Pool(
                parts.hostname or "",
                parts.port or (443 if tls else 80),
                tls=tls,
                limit=self._max_connections,
                connect_timeout=self._connect_timeout,
            )

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()
            await self.keys.aclose()

    def _request(self, path: str, body: bytes, headers: Mapping[str, str], key: str | None) -> bytes:
        if not all(_safe_header(name, value) for name, value in headers.items()):
            raise ValueError("a request header holds a line break or a character outside Latin-1")
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if key is not None:  # checked by its reader: printable ASCII
            extra += f"{self._key_header}{key}\r\n"
        head = f"POST {self._path}{path} HTTP/1.1\r\n{self._fixed}{extra}content-length: {len(body)}\r\n\r\n"
        return head.encode("latin-1") + body

    async def _send(self, path: str, body: bytes, headers: Mapping[str, str], key: str | None) -> Connection:
        """A connection whose response head has arrived (within ``read_timeout``)."""
        if self._pool is None:
            raise RuntimeError("upstream used before open(); use `async with Relay(...)`")
        pool = self._pool
        connection = await pool.acquire()
        try:
            connection.send(self._request(path, body, headers, key))
            connection.expire_after(self._read_timeout)
            await connection.head()
        except BaseException:
            connection.close()
            pool.release(connection)
            raise
        return connection

    async def post(
        self, path: str, body: bytes, *, headers: Mapping[str, str], key: str | None = None
    ) -> HttpReply:
        with self.mapped_errors():
            connection = await self._send(path, body, headers, key)
            try:
                connection.expire_after(self._read_timeout)  # the body, as long again as the head
                data = await connection.read_all()
                connection.expire_after(None)
            finally:
                self._release(connection)
        return HttpReply(connection.status, connection.headers, data)

    @asynccontextmanager
    async def stream(
        self, path: str, body: bytes, *, headers: Mapping[str, str], key: str | None = None
    ) -> AsyncIterator[StreamReply]:
        """POST and keep the response open. Leaving early closes the connection (cancels upstream)."""
        with self.mapped_errors():
            connection = await self._send(path, body, headers, key)
        connection.expire_after(None)  # between events the stream's own idle limit applies
        try:
            yield StreamReply(connection, self)
        except RelayError as err:
            self.credentials.redact(err)  # built by a stream decoder that never saw the credentials
            raise
        finally:
            self._release(connection)

    def _release(self, connection: Connection) -> None:
        if self._pool is None:
            connection.close()
        else:
            self._pool.release(connection)

    @contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Turn transport failures (sockets, TLS, timeouts) into canonical errors naming only the host."""
        try:
            yield
        except Exception as exc:
            mapped = self.mapped_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def mapped_error(self, exc: Exception) -> RelayError | None:
        """The canonical error for a transport failure; ``None`` for anything else (a bug)."""
        host, provider = self.host, self.provider
        if isinstance(exc, TimeoutError):
            return Timeout(f"{provider} at {host} timed out", provider=provider)
        if isinstance(exc, ConnectionRefusedError | ssl.SSLError | socket.gaierror):
            return ConnectionFailed(f"could not connect to {provider} at {host}", provider=provider)
        if isinstance(exc, OSError):
            return ConnectionFailed(
                f"connection to {provider} at {host} failed: {type(exc).__name__}", provider=provider
            )
        return None


def with_trace(headers: Mapping[str, str], ctx: Context) -> Mapping[str, str]:
    """``headers`` plus the W3C ``traceparent`` of ``ctx`` when it has one (the attempt's span, or
    the caller's header passed through), so the upstream's own traces join the caller's."""
    if ctx.traceparent is None:
        return headers
    return {**headers, "traceparent": ctx.traceparent}


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


def _safe_header(name: str, value: str) -> bool:
    """No line breaks (no header injection), and bytes a request head can carry."""
    text = name + value
    if "\r" in text or "\n" in text or "\0" in text:
        return False
    return text.isascii() or _latin1(text)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _lower(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}
