"""Running the server under uvicorn (uvloop + httptools), one or several worker processes.

One worker is run in-process from the already validated config. Several workers are separate
processes that each import :func:`app_from_environment` and load the config file again, which is
why ``llmrelay serve`` hands the file path over in the environment.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from llmrelay.config import Config, config_from_environment, with_server_defaults
from llmrelay.relay import Relay
from llmrelay.server.app import create_app
from llmrelay.server.asgi import App


def app_from_environment() -> App:
    """Factory for worker processes: the config named by ``LLMRELAY_CONFIG`` (or the default)."""
    config = with_server_defaults(config_from_environment())
    _configure_logging(config.server.log_level)
    return create_app(Relay(config))


def serve(config: Config, *, workers: int = 1) -> None:
    import uvicorn

    config = with_server_defaults(config)
    _configure_logging(config.server.log_level)
    common: dict[str, Any] = {
        "host": config.server.host,
        "port": config.server.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": int(config.server.graceful_shutdown),
        "server_header": False,
        "proxy_headers": False,  # X-Forwarded-* is not trusted by default
        "date_header": False,
    }
    if workers > 1:
        uvicorn.run("llmrelay.server.run:app_from_environment", factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(Relay(config)), **common)


def _configure_logging(level: str = "info") -> None:
    """Everything under the ``llmrelay`` logger goes to stderr, one line per record: the access
    log (``llmrelay.access``, at info) as JSON objects, the rest (retries, breakers, errors) as
    messages. ``level`` is ``server.log_level``; ``warning`` keeps only problems."""
    logger = logging.getLogger("llmrelay")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
