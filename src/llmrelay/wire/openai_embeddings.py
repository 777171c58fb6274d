"""OpenAI embeddings codec, both directions (``POST /embeddings``).

Pure. ``encoding_format: "base64"`` carries each vector as little-endian float32 bytes in base64:
about a quarter of the JSON size of a float list, which is why the official SDKs ask for it.
Upstream it is off by default because not every compatible server implements it (the provider's
``embedding_format`` option turns it on); decoding accepts both forms whatever was asked. Inbound, a
client's ``encoding_format`` is kept in ``extensions["openai"]`` so the server can answer in kind.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from llmrelay.errors import InvalidRequest, UpstreamError
from llmrelay.types import EmbeddingRequest, EmbeddingResponse, Usage
from llmrelay.wire.json_body import decode_json_object
from llmrelay.wire.openai_inbound import convert_inbound

EncodingFormat: TypeAlias = Literal["float", "base64"]

_RESERVED = frozenset({"model", "input"})


def encode_embedding_request(
    request: EmbeddingRequest, *, model: str, encoding_format: EncodingFormat = "float"
) -> dict[str, Any]:
    """The JSON body for ``POST /embeddings``; the ``openai`` extension namespace is merged last."""
    body: dict[str, Any] = {"model": model, "input": list(request.input)}
    if encoding_format != "float":
        body["encoding_format"] = encoding_format
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user is not None:
        body["user"] = request.user
    for key, value in request.extension("openai").items():
        if key not in _RESERVED:
            body[key] = value
    return body


class _WireEmbedding(msgspec.Struct):
    embedding: list[float] | str
    index: int = 0


class _WireEmbeddingUsage(msgspec.Struct):
    prompt_tokens: int | None = None


class _WireEmbeddings(msgspec.Struct):
    data: list[_WireEmbedding]
    model: str | None = None
    usage: _WireEmbeddingUsage | None = None


_embeddings_decoder = msgspec.json.Decoder(_WireEmbeddings)


def decode_embedding_response(body: bytes, *, provider: str = "openai", model: str = "") -> EmbeddingResponse:
    """Vectors in input order (by ``index``), float lists or base64 alike."""
    try:
        wire = _embeddings_decoder.decode(body)
        vectors = [_vector(item.embedding) for item in sorted(wire.data, key=lambda d: d.index)]
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as err:
        raise UpstreamError(
            f"{provider} returned a malformed embedding response: {err}", provider=provider
        ) from err
    tokens = (wire.usage.prompt_tokens or 0) if wire.usage else 0
    return EmbeddingResponse(
        model=wire.model or model,
        vectors=vectors,
        usage=Usage(input_tokens=tokens),
        provider=provider,
    )


def _vector(embedding: list[float] | str) -> list[float]:
    if isinstance(embedding, list):
        return embedding
    raw = base64.b64decode(embedding, validate=True)
    if len(raw) % 4:
        raise ValueError("base64 embedding is not a whole number of float32 values")
    values = array("f", raw)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def _base64(vector: list[float]) -> str:
    values = array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


MAX_INPUTS = 2048
"""Inputs per request: OpenAI's own limit, so an SDK batching for OpenAI never trips it."""

MAX_DIMENSIONS = 16_384
"""Widest vector a client may ask for: 4x the widest common embedding models (4096: NV-Embed,
Qwen3-Embedding-8B; OpenAI's largest is 3072), 2x the hidden size of the 70B-class models some
embedders are built on. With :data:`MAX_INPUTS` it bounds what one request can ask a provider for;
unbounded, ``dimensions: 10000000`` had the mock build a 227 MB body on the event loop."""


class _InEmbeddingRequest(msgspec.Struct):
    model: str
    input: str | Annotated[list[str], msgspec.Meta(max_length=MAX_INPUTS)]
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=MAX_DIMENSIONS)] | None = None
    user: str | None = None
    encoding_format: EncodingFormat | None = None


_KNOWN = frozenset(_InEmbeddingRequest.__struct_fields__)
EMBEDDINGS_BODY: type[msgspec.Struct] = _InEmbeddingRequest
"""The fields of an embeddings body this codec reads (``/openapi.json`` is made from it)."""


def decode_embedding_request(body: bytes) -> EmbeddingRequest:
    """A ``POST /v1/embeddings`` body. Token-array inputs are refused: no canonical form exists.

    ``dimensions`` must be 1..:data:`MAX_DIMENSIONS` and ``input`` at most :data:`MAX_INPUTS`
    strings; either violation is an :class:`InvalidRequest` naming the field.
    """
    raw = decode_json_object(body)
    wire = convert_inbound({k: v for k, v in raw.items() if k in _KNOWN}, _InEmbeddingRequest, root="")
    texts = (wire.input,) if isinstance(wire.input, str) else tuple(wire.input)
    if not texts:
        raise InvalidRequest("`input` must hold at least one string", param="input")
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
    if wire.encoding_format is not None:
        extra["encoding_format"] = wire.encoding_format
    return EmbeddingRequest(
        model=wire.model,
        input=texts,
        dimensions=wire.dimensions,
        user=wire.user,
        extensions={"openai": extra} if extra else {},
    )


def encode_embedding_response(
    response: EmbeddingResponse,
    *,
    model: str | None = None,
    encoding_format: EncodingFormat = "float",
) -> dict[str, Any]:
    """A ``CreateEmbeddingResponse``; vectors as base64 float32 when the client asked for it."""
    encode = _base64 if encoding_format == "base64" else list
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(vector)}
            for i, vector in enumerate(response.vectors)
        ],
        "model": model or response.model,
        "usage": {
            "prompt_tokens": response.usage.input_tokens,
            "total_tokens": response.usage.input_tokens,
        },
    }
