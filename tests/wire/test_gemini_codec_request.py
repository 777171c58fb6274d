"""Request encoding of the Gemini codec: canonical ChatRequest / EmbeddingRequest -> Gemini JSON."""

from __future__ import annotations

import pytest

from llmrelay.errors import InvalidRequest
from llmrelay.types import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    text_message,
)
from llmrelay.wire.gemini import encode_chat_request, encode_embedding_request, model_id


def _request(*messages: Message, **fields: object) -> ChatRequest:
    return ChatRequest(model="alias", messages=messages, **fields)  # type: ignore[arg-type]


def test_plain_text_turns_use_user_and_model_roles() -> None:
    body = encode_chat_request(
        _request(
            text_message("user", "Hi"),
            text_message("assistant", "Hello!"),
            text_message("user", "How are you?"),
        )
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {"role": "user", "parts": [{"text": "How are you?"}]},
    ]
    assert "systemInstruction" not in body
    assert body["generationConfig"] == {"candidateCount": 1}
    assert "model" not in body


def test_system_messages_are_hoisted_into_system_instruction() -> None:
    body = encode_chat_request(
        _request(
            text_message("system", "Be terse."),
            text_message("user", "Hi"),
            text_message("system", "Answer in French."),
        )
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}, {"text": "Answer in French."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_tool_result_name_is_looked_up_from_the_earlier_call() -> None:
    call = ToolCallPart(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    body = encode_chat_request(
        _request(
            text_message("user", "Weather in Paris?"),
            Message(role="assistant", content=(call,)),
            Message(
                role="tool",
                content=(ToolResultPart(tool_call_id="call_1", content='{"temp_c": 21}'),),
            ),
        )
    )
    assert body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}],
    }


def test_parallel_tool_results_share_one_user_turn_and_keep_their_names() -> None:
    calls = (
        ToolCallPart(id="a", name="get_weather", arguments='{"city": "Paris"}'),
        ToolCallPart(id="b", name="get_time", arguments="{}"),
    )
    body = encode_chat_request(
        _request(
            text_message("user", "Weather and time?"),
            Message(role="assistant", content=(TextPart(text="Checking."), *calls)),
            Message(role="tool", content=(ToolResultPart(tool_call_id="b", content="12:00"),)),
            Message(
                role="tool",
                content=(ToolResultPart(tool_call_id="a", content="boom", is_error=True, name="weather"),),
            ),
        )
    )
    assert len(body["contents"]) == 3
    assert body["contents"][1]["parts"][0] == {"text": "Checking."}
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}},
            # An explicit name wins over the lookup; errors go under "error".
            {"functionResponse": {"name": "weather", "response": {"error": "boom"}}},
        ],
    }


def test_tool_result_without_a_known_name_is_rejected() -> None:
    request = _request(
        text_message("user", "Hi"),
        Message(role="tool", content=(ToolResultPart(tool_call_id="nope", content="x"),)),
    )
    with pytest.raises(InvalidRequest, match="nope"):
        encode_chat_request(request)


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    call = ToolCallPart(id="c", name="f", arguments=arguments)
    with pytest.raises(InvalidRequest, match="tool call 'c'"):
        encode_chat_request(_request(Message(role="assistant", content=(call,))))


def test_images_become_inline_data_or_file_data() -> None:
    message = Message(
        role="user",
        content=(
            TextPart(text="Compare"),
            ImagePart(url="data:image/png;base64,iVBORw0KGgo="),
            ImagePart(url="https://example.com/cat.JPG?size=large"),
            ImagePart(url="https://generativelanguage.googleapis.com/v1beta/files/abc123"),
        ),
    )
    parts = encode_chat_request(_request(message))["contents"][0]["parts"]
    assert parts == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.JPG?size=large", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
    ]


def test_data_url_without_base64_is_rejected() -> None:
    message = Message(role="user", content=(ImagePart(url="data:image/png,rawbytes"),))
    with pytest.raises(InvalidRequest, match="base64"):
        encode_chat_request(_request(message))


def test_tools_and_tool_config() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    tools = (Tool(name="get_weather", description="Weather now", parameters=schema), Tool(name="noop"))
    body = encode_chat_request(
        _request(
            text_message("user", "Hi"),
            tools=tools,
            tool_choice=ToolChoice(mode="tool", name="get_weather"),
        )
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Weather now", "parametersJsonSchema": schema},
                {"name": "noop", "parametersJsonSchema": {"type": "object"}},
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


@pytest.mark.parametrize(("mode", "expected"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")])
def test_tool_choice_modes(mode: str, expected: str) -> None:
    body = encode_chat_request(
        _request(
            text_message("user", "Hi"),
            tools=(Tool(name="f"),),
            tool_choice=ToolChoice(mode=mode),  # type: ignore[arg-type]
        )
    )
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": expected}}


def test_no_tool_config_without_a_tool_choice() -> None:
    body = encode_chat_request(_request(text_message("user", "Hi"), tools=(Tool(name="f"),)))
    assert "toolConfig" not in body


def test_generation_config_and_json_schema() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    body = encode_chat_request(
        _request(
            text_message("user", "Hi"),
            temperature=0.2,
            top_p=0.9,
            max_tokens=128,
            stop=("END",),
            seed=7,
            response_format=ResponseFormat(type="json_schema", name="answer", json_schema=schema),
        )
    )
    assert body["generationConfig"] == {
        "candidateCount": 1,
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 128,
        "stopSequences": ["END"],
        "seed": 7,
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_json_object_mode_sets_only_the_mime_type() -> None:
    body = encode_chat_request(
        _request(text_message("user", "Hi"), response_format=ResponseFormat(type="json_object"))
    )
    assert body["generationConfig"] == {"candidateCount": 1, "responseMimeType": "application/json"}


def test_gemini_extension_is_merged_into_body_and_generation_config() -> None:
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    body = encode_chat_request(
        _request(
            text_message("user", "Hi"),
            temperature=0.5,
            extensions={
                "gemini": {
                    "safetySettings": safety,
                    "thinkingConfig": {"thinkingBudget": 0},
                    "generationConfig": {"topK": 3, "temperature": 1.0},
                },
                "anthropic": {"top_k": 5},
            },
        )
    )
    assert body["safetySettings"] == safety
    assert body["generationConfig"] == {
        "candidateCount": 1,
        "temperature": 1.0,
        "topK": 3,
        "thinkingConfig": {"thinkingBudget": 0},
    }
    assert "top_k" not in body


def test_embedding_request() -> None:
    request = EmbeddingRequest(
        model="alias",
        input=("a", "b"),
        dimensions=256,
        extensions={"gemini": {"taskType": "RETRIEVAL_DOCUMENT"}},
    )
    assert encode_embedding_request(request, model="models/gemini-embedding-001") == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "a"}]},
                "outputDimensionality": 256,
                "taskType": "RETRIEVAL_DOCUMENT",
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "b"}]},
                "outputDimensionality": 256,
                "taskType": "RETRIEVAL_DOCUMENT",
            },
        ]
    }


def test_model_id_strips_the_resource_prefix() -> None:
    assert model_id("models/gemini-2.5-flash") == "gemini-2.5-flash"
    assert model_id("gemini-2.5-flash") == "gemini-2.5-flash"
