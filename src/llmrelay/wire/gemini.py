"""The Google Gemini codec (Generative Language API, ``v1beta``): canonical types <-> Gemini JSON.

Pure: no I/O, no clock. Used only in the upstream direction by :mod:`llmrelay.providers.gemini`
(the server does not accept Gemini format inbound). This module encodes requests; replies, stream
events and errors are decoded in :mod:`~llmrelay.wire.gemini_response`,
:mod:`~llmrelay.wire.gemini_stream` and :mod:`~llmrelay.wire.gemini_errors`, re-exported here so
callers import one codec.

Request mapping (``models/{model}:generateContent`` and ``:streamGenerateContent``; the model is
in the path, not the body):

- ``system`` messages are hoisted into ``systemInstruction``; the rest become ``contents`` with
  roles ``user`` / ``model``. Tool results travel as ``functionResponse`` parts in a ``user`` turn,
  and adjacent turns of one role are merged (parallel calls need all their responses in one turn).
- Images: ``data:`` URLs become ``inlineData``; other URLs ``fileData`` (Files API or public URIs).
- ``functionResponse`` needs the function's *name*: :attr:`ToolResultPart.name`, else the name of
  the earlier :class:`ToolCallPart` with the same id. Its ``response`` must be an object: a JSON
  object result is sent as is, anything else as ``{"output": ...}`` (``{"error": ...}`` on error),
  the keys the API documents for that purpose.
- Tools use ``parametersJsonSchema`` and JSON mode uses ``responseJsonSchema``: both accept JSON
  Schema as callers write it (``$ref``, ``anyOf``, ``additionalProperties``), whereas the older
  ``parameters`` / ``responseSchema`` take an OpenAPI subset that would need a lossy translation.
- ``parallel_tool_calls`` and ``user`` have no Gemini equivalent and are not sent.
- Reasoning: Gemini's own :class:`ReasoningPart` values go back as ``thought`` parts with their
  ``thoughtSignature``, and a part's ``meta["gemini"]`` (the signature Gemini put on a function
  call or text) is written back onto it, byte for byte, as Gemini 3 requires for tool-use history;
  another provider's reasoning is left out. Canonical ``reasoning`` becomes
  ``thinkingConfig`` (:mod:`llmrelay.wire.reasoning`).
- ``request.extension("gemini")`` is merged last, so an explicit provider knob wins: generation
  keys (``thinkingConfig``, ``topK``, ...) and a ``generationConfig`` mapping go into
  ``generationConfig``, every other key (``safetySettings``, ``cachedContent``, ...) into the body.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.types import (
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from llmrelay.wire.gemini_errors import decode_error
from llmrelay.wire.gemini_response import decode_chat_response, decode_embedding_response
from llmrelay.wire.gemini_stream import GeminiStreamDecoder
from llmrelay.wire.reasoning import gemini_thinking_config

__all__ = [
    "GeminiStreamDecoder",
    "decode_chat_response",
    "decode_embedding_response",
    "decode_error",
    "encode_chat_request",
    "encode_embedding_request",
    "model_id",
]

_GENERATION_KEYS = frozenset(
    {
        "thinkingConfig",
        "topK",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "responseModalities",
        "mediaResolution",
        "speechConfig",
        "imageConfig",
    }
)
_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
_IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
}


def model_id(model: str) -> str:
    """The bare model id for a URL path (configs may say ``models/gemini-2.5-flash``)."""
    return model.removeprefix("models/")


def encode_chat_request(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of ``generateContent`` / ``streamGenerateContent`` for ``request``."""
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = [{"text": m.text} for m in request.messages if m.role == "system" and m.text]
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = []
        for tool in request.tools:
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description:
                declaration["description"] = tool.description
            declaration["parametersJsonSchema"] = tool.parameters
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
    generation = _generation_config(request)
    extension = request.extension("gemini")
    for key, value in extension.items():
        if key == "generationConfig" and isinstance(value, dict):
            generation.update(value)
        elif key in _GENERATION_KEYS:
            generation[key] = value
        else:
            body[key] = value
    body["generationConfig"] = generation
    return body


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    # One candidate: the canonical response has one message, and extra candidates are billed.
    config: dict[str, Any] = {"candidateCount": 1}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed
    if request.reasoning is not None:
        config["thinkingConfig"] = gemini_thinking_config(request.reasoning)
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.json_schema is not None:
            config["responseJsonSchema"] = fmt.json_schema
    return config


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": _CHOICE_MODES[choice.mode]}
    if choice.mode == "tool":
        if not choice.name:
            raise InvalidRequest("tool_choice of type 'tool' needs a tool name", param="tool_choice")
        config["allowedFunctionNames"] = [choice.name]
    return config


def _contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    call_names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for position, message in enumerate(messages):
        if message.role == "system":
            continue
        encoded = [_part(part, call_names, position) for part in message.content]
        parts = [part for part in encoded if part is not None]
        if not parts:
            continue
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _part(
    part: ContentPart,
    call_names: dict[str, str],
    position: int,
) -> dict[str, Any] | None:
    encoded = _encode_part(part, call_names, position)
    if encoded is not None and part.meta:
        encoded.update(part.provider_meta("gemini"))
    return encoded


def _encode_part(
    part: ContentPart,
    call_names: dict[str, str],
    position: int,
) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ReasoningPart):
        if part.provider != "gemini":
            return None  # another provider's signature means nothing to Gemini
        thought: dict[str, Any] = {"text": part.text, "thought": True}
        if part.signature is not None:
            thought["thoughtSignature"] = part.signature
        return thought
    if isinstance(part, ImagePart):
        return _image(part, position)
    if isinstance(part, ToolCallPart):
        call_names[part.id] = part.name
        return {"functionCall": {"name": part.name, "args": _arguments(part, position)}}
    name = part.name or call_names.get(part.tool_call_id)
    if name is None:
        raise InvalidRequest(
            f"messages[{position}]: tool result {part.tool_call_id!r} names no function and "
            "answers no earlier tool call (Gemini needs the function name)",
            param=f"messages[{position}]",
        )
    return {"functionResponse": {"name": name, "response": _result(part)}}


def _arguments(call: ToolCallPart, position: int) -> dict[str, Any]:
    try:
        args = msgspec.json.decode(call.arguments or "{}")
    except msgspec.DecodeError as err:
        raise InvalidRequest(
            f"messages[{position}]: arguments of tool call {call.id!r} are not valid JSON",
            param=f"messages[{position}]",
        ) from err
    if not isinstance(args, dict):
        raise InvalidRequest(
            f"messages[{position}]: arguments of tool call {call.id!r} must be a JSON object",
            param=f"messages[{position}]",
        )
    return args


def _result(part: ToolResultPart) -> dict[str, Any]:
    key = "error" if part.is_error else "output"
    try:
        value = msgspec.json.decode(part.content)
    except msgspec.DecodeError:
        return {key: part.content}
    if isinstance(value, dict) and not part.is_error:
        return value
    return {key: value}


def _image(part: ImagePart, position: int) -> dict[str, Any]:
    url = part.url
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not mime:
            raise InvalidRequest(
                f"messages[{position}]: image data URLs must be data:<media type>;base64,<data>",
                param=f"messages[{position}]",
            )
        return {"inlineData": {"mimeType": mime, "data": data}}
    file: dict[str, Any] = {"fileUri": url}
    extension = url.split("?", 1)[0].rsplit(".", 1)[-1].lower()
    if extension in _IMAGE_TYPES:
        file["mimeType"] = _IMAGE_TYPES[extension]
    return {"fileData": file}


def encode_embedding_request(request: EmbeddingRequest, *, model: str) -> dict[str, Any]:
    """The JSON body of ``batchEmbedContents``: one embed request per input text.

    ``request.extension("gemini")`` (``taskType``, ``title``) applies to every text.
    """
    extension = request.extension("gemini")
    requests = []
    for text in request.input:
        item: dict[str, Any] = {
            "model": f"models/{model_id(model)}",
            "content": {"parts": [{"text": text}]},
        }
        if request.dimensions is not None:
            item["outputDimensionality"] = request.dimensions
        item.update(extension)
        requests.append(item)
    return {"requests": requests}
