"""Bearer JWTs through the real server: a token signed by the configured JWKS is a caller; every
way a token can be wrong is a 401 that says why."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

ISSUER, AUDIENCE = "https://issuer.test", "llmrelay"
SIGNING = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
HELLO = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}


def token(key: Any = SIGNING, kid: str = "k1", **claims: Any) -> str:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "team": "search", "exp": time.time() + 300}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    tmp = tmp_path_factory.mktemp("jwt")
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING.public_key()))
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    verify = {"jwks": str(jwks), "issuer": ISSUER, "audience": AUDIENCE, "models_claim": "models"}
    mock = [{"provider": "mock"}]
    config = {
        "server": {"jwt": verify},
        "models": [{"name": "mock", "targets": mock}, {"name": "other", "targets": mock}],
    }
    async with run_gateway(config, tmp) as gw:
        yield gw


async def _chat(gateway: Gateway, bearer: str | None, model: str = "mock") -> tuple[int, dict[str, Any]]:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    body = {**HELLO, "model": model}
    async with (
        aiohttp.ClientSession() as s,
        s.post(gateway.url + "/v1/chat/completions", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_a_valid_token_is_a_caller_named_by_its_claims(gateway: Gateway) -> None:
    status, _ = await _chat(gateway, token())
    assert status == 200
    line = gateway.access_lines()[-1]
    assert line["key_id"] == "jwt:ada"


async def test_a_models_claim_restricts_the_caller(gateway: Gateway) -> None:
    status, body = await _chat(gateway, token(models=["mock"]), model="other")
    assert status == 403 and body["error"]["code"] == "model_not_allowed"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (lambda: token(exp=time.time() - 10), "expired"),
        (lambda: token(aud="someone-else"), "wrong audience"),
        (lambda: token(iss="https://elsewhere.test"), "wrong issuer"),
        (lambda: token(key=STRANGER), "bad signature"),
        (lambda: token(kid="k2"), "unknown key"),
        (lambda: "eyJub3Q.a.jwt", "well-formed"),
    ],
)
async def test_every_bad_token_is_a_401_saying_why(gateway: Gateway, bad: Any, why: str) -> None:
    presented = bad()
    status, body = await _chat(gateway, presented)
    assert status == 401 and why in body["error"]["message"]
    assert presented not in json.dumps(body)
    assert presented not in gateway.log()


async def test_without_a_token_the_server_asks_for_one(gateway: Gateway) -> None:
    status, body = await _chat(gateway, None)
    assert status == 401 and "missing API key" in body["error"]["message"]


async def test_a_jwks_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    config = {
        "server": {"jwt": {"jwks": str(tmp_path / "none.json"), "issuer": ISSUER, "audience": AUDIENCE}},
        "models": [{"name": "mock", "targets": [{"provider": "mock"}]}],
    }
    with pytest.raises(RuntimeError, match=r"server\.jwt\.jwks"):
        async with run_gateway(config, tmp_path):
            pass
