"""Exact token counts from the model server itself, where it offers a tokenizer endpoint.

llama.cpp: ``POST /tokenize {"content": text}`` -> ``{"tokens": [...]}`` (tools/server/README.md).
vLLM: ``POST /tokenize {"model": m, "prompt": text}`` -> ``{"count": n, "tokens": [...]}``
(vllm/entrypoints/openai/api_server.py). Both live at the server root, not under ``/v1``.
Counts are cached by text (most of a prompt is the same history every turn); a server without the endpoint
answers ``None`` once and is not asked again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import openai
from openai import AsyncOpenAI

from core.model_servers import server_root

log = logging.getLogger(__name__)


class ServerTokenCounter:
    """``await count(text)``: the server's exact token count, or ``None`` when it cannot tell."""

    def __init__(self, client: AsyncOpenAI, model: str, dialect: str, *, cache_size: int = 4096) -> None:
        self.client = client.with_options(max_retries=0, timeout=5.0)
        self.model = model
        self.dialect = dialect
        self.url = f"{server_root(str(client.base_url))}/tokenize"
        self.available = dialect in ("llama-server", "vllm")
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._cache_size = cache_size

    async def count(self, text: str) -> int | None:
        if not self.available:
            return None
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        body: dict[str, Any] = (
            {"model": self.model, "prompt": text} if self.dialect == "vllm" else {"content": text}
        )
        try:
            answer = await self.client.post(self.url, body=body, cast_to=object)
        except (openai.APIError, ValueError) as exc:
            log.warning("the model server cannot count tokens (%s); estimating instead", exc)
            self.available = False
            return None
        found = _count_of(answer)
        if found is None:
            self.available = False
            return None
        self._cache[text] = found
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found


def _count_of(answer: object) -> int | None:
    if not isinstance(answer, dict):
        return None
    count = answer.get("count")
    if isinstance(count, int):
        return count
    tokens = answer.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None
