"""Context windows of well-known models, so users rarely have to set ``CHATBOT_CONTEXT_TOKENS``.

Names are matched by prefix after dropping a provider path (``openai/gpt-4o``) and an Ollama tag's size
(``llama3.1:8b`` -> ``llama3.1``); the longest matching prefix wins.
"""

from __future__ import annotations

DEFAULT_CONTEXT_TOKENS = 8192

CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "llama2": 4_096,
    "llama-2": 4_096,
    "llama3": 8_192,
    "llama-3": 8_192,
    "llama3.1": 131_072,
    "llama3.2": 131_072,
    "llama3.3": 131_072,
    "llama-3.1": 131_072,
    "llama-3.3": 131_072,
    "llama4": 1_048_576,
    "mistral": 32_768,
    "mixtral": 32_768,
    "qwen2.5": 32_768,
    "qwen3": 40_960,
    "gemma2": 8_192,
    "gemma3": 131_072,
    "phi3": 4_096,
    "phi4": 16_384,
    "deepseek-r1": 131_072,
    "deepseek-v3": 131_072,
}


def known_context_window(model: str) -> int | None:
    """The context window of ``model`` if the table knows it."""
    name = model.lower().rsplit("/", 1)[-1].split(":", 1)[0]
    best: str | None = None
    for prefix in CONTEXT_WINDOWS:
        if name.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return CONTEXT_WINDOWS[best] if best is not None else None
