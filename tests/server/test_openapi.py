"""``/openapi.json`` describes exactly the routes the app mounts, with schemas a fuzzer can use."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from starlette.testclient import TestClient

from llmrelay.config import load_config
from llmrelay.relay import Relay
from llmrelay.server.app import create_app
from llmrelay.server.asgi import App
from llmrelay.server.openapi import operations

CONFIG = {
    "server": {"master_key": "sk-master-openapi"},
    "models": [{"name": "mock", "targets": [{"provider": "mock"}]}],
}


def _app() -> App:
    app = create_app(Relay(load_config(CONFIG)))
    assert isinstance(app, App)
    return app


def _document(app: App) -> dict[str, Any]:
    with TestClient(app) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.content)


def test_every_mounted_route_is_described_and_nothing_else() -> None:
    app = _app()
    mounted = {(r.method, r.path) for r in app.routes}
    assert mounted == set(operations())
    doc = _document(app)
    listed = {(m.upper(), p) for p, methods in doc["paths"].items() for m in methods}
    assert listed == {(m, p.replace("{model:path}", "{model}")) for m, p in mounted}


def test_request_bodies_come_from_the_codecs_types() -> None:
    doc = _document(_app())
    chat = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    name = chat["$ref"].rpartition("/")[2]
    schema = doc["components"]["schemas"][name]
    assert {"model", "messages"} <= set(schema["required"])
    assert "max_completion_tokens" in schema["properties"]
    refs = {v for v in _refs(doc)}
    assert refs <= {"#/components/schemas/" + n for n in doc["components"]["schemas"]}  # no dangling $ref
    messages = doc["paths"]["/v1/messages"]["post"]["responses"]["400"]["content"]["application/json"]
    assert messages["schema"]["$ref"].endswith("/AnthropicError")


def test_schemathesis_reads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(_document(_app()))
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) == len(operations())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
