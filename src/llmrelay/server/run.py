"""Running the server under uvicorn (uvloop + httptools), one or several worker processes.

Start-up order: build the app (a config problem fails here, before anything listens; building
opens nothing, that is the lifespan's job), bind the socket (:mod:`llmrelay.server.listen`; a
port in use fails here), announce (the banner), then hand the bound socket to uvicorn. One worker
runs in-process from the already validated config. Several workers are separate processes that
share the socket and each import :func:`app_from_environment`, loading the config file again,
which is why ``llmrelay serve`` hands the file path over in the environment; so it does the
directory where the workers' Prometheus metrics meet (one per run, removed when it ends). Requests arrive
through :mod:`llmrelay.server.header_limit`'s protocol: uvicorn's httptools protocol with a cap on
the request head.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp

from llmrelay.config import Config
from llmrelay.config_environment import (
    config_from_environment,
    metrics_dir_from_environment,
    with_server_defaults,
)
from llmrelay.errors import ConfigError
from llmrelay.pii.log_filter import MaskingFormatter
from llmrelay.relay import Relay
from llmrelay.server.app import create_app
from llmrelay.server.banner import banner
from llmrelay.server.listen import bind
from llmrelay.telemetry.prometheus import MULTIPROC_ENV, PrometheusMetrics

STARTUP_FAILURE = 3  # uvicorn's exit code when the app's start-up fails


def app_from_environment() -> ASGIApp:
    """Factory for worker processes: the config named by ``LLMRELAY_CONFIG`` (or the default),
    counting into the run's shared metrics directory (``serve`` made it and set the variable)."""
    config = with_server_defaults(config_from_environment())
    _configure_logging(config.server.log_level)
    return create_app(server_relay(config, metrics_dir=metrics_dir_from_environment()))


def server_relay(config: Config, *, metrics_dir: str | None = None) -> Relay:
    """The relay a server runs: the pipeline with Prometheus metrics (one process's, or a
    multi-worker run's shared ``metrics_dir``) unless ``telemetry.metrics`` is off."""
    if not config.telemetry.metrics:
        return Relay(config, server=True)
    metrics = PrometheusMetrics(tag_labels=config.telemetry.tag_labels, multiprocess_dir=metrics_dir)
    return Relay(config, metrics=metrics, server=True)


def serve(config: Config, *, workers: int = 1, announce: Callable[[str], None] | None = None) -> None:
    """Serve until stopped. Raises :class:`~llmrelay.server.listen.ListenError` if the address
    cannot be bound and :class:`~llmrelay.errors.ConfigError` for config the app refuses; both
    before ``announce`` is called."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from llmrelay.server.header_limit import PROTOCOL, HeadConfig

    config = with_server_defaults(config)
    check_workers(config, workers)
    _configure_logging(config.server.log_level)
    app = create_app(server_relay(config))  # built (not opened) with several workers too: checks the config
    tls = _tls(config)
    sock = bind(config.server.host, config.server.port)
    if announce is not None:
        announce(banner(config, port=sock.getsockname()[1], workers=workers))
    common: dict[str, Any] = {
        "host": config.server.host,
        "port": sock.getsockname()[1],
        "loop": "uvloop",
        "http": PROTOCOL,
        "h11_max_incomplete_event_size": config.server.max_header_bytes,
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": int(config.server.graceful_shutdown),
        "server_header": False,
        "proxy_headers": False,  # X-Forwarded-* is not trusted by default
        "date_header": False,
        **tls,
    }

    def _with_timeouts(head: HeadConfig) -> HeadConfig:
        head.header_timeout = config.server.header_timeout
        head.body_timeout = config.server.body_timeout
        return head

    if workers > 1:
        factory = "llmrelay.server.run:app_from_environment"
        supervisor = Multiprocess(
            _with_timeouts(HeadConfig(factory, factory=True, workers=workers, **common)), sockets=[sock]
        )
        # The workers' metrics meet in a directory private to this run, gone when it ends.
        previous = os.environ.get(MULTIPROC_ENV)
        with tempfile.TemporaryDirectory(prefix="llmrelay-metrics-") as shared:
            os.environ[MULTIPROC_ENV] = shared
            try:
                with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run does
                    supervisor.run()
            finally:
                if previous is None:
                    os.environ.pop(MULTIPROC_ENV, None)
                else:
                    os.environ[MULTIPROC_ENV] = previous
        return
    server = uvicorn.Server(_with_timeouts(HeadConfig(app, **common)))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def check_workers(config: Config, workers: int) -> None:
    """Several workers each keep their own memory: in-memory rate limits would let every worker
    admit the whole limit. With limits configured, more than one worker needs ``state.redis``."""
    if workers > 1 and config.has_limits and config.state.redis is None:
        raise ConfigError(
            f"--workers {workers} with rate limits configured (`$.tiers`, or a target's rpm/tpm) needs"
            " `$.state.redis` (e.g. {url: redis://127.0.0.1:6379/0}): in memory each worker would count"
            " alone and admit the whole limit; set state.redis or run one worker"
        )


def _tls(config: Config) -> dict[str, Any]:
    """uvicorn's TLS settings, the files checked now so a bad one is one line, not a traceback."""
    tls = config.server.tls
    if tls is None:
        return {}
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"`$.server.tls`: cannot use the certificate {tls.cert} with the key {tls.key}: {err}"
        ) from err
    return {"ssl_certfile": tls.cert, "ssl_keyfile": tls.key}


def _configure_logging(level: str = "info") -> None:
    """Everything under the ``llmrelay`` logger goes to stderr, one line per record: the access
    log (``llmrelay.access``, at info) as JSON objects, the rest (retries, breakers, errors) as
    messages. ``level`` is ``server.log_level``; ``warning`` keeps only problems."""
    # The logging HOWTO's "Optimization" switches: no line prints a caller's file and line, a
    # thread or a process, so a record need not look them up (a quarter of the access log's cost).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logger = logging.getLogger("llmrelay")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(MaskingFormatter("%(message)s"))  # PII never reaches a log line
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
