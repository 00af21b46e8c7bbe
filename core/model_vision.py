"""Whether a model can see images, defaulted from its name when the bot does not say.

A bot's ``vision`` setting (:class:`core.bot_profile.BotProfile`) wins; ``None`` asks this table. Names are
matched after dropping a provider path (``openai/gpt-4o``) and an Ollama tag (``llava:13b``). A model the
table does not know is taken as text-only: the user then gets a clear answer instead of a server error.
"""

from __future__ import annotations

VISION_PREFIXES = (
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-4-turbo",
    "gpt-5",
    "chatgpt-4o",
    "o1",
    "o3",
    "o4",
    "claude",
    "gemini",
    "llava",
    "bakllava",
    "gemma3",
    "llama4",
    "llama-4",
    "pixtral",
    "minicpm-v",
    "moondream",
    "mistral-small3.1",
    "mistral-small-3.1",
    "grok-2-vision",
    "grok-4",
)
VISION_MARKERS = ("-vl", "vision", "llava")  # qwen2-vl, qwen2.5-vl, qwen3-vl, llama3.2-vision, ...
TEXT_ONLY_PREFIXES = ("o1-mini", "o1-preview", "o3-mini", "gpt-4o-audio", "gpt-4o-realtime")


def model_sees_images(model: str) -> bool:
    """Whether ``model`` takes image content parts, by its name."""
    name = model.lower().rsplit("/", 1)[-1].split(":", 1)[0]
    if name.startswith(TEXT_ONLY_PREFIXES):
        return False
    return name.startswith(VISION_PREFIXES) or any(marker in name for marker in VISION_MARKERS)
