"""The listening socket, bound before anything is announced.

``llmrelay serve`` binds the socket itself and hands it to uvicorn (one worker, or every worker
of several), so the banner is printed only once the address is really ours, and a port in use is
one clear line instead of a banner followed by uvicorn's bind error.
"""

from __future__ import annotations

import errno
import socket

BACKLOG = 2048  # uvicorn's default


class ListenError(Exception):
    """The gateway cannot listen where it was told to; the message is one line for the user."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, inheritable by worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart over TIME_WAIT
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as err:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        raise ListenError(f"cannot listen on {where}: {_reason(err)}") from err
    sock.set_inheritable(True)
    return sock


def _reason(err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        return "address already in use"
    if err.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    if err.errno == errno.EADDRNOTAVAIL:
        return "address not available on this machine"
    return err.strerror or str(err)
