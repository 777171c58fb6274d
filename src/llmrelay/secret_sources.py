"""Readers of provider keys: a literal, a file re-read on change, a command run on a refresh.

Where it sits: each target's :class:`~llmrelay.providers.keyring.KeyRing` holds one reader per
configured key (:class:`~llmrelay.config.KeySource`) and asks :meth:`SecretReader.current` once per
upstream attempt, so a rotated key reaches new requests while requests already sent finish with
the key they were sent with. ``current`` never blocks and never does I/O beyond one ``stat``:

- a file is ``stat``-ed at most once per ``refresh`` seconds and read again only when its
  modification time, size or inode changed (Kubernetes swaps a symlink, Docker rewrites in place);
- a command runs at start-up (``open``) and then in a background task when ``refresh`` has passed,
  the old value serving until the new one is in; a command that fails or times out keeps the old
  value and is tried again after ``min(refresh, 30)`` seconds.

Failures at start-up are :class:`~llmrelay.errors.ConfigError` (the server does not start with a
key it cannot read); later ones are logged. Messages name the file or the command's program only,
never its arguments, its output or a key, and what the command wrote to stderr is described, not
quoted (a failing secrets CLI may print the token it was given).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Protocol

from llmrelay.clock import Clock
from llmrelay.config import CommandSecret, FileSecret, KeySource, Secret
from llmrelay.errors import ConfigError

log = logging.getLogger("llmrelay.secrets")

RETRY_FAILED = 30.0
"""Seconds after which a failed refresh is tried again (at most; sooner when ``refresh`` is)."""


class SecretReader(Protocol):
    async def open(self) -> None:
        """Read the first value; :class:`ConfigError` when there is none to be had."""
        ...

    async def aclose(self) -> None: ...

    def current(self) -> str:
        """The key to send now (cheap: no I/O but an occasional ``stat``)."""
        ...


def reader_for(source: KeySource, clock: Clock) -> SecretReader:
    spec = source.spec
    if isinstance(spec, FileSecret):
        return FileReader(spec, clock)
    if isinstance(spec, CommandSecret):
        return CommandReader(spec, clock)
    return LiteralReader(spec)


class LiteralReader:
    def __init__(self, secret: Secret) -> None:
        self._value = secret.reveal()

    async def open(self) -> None:
        _check_value(self._value, "the configured key")

    async def aclose(self) -> None:
        return None

    def current(self) -> str:
        return self._value


class FileReader:
    def __init__(self, spec: FileSecret, clock: Clock) -> None:
        self._path = spec.file
        self._refresh = spec.refresh
        self._clock = clock
        self._value = ""
        self._seen: tuple[int, int, int] | None = None
        self._next_check = 0.0

    async def open(self) -> None:
        try:
            self._load()
        except OSError as err:
            raise ConfigError(f"cannot read the key file {self._path}: {_reason(err)}") from None
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self._next_check = self._clock.now() + self._refresh

    async def aclose(self) -> None:
        return None

    def current(self) -> str:
        now = self._clock.now()
        if now >= self._next_check:
            self._next_check = now + self._refresh
            try:
                self._load()
            except (OSError, ValueError) as err:
                # Mid-rotation a file may be missing or empty for a moment: keep the last good key.
                log.warning("key file %s: %s; keeping the key read before", self._path, _reason(err))
        return self._value

    def _load(self) -> None:
        stat = os.stat(self._path)
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if seen == self._seen:
            return
        with open(self._path, encoding="utf-8") as file:
            value = file.read().strip()
        _check_value(value, f"the key file {self._path}")
        if self._seen is not None and value != self._value:
            log.info("key file %s changed: new requests use the new key", self._path)
        self._value, self._seen = value, seen


class CommandReader:
    def __init__(self, spec: CommandSecret, clock: Clock) -> None:
        self._argv = spec.exec
        self._refresh = spec.refresh
        self._timeout = spec.timeout
        self._clock = clock
        self._value = ""
        self._next_run = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def _name(self) -> str:
        return f"the key command `{os.path.basename(self._argv[0])}`"

    async def open(self) -> None:
        self._value = await self._run()
        self._next_run = self._clock.now() + self._refresh

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def current(self) -> str:
        if self._task is None and self._clock.now() >= self._next_run:
            self._task = asyncio.create_task(self._refresh_in_background())
        return self._value

    async def _refresh_in_background(self) -> None:
        try:
            value = await self._run()
        except ConfigError as err:
            log.warning("%s; keeping the key read before", err.message)
            self._next_run = self._clock.now() + min(self._refresh, RETRY_FAILED)
        else:
            if value != self._value:
                log.info("%s gave a new key: new requests use it", self._name)
            self._value = value
            self._next_run = self._clock.now() + self._refresh
        finally:
            self._task = None

    async def _run(self) -> str:
        """The command's stdout, stripped; :class:`ConfigError` on any failure (no output quoted)."""
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as err:
            raise ConfigError(f"{self._name} could not be started: {_reason(err)}") from None
        try:
            async with asyncio.timeout(self._timeout):
                out, err_out = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ConfigError(f"{self._name} timed out after {self._timeout:g} s") from None
        except BaseException:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            said = f" ({len(err_out)} bytes on stderr, not shown)" if err_out else ""
            raise ConfigError(f"{self._name} exited with status {process.returncode}{said}")
        try:
            value = out.decode("utf-8").strip()
            _check_value(value, self._name)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return value


def _check_value(value: str, what: str) -> None:
    """A key an HTTP header can carry: not empty, printable ASCII (a ``ValueError`` otherwise)."""
    if not value:
        raise ValueError(f"{what} gave an empty key")
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"{what} gave a key an HTTP header cannot carry (not printable ASCII)")


def _reason(err: Exception) -> str:
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return str(err)
