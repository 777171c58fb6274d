"""Where OTLP log records go, and the export's handler living exactly as long as the relay is open."""

from __future__ import annotations

import logging

import pytest

from llmrelay import Relay
from llmrelay.config import TelemetryConfig, load_config
from llmrelay.telemetry.log_export import LOGGERS, LogExport, logs_endpoint


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"otlp_endpoint": "http://c:4318/v1/traces"}, "http://c:4318/v1/logs"),
        ({"otlp_endpoint": "http://c:4318/"}, "http://c:4318/v1/logs"),
        ({"otlp_endpoint": "http://c:4318/v1/traces", "otlp_logs_endpoint": "http://l:9/x"}, "http://l:9/x"),
    ],
)
def test_logs_go_to_the_collectors_logs_path_unless_configured(fields: dict[str, str], expected: str) -> None:
    assert logs_endpoint(TelemetryConfig(**fields)) == expected  # type: ignore[arg-type]


def handlers() -> list[logging.Handler]:
    return [h for name in LOGGERS for h in logging.getLogger(name).handlers if isinstance(h, LogExport)]


async def test_the_handler_is_on_the_access_and_content_loggers_only_while_the_relay_is_open() -> None:
    config = {
        # nothing listens there: the export's failures stay on its own thread
        "telemetry": {"otlp_endpoint": "http://127.0.0.1:9/v1/traces"},
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
    }
    relay = Relay(load_config(config))
    assert handlers() == []
    async with relay:
        assert len(handlers()) == len(LOGGERS)
    assert handlers() == []
    untraced = Relay(load_config({"models": config["models"]}))
    async with untraced:
        assert handlers() == []
