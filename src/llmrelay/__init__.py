"""llmrelay: one async facade and an OpenAI/Anthropic-compatible gateway over many LLM providers.

Importing this package loads no provider SDK, opens nothing and reads no environment; HTTP clients
and provider modules load when a :class:`Relay` is built from a config that names them.
"""

from llmrelay.config import Config, load_config
from llmrelay.errors import (
    AllTargetsFailed,
    AuthenticationError,
    CircuitOpen,
    ConfigError,
    ConnectionFailed,
    ContentFiltered,
    ContextLengthExceeded,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RelayError,
    StreamInterrupted,
    Timeout,
    UpstreamError,
)
from llmrelay.relay import Relay, StreamCall
from llmrelay.streams import ChatStream
from llmrelay.sync import SyncRelay
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)

__all__ = [
    "AllTargetsFailed",
    "AuthenticationError",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "CircuitOpen",
    "Config",
    "ConfigError",
    "ConnectionFailed",
    "ContentFiltered",
    "ContextLengthExceeded",
    "DeadlineExceeded",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "ImagePart",
    "InvalidRequest",
    "Message",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "RateLimited",
    "Relay",
    "RelayError",
    "ResponseFormat",
    "StreamCall",
    "StreamInterrupted",
    "SyncRelay",
    "TextPart",
    "Timeout",
    "Tool",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolChoice",
    "ToolResultPart",
    "UpstreamError",
    "Usage",
    "load_config",
]
