"""Virtual keys: what clients authenticate with instead of provider keys."""

from llmrelay.keys.model import VirtualKey
from llmrelay.keys.service import KeyService

__all__ = ["KeyService", "VirtualKey"]
